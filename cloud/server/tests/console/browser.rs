//! The console in a real browser: Debian's headless Chromium driven through chromedriver's
//! W3C WebDriver API (JSON over HTTP, no client library). Installed by `.ci/setup`.
//!
//! Set `SMSGUARD_CONSOLE_SCREENSHOTS=DIR` to save a PNG of each page there (the README's
//! pictures in docs/ come from it).

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process in a process group of its own, with the browsers it starts; the
/// whole group is ended when dropped, so no Chromium outlives a failed test.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find_program(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{names:?} not found on PATH: run .ci/setup (apt packages chromium, chromium-driver)")
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new(find_program(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(driver.addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

/// One browser session.
struct Browser<'a> {
    driver: &'a Driver,
    id: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.id);
        let _ = std::panic::catch_unwind(|| json_request(self.driver.addr, "DELETE", &path, None));
    }
}

impl<'a> Browser<'a> {
    fn open(driver: &'a Driver) -> Browser<'a> {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1100,900",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": find_program(&["chromium"]).display().to_string(),
                "args": args,
            },
        }}});
        let answer = json_request(driver.addr, "POST", "/session", Some(&capabilities));
        let id = answer["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Browser {
            driver,
            id,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        json_request(self.driver.addr, method, &path, body.as_ref())["value"].take()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_owned()
    }

    fn elements(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[ELEMENT_KEY]
                    .as_str()
                    .unwrap_or_else(|| panic!("{e}"))
                    .to_owned()
            })
            .collect()
    }

    /// The one element `css` selects, waiting up to 20 s for it (a click that submits a form
    /// may return before the next page is there).
    fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut found = self.elements(css);
            if found.len() == 1 {
                return found.remove(0);
            }
            if Instant::now() > deadline {
                let source = self.call("GET", "/source", None);
                panic!(
                    "{} elements for {css} on {}: {source}",
                    found.len(),
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    fn text(&self, css: &str) -> String {
        let id = self.element(css);
        let text = self.call("GET", &format!("/element/{id}/text"), None);
        text.as_str().unwrap().to_owned()
    }

    /// Saves a PNG of the page when `SMSGUARD_CONSOLE_SCREENSHOTS` names a folder.
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SMSGUARD_CONSOLE_SCREENSHOTS") else {
            return;
        };
        let png = self.call("GET", "/screenshot", None);
        let bytes = decode_base64(png.as_str().unwrap());
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), bytes).unwrap();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | u32::from(*d) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn an_operator_logs_in_sees_the_overview_fill_and_tries_a_message() {
    let fed = [
        "Are we still on for dinner tonight?",
        "Congratulations! You WON a $1000 gift card, claim at http://gift-win.example now",
        "Your account is locked, verify at http://bank-verify.example/login today",
    ];
    let verdicts: Vec<_> = fed.iter().map(|body| classify(body)).collect();
    let base = format!("http://{}", SERVER.console);
    let driver = Driver::start();
    let browser = Browser::open(&driver);

    browser.go(&format!("{base}/overview"));
    assert!(browser.url().ends_with("/login"), "{}", browser.url());
    browser.screenshot("console-login");
    browser.type_into("#user", ADMIN);
    browser.type_into("#password", "wrong password");
    browser.click("#login");
    assert_eq!(browser.text("#login-error"), "Wrong user or password.");

    browser.type_into("#user", ADMIN);
    browser.type_into("#password", PASSWORD);
    browser.click("#login");
    let total: u64 = browser.text("#total-verdicts").parse().unwrap();
    assert!(browser.url().ends_with("/overview"), "{}", browser.url());
    assert!(total >= fed.len() as u64, "{total} verdicts shown");
    assert!(!browser.elements("svg.chart rect.bar").is_empty());
    let latency = browser.text("#latency");
    assert!(latency.contains("Classify"), "{latency}");
    if std::env::var_os("SMSGUARD_CONSOLE_SCREENSHOTS").is_some() {
        // Pictures only: two more 10 s samples, so the per-second chart has lines to show.
        for round in 0..3 {
            for body in fed.iter().take(round + 1) {
                classify(body);
            }
            std::thread::sleep(Duration::from_secs(7));
        }
        browser.go(&format!("{base}/overview"));
        browser.element("#total-verdicts");
    }
    browser.screenshot("console-overview");

    browser.click("header a[href='/try']");
    browser.type_into("#text", fed[2]);
    browser.click("#score");
    let expected = &verdicts[2];
    let label = browser.text("#verdict-label");
    assert_eq!(
        format!("LABEL_{}", label.to_uppercase()),
        smsguard_proto::v1::Label::try_from(expected.label)
            .unwrap()
            .as_str_name()
    );
    let rows = browser.elements("#contributions tr");
    assert_eq!(
        rows.len(),
        expected.contributions.len() + 1,
        "header + one row each"
    );
    browser.screenshot("console-try");

    browser.click("header a[href='/rules']");
    assert!(browser.text("#rules-status").starts_with("Valid: "));
    assert!(browser.elements("#rules tr").len() > 10);
    browser.screenshot("console-rules");

    whitelist_a_cluster_and_see_the_next_verdict_change(&browser, &base);

    browser.click("header a[href='/audit']");
    let audit = browser.text("#audit");
    assert!(audit.contains("try_message"), "{audit}");
    assert!(audit.contains("login_failed"), "{audit}");
    assert!(audit.contains("whitelist"), "{audit}");
    assert!(
        !audit.contains("bank-verify"),
        "no message text in the audit"
    );
    browser.screenshot("console-audit");
}

/// A reported smishing text shows up as a campaign; whitelisting its cluster on the Reports
/// page turns the Try page's verdict of a near-duplicate to allow.
fn whitelist_a_cluster_and_see_the_next_verdict_change(browser: &Browser<'_>, base: &str) {
    const CAMPAIGN: &str = "Final notice: your toll account 55120 has an unpaid balance of 4.15, \
        settle it at http://toll-settle.example/pay within 24 hours to avoid a penalty";
    const VARIANT: &str = "Final notice: your toll account 55129 has an unpaid balance of 4.15, \
        settle it at http://toll-settle.example/pay within 24 hours to avoid a penalty";
    let id = classify_from("+15550179", CAMPAIGN)
        .fingerprint
        .to_ascii_lowercase();
    crate::campaigns::report(&id, true);

    let try_variant = || {
        browser.go(&format!("{base}/try"));
        browser.type_into("#text", VARIANT);
        browser.click("#score");
        browser.text("#verdict-action")
    };
    assert_ne!(try_variant(), "allow");

    browser.click("header a[href='/campaigns']");
    let campaigns = browser.text("#campaigns");
    assert!(campaigns.contains(&id), "{campaigns}");
    browser.screenshot("console-campaigns");

    browser.click("header a[href='/reports']");
    browser.click(&format!("button.whitelist[data-first='{id}']"));
    let notice = browser.text("#list-notice");
    assert!(notice.starts_with("Whitelisted 1 fingerprint"), "{notice}");
    assert!(browser.text("#report-clusters").contains("whitelist"));
    browser.screenshot("console-reports");

    assert_eq!(try_variant(), "allow");
    assert!(
        !browser.text("main").contains("toll account"),
        "no text shown"
    );
}

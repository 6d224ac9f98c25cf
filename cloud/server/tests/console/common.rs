//! Shared helpers: one runtime and one console server for the whole binary, a minimal
//! HTTP/1.1 client (console pages and chromedriver's JSON), a logged-in session.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::LazyLock;
use std::time::Duration;

use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_server::console::auth::PasswordHash;
use smsguard_server::{RunningServer, ServerConfig};

pub const ADMIN: &str = "operator";
pub const PASSWORD: &str = "correct horse battery staple";

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("test runtime")
});

pub fn run<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

/// The server every test of this binary shares (tests only add verdicts and audit entries, and
/// assert lower bounds).
pub struct ConsoleServer {
    pub server: RunningServer,
    pub console: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ConsoleServer {
    /// The rules file the server was configured with.
    pub fn server_rules_path(&self) -> std::path::PathBuf {
        self._dir.path().join("rules.toml")
    }
}

pub static SERVER: LazyLock<ConsoleServer> = LazyLock::new(start_console_server);

/// A server of its own, for tests that disturb the others (the login throttle).
pub fn start_console_server() -> ConsoleServer {
    start_console_server_with(|_, _| {})
}

/// A server of its own, its config adjusted by `tweak` (given the data folder).
pub fn start_console_server_with(
    tweak: impl FnOnce(&mut ServerConfig, &std::path::Path),
) -> ConsoleServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::for_tests(dir.path());
    tweak(&mut config, dir.path());
    config.console_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.console_admin_user = ADMIN.into();
    // Few iterations: the tests log in often; the format and the check are the real ones.
    config.console_admin_password_hash = Some(PasswordHash::create(PASSWORD, 1000).unwrap());
    let server = run(smsguard_server::spawn(config)).expect("server starts");
    let console = server.console_addr.expect("the console is on");
    ConsoleServer {
        server,
        console,
        _dir: dir,
    }
}

pub fn message(body: &str) -> v1::SmsMessage {
    v1::SmsMessage {
        sender: "+15550100".into(),
        body: body.into(),
        received_at_ms: 1_700_000_000_000,
        device_id: "console-test".into(),
        ..Default::default()
    }
}

/// Classifies `body` over gRPC on the shared server.
pub fn classify(body: &str) -> v1::Verdict {
    classify_from("+15550100", body)
}

/// Classifies `body` from `sender` (a sender of its own keeps other tests' traffic out of the
/// sender scorer's window).
pub fn classify_from(sender: &str, body: &str) -> v1::Verdict {
    let addr = SERVER.server.addr;
    let message = v1::SmsMessage {
        sender: sender.into(),
        ..message(body)
    };
    run(async move {
        let mut client = SmsGuardClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        client
            .classify(v1::ClassifyRequest {
                message: Some(message),
            })
            .await
            .expect("classify")
            .into_inner()
            .verdict
            .expect("a verdict")
    })
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    /// `name=value` of cookie `name`, ready for a `Cookie` header.
    pub fn cookie_pair(&self, name: &str) -> Option<String> {
        self.set_cookie(name)
            .and_then(|line| line.split(';').next())
            .map(str::to_owned)
    }
}

/// One request over a fresh connection (`Connection: close`), answer read to the end.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    parse_reply(&read_answer(&mut stream))
}

/// The head and, by its `Content-Length`, the body (chromedriver keeps connections open
/// whatever the request asked); without a length, up to the end of the stream.
fn read_answer(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            if let Some(length) = content_length(&raw[..head_end]) {
                if raw.len() >= head_end + 4 + length {
                    return raw;
                }
            }
        }
        match stream.read(&mut buf).expect("read the answer") {
            0 => return raw,
            n => raw.extend_from_slice(&buf[..n]),
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    fields
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(n, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn get(path: &str, cookie: Option<&str>) -> Reply {
    get_from(SERVER.console, path, cookie)
}

pub fn get_from(console: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    request(console, "GET", path, &headers, b"")
}

pub fn post_form(path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Reply {
    post_form_to(SERVER.console, path, cookie, fields)
}

pub fn post_form_to(
    console: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(cookie) = cookie {
        headers.push(("Cookie", cookie));
    }
    request(
        console,
        "POST",
        path,
        &headers,
        form_body(fields).as_bytes(),
    )
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a csrf field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// A logged-in console session: its `Cookie` header and its CSRF token.
pub struct Login {
    pub cookie: String,
    pub csrf: String,
}

/// Logs in with `user`/`password` through the login form; the answer of the POST.
pub fn submit_login(user: &str, password: &str) -> Reply {
    submit_login_to(SERVER.console, user, password)
}

pub fn submit_login_to(console: SocketAddr, user: &str, password: &str) -> Reply {
    let form = request(console, "GET", "/login", &[], b"");
    assert_eq!(form.status, 200);
    let login_cookie = form
        .cookie_pair("smsguard_console_login")
        .expect("a login form cookie");
    let csrf = csrf_of(&form.body);
    let body = form_body(&[("csrf", &csrf), ("user", user), ("password", password)]);
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", login_cookie.as_str()),
    ];
    request(console, "POST", "/login", &headers, body.as_bytes())
}

pub fn login() -> Login {
    login_to(SERVER.console)
}

pub fn login_to(console: SocketAddr) -> Login {
    let answer = submit_login_to(console, ADMIN, PASSWORD);
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = answer
        .cookie_pair("smsguard_console")
        .expect("a session cookie");
    let overview = get_from(console, "/overview", Some(&cookie));
    assert_eq!(overview.status, 200);
    Login {
        csrf: csrf_of(&overview.body),
        cookie,
    }
}

/// The text of the element with `id` in `page` (first text node only; enough for figures).
pub fn element_text(page: &str, id: &str) -> Option<String> {
    let marker = format!(r#"id="{id}""#);
    let start = page.find(&marker)? + marker.len();
    let rest = &page[start..];
    let open_end = rest.find('>')? + 1;
    let text = &rest[open_end..];
    Some(text[..text.find('<')?].to_owned())
}

/// JSON over HTTP (chromedriver's W3C WebDriver API).
pub fn json_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [("Content-Type", "application/json; charset=utf-8")];
    let reply = request(addr, method, path, &headers, bytes.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", reply.body));
    assert_eq!(reply.status, 200, "{method} {path}: {value}");
    value
}

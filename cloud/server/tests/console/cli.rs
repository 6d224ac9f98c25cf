//! The console through the binary: `console-password` and `serve --console-listen`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use smsguard_server::console::auth::PasswordHash;

const BINARY: &str = env!("CARGO_BIN_EXE_smsguard-cloud");

fn password_hash(password: &str) -> String {
    let mut child = Command::new(BINARY)
        .args(["console-password", "--iterations", "1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn console_password_prints_a_salted_hash_of_the_stdin_line() {
    let first = password_hash("s3cret pass");
    let second = password_hash("s3cret pass");
    assert_ne!(first, second, "a fresh salt each time");
    let parsed = PasswordHash::parse(&first).unwrap();
    assert!(parsed.verify("s3cret pass"));
    assert!(!parsed.verify("s3cret pass\n"));
    assert!(!first.contains("s3cret"));
}

/// A `serve` child and its data folder (removed when dropped).
fn serve(console_listen: &str, hash: &str) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BINARY)
        .args([
            "serve",
            "--plaintext",
            "--no-seed",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--console-listen", console_listen])
        .env("SMSGUARD_CONSOLE_ADMIN_PASSWORD_HASH", hash)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

#[test]
fn serve_prints_the_console_address_and_serves_the_login_page() {
    let (mut child, _dir) = serve("127.0.0.1:0", &password_hash("pw"));
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let console_line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|line| line.starts_with("console "))
        .expect("a console line");
    let url = console_line.trim_start_matches("console ");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let page = crate::common::request(addr, "GET", "/login", &[], b"");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"name="password""#));
}

#[test]
fn a_public_console_address_is_refused_without_allow_remote() {
    let (child, _dir) = serve("0.0.0.0:0", &password_hash("pw"));
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("console_allow_remote"), "{stderr}");
}

//! What the bench binaries (`load-bench`, `soak-bench`) share: the server child process, its
//! readiness check, `/proc` readings and the built-in message mix.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod redis_stats;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_proto::v1::{ClassifyRequest, SmsMessage};
use tonic::transport::Channel;

/// A server child process, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub _data_dir: Option<tempfile::TempDir>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// CPU seconds (user + system) the process has used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        process_cpu_seconds(self.child.id())
    }
}

/// CPU seconds (user + system) process `pid` has used so far, from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // The Linux value on every common architecture; `getconf CLK_TCK` would tell otherwise.
    100.0
}

pub fn free_loopback_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("binary has no folder")?;
    Ok(dir.join(name))
}

/// Starts `smsguard-cloud serve` on a free loopback port with a fresh data folder; `env` is
/// added to its environment (`SMSGUARD_*` settings).
pub fn start_cloud(server_bin: &Path, env: &[(String, String)]) -> Result<ServerProcess> {
    let addr = free_loopback_port()?;
    let data_dir = tempfile::tempdir()?;
    let child = Command::new(server_bin)
        .args(["serve", "--plaintext", "--listen"])
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("SMSGUARD_SEED_FROM_CORPORA", "false")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", server_bin.display()))?;
    Ok(ServerProcess {
        child,
        addr,
        _data_dir: Some(data_dir),
    })
}

/// Adds `authorization: Bearer <key>` when a key is given.
pub fn with_key<T>(key: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        if let Ok(value) = format!("Bearer {key}").parse() {
            request.metadata_mut().insert("authorization", value);
        }
    }
    request
}

/// Connects once the server answers a Classify (loading models can take seconds).
pub async fn wait_ready(
    addr: SocketAddr,
    message: &SmsMessage,
    key: Option<&str>,
) -> Result<SmsGuardClient<Channel>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut client) = SmsGuardClient::connect(format!("http://{addr}")).await {
            let request = ClassifyRequest {
                message: Some(message.clone()),
            };
            if client.classify(with_key(key, request)).await.is_ok() {
                return Ok(client);
            }
        }
        if Instant::now() > deadline {
            bail!("server at {addr} did not answer within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub const BUILTIN_MESSAGES: &[&str] = &[
    "Are we still on for lunch tomorrow? I can pick you up at 12.",
    "URGENT: your bank account is suspended. Verify at http://secure-login-check.example.top now",
    "Congratulations! You have WON a voucher. Call 09061701461 now to claim",
    "妈妈，我今天晚上加班，不回家吃饭了",
    "【工商银行】您的账户存在异常，请点击链接 http://icbc-verify.example.cn 进行验证",
    "加 薇 信 领 取 免 费 礼 品",
    "Meeting moved to 3pm, room 4B.",
    "Your parcel could not be delivered. Pay the fee at http://parcel-redelivery.example.xyz",
];

pub fn load_messages(path: Option<&Path>) -> Result<Vec<SmsMessage>> {
    let bodies: Vec<String> = match path {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => BUILTIN_MESSAGES.iter().map(|s| s.to_string()).collect(),
    };
    if bodies.is_empty() {
        bail!("no messages to send");
    }
    Ok(bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| SmsMessage {
            sender: format!("+8613800{:06}", i),
            body,
            received_at_ms: 1_700_000_000_000,
            device_id: "load-bench".into(),
            client_message_id: i.to_string(),
            ..SmsMessage::default()
        })
        .collect())
}

/// The body of `GET path` from a plain HTTP/1.1 listener (the server's metrics).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

//! Shared helpers: one async runtime for every test (servers outlive single tests), server
//! start-up, clients and messages.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::LazyLock;

use bytes::{Buf, BufMut};
use smsguard_proto::v1;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_server::{RunningServer, ServerConfig};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::Status;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("test runtime")
});

/// Runs `future` on the shared runtime (tests are plain `#[test]`s so that servers started by
/// one test can serve the next).
pub fn run<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

/// A started in-process server and its data folder.
#[derive(Debug)]
pub struct TestServer {
    pub server: RunningServer,
    /// Kept so the data folder lives as long as the server.
    pub _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

/// Starts a server from `ServerConfig::for_tests`, adjusted by `tweak`.
pub async fn start(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::for_tests(dir.path());
    // The whole suite also runs on the Redis backend (SMSGUARD_TEST_STATE=redis).
    config.state = crate::test_redis::suite_state();
    // A loaded CI machine must not turn a slow round trip into a degraded verdict.
    config.state_timeout_ms = 1000;
    tweak(&mut config);
    let server = smsguard_server::spawn(config).await.expect("server starts");
    TestServer { server, _dir: dir }
}

pub async fn client(addr: SocketAddr) -> SmsGuardClient<Channel> {
    SmsGuardClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

/// A bare channel to `addr`, for the health and reflection services and raw gRPC calls.
pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect()
        .await
        .expect("connect")
}

/// Classifies `msg` and returns the verdict (panics on any error).
pub async fn classify_verdict(
    client: &mut SmsGuardClient<Channel>,
    msg: v1::SmsMessage,
) -> v1::Verdict {
    client
        .classify(v1::ClassifyRequest { message: Some(msg) })
        .await
        .expect("classify")
        .into_inner()
        .verdict
        .expect("a verdict")
}

pub fn message(body: &str, id: &str) -> v1::SmsMessage {
    v1::SmsMessage {
        sender: "+15550100".into(),
        body: body.into(),
        received_at_ms: 1_700_000_000_000,
        device_id: "test-device".into(),
        client_message_id: id.into(),
        ..v1::SmsMessage::default()
    }
}

pub fn classify_request(body: &str) -> v1::ClassifyRequest {
    v1::ClassifyRequest {
        message: Some(message(body, "m")),
    }
}

/// The contribution of `model` in a verdict.
pub fn contribution<'a>(verdict: &'a v1::Verdict, model: &str) -> &'a v1::Contribution {
    verdict
        .contributions
        .iter()
        .find(|c| c.model == model)
        .unwrap_or_else(|| panic!("no {model} contribution"))
}

/// `smsguard-cloud serve` as a child process on an ephemeral loopback port (plaintext, no
/// seeding, data in `data_dir`); `stderr` receives its logs. Returns the child and the address
/// read from its first stdout line.
pub fn serve_process(
    data_dir: &std::path::Path,
    rust_log: &str,
    stderr: std::process::Stdio,
) -> (std::process::Child, SocketAddr) {
    serve_process_with_env(data_dir, rust_log, stderr, &[])
}

/// [`serve_process`] with extra `SMSGUARD_*` settings in its environment.
pub fn serve_process_with_env(
    data_dir: &std::path::Path,
    rust_log: &str,
    stderr: std::process::Stdio,
    env: &[(&str, &str)],
) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smsguard-cloud"))
        .args([
            "serve",
            "--plaintext",
            "--no-seed",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", rust_log)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start smsguard-cloud");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the address");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (child, addr)
}

/// Sends SIGTERM and waits up to 20 s for the process to exit.
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            return exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The Prometheus text of a metrics listener (`GET /metrics`, blocking).
pub fn metrics_text(metrics_addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(metrics_addr).expect("connect to metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read metrics");
    text
}

/// The value of one exact Prometheus sample line (`name{labels}`), 0 when absent.
pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// `request` with `authorization: Bearer <key>`.
pub fn with_bearer<T>(key: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// Sends raw bytes as the gRPC message and reads the answer as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug)]
pub struct RawEncoder;

#[derive(Debug)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

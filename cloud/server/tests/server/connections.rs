//! Silent connections cannot take the server down: beyond the connection limit they are closed
//! at once, within it they are closed after the handshake timeout, and real clients (an open
//! channel at once, a new one once slots free up) keep being answered, on the gRPC and the
//! metrics listener alike; under a 256 open-files limit the accept loop neither spins nor
//! starves the health probe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::common::{self, classify_request, metric_value, run};

const HANDSHAKE_MS: u64 = 500;

fn silent_connections(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| TcpStream::connect(addr).expect("the kernel accepts the connection"))
        .collect()
}

/// Waits until the server has closed `stream` (a read gives EOF or an error; what the server
/// sends first, its HTTP/2 settings, is skipped); false if it is still open after `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 256];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
    false
}

/// Retries `attempt` until it succeeds or `deadline` passes; returns how long it took.
async fn answered_within<F, Fut>(deadline: Duration, mut attempt: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < deadline {
        if attempt().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no answer within {deadline:?}");
}

async fn health_serving(addr: SocketAddr) -> bool {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(500));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let request = HealthCheckRequest {
        service: String::new(),
    };
    HealthClient::new(channel).check(request).await.is_ok()
}

fn metrics_get(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

#[test]
fn silent_connections_are_closed_and_real_clients_keep_being_answered() {
    run(async {
        let server = common::start(|config| {
            config.max_connections = 8;
            config.metrics_max_connections = 4;
            config.handshake_timeout_ms = HANDSHAKE_MS;
            config.idle_timeout_ms = 3_000;
            config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        })
        .await;
        let (addr, metrics_addr) = (server.addr(), server.server.metrics_addr.unwrap());
        let mut open = common::client(addr).await;
        open.classify(classify_request("before the flood"))
            .await
            .unwrap();

        // Half a handshake: the HTTP/2 preface and nothing more.
        let mut grpc_silent = silent_connections(addr, 2);
        for stream in &mut grpc_silent {
            stream
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .unwrap();
        }
        grpc_silent.extend(silent_connections(addr, 20));
        let mut metrics_silent = silent_connections(metrics_addr, 10);
        // The open channel is answered during the flood.
        let during = Instant::now();
        open.classify(classify_request("during the flood"))
            .await
            .expect("an open connection keeps working");
        assert!(during.elapsed() < Duration::from_secs(2));

        // Every silent connection is closed: those over the limit at once, the others after
        // the handshake timeout.
        let slack = Duration::from_millis(HANDSHAKE_MS) + Duration::from_secs(3);
        let waited = Instant::now();
        for (index, stream) in grpc_silent
            .iter_mut()
            .chain(metrics_silent.iter_mut())
            .enumerate()
        {
            assert!(
                closed_within(stream, slack),
                "silent connection #{index} is held after {:?}",
                waited.elapsed()
            );
        }
        println!(
            "32 silent connections closed within {} ms",
            waited.elapsed().as_millis()
        );

        // New clients get in once the slots are free.
        let health = answered_within(Duration::from_secs(5), || health_serving(addr)).await;
        let text = metrics_get(metrics_addr).expect("the metrics listener answers");
        println!(
            "a new health check answered after {} ms",
            health.as_millis()
        );
        let count = |sample: &str| metric_value(&text, sample);
        assert_eq!(
            count("smsguard_connection_timeouts_total{listener=\"grpc\",phase=\"handshake\"}"),
            7.0,
            "the limit's other 7 slots timed out (the open channel holds one)"
        );
        assert_eq!(
            count("smsguard_connections_refused_total{listener=\"grpc\"}"),
            15.0
        );
        assert_eq!(
            count("smsguard_connection_timeouts_total{listener=\"metrics\",phase=\"handshake\"}"),
            4.0
        );
        assert_eq!(
            count("smsguard_connections_refused_total{listener=\"metrics\"}"),
            6.0
        );
        server.server.shutdown().await.unwrap();
    });
}

/// CPU seconds (user + system) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[cfg(target_os = "linux")]
#[test]
fn under_a_256_open_files_limit_300_silent_connections_neither_spin_nor_starve_the_probe() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {} serve --plaintext --no-seed --listen 127.0.0.1:0 \
             --data-dir {}",
            env!("CARGO_BIN_EXE_smsguard-cloud"),
            dir.path().join("data").display()
        ))
        // Long enough that the CPU is measured while all the silent connections are held.
        .env("SMSGUARD_HANDSHAKE_TIMEOUT_MS", "4000")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap()
        .parse()
        .unwrap();

    let silent = silent_connections(addr, 300);
    // Before the fix, the accept loop spun on EMFILE here and no connection was ever closed.
    std::thread::sleep(Duration::from_millis(200));
    let cpu_before = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(1));
    let cpu_share = cpu_seconds(child.id()) - cpu_before;
    let probe_started = Instant::now();
    let probed = loop {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_smsguard-cloud"))
            .args(["probe", "--timeout-ms", "1000", "--url"])
            .arg(format!("http://{addr}"))
            .output()
            .unwrap();
        if status.status.success() {
            break true;
        }
        if probe_started.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    let probe_ms = probe_started.elapsed().as_millis();
    common::terminate(&mut child);
    drop(silent);
    let log = std::fs::read_to_string(&log_path).unwrap();
    println!(
        "server CPU while holding 300 silent connections: {:.0} %",
        cpu_share * 100.0
    );
    println!("probe answered after {probe_ms} ms");
    assert!(probed, "the health probe never answered; log:\n{log}");
    assert!(
        cpu_share < 0.25,
        "the server used {:.0} % CPU while idle; log:\n{log}",
        cpu_share * 100.0
    );
    assert!(log.contains("max_connections lowered"), "{log}");
    assert!(log.contains("connection limit reached"), "{log}");
    let addresses = log
        .lines()
        .filter(|line| line.contains("127.0.0.1") && !line.contains("listening"));
    assert_eq!(addresses.count(), 0, "no client address is logged: {log}");
}

//! A real `redis-server` for the shared-state tests: started on a free loopback port in a
//! temporary folder with the append-only file on (fsync on every write, so a `kill -9` of
//! Redis loses nothing acknowledged), killed when dropped. A shell watchdog beside it also
//! stops it when the test process dies without dropping it (a shared server in a static).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Databases of one test Redis: every server of the parameterised suite gets its own.
const DATABASES: u32 = 1024;

#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    dir: tempfile::TempDir,
    watchdog: Option<Child>,
    pid: u32,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// True when a Redis answers PING on `port`.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl TestRedis {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = TestRedis {
            port: free_port(),
            dir,
            watchdog: None,
            pid: 0,
        };
        redis.launch();
        redis
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    fn launch(&mut self) {
        let which = Command::new("sh")
            .args(["-c", "command -v redis-server"])
            .output()
            .expect("run sh");
        assert!(
            which.status.success(),
            "redis-server is not installed: run .ci/setup (Debian package redis-server)"
        );
        // The watchdog prints Redis' pid, then waits until this test process or Redis is gone.
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --dir '{dir}' --appendonly yes \
             --appendfsync always --save '' --databases {DATABASES} --logfile '' \
             >/dev/null 2>&1 & r=$!; echo $r; \
             while kill -0 {parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done; \
             kill -9 $r 2>/dev/null",
            port = self.port,
            dir = self.dir.path().display(),
            parent = std::process::id(),
        );
        let mut watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut line = String::new();
        BufReader::new(watchdog.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the redis pid");
        self.pid = line.trim().parse().expect("a pid");
        self.watchdog = Some(watchdog);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` of Redis.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while answers(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts Redis again on the same port and folder (it reloads its append-only file).
    pub fn restart(&mut self) {
        self.launch();
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    pub fn command(&self, command: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .expect("send");
        let mut reply = Vec::new();
        let mut buffer = [0u8; 65536];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buffer[..n]);
            if reply.ends_with(b"\r\n") && n < buffer.len() {
                break;
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if self.watchdog.is_some() {
            self.kill();
        }
    }
}

/// The Redis shared by every server of a run with `SMSGUARD_TEST_STATE=redis` (the whole
/// server suite on the Redis backend), and the next free database in it.
static SHARED: LazyLock<Mutex<TestRedis>> = LazyLock::new(|| Mutex::new(TestRedis::start()));
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A URL of a fresh database of the shared test Redis when the suite runs on Redis
/// (`SMSGUARD_TEST_STATE=redis`), else `None`.
pub fn suite_state() -> Option<String> {
    if std::env::var("SMSGUARD_TEST_STATE").ok()?.as_str() != "redis" {
        return None;
    }
    let db = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    assert!(db < DATABASES, "more servers than test databases");
    let shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    Some(shared.url(db))
}

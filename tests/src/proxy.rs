//! [`DelayProxy`]: a TCP relay between the edge and the cloud that adds latency, can hold bytes
//! (a stalled network), refuse new connections (network down) and cut live ones (a dropped
//! link). It forwards opaque bytes, so it works for any protocol, TLS included.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::HarnessError;

/// Largest read forwarded as one chunk.
const CHUNK_BYTES: usize = 16 * 1024;

/// Settings shared by the accept loop and every connection.
#[derive(Debug)]
struct Control {
    upstream: SocketAddr,
    delay_micros: AtomicU64,
    refuse: AtomicBool,
    /// True while bytes are held back (they are delivered, in order, on resume).
    paused: watch::Sender<bool>,
    /// Bumped to close every open connection.
    cuts: watch::Sender<u64>,
    connections: AtomicU64,
}

impl Control {
    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_micros.load(Ordering::Relaxed))
    }
}

/// A running proxy on `127.0.0.1:<port>`; it stops when dropped.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    runtime: Option<Runtime>,
}

impl DelayProxy {
    /// Starts forwarding a fresh loopback port to `upstream`, with no delay.
    pub fn start(upstream: SocketAddr) -> Result<DelayProxy, HarnessError> {
        let runtime = crate::small_runtime("delay-proxy")?;
        let listener = runtime.block_on(TcpListener::bind(("127.0.0.1", 0)))?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            upstream,
            delay_micros: AtomicU64::new(0),
            refuse: AtomicBool::new(false),
            paused: watch::channel(false).0,
            cuts: watch::channel(0).0,
            connections: AtomicU64::new(0),
        });
        runtime.spawn(accept_loop(listener, Arc::clone(&control)));
        Ok(DelayProxy {
            addr,
            control,
            runtime: Some(runtime),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for a plaintext cloud config.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every byte, in each direction, is delivered `delay` after it was read.
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.control.delay_micros.store(micros, Ordering::Relaxed);
    }

    /// Holds every byte until [`DelayProxy::resume`] (connections stay open).
    pub fn pause(&self) {
        self.control.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.control.paused.send_replace(false);
    }

    /// While refusing, new connections are closed as soon as they are accepted.
    pub fn set_refuse(&self, refuse: bool) {
        self.control.refuse.store(refuse, Ordering::Relaxed);
    }

    /// Closes every open connection now (new ones are still accepted unless refusing).
    pub fn cut_connections(&self) {
        self.control.cuts.send_modify(|generation| *generation += 1);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.control.connections.load(Ordering::Relaxed)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, control: Arc<Control>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        control.connections.fetch_add(1, Ordering::Relaxed);
        if control.refuse.load(Ordering::Relaxed) {
            drop(client);
            continue;
        }
        tokio::spawn(relay(client, Arc::clone(&control)));
    }
}

/// Forwards one connection both ways until either side closes or the connection is cut.
async fn relay(client: TcpStream, control: Arc<Control>) {
    let mut cuts = control.cuts.subscribe();
    cuts.mark_unchanged();
    let Ok(server) = TcpStream::connect(control.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both_ways = async {
        tokio::join!(
            pump(client_read, server_write, &control),
            pump(server_read, client_write, &control)
        )
    };
    tokio::select! {
        _ = both_ways => {}
        _ = cuts.changed() => {}
    }
}

/// One direction: a reader stamps each chunk with its due time, a writer delivers chunks in
/// order once due (and not paused). Latency is added without limiting throughput.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, control: &Control) {
    let (chunks, mut due_chunks) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + control.delay();
                    if chunks.send((due, buffer[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let mut paused = control.paused.subscribe();
    let write = async move {
        while let Some((due, bytes)) = due_chunks.recv().await {
            tokio::time::sleep_until(due).await;
            if paused.wait_for(|held| !held).await.is_err() || to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener as StdListener;

    /// An echo server on a std thread, so the proxy's runtime is the only tokio one.
    fn echo_server() -> SocketAddr {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buffer) {
                        if n == 0 || stream.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(proxy: &DelayProxy) -> std::io::Result<Duration> {
        let mut stream = std::net::TcpStream::connect(proxy.addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let started = std::time::Instant::now();
        stream.write_all(b"ping")?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer)?;
        assert_eq!(&answer, b"ping");
        Ok(started.elapsed())
    }

    #[test]
    fn forwards_bytes_and_adds_the_delay_both_ways() {
        let proxy = DelayProxy::start(echo_server()).unwrap();
        let fast = round_trip(&proxy).unwrap();
        proxy.set_delay(Duration::from_millis(150));
        let slow = round_trip(&proxy).unwrap();
        assert!(slow >= Duration::from_millis(300), "{slow:?}");
        assert!(fast < slow);
    }

    #[test]
    fn refusing_and_cutting_close_connections() {
        let proxy = DelayProxy::start(echo_server()).unwrap();
        let mut open = std::net::TcpStream::connect(proxy.addr()).unwrap();
        open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        open.write_all(b"a").unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).unwrap();
        proxy.cut_connections();
        let mut rest = Vec::new();
        // A cut connection reads end-of-stream (or a reset), never more echoes.
        let _ = open.read_to_end(&mut rest);
        assert!(rest.is_empty());
        proxy.set_refuse(true);
        assert!(round_trip(&proxy).is_err());
        proxy.set_refuse(false);
        assert!(round_trip(&proxy).is_ok());
    }

    #[test]
    fn paused_bytes_arrive_after_resume() {
        let proxy = DelayProxy::start(echo_server()).unwrap();
        let mut stream = std::net::TcpStream::connect(proxy.addr()).unwrap();
        proxy.pause();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream.write_all(b"held").unwrap();
        let mut answer = [0u8; 4];
        assert!(stream.read_exact(&mut answer).is_err());
        proxy.resume();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"held");
    }
}

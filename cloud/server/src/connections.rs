//! Accepting connections without letting idle ones take the server down.
//!
//! * A listener holds at most `max_connections` at once; a connection beyond that is closed as
//!   soon as it is accepted (not held, not queued), so the file descriptors stay within the
//!   process limit and a flood cannot starve the accept loop.
//! * A failed accept (EMFILE when the process is out of descriptors, ENFILE, ENOBUFS...) backs
//!   off, 10 ms doubling to 1 s, instead of retrying at once in a busy loop.
//! * A connection must send its first [`PREFACE_BYTES`] bytes (the HTTP/2 preface and its
//!   SETTINGS, or a TLS ClientHello) within the handshake timeout, and is closed once nothing has been read from it
//!   for the idle timeout (a live gRPC client answers the server's HTTP/2 keepalive pings, so
//!   only a silent peer goes idle).
//! * Refusals, timeouts and accept errors are counted per listener and logged (counts, never
//!   addresses), at most once per 10 s each.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::metrics::Metrics;

/// Bytes a connection must send within the handshake timeout: the 24-byte HTTP/2 client preface
/// (`PRI * HTTP/2.0...`) and the header of the SETTINGS frame that must follow it, so half a
/// handshake does not count; a TLS ClientHello is longer.
pub const PREFACE_BYTES: usize = 24 + 9;
/// The most often one kind of connection event is logged per listener.
const LOG_EVERY: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Counts events and logs their count at most once per [`LOG_EVERY`].
#[derive(Debug)]
struct ThrottledLog {
    what: &'static str,
    listener: &'static str,
    state: Mutex<(Option<std::time::Instant>, u64)>,
}

impl ThrottledLog {
    fn new(listener: &'static str, what: &'static str) -> Self {
        ThrottledLog {
            what,
            listener,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one event; `detail` (a limit, an error kind) goes into the log line.
    fn record(&self, detail: &dyn std::fmt::Display) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.1 += 1;
        let now = std::time::Instant::now();
        if state.0.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            return;
        }
        tracing::warn!(
            listener = self.listener,
            count = state.1,
            detail = %detail,
            "{}",
            self.what
        );
        *state = (Some(now), 0);
    }
}

/// Accepts connections on one listener within its limits (see the module doc).
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    name: &'static str,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    refused: ThrottledLog,
    failed: ThrottledLog,
}

impl Acceptor {
    pub fn new(
        listener: TcpListener,
        name: &'static str,
        limits: ConnectionLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Acceptor {
            listener,
            name,
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            metrics,
            refused: ThrottledLog::new(name, "connection limit reached: closed new connections"),
            failed: ThrottledLog::new(name, "accepting connections failed: backing off"),
        }
    }

    /// The next connection within the limit, with its slot (held until the connection is
    /// dropped). Never returns an error: failed accepts are counted, logged and backed off.
    pub async fn next(&self) -> (TcpStream, OwnedSemaphorePermit) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    backoff = FIRST_BACKOFF;
                    match Arc::clone(&self.slots).try_acquire_owned() {
                        Ok(slot) => return (stream, slot),
                        Err(_) => {
                            // Dropping the stream closes it at once.
                            self.metrics.record_connection_refused(self.name);
                            let limit = format!("limit {}", self.limits.max_connections);
                            self.refused.record(&limit);
                        }
                    }
                }
                Err(error) if peer_gave_up(&error) => {}
                Err(error) => {
                    self.metrics.record_accept_error(self.name);
                    self.failed.record(&error);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// A connection of this listener, closed after its handshake or idle timeout.
    pub fn guard(&self, stream: TcpStream, slot: OwnedSemaphorePermit) -> GuardedStream {
        GuardedStream::new(
            stream,
            slot,
            self.limits,
            self.name,
            Arc::clone(&self.metrics),
        )
    }

    /// The accepted, guarded connections as the stream tonic serves; the accept task ends (and
    /// the listening socket closes) once the server drops the stream.
    pub fn into_incoming(self) -> ReceiverStream<io::Result<GuardedStream>> {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let (stream, slot) = tokio::select! {
                    _ = tx.closed() => return,
                    accepted = self.next() => accepted,
                };
                // Without it, Nagle's algorithm and delayed ACKs add about 40 ms to small answers.
                let _ = stream.set_nodelay(true);
                if tx.send(Ok(self.guard(stream, slot))).await.is_err() {
                    return;
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

/// Errors of one connection that went away before it was accepted: not the listener's fault.
fn peer_gave_up(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// An accepted connection that holds its slot of the listener's limit and fails its reads
/// (so the server closes it) when the peer is silent past the handshake or idle timeout.
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    limits: ConnectionLimits,
    bytes_read: usize,
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
    listener: &'static str,
    metrics: Arc<Metrics>,
}

impl GuardedStream {
    fn new(
        inner: TcpStream,
        slot: OwnedSemaphorePermit,
        limits: ConnectionLimits,
        listener: &'static str,
        metrics: Arc<Metrics>,
    ) -> Self {
        let now = Instant::now();
        metrics.connection_opened(listener);
        GuardedStream {
            inner,
            _slot: slot,
            limits,
            bytes_read: 0,
            last_read: now,
            timer: Box::pin(tokio::time::sleep_until(now + limits.handshake_timeout)),
            listener,
            metrics,
        }
    }

    /// When the connection times out: the handshake deadline until the preface is in, then
    /// the idle timeout after the last read.
    fn deadline(&self) -> Instant {
        if self.bytes_read < PREFACE_BYTES {
            self.timer.deadline()
        } else {
            self.last_read + self.limits.idle_timeout
        }
    }

    /// `Ready(error)` once the deadline has passed; otherwise re-arms the timer.
    fn poll_timeout(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let deadline = self.deadline();
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.deadline() <= Instant::now() {
                let what = if self.bytes_read < PREFACE_BYTES {
                    "handshake"
                } else {
                    "idle"
                };
                self.metrics.record_connection_timeout(self.listener, what);
                tracing::debug!(listener = self.listener, what, "connection timed out");
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connection {what} timeout"),
                ));
            }
        }
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.listener);
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    this.bytes_read = this.bytes_read.saturating_add(read);
                    this.last_read = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_timeout(cx).map(Err),
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for GuardedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

/// The file descriptors this process may open (the soft `RLIMIT_NOFILE`), read from
/// `/proc/self/limits`; `None` where that is not available or unlimited.
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            handshake_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(400),
        }
    }

    async fn acceptor(max_connections: usize) -> (Acceptor, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        (
            Acceptor::new(listener, "test", limits(max_connections), metrics),
            addr,
        )
    }

    #[tokio::test]
    async fn a_connection_over_the_limit_is_closed_at_once() {
        let (acceptor, addr) = acceptor(1).await;
        let _first = TcpStream::connect(addr).await.unwrap();
        let held = acceptor.next().await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        let next = tokio::spawn(async move { acceptor.next().await.0.peer_addr().unwrap() });
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), second.read(&mut byte))
            .await
            .expect("closed, not held");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        // Once the first slot is free again, the next connection is handed out.
        drop(held);
        let third = TcpStream::connect(addr).await.unwrap();
        assert_eq!(next.await.unwrap(), third.local_addr().unwrap());
    }

    #[tokio::test]
    async fn a_silent_connection_times_out_and_a_talking_one_lives_until_it_goes_idle() {
        let (acceptor, addr) = acceptor(4).await;
        let _silent = TcpStream::connect(addr).await.unwrap();
        let (stream, slot) = acceptor.next().await;
        let mut guarded = acceptor.guard(stream, slot);
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let error = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));

        let mut talker = TcpStream::connect(addr).await.unwrap();
        let (stream, slot) = acceptor.next().await;
        let mut guarded = acceptor.guard(stream, slot);
        talker.write_all(&[b'P'; PREFACE_BYTES]).await.unwrap();
        let mut got = 0;
        while got < PREFACE_BYTES {
            got += guarded.read(&mut buf).await.unwrap();
        }
        // Past the handshake timeout, within the idle timeout after its last read.
        tokio::time::sleep(Duration::from_millis(300)).await;
        talker.write_all(b"ping").await.unwrap();
        assert_eq!(guarded.read(&mut buf).await.unwrap(), 4);
        let idle = Instant::now();
        let error = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(idle.elapsed() >= Duration::from_millis(350));
    }

    #[test]
    fn the_open_files_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}

//! The Redis backend: the state of every replica in one Redis (see `keys` for the layout and
//! `scripts` for the atomic operations).
//!
//! Why the `redis` crate (1.x) rather than `fred`: its `ConnectionManager` is a multiplexed
//! connection that reconnects by itself (what a replica needs when Redis restarts), scripts
//! are sent as EVALSHA and pipelined with the other commands of a message, and it is the
//! client most of the ecosystem builds on; `fred` has more (cluster, sentinel, pools) that one
//! Redis does not need, and a larger dependency tree.
//!
//! Calls are synchronous for the caller (the scorers and the report path run in blocking
//! threads): the work runs on a small runtime of its own, bounded by the configured timeout,
//! so a slow or dead Redis costs a message at most that long and the verdict is then given
//! without shared input (degraded) instead of failing.

mod keys;
mod ops;
mod prefix;
mod scripts;

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, Pipeline, RedisError, ServerErrorKind};

use super::StateError;
use scripts::Scripts;

/// A sender's windows are forgotten this long after its last message.
const SENDER_EXPIRY_SECONDS: u64 = 2 * 24 * 3600;
/// The least time a call other than a message's prefetch may take.
const SLOW_CALL_FLOOR: Duration = Duration::from_secs(2);
const SENDER_MAX_DEVICES: usize = smsguard_scoring::sender::MAX_DEVICES;

/// The state of every replica, in one Redis.
pub struct RedisState {
    /// Runs the connection's I/O; shut down in the background on drop (dropping a runtime
    /// inside another one would panic).
    runtime: Option<tokio::runtime::Runtime>,
    connection: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
    /// Bounds the round trip of a message's prefetch (the verdict degrades past it).
    timeout: Duration,
    /// Bounds every other call (reports, the sync log, start-up): these may wait longer than
    /// a message, and a report that fails is retried by the phone.
    slow_timeout: Duration,
    quorum: u32,
    /// False once Redis said it has no `WAITAOF` (before 7.2).
    waitaof: std::sync::atomic::AtomicBool,
    /// The URL without its password, for logs.
    display_url: String,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("url", &self.display_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisState {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> StateError {
    StateError::Unavailable(error.to_string())
}

fn corrupt(what: impl Into<String>) -> StateError {
    StateError::Corrupt(what.into())
}

fn is_noscript(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) || error.code() == Some("NOSCRIPT")
}

impl RedisState {
    /// Connects lazily to `url` (`redis://HOST:PORT/DB`); the connection manager reconnects
    /// whenever Redis comes back. `timeout` bounds a message's prefetch; other calls wait up to
    /// [`SLOW_CALL_FLOOR`] at least. `quorum` is the similarity memory's report quorum.
    pub fn open(url: &str, timeout: Duration, quorum: u32) -> Result<Self, StateError> {
        let bad_url = |reason: String| StateError::BadUrl {
            url: redact(url),
            reason,
        };
        let client = redis::Client::open(url).map_err(|e| bad_url(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smsguard-redis")
            .enable_all()
            .build()
            .map_err(|e| StateError::Store(format!("cannot start the Redis runtime: {e}")))?;
        let slow_timeout = timeout.max(SLOW_CALL_FLOOR);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(slow_timeout))
            .set_response_timeout(Some(slow_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = {
            let _entered = runtime.enter();
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| bad_url(e.to_string()))?
        };
        Ok(RedisState {
            runtime: Some(runtime),
            connection,
            scripts: std::sync::Arc::new(Scripts::new()),
            timeout,
            slow_timeout,
            quorum,
            waitaof: std::sync::atomic::AtomicBool::new(true),
            display_url: redact(url),
        })
    }

    /// Runs `work` on the Redis runtime and waits for it at most the timeout. Callable from
    /// any thread (blocking threads, and briefly from async ones).
    fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl Future<Output = Result<T, RedisError>> + Send + 'static,
    ) -> Result<T, StateError> {
        let Some(runtime) = &self.runtime else {
            return Err(unavailable("the Redis runtime is stopped"));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, work).await);
        });
        match rx.recv() {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(error))) => Err(unavailable(error)),
            Ok(Err(_)) => Err(unavailable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
            Err(_) => Err(unavailable("the Redis runtime stopped")),
        }
    }

    /// [`Self::query_within`] the slow timeout.
    fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        pipe: Pipeline,
    ) -> Result<T, StateError> {
        self.query_within(self.slow_timeout, pipe)
    }

    /// Sends `pipe` (one round trip); when Redis lost the scripts (a restart), loads them and
    /// sends it once more.
    fn query_within<T: redis::FromRedisValue + Send + 'static>(
        &self,
        timeout: Duration,
        pipe: Pipeline,
    ) -> Result<T, StateError> {
        let mut connection = self.connection.clone();
        let scripts = std::sync::Arc::clone(&self.scripts);
        self.run(timeout, async move {
            match pipe.query_async(&mut connection).await {
                Err(error) if is_noscript(&error) => {
                    for script in scripts.pipelined() {
                        script.prepare_invoke().load_async(&mut connection).await?;
                    }
                    pipe.query_async(&mut connection).await
                }
                other => other,
            }
        })
    }

    /// Waits until Redis has fsynced this connection's writes to its append-only file
    /// (`WAITAOF 1 0`, Redis 7.2+), so that an acknowledged report survives a Redis crash even
    /// with `appendfsync everysec`, which spares the message path an fsync per write. Redis
    /// before 7.2 has no `WAITAOF`: reports are then as durable as its `appendfsync` makes them
    /// (logged once; the tests' Redis 7.0 runs with `appendfsync always`).
    fn wait_for_disk(&self) -> Result<(), StateError> {
        use std::sync::atomic::Ordering;
        if !self.waitaof.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("WAITAOF")
            .arg(1)
            .arg(0)
            .arg(self.slow_timeout.as_millis() as u64);
        match self.query::<(Vec<i64>,)>(pipe) {
            Ok((acks,)) if acks.first().copied().unwrap_or(0) >= 1 => Ok(()),
            Ok(_) => Err(StateError::Unavailable(
                "the report was not fsynced in time (is appendonly on?)".into(),
            )),
            Err(StateError::Unavailable(message)) if message.contains("unknown command") => {
                self.waitaof.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "Redis has no WAITAOF (before 7.2): reports are as durable as its appendfsync"
                );
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Invokes one script with binary keys and arguments (EVALSHA, loading the script first
    /// when Redis does not have it).
    fn invoke<T: redis::FromRedisValue + Send + 'static>(
        &self,
        pick: fn(&Scripts) -> &redis::Script,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
    ) -> Result<T, StateError> {
        let mut connection = self.connection.clone();
        let scripts = std::sync::Arc::clone(&self.scripts);
        self.run(self.slow_timeout, async move {
            let mut invocation = pick(&scripts).prepare_invoke();
            for key in &keys {
                invocation.key(key.as_slice());
            }
            for arg in &args {
                invocation.arg(arg.as_slice());
            }
            invocation.invoke_async(&mut connection).await
        })
    }
}

/// `url` without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

//! `load-bench`: load on the cloud service from a second process over loopback, and the same
//! load on an empty echo service (same protocol, no scoring) as the transport's ceiling.
//!
//! ```sh
//! cargo build --release -p smsguard-server --bins
//! target/release/load-bench --seconds 10
//! ```
//!
//! The bench starts `smsguard-cloud serve` (next to this binary) and an echo server (this binary,
//! `echo-serve`) as child processes, drives them from this process, and reads each server's CPU
//! time from `/proc/<pid>/stat`, so "per server core" is messages divided by the CPU seconds the
//! server process really used. Phases, each bounded by `--seconds`:
//! 1. unary `Classify`, closed loop with `--concurrency` requests in flight: maximum rate;
//! 2. `ClassifyStream`, frames of `--batch` messages, `--streams` streams: maximum rate;
//! 3. unary at a fixed offered rate (half of phase 1's maximum), open loop: p50/p99 latency
//!    measured from each request's scheduled send time (no coordinated omission).
//!
//! With `--state redis://HOST:PORT/DB` the server keeps its state in that Redis (start one with
//! an empty database): the bench also prints Redis' CPU time, the Redis commands per verdict
//! of phase 1 (`INFO commandstats` before and after) and how many verdicts were degraded (the
//! server's `smsguard_shared_state_degraded_total`).

// Shared with `soak-bench`, which uses another part of it.
#[allow(dead_code)]
mod bench_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bench_common::{
    free_loopback_port, load_messages, redis_stats, sibling_binary, start_cloud, wait_ready,
    ServerProcess,
};
use clap::{Parser, Subcommand};
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_proto::v1::sms_guard_server::{SmsGuard, SmsGuardServer};
use smsguard_proto::v1::{
    ClassifyBatch, ClassifyBatchResult, ClassifyRequest, ClassifyResponse, ClassifyResult,
    GetModelRequest, GetModelResponse, PrivateClassifyRequest, PrivateClassifyResponse,
    ReportRequest, ReportResponse, SmsMessage, SyncCacheRequest, SyncCacheResponse, Verdict,
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Parser)]
#[command(about = "Load the cloud service and an echo service from a second process")]
struct Cli {
    #[command(subcommand)]
    command: Option<Mode>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve the empty echo service (used by the bench itself as a child process).
    EchoServe {
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Length of each phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unary requests in flight in the maximum-rate phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Messages per ClassifyStream frame.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Concurrent streams in the streaming phase (each keeps 2 frames in flight).
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Messages to send, one per line (default: a built-in mix of ham and spam).
    #[arg(long)]
    messages: Option<PathBuf>,
    /// The `smsguard-cloud` binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Shared state of the server (`redis://HOST:PORT/DB`); default: embedded (sled).
    #[arg(long)]
    state: Option<String>,
    /// The server's wait for Redis per message before it degrades the verdict.
    #[arg(long, default_value_t = 50)]
    state_timeout_ms: u64,
    /// Skip the echo service's phases (the transport ceiling does not depend on the state).
    #[arg(long)]
    skip_echo: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Mode::EchoServe { listen }) => runtime.block_on(echo_serve(listen)),
        None => runtime.block_on(bench(cli.bench)),
    }
}

// ---------------------------------------------------------------------------------------------
// The echo service: protocol v1 answered without any model, as the transport's ceiling.

#[derive(Debug, Default)]
struct Echo;

fn echo_verdict(message: Option<&SmsMessage>) -> Verdict {
    Verdict {
        fingerprint: message
            .map(|m| m.client_message_id.clone())
            .unwrap_or_default(),
        ..Verdict::default()
    }
}

type ResultStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<ClassifyBatchResult, Status>> + Send>>;

#[tonic::async_trait]
impl SmsGuard for Echo {
    async fn classify(
        &self,
        request: Request<ClassifyRequest>,
    ) -> Result<Response<ClassifyResponse>, Status> {
        let verdict = echo_verdict(request.get_ref().message.as_ref());
        Ok(Response::new(ClassifyResponse {
            verdict: Some(verdict),
        }))
    }

    type ClassifyStreamStream = ResultStream;

    async fn classify_stream(
        &self,
        request: Request<Streaming<ClassifyBatch>>,
    ) -> Result<Response<ResultStream>, Status> {
        let frames = request.into_inner().map(|frame| {
            let frame = frame?;
            let results = frame
                .messages
                .iter()
                .map(|m| ClassifyResult {
                    client_message_id: m.client_message_id.clone(),
                    outcome: Some(smsguard_proto::v1::classify_result::Outcome::Verdict(
                        echo_verdict(Some(m)),
                    )),
                })
                .collect();
            Ok(ClassifyBatchResult { results })
        });
        Ok(Response::new(Box::pin(frames)))
    }

    async fn report(
        &self,
        _request: Request<ReportRequest>,
    ) -> Result<Response<ReportResponse>, Status> {
        Ok(Response::new(ReportResponse::default()))
    }

    async fn sync_cache(
        &self,
        _request: Request<SyncCacheRequest>,
    ) -> Result<Response<SyncCacheResponse>, Status> {
        Ok(Response::new(SyncCacheResponse::default()))
    }

    async fn get_model(
        &self,
        _request: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        Ok(Response::new(GetModelResponse::default()))
    }

    async fn private_classify(
        &self,
        _request: Request<PrivateClassifyRequest>,
    ) -> Result<Response<PrivateClassifyResponse>, Status> {
        Err(Status::unimplemented("private mode is not relayed"))
    }

    async fn private_similarity(
        &self,
        _request: Request<smsguard_proto::v1::PrivateSimilarityRequest>,
    ) -> Result<Response<smsguard_proto::v1::PrivateSimilarityResponse>, Status> {
        Err(Status::unimplemented("private mode is not relayed"))
    }

    async fn private_params(
        &self,
        _request: Request<smsguard_proto::v1::PrivateParamsRequest>,
    ) -> Result<Response<smsguard_proto::v1::PrivateParamsResponse>, Status> {
        Err(Status::unimplemented("private mode is not relayed"))
    }
}

async fn echo_serve(listen: SocketAddr) -> Result<()> {
    tonic::transport::Server::builder()
        .add_service(SmsGuardServer::new(Echo))
        .serve(listen)
        .await?;
    Ok(())
}

/// The echo service as a child process (this binary, `echo-serve`).
fn start_echo() -> Result<ServerProcess> {
    let addr = free_loopback_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["echo-serve", "--listen"])
        .arg(addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(ServerProcess {
        child,
        addr,
        _data_dir: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Load phases.

#[derive(Debug, Default)]
struct PhaseResult {
    messages: u64,
    errors: u64,
    elapsed: Duration,
    server_cpu_seconds: f64,
    latencies_us: Vec<u64>,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    fn per_core(&self) -> f64 {
        self.messages as f64 / self.server_cpu_seconds.max(1e-9)
    }

    fn percentile_us(&mut self, q: f64) -> u64 {
        self.latencies_us.sort_unstable();
        smsguard_core::percentile::nearest_rank(&self.latencies_us, q).unwrap_or(0)
    }
}

/// Step between the messages one worker sends (a prime, so workers interleave the list).
const WORKER_STRIDE: usize = 7;

/// Success and error counts shared by the workers of one phase.
#[derive(Debug, Clone, Default)]
struct Tally {
    ok: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Tally {
    fn ok(&self, messages: u64) {
        self.ok.fetch_add(messages, Ordering::Relaxed);
    }

    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `workers` tasks made by `worker(index, tally, end)` until they stop at `end`, and
/// measures the phase (throughput and the server's CPU time).
async fn closed_loop<F, Fut>(
    server: &ServerProcess,
    workers: usize,
    seconds: u64,
    worker: F,
) -> Result<PhaseResult>
where
    F: Fn(usize, Tally, Instant) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let tally = Tally::default();
    let cpu_before = server.cpu_seconds()?;
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|index| tokio::spawn(worker(index, tally.clone(), end)))
        .collect();
    for task in tasks {
        task.await?;
    }
    Ok(PhaseResult {
        messages: tally.ok.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        server_cpu_seconds: server.cpu_seconds()? - cpu_before,
        latencies_us: Vec::new(),
    })
}

async fn unary_max(
    server: &ServerProcess,
    client: &SmsGuardClient<Channel>,
    messages: &Arc<Vec<SmsMessage>>,
    args: &BenchArgs,
) -> Result<PhaseResult> {
    closed_loop(
        server,
        args.concurrency,
        args.seconds,
        |index, tally, end| {
            let (mut client, messages) = (client.clone(), messages.clone());
            async move {
                let mut i = index;
                while Instant::now() < end {
                    let request = ClassifyRequest {
                        message: Some(messages[i % messages.len()].clone()),
                    };
                    i += WORKER_STRIDE;
                    match client.classify(request).await {
                        Ok(_) => tally.ok(1),
                        Err(_) => tally.error(),
                    }
                }
            }
        },
    )
    .await
}

async fn stream_max(
    server: &ServerProcess,
    client: &SmsGuardClient<Channel>,
    messages: &Arc<Vec<SmsMessage>>,
    args: &BenchArgs,
) -> Result<PhaseResult> {
    let batch: Vec<SmsMessage> = messages.iter().cycle().take(args.batch).cloned().collect();
    closed_loop(server, args.streams, args.seconds, |_, tally, end| {
        let (mut client, batch) = (client.clone(), batch.clone());
        async move {
            // Two frames in flight per stream: the channel's capacity is the back-pressure.
            let (tx, rx) = tokio::sync::mpsc::channel::<ClassifyBatch>(2);
            let sender = tokio::spawn(async move {
                while Instant::now() < end {
                    let frame = ClassifyBatch {
                        messages: batch.clone(),
                    };
                    if tx.send(frame).await.is_err() {
                        break;
                    }
                }
            });
            let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
            match client.classify_stream(outbound).await {
                Ok(response) => {
                    let mut inbound = response.into_inner();
                    while let Some(frame) = inbound.next().await {
                        match frame {
                            Ok(result) => tally.ok(result.results.len() as u64),
                            Err(_) => tally.error(),
                        }
                    }
                }
                Err(_) => tally.error(),
            }
            let _ = sender.await;
        }
    })
    .await
}

/// Open loop at `rate` requests/s; latency counted from each request's scheduled time.
async fn unary_fixed_rate(
    server: &ServerProcess,
    client: &SmsGuardClient<Channel>,
    messages: &Arc<Vec<SmsMessage>>,
    rate: f64,
    seconds: u64,
) -> Result<PhaseResult> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (rate * seconds as f64) as u64;
    let cpu_before = server.cpu_seconds()?;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let mut client = client.clone();
        let message = messages[i as usize % messages.len()].clone();
        tasks.push(tokio::spawn(async move {
            let request = ClassifyRequest {
                message: Some(message),
            };
            let ok = client.classify(request).await.is_ok();
            (ok, scheduled.elapsed().as_micros() as u64)
        }));
    }
    let mut result = PhaseResult::default();
    for task in tasks {
        let (ok, latency) = task.await?;
        if ok {
            result.messages += 1;
            result.latencies_us.push(latency);
        } else {
            result.errors += 1;
        }
    }
    result.elapsed = start.elapsed();
    result.server_cpu_seconds = server.cpu_seconds()? - cpu_before;
    Ok(result)
}

async fn bench(args: BenchArgs) -> Result<()> {
    let messages = Arc::new(load_messages(args.messages.as_deref())?);
    let server_bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => sibling_binary("smsguard-cloud")?,
    };
    println!(
        "load-bench: {} distinct messages, {} s per phase, {} cores on this machine",
        messages.len(),
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let echo = if args.skip_echo {
        None
    } else {
        let echo = start_echo()?;
        let echo_client = wait_ready(echo.addr, &messages[0], None).await?;
        let echo_unary = unary_max(&echo, &echo_client, &messages, &args).await?;
        let echo_stream = stream_max(&echo, &echo_client, &messages, &args).await?;
        Some((echo_unary, echo_stream))
    };

    let metrics_addr = free_loopback_port()?;
    let mut env = vec![(
        "SMSGUARD_METRICS_LISTEN".to_owned(),
        metrics_addr.to_string(),
    )];
    if let Some(url) = &args.state {
        env.push(("SMSGUARD_STATE".to_owned(), url.clone()));
        env.push((
            "SMSGUARD_STATE_TIMEOUT_MS".to_owned(),
            args.state_timeout_ms.to_string(),
        ));
    }
    let redis = match &args.state {
        Some(url) => Some(redis_stats::RedisStats::connect(url).await?),
        None => None,
    };
    let cloud = start_cloud(&server_bin, &env)?;
    let client = wait_ready(cloud.addr, &messages[0], None).await?;
    let before = match &redis {
        Some(redis) => Some(redis.snapshot().await?),
        None => None,
    };
    let unary = unary_max(&cloud, &client, &messages, &args).await?;
    let after = match &redis {
        Some(redis) => Some(redis.snapshot().await?),
        None => None,
    };
    let streamed = stream_max(&cloud, &client, &messages, &args).await?;
    let mut fixed =
        unary_fixed_rate(&cloud, &client, &messages, unary.rate() / 2.0, args.seconds).await?;

    if let Some((echo_unary, echo_stream)) = &echo {
        print_row("echo unary (ceiling)", echo_unary);
        print_row("echo streamed (ceiling)", echo_stream);
    }
    print_row("cloud unary", &unary);
    print_row("cloud streamed", &streamed);
    if let Some((echo_unary, echo_stream)) = &echo {
        println!(
            "ratio cloud/echo: unary {:.2}, streamed {:.2} (messages/s)",
            unary.rate() / echo_unary.rate(),
            streamed.rate() / echo_stream.rate()
        );
    }
    println!(
        "cloud unary at a fixed {:.0} req/s (half the maximum): p50 {} µs, p99 {} µs, {} ok, {} errors",
        unary.rate() / 2.0,
        fixed.percentile_us(0.50),
        fixed.percentile_us(0.99),
        fixed.messages,
        fixed.errors
    );
    if let (Some(before), Some(after)) = (before, after) {
        redis_stats::print_phase(&before, &after, unary.messages, unary.server_cpu_seconds);
    }
    let metrics = bench_common::http_get(metrics_addr, "/metrics").unwrap_or_default();
    let degraded = metrics
        .lines()
        .find_map(|line| line.strip_prefix("smsguard_shared_state_degraded_total "))
        .unwrap_or("0");
    println!("degraded verdicts (no shared state in time), all phases: {degraded}");
    Ok(())
}

fn print_row(name: &str, phase: &PhaseResult) {
    println!(
        "{name:<26} {:>9.0} msg/s  {:>9.0} msg/s per server core ({:.1} server CPU s)  errors {}",
        phase.rate(),
        phase.per_core(),
        phase.server_cpu_seconds,
        phase.errors
    );
}

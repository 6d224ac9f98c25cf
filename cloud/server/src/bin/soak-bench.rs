//! `soak-bench`: a long, paced mixed load on a real `smsguard-cloud serve`, with the server's
//! memory, file descriptors, threads and per-RPC latency printed every minute.
//!
//! ```sh
//! cargo build --release -p smsguard-server --bins
//! nice target/release/soak-bench --minutes 30
//! ```
//!
//! By default it starts the server (next to this binary) with `--keys` API keys; with
//! `--target http://ADDR --server-pid PID --api-key KEY` it loads a server already running.
//! Every kind of request runs open loop at its own fixed rate (latency counted from each
//! request's scheduled time), so a slow server shows as latency, not as a lower load:
//! unary `Classify`, `ClassifyStream` (one stream of `--stream-frames` frames of
//! `--stream-batch` messages per tick), `Report` (spam and not-spam, spread over the keys, each
//! on a fresh text so that the similarity memory keeps growing), `SyncCache` and `GetModel`.
//! Senders are fresh numbers, so the sender reputation keeps meeting new senders too. At the
//! end it says whether the server's RSS levelled off: its growth over the last 10 minutes
//! (the last third of shorter runs) is under `--level-tolerance-mb`.

// Shared with `load-bench`, which uses another part of it.
#[allow(dead_code)]
mod bench_common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bench_common::{load_messages, sibling_binary, start_cloud, wait_ready, with_key};
use clap::Parser;
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_proto::v1::{
    ClassifyBatch, ClassifyRequest, Feedback, GetModelRequest, Label, ReportRequest, SmsMessage,
    SyncCacheRequest,
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(about = "Soak the cloud service with a paced mixed load and watch its resources")]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Unary Classify requests per second.
    #[arg(long, default_value_t = 40.0)]
    classify_rate: f64,
    /// ClassifyStream calls per second.
    #[arg(long, default_value_t = 1.0)]
    stream_rate: f64,
    /// Frames per ClassifyStream call.
    #[arg(long, default_value_t = 2)]
    stream_frames: usize,
    /// Messages per frame.
    #[arg(long, default_value_t = 16)]
    stream_batch: usize,
    /// Reports per second, over all keys (each key's budget is 60 a minute by default).
    #[arg(long, default_value_t = 2.0)]
    report_rate: f64,
    /// SyncCache calls per second.
    #[arg(long, default_value_t = 2.0)]
    sync_rate: f64,
    /// GetModel calls per second (each returns the whole signed package).
    #[arg(long, default_value_t = 0.2)]
    model_rate: f64,
    /// API keys the started server gets; reports rotate over them.
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// Seconds between resource lines.
    #[arg(long, default_value_t = 60)]
    interval_seconds: u64,
    /// RSS growth (MB) over the closing window under which memory counts as levelled off.
    #[arg(long, default_value_t = 8.0)]
    level_tolerance_mb: f64,
    /// Seed the started server's similarity memory from the corpora (as in production).
    #[arg(long)]
    seed_from_corpora: bool,
    /// Load this server instead of starting one (needs --server-pid).
    #[arg(long, requires = "server_pid")]
    target: Option<String>,
    /// The process id of the --target server, for /proc readings.
    #[arg(long)]
    server_pid: Option<u32>,
    /// API keys for --target (repeat for several).
    #[arg(long)]
    api_key: Vec<String>,
    /// Messages to send, one per line (default: a built-in mix of ham and spam).
    #[arg(long)]
    messages: Option<PathBuf>,
    /// The `smsguard-cloud` binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(soak(args))
}

// ---------------------------------------------------------------------------------------------
// What is measured.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Classify,
    Stream,
    Report,
    Sync,
    Model,
}

const KINDS: [Kind; 5] = [
    Kind::Classify,
    Kind::Stream,
    Kind::Report,
    Kind::Sync,
    Kind::Model,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Classify => "classify",
            Kind::Stream => "stream",
            Kind::Report => "report",
            Kind::Sync => "sync",
            Kind::Model => "model",
        }
    }
}

/// Latencies (µs) and error counts of the current interval, per kind.
#[derive(Debug, Default)]
struct Recorder {
    latencies_us: Mutex<HashMap<Kind, Vec<u64>>>,
    errors: Mutex<HashMap<Kind, u64>>,
    total_ok: AtomicU64,
    total_errors: AtomicU64,
}

impl Recorder {
    fn record(&self, kind: Kind, ok: bool, scheduled: Instant) {
        if ok {
            let micros = scheduled.elapsed().as_micros() as u64;
            let mut latencies = self.latencies_us.lock().unwrap();
            latencies.entry(kind).or_default().push(micros);
            self.total_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            *self.errors.lock().unwrap().entry(kind).or_default() += 1;
            self.total_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take(&self) -> (HashMap<Kind, Vec<u64>>, HashMap<Kind, u64>) {
        let latencies = std::mem::take(&mut *self.latencies_us.lock().unwrap());
        let errors = std::mem::take(&mut *self.errors.lock().unwrap());
        (latencies, errors)
    }
}

fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    smsguard_core::percentile::nearest_rank(sorted_us, q).map_or(0.0, |us| us as f64 / 1000.0)
}

/// The server's resident memory, open descriptors and threads, from `/proc`.
#[derive(Debug, Clone, Copy)]
struct Resources {
    rss_mb: f64,
    fds: usize,
    threads: usize,
}

fn read_resources(pid: u32) -> Result<Resources> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("server process {pid} is gone"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let value = line[name.len()..].split_whitespace().next().unwrap_or("0");
        Ok(value.parse()?)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok(Resources {
        rss_mb: field("VmRSS:")? as f64 / 1024.0,
        fds,
        threads: field("Threads:")? as usize,
    })
}

// ---------------------------------------------------------------------------------------------
// The load.

/// What every request task needs.
#[derive(Debug, Clone)]
struct Load {
    client: SmsGuardClient<Channel>,
    keys: Arc<Vec<String>>,
    messages: Arc<Vec<SmsMessage>>,
    recorder: Arc<Recorder>,
}

impl Load {
    fn key(&self, n: u64) -> Option<&str> {
        if self.keys.is_empty() {
            return None;
        }
        Some(&self.keys[n as usize % self.keys.len()])
    }

    /// Message `n` of the mix from a sender never seen before.
    fn message(&self, n: u64) -> SmsMessage {
        let mut message = self.messages[n as usize % self.messages.len()].clone();
        message.sender = format!("+86139{:08}", n % 100_000_000);
        message.client_message_id = n.to_string();
        message.received_at_ms = unix_ms();
        message
    }

    async fn run(self, kind: Kind, n: u64, args: Arc<Args>) {
        let scheduled = Instant::now();
        let ok = match kind {
            Kind::Classify => self.classify(n).await,
            Kind::Stream => self.stream(n, &args).await,
            Kind::Report => self.report(n).await,
            Kind::Sync => self.sync(n).await,
            Kind::Model => self.model(n).await,
        };
        self.recorder.record(kind, ok, scheduled);
    }

    async fn classify(&self, n: u64) -> bool {
        let request = ClassifyRequest {
            message: Some(self.message(n)),
        };
        let mut client = self.client.clone();
        client
            .classify(with_key(self.key(n), request))
            .await
            .is_ok()
    }

    async fn stream(&self, n: u64, args: &Args) -> bool {
        let frames: Vec<ClassifyBatch> = (0..args.stream_frames)
            .map(|f| ClassifyBatch {
                messages: (0..args.stream_batch)
                    .map(|m| self.message(n * 1_000 + (f * args.stream_batch + m) as u64))
                    .collect(),
            })
            .collect();
        let expected = args.stream_frames * args.stream_batch;
        let outbound = tokio_stream::iter(frames);
        let mut client = self.client.clone();
        let Ok(response) = client
            .classify_stream(with_key(self.key(n), outbound))
            .await
        else {
            return false;
        };
        let mut inbound = response.into_inner();
        let mut answered = 0;
        while let Some(frame) = inbound.next().await {
            match frame {
                Ok(frame) => answered += frame.results.len(),
                Err(_) => return false,
            }
        }
        answered == expected
    }

    /// A spam report (three in four) or a not-spam vote from key `n % keys`. Five consecutive
    /// reports share a text, so with five keys a quorum forms and changes reach the sync log;
    /// every group's text is new, so the similarity memory keeps growing.
    async fn report(&self, n: u64) -> bool {
        let group = n / 5;
        let base = self.messages[group as usize % self.messages.len()]
            .body
            .clone();
        // Letters, not digits: digits are masked before fingerprinting.
        let text = format!("{base} {}", letters(group));
        let fp = smsguard_core::MinHasher::new().fingerprint(&smsguard_core::normalize(&text).text);
        let spam = !n.is_multiple_of(4);
        let request = ReportRequest {
            feedback: if spam {
                Feedback::Spam
            } else {
                Feedback::NotSpam
            } as i32,
            category: Label::Fraud as i32,
            fingerprint: fp.to_hex(),
            minhash: fp.minhash.to_vec(),
            sender: format!("+86137{:08}", n % 100_000_000),
            device_id: format!("soak-device-{}", n % 97),
            reported_at_ms: unix_ms(),
        };
        let mut client = self.client.clone();
        client.report(with_key(self.key(n), request)).await.is_ok()
    }

    async fn sync(&self, n: u64) -> bool {
        let request = SyncCacheRequest {
            since_version: 0,
            max_entries: 500,
            device_id: format!("soak-device-{}", n % 97),
            knowledge_revision: String::new(),
        };
        let mut client = self.client.clone();
        client
            .sync_cache(with_key(self.key(n), request))
            .await
            .is_ok()
    }

    async fn model(&self, n: u64) -> bool {
        let request = GetModelRequest {
            current_version: String::new(),
            device_id: format!("soak-device-{}", n % 97),
            device_public_key: Vec::new(),
        };
        let mut client = self.client.clone();
        client
            .get_model(with_key(self.key(n), request))
            .await
            .is_ok()
    }
}

/// `n` spelled in letters (base 26), so that each report text has its own fingerprint.
fn letters(mut n: u64) -> String {
    let mut word = String::from("ref");
    loop {
        word.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return word;
        }
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Spawns one request of `kind` every `1 / rate` seconds until `end`.
fn pace(load: Load, kind: Kind, rate: f64, end: Instant, args: Arc<Args>) {
    if rate <= 0.0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut n = 0u64;
        loop {
            ticks.tick().await;
            if Instant::now() >= end {
                return;
            }
            tokio::spawn(load.clone().run(kind, n, Arc::clone(&args)));
            n += 1;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The run.

async fn soak(args: Args) -> Result<()> {
    let args = Arc::new(args);
    let messages = Arc::new(load_messages(args.messages.as_deref())?);
    let (server, addr, pid, keys) = match &args.target {
        Some(target) => {
            let addr = target.trim_start_matches("http://").parse()?;
            let pid = args.server_pid.context("--target needs --server-pid")?;
            (None, addr, pid, args.api_key.clone())
        }
        None => {
            let keys: Vec<String> = (0..args.keys).map(|i| format!("soak-secret-{i}")).collect();
            let server = start_cloud(&server_bin(&args)?, &server_env(&args, &keys))?;
            let (addr, pid) = (server.addr, server.child.id());
            (Some(server), addr, pid, keys)
        }
    };
    let first_key = keys.first().map(String::as_str);
    let client = wait_ready(addr, &messages[0], first_key).await?;
    println!(
        "soak-bench: server pid {pid} at {addr}, {} min; per second: classify {}, streams {} \
         ({}x{} messages), reports {} over {} keys, sync {}, model {}",
        args.minutes,
        args.classify_rate,
        args.stream_rate,
        args.stream_frames,
        args.stream_batch,
        args.report_rate,
        keys.len(),
        args.sync_rate,
        args.model_rate
    );
    let load = Load {
        client,
        keys: Arc::new(keys),
        messages,
        recorder: Arc::new(Recorder::default()),
    };
    let samples = watch(&load, &args, pid).await?;
    summarise(&samples, &load.recorder, &args);
    drop(server);
    Ok(())
}

fn server_bin(args: &Args) -> Result<PathBuf> {
    match &args.server_bin {
        Some(path) => Ok(path.clone()),
        None => sibling_binary("smsguard-cloud"),
    }
}

/// Keys with a rate limit well above the soak's pace (the soak measures memory, not limits).
fn server_env(args: &Args, keys: &[String]) -> Vec<(String, String)> {
    let keys_env = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let sha = smsguard_server::auth::key_sha256_hex(key);
            format!("soak-{i}:{sha}:10000:10000")
        })
        .collect::<Vec<_>>()
        .join(",");
    let seed = if args.seed_from_corpora {
        "true"
    } else {
        "false"
    };
    vec![
        ("SMSGUARD_API_KEYS".into(), keys_env),
        ("SMSGUARD_SEED_FROM_CORPORA".into(), seed.into()),
    ]
}

/// Starts the paced load and prints one line of resources and latencies per interval.
async fn watch(load: &Load, args: &Arc<Args>, pid: u32) -> Result<Vec<(f64, Resources)>> {
    let start = Instant::now();
    let end = start + Duration::from_secs(args.minutes * 60);
    let rates = [
        (Kind::Classify, args.classify_rate),
        (Kind::Stream, args.stream_rate),
        (Kind::Report, args.report_rate),
        (Kind::Sync, args.sync_rate),
        (Kind::Model, args.model_rate),
    ];
    let at_start = read_resources(pid)?;
    print_resources(0.0, &at_start);
    println!();
    let mut samples = vec![(0.0, at_start)];
    for (kind, rate) in rates {
        pace(load.clone(), kind, rate, end, Arc::clone(args));
    }
    let interval = Duration::from_secs(args.interval_seconds.max(1));
    while Instant::now() < end {
        tokio::time::sleep(interval.min(end.saturating_duration_since(Instant::now()))).await;
        let minutes = start.elapsed().as_secs_f64() / 60.0;
        let resources = read_resources(pid)?;
        print_resources(minutes, &resources);
        print_latencies(&load.recorder);
        samples.push((minutes, resources));
    }
    Ok(samples)
}

fn print_resources(minutes: f64, resources: &Resources) {
    print!(
        "t={minutes:5.1} min  rss {:7.1} MB  fds {:4}  threads {:3}",
        resources.rss_mb, resources.fds, resources.threads
    );
}

fn print_latencies(recorder: &Recorder) {
    let (mut latencies, errors) = recorder.take();
    for kind in KINDS {
        let sorted = latencies.entry(kind).or_default();
        sorted.sort_unstable();
        print!(
            "  | {} n={} p50 {:.1} p99 {:.1} ms err {}",
            kind.name(),
            sorted.len(),
            percentile_ms(sorted, 0.50),
            percentile_ms(sorted, 0.99),
            errors.get(&kind).copied().unwrap_or(0)
        );
    }
    println!();
}

/// RSS growth over the closing window: the last 10 minutes, or the last third of a shorter run.
fn closing_growth(samples: &[(f64, Resources)]) -> Option<(f64, f64)> {
    let (last_minute, last) = samples.last()?;
    let window = if *last_minute >= 30.0 {
        10.0
    } else {
        last_minute / 3.0
    };
    let (from_minute, from) = samples
        .iter()
        .find(|(minute, _)| *minute >= last_minute - window)?;
    Some((last_minute - from_minute, last.rss_mb - from.rss_mb))
}

fn summarise(samples: &[(f64, Resources)], recorder: &Recorder, args: &Args) {
    let peak = samples
        .iter()
        .map(|(_, r)| r.rss_mb)
        .fold(0.0_f64, f64::max);
    let (first, last) = (samples[0].1, samples[samples.len() - 1].1);
    println!(
        "summary: {} requests ok, {} errors; rss {:.1} -> {:.1} MB (peak {:.1}); fds {} -> {}; \
         threads {} -> {}",
        recorder.total_ok.load(Ordering::Relaxed),
        recorder.total_errors.load(Ordering::Relaxed),
        first.rss_mb,
        last.rss_mb,
        peak,
        first.fds,
        last.fds,
        first.threads,
        last.threads
    );
    if let Some((window, growth)) = closing_growth(samples) {
        let levelled = growth <= args.level_tolerance_mb;
        println!(
            "rss growth over the last {window:.1} min: {growth:+.1} MB -> {}",
            if levelled {
                "levelled off"
            } else {
                "STILL GROWING"
            }
        );
    }
}

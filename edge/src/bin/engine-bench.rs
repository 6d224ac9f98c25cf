//! Latency of the engine's paths and queue-drain throughput, printed (never asserted).
//!
//! `cargo run --release -p smsguard-edge --bin engine-bench -- --data FILE [--cloud URL]`
//!
//! FILE holds one message per line (a `label<TAB>text` line counts its text). Figures:
//! full offline path (unseen messages: rules, cache miss, local model, record), cache-hit path
//! (messages whose fingerprint has a cached verdict), for each durability (`none`: sled only;
//! `process`: the decision log without fsync, the default; `power`: the log fsynced per message);
//! re-check drain throughput against an in-process cloud that answers at once (engine overhead
//! only) and, with --cloud, classify latency and drain throughput against a real server.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use smsguard_edge::cloud_link::{CloudConfig, CloudLinkError};
use smsguard_edge::engine::{
    CloudFuture, CloudLink, Durability, Engine, EngineConfig, Source, StoreKey, Timings,
};
use smsguard_eval::perf::{peak_rss_kib, LatencySummary};
use smsguard_proto::v1::{
    classify_result, ClassifyResult, GetModelResponse, ReportRequest, ReportResponse, SmsMessage,
    SyncCacheResponse, Verdict,
};

#[derive(Debug, Parser)]
#[command(about = "Latency and throughput of the edge engine")]
struct Args {
    /// Messages, one per line (`label<TAB>text` lines use the text).
    #[arg(long)]
    data: PathBuf,
    /// Most messages used from the file.
    #[arg(long, default_value_t = 2_000)]
    limit: usize,
    /// Also measure against this running cloud (http://127.0.0.1:50051).
    #[arg(long)]
    cloud: Option<String>,
    #[arg(long)]
    api_key: Option<String>,
    /// Measure only this durability (none, process, power); all three by default.
    #[arg(long)]
    durability: Option<Durability>,
    /// sled page cache of the engine's store, MiB (EngineConfig::store_cache_bytes).
    #[arg(long)]
    store_cache_mib: Option<u64>,
    /// Seal senders and bodies in the store with a random key (EngineConfig::store_key).
    #[arg(long)]
    sealed: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let messages = read_messages(&args.data, args.limit)?;
    println!(
        "data: {} ({} messages)",
        args.data.display(),
        messages.len()
    );
    let store_cache_bytes = args
        .store_cache_mib
        .map_or(EngineConfig::default().store_cache_bytes, |mib| mib << 20);
    println!("store page cache: {} MiB", store_cache_bytes >> 20);
    let key = args.sealed.then(StoreKey::generate);
    println!("senders and bodies sealed: {}", key.is_some());
    core_floor(&messages);
    let durabilities = match args.durability {
        Some(only) => vec![only],
        None => vec![Durability::None, Durability::Process, Durability::Power],
    };
    for durability in durabilities {
        offline_paths(&messages, durability, store_cache_bytes, key)?;
    }
    drain_in_process(&messages)?;
    if let Some(url) = &args.cloud {
        with_cloud(&messages, url, args.api_key.clone())?;
    }
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS of this process: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable"),
    }
    Ok(())
}

fn read_messages(path: &Path, limit: usize) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut messages: Vec<String> = text
        .lines()
        .map(|line| line.split_once('\t').map_or(line, |(_, text)| text))
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect();
    messages.sort();
    messages.dedup();
    messages.truncate(limit);
    if messages.is_empty() {
        bail!("{} has no messages", path.display());
    }
    Ok(messages)
}

/// A store directory under the system temp dir, removed when dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!(
            "smsguard-engine-bench-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(durability: Durability, store_cache_bytes: u64, key: Option<StoreKey>) -> EngineConfig {
    EngineConfig {
        durability,
        store_cache_bytes,
        store_key: key,
        ..EngineConfig::default()
    }
}

/// Times `classify` over `messages`, returning per-call durations and how many came from `want`;
/// prints the median of each step the engine reports.
fn time_classify(engine: &Engine, messages: &[String], want: Source) -> (Vec<Duration>, usize) {
    let mut samples = Vec::with_capacity(messages.len());
    let mut steps: Vec<Timings> = Vec::with_capacity(messages.len());
    let mut from_want = 0;
    for text in messages {
        let started = Instant::now();
        let decision = engine.classify("+15550100", text, 0);
        samples.push(started.elapsed());
        steps.push(decision.timings_us);
        from_want += usize::from(decision.source == want);
    }
    let median = |pick: fn(&Timings) -> u64| {
        let mut values: Vec<u64> = steps.iter().map(pick).collect();
        values.sort_unstable();
        values.get(values.len() / 2).copied().unwrap_or(0)
    };
    println!(
        "  step medians (us): normalise {}, rules {}, cache {}, local {}, cloud wait {}, store {}",
        median(|t| t.normalize),
        median(|t| t.rules),
        median(|t| t.cache),
        median(|t| t.local),
        median(|t| t.cloud_wait),
        median(|t| t.store)
    );
    (samples, from_want)
}

fn offline_paths(
    messages: &[String],
    durability: Durability,
    store_cache_bytes: u64,
    key: Option<StoreKey>,
) -> Result<()> {
    let dir = Scratch::new("offline")?;
    let started = Instant::now();
    let engine = Engine::open(dir.path(), config(durability, store_cache_bytes, key))?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    // Warm up the model on a few messages in a throwaway engine state (they are cached below
    // only through reports, so the timed pass still misses the cache).
    for text in messages.iter().take(50) {
        engine.classify("+15550199", &format!("{text} warmup"), 0);
    }
    let (full, local) = time_classify(&engine, messages, Source::Local);
    // A verdict for every fingerprint: the user's reports fill the cache.
    let ids: Vec<u64> = messages
        .iter()
        .map(|text| engine.classify("+15550100", text, 0).message_id)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        engine.report(*id, i % 3 == 0)?;
    }
    let (hits, cached) = time_classify(&engine, messages, Source::Cache);
    let label = match durability {
        Durability::None => "durability none (no decision log)",
        Durability::Process => "durability process (decision log, no fsync)",
        Durability::Power => "durability power (decision log fsynced per message)",
    };
    println!("-- offline, {label}; engine open {open_ms:.1} ms");
    print_summary(
        &format!("full offline path ({local} of {} local)", messages.len()),
        &full,
    );
    print_summary(
        &format!("cache-hit path ({cached} of {} cached)", messages.len()),
        &hits,
    );
    engine.close()?;
    Ok(())
}

/// What `classify` cannot go below: the shared normalisation and fingerprint (every path needs
/// the fingerprint, the cache key), timed alone.
fn core_floor(messages: &[String]) {
    let hasher = smsguard_core::MinHasher::default();
    let mut normalize = Vec::with_capacity(messages.len());
    let mut fingerprint = Vec::with_capacity(messages.len());
    for text in messages {
        let started = Instant::now();
        let normalized = smsguard_core::normalize(text);
        normalize.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(hasher.fingerprint(&normalized.text).to_hex());
        fingerprint.push(started.elapsed());
    }
    println!("-- shared core steps, alone");
    print_summary("normalise", &normalize);
    print_summary("fingerprint + hex id", &fingerprint);
}

fn print_summary(name: &str, samples: &[Duration]) {
    let s = LatencySummary::from_durations(samples);
    println!(
        "{name}: p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, mean {:.1} us",
        s.p50_us, s.p90_us, s.p99_us, s.mean_us
    );
}

/// A cloud in the same process that answers every batch at once (ham), and fails `classify`
/// so that messages are queued.
#[derive(Debug, Default)]
struct InstantCloud {
    up: AtomicBool,
}

impl CloudLink for InstantCloud {
    fn classify(&self, _msg: SmsMessage) -> CloudFuture<Verdict> {
        Box::pin(async {
            Err(CloudLinkError::Unavailable {
                reason: "bench: offline".into(),
            })
        })
    }

    fn classify_batch(&self, msgs: Vec<SmsMessage>) -> CloudFuture<Vec<ClassifyResult>> {
        let up = self.up.load(Ordering::Relaxed);
        Box::pin(async move {
            if !up {
                return Err(CloudLinkError::Unavailable {
                    reason: "bench: offline".into(),
                });
            }
            Ok(msgs
                .into_iter()
                .map(|m| ClassifyResult {
                    client_message_id: m.client_message_id,
                    outcome: Some(classify_result::Outcome::Verdict(Verdict {
                        label: smsguard_proto::v1::Label::Ham as i32,
                        action: smsguard_proto::v1::Action::Allow as i32,
                        spam_score: 0.01,
                        ..Verdict::default()
                    })),
                })
                .collect())
        })
    }

    fn report(&self, _req: ReportRequest) -> CloudFuture<ReportResponse> {
        Box::pin(async { Ok(ReportResponse::default()) })
    }

    fn sync_cache(&self, since: u64, _max: u32, _known: String) -> CloudFuture<SyncCacheResponse> {
        Box::pin(async move {
            Ok(SyncCacheResponse {
                version: since,
                ..SyncCacheResponse::default()
            })
        })
    }

    fn get_model(&self, _current: &str) -> CloudFuture<GetModelResponse> {
        Box::pin(async {
            Ok(GetModelResponse {
                up_to_date: true,
                ..GetModelResponse::default()
            })
        })
    }
}

fn drain_in_process(messages: &[String]) -> Result<()> {
    let dir = Scratch::new("drain")?;
    let cloud = Arc::new(InstantCloud::default());
    let config = EngineConfig {
        cloud: Some(CloudConfig::default()),
        durability: Durability::Process,
        ..EngineConfig::default()
    };
    let engine = Engine::open_with_link(dir.path(), config, Some(cloud.clone()))?;
    for text in messages {
        engine.classify("+15550100", text, 0);
    }
    cloud.up.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let summary = engine.drain_queue()?;
    report_drain(
        "in-process instant cloud (engine overhead)",
        summary.rechecked,
        started,
    );
    engine.close()?;
    Ok(())
}

fn report_drain(name: &str, rechecked: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "queue drain, {name}: {rechecked} messages in {:.1} ms = {:.0} messages/s",
        seconds * 1e3,
        rechecked as f64 / seconds.max(1e-9)
    );
}

fn with_cloud(messages: &[String], url: &str, api_key: Option<String>) -> Result<()> {
    let dir = Scratch::new("cloud")?;
    let cloud = CloudConfig {
        url: url.to_string(),
        api_key,
        device_id: "engine-bench".into(),
        ..CloudConfig::default()
    };
    let config = EngineConfig {
        cloud: Some(cloud),
        durability: Durability::Process,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), config)?;
    for text in messages.iter().take(20) {
        engine.classify("+15550199", &format!("{text} warmup"), 0);
    }
    let (samples, from_cloud) = time_classify(&engine, messages, Source::Cloud);
    print_summary(
        &format!(
            "with cloud {url} ({from_cloud} of {} cloud verdicts)",
            messages.len()
        ),
        &samples,
    );
    // Queue every message once more for re-check by hand, then time the drain.
    let queued_dir = Scratch::new("queued")?;
    let offline_first = EngineConfig {
        cloud: Some(CloudConfig {
            url: "http://127.0.0.1:9".into(),
            deadline: Duration::from_millis(5),
            ..CloudConfig::default()
        }),
        durability: Durability::Process,
        ..EngineConfig::default()
    };
    let unreachable = Engine::open(queued_dir.path(), offline_first)?;
    for text in messages {
        unreachable.classify("+15550100", text, 0);
    }
    unreachable.close()?;
    let mut config = engine.config().clone();
    engine.close()?;
    config.durability = Durability::Process;
    let engine = Engine::open(queued_dir.path(), config)?;
    let started = Instant::now();
    let summary = engine.drain_queue()?;
    report_drain(&format!("cloud {url}"), summary.rechecked, started);
    Ok(())
}

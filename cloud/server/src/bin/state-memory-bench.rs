//! `state-memory-bench`: what the similarity memory costs at N entries, in Redis (`INFO
//! memory`, `used_memory` before and after) and embedded (the process' resident memory and the
//! sled folder on disk), for the README's scaling figures.
//!
//! ```sh
//! cargo build --release -p smsguard-server --bins
//! redis-server --port 6390 --save '' --appendonly no &   # an empty Redis of its own
//! target/release/state-memory-bench --entries 100000 --redis redis://127.0.0.1:6390/0
//! target/release/state-memory-bench --entries 100000
//! ```
//!
//! Entries are distinct pseudo-random fingerprints (every band key distinct: the most buckets
//! per entry, as for a memory of unrelated spam), added through the same code the service uses
//! (`StateBackend::add_spam`), from 16 threads.

// Shared with the other benches, which use other parts of it.
#[allow(dead_code)]
mod bench_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use smsguard_core::fingerprint::{splitmix64, NUM_HASHES};
use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::SimilarityStore;
use smsguard_server::state_backend::redis::RedisState;
use smsguard_server::state_backend::StateBackend;

#[derive(Debug, Parser)]
#[command(about = "Memory of the similarity memory at N entries, in Redis or embedded")]
struct Args {
    /// Entries to add.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// An empty Redis database to fill; without it, the embedded (sled) store is measured.
    #[arg(long)]
    redis: Option<String>,
    /// Threads adding entries.
    #[arg(long, default_value_t = 16)]
    threads: u64,
}

fn random_fingerprint(seed: u64) -> Fingerprint {
    let mut minhash = [0u32; NUM_HASHES];
    for (i, slot) in minhash.iter_mut().enumerate() {
        *slot = splitmix64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64)) as u32;
    }
    Fingerprint { minhash }
}

/// Adds `entries` fingerprints through `state` from `threads` threads; returns the time taken.
fn fill(state: &dyn StateBackend, entries: u64, threads: u64) -> Result<Duration> {
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= entries {
                            return Ok(());
                        }
                        state.add_spam(&random_fingerprint(n), Label::Spam)?;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(started.elapsed())
}

fn resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

fn folder_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => folder_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn print_result(kind: &str, entries: u64, bytes: u64, took: Duration, extra: &str) {
    println!(
        "{kind}: {entries} entries, {:.1} MiB, {:.0} bytes per entry, filled in {:.1} s{extra}",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / entries.max(1) as f64,
        took.as_secs_f64()
    );
}

async fn redis_bench(url: &str, args: &Args) -> Result<()> {
    let stats = bench_common::redis_stats::RedisStats::connect(url).await?;
    let before = stats.snapshot().await?;
    if before.keys != 0 {
        bail!(
            "{url} holds {} keys: give the bench an empty database",
            before.keys
        );
    }
    let state = RedisState::open(url, Duration::from_secs(5), 3)?;
    let (entries, threads) = (args.entries, args.threads);
    let took = tokio::task::spawn_blocking(move || fill(&state, entries, threads)).await??;
    let after = stats.snapshot().await?;
    let calls: u64 = bench_common::redis_stats::calls_between(&before, &after)
        .values()
        .sum();
    print_result(
        "redis used_memory",
        args.entries,
        after.used_memory.saturating_sub(before.used_memory),
        took,
        &format!(
            " ({} keys, {:.1} commands per added entry)",
            after.keys,
            calls as f64 / args.entries.max(1) as f64
        ),
    );
    Ok(())
}

fn sled_bench(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let before = resident_bytes()?;
    let store = SimilarityStore::open(dir.path())?;
    let state = smsguard_server::state_backend::embedded::EmbeddedState {
        similarity: std::sync::Arc::new(store),
        sender: Default::default(),
        sync: smsguard_server::sync::SyncLog::open(&dir.path().join("sync"))?,
    };
    let took = fill(&state, args.entries, args.threads)?;
    state.flush()?;
    let resident = resident_bytes()?.saturating_sub(before);
    let disk = folder_bytes(dir.path());
    print_result(
        "embedded resident memory",
        args.entries,
        resident,
        took,
        &format!(
            " (sled folder on disk {:.1} MiB)",
            disk as f64 / (1024.0 * 1024.0)
        ),
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match &args.redis {
        Some(url) => tokio::runtime::Runtime::new()?.block_on(redis_bench(url, &args)),
        None => sled_bench(&args),
    }
}

//! Redis figures for the benches: commands executed (`INFO commandstats`, scripts' inner
//! commands included), memory (`INFO memory`) and the server process' CPU time.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;

/// A connection for reading Redis' own statistics.
pub struct RedisStats {
    connection: MultiplexedConnection,
}

/// Redis counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Calls per command (`cmdstat_<name>`), the `INFO` calls of this reader excluded.
    pub calls: BTreeMap<String, u64>,
    pub used_memory: u64,
    pub keys: u64,
    /// CPU seconds of the Redis process (user + system), from `INFO cpu`.
    pub cpu_seconds: f64,
}

/// `field:value` lines of an `INFO` answer.
fn info_fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| line.trim().split_once(':'))
}

impl RedisStats {
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).context("a Redis URL")?;
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        Ok(RedisStats { connection })
    }

    async fn info(&self, section: &str) -> Result<String> {
        let mut connection = self.connection.clone();
        Ok(redis::cmd("INFO")
            .arg(section)
            .query_async(&mut connection)
            .await?)
    }

    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let stats = self.info("commandstats").await?;
        for (name, value) in info_fields(&stats) {
            let Some(command) = name.strip_prefix("cmdstat_") else {
                continue;
            };
            let calls = value
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if command != "info" {
                snapshot.calls.insert(command.to_owned(), calls);
            }
        }
        let memory = self.info("memory").await?;
        snapshot.used_memory = info_fields(&memory)
            .find(|(k, _)| *k == "used_memory")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let cpu = self.info("cpu").await?;
        snapshot.cpu_seconds = info_fields(&cpu)
            .filter(|(k, _)| *k == "used_cpu_sys" || *k == "used_cpu_user")
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum();
        let mut connection = self.connection.clone();
        snapshot.keys = redis::cmd("DBSIZE").query_async(&mut connection).await?;
        Ok(snapshot)
    }
}

/// Commands per call name between two snapshots.
pub fn calls_between(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, u64> {
    after
        .calls
        .iter()
        .map(|(name, n)| {
            let was = before.calls.get(name).copied().unwrap_or(0);
            (name.clone(), n.saturating_sub(was))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Prints the Redis side of a phase of `verdicts` verdicts that used `server_cpu` CPU seconds
/// of the replica: commands per verdict (all, and EVALSHA round-trip commands), Redis CPU.
pub fn print_phase(before: &Snapshot, after: &Snapshot, verdicts: u64, server_cpu: f64) {
    let calls = calls_between(before, after);
    let total: u64 = calls.values().sum();
    let per = |n: u64| n as f64 / verdicts.max(1) as f64;
    let scripts = calls.get("evalsha").copied().unwrap_or(0);
    let breakdown: Vec<String> = calls
        .iter()
        .map(|(name, n)| format!("{name} {:.2}", per(*n)))
        .collect();
    let redis_cpu = after.cpu_seconds - before.cpu_seconds;
    println!(
        "redis, unary phase: {:.2} commands per verdict ({:.2} EVALSHA sent by the replica, the rest run inside the scripts): {}",
        per(total),
        per(scripts),
        breakdown.join(", ")
    );
    println!(
        "redis CPU {redis_cpu:.1} s beside the replica's {server_cpu:.1} s: {:.0} verdicts per core of replica + Redis",
        verdicts as f64 / (redis_cpu + server_cpu).max(1e-9)
    );
}

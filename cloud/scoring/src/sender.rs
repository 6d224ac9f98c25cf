//! Per-sender reputation from sliding windows, with bounded memory.
//!
//! For each sender (kept only as a salted SHA-256 hash, never the number) it tracks messages in
//! the last minute (60 one-second buckets) and hour (60 one-minute buckets), the distinct devices
//! that received it in the last hour (up to [`MAX_DEVICES`]), when it was first seen, counts of
//! spam / not-spam verdicts, and one current vote per reporter (up to [`MAX_REPORTERS`]). At most [`SenderConfig::max_senders`] senders are
//! tracked; the least recently touched is evicted first (an evicted sender starts over as new).
//!
//! Time is always passed in (`received_at_ms`, `at_ms`): there is no clock inside, so tests and
//! replays are deterministic. Out-of-order times are accepted; ones older than a window are
//! ignored by that window.
//!
//! Score: a burst (messages per minute and per hour, devices reached) counts fully for a sender
//! first seen less than an hour ago and fades to a third for senders known for a day or more; it
//! is damped by a history of not-spam verdicts. The spam share of verdicts and reports adds
//! evidence in proportion to how many there are. The two combine by noisy-or.
//!
//! # Reports are votes of reporters, not a tally of requests
//! A reporter (the server passes the API key, never a client-chosen device id) has one vote per
//! sender; reporting again replaces it. Either side's votes count only once
//! [`SenderConfig::report_quorum`] distinct reporters cast them: before, 150 reports from one
//! device moved a bank's number from 0.00 to 0.99 for every user.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::{MessageContext, ModelScore, Scorer, ScoringError};

const NAME: &str = "sender";
const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Distinct devices remembered per sender.
pub const MAX_DEVICES: usize = 32;
/// Distinct reporters whose vote is remembered per sender (the oldest vote makes room).
pub const MAX_REPORTERS: usize = 64;

/// Limits and tuning of the sender reputation.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Most senders tracked at once.
    pub max_senders: usize,
    /// Secret mixed into sender hashes so that stored hashes cannot be matched against a list of
    /// numbers; set a deployment secret.
    pub salt: Vec<u8>,
    /// Messages per minute that a normal sender does not exceed.
    pub normal_per_minute: u32,
    /// Messages per hour that a normal sender does not exceed.
    pub normal_per_hour: u32,
    /// Devices per hour that a normal sender does not exceed.
    pub normal_devices: u32,
    /// Distinct reporters that must cast the same vote (spam, or not spam) on a sender before
    /// those votes count at all.
    pub report_quorum: u32,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            max_senders: 100_000,
            salt: b"smsguard-sender-v1".to_vec(),
            normal_per_minute: 3,
            normal_per_hour: 20,
            normal_devices: 3,
            report_quorum: 3,
        }
    }
}

/// Counts in fixed-width time buckets covering the last `N` bucket widths.
#[derive(Debug, Clone)]
struct Ring<const N: usize> {
    width_ms: i64,
    counts: [u32; N],
    /// Bucket number (time / width) of the newest bucket written.
    newest: i64,
}

impl<const N: usize> Ring<N> {
    fn new(width_ms: i64) -> Self {
        Ring {
            width_ms,
            counts: [0; N],
            newest: i64::MIN,
        }
    }

    fn add(&mut self, at_ms: i64) {
        let bucket = at_ms.div_euclid(self.width_ms);
        if self.newest == i64::MIN || bucket > self.newest {
            let stale = if self.newest == i64::MIN {
                N as i64
            } else {
                (bucket - self.newest).min(N as i64)
            };
            for step in 0..stale {
                self.counts[(bucket - step).rem_euclid(N as i64) as usize] = 0;
            }
            self.newest = bucket;
        } else if bucket <= self.newest - N as i64 {
            return;
        }
        let slot = bucket.rem_euclid(N as i64) as usize;
        self.counts[slot] = self.counts[slot].saturating_add(1);
    }

    /// Sum of the buckets inside the window ending at `now_ms`.
    fn sum(&self, now_ms: i64) -> u32 {
        if self.newest == i64::MIN {
            return 0;
        }
        let now = now_ms.div_euclid(self.width_ms);
        (0..N as i64)
            .map(|back| self.newest - back)
            .filter(|b| *b <= now && *b > now - N as i64)
            .map(|b| self.counts[b.rem_euclid(N as i64) as usize])
            .fold(0u32, u32::saturating_add)
    }
}

/// What is known about one sender.
#[derive(Debug, Clone)]
struct SenderStats {
    first_seen_ms: i64,
    per_second: Ring<60>,
    per_minute: Ring<60>,
    /// (device hash, last seen) of recent devices.
    devices: Vec<(u64, i64)>,
    spam_verdicts: u32,
    ham_verdicts: u32,
    /// (reporter hash, voted spam) in the order first cast; one vote per reporter.
    reporters: Vec<(u64, bool)>,
    /// LRU stamp.
    touched: u64,
}

impl SenderStats {
    fn new(first_seen_ms: i64) -> Self {
        SenderStats {
            first_seen_ms,
            per_second: Ring::new(SECOND_MS),
            per_minute: Ring::new(MINUTE_MS),
            devices: Vec::new(),
            spam_verdicts: 0,
            ham_verdicts: 0,
            reporters: Vec::new(),
            touched: 0,
        }
    }

    /// Records `reporter`'s vote, replacing its earlier one.
    fn vote(&mut self, reporter: u64, spam: bool) {
        if let Some(vote) = self.reporters.iter_mut().find(|(r, _)| *r == reporter) {
            vote.1 = spam;
            return;
        }
        if self.reporters.len() >= MAX_REPORTERS {
            self.reporters.remove(0);
        }
        self.reporters.push((reporter, spam));
    }

    /// Distinct reporters voting spam and not spam.
    fn votes(&self) -> (u32, u32) {
        let spam = self.reporters.iter().filter(|(_, s)| *s).count() as u32;
        (spam, self.reporters.len() as u32 - spam)
    }

    fn observe(&mut self, at_ms: i64, device: u64) {
        self.first_seen_ms = self.first_seen_ms.min(at_ms);
        self.per_second.add(at_ms);
        self.per_minute.add(at_ms);
        if let Some(seen) = self.devices.iter_mut().find(|(d, _)| *d == device) {
            seen.1 = seen.1.max(at_ms);
        } else if self.devices.len() < MAX_DEVICES {
            self.devices.push((device, at_ms));
        } else if let Some(oldest) = self.devices.iter_mut().min_by_key(|(_, t)| *t) {
            *oldest = (device, at_ms);
        }
    }
}

/// A snapshot of one sender's windows at a given time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SenderSnapshot {
    pub last_minute: u32,
    pub last_hour: u32,
    pub devices_last_hour: u32,
    /// Age of the sender in ms (time since first seen).
    pub age_ms: i64,
    pub spam_verdicts: u32,
    pub ham_verdicts: u32,
    /// Distinct reporters whose current vote is spam / not spam (counted or not).
    pub spam_reports: u32,
    pub ham_reports: u32,
}

#[derive(Debug, Default)]
struct Table {
    senders: HashMap<[u8; 16], SenderStats>,
    /// LRU order: touch stamp -> sender.
    order: BTreeMap<u64, [u8; 16]>,
    clock: u64,
}

impl Table {
    /// The stats of `key`, created (evicting the least recently used) if absent, marked used.
    fn touch(&mut self, key: [u8; 16], at_ms: i64, max: usize) -> &mut SenderStats {
        self.clock += 1;
        let stamp = self.clock;
        if let Some(stats) = self.senders.get(&key) {
            self.order.remove(&stats.touched);
        } else {
            while self.senders.len() >= max.max(1) {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.senders.remove(&oldest);
            }
        }
        self.order.insert(stamp, key);
        let stats = self
            .senders
            .entry(key)
            .or_insert_with(|| SenderStats::new(at_ms));
        stats.touched = stamp;
        stats
    }
}

/// The `sender` [`Scorer`]. `score` counts the message into the sender's windows, then scores.
#[derive(Debug)]
pub struct SenderReputation {
    config: SenderConfig,
    table: Mutex<Table>,
}

impl Default for SenderReputation {
    fn default() -> Self {
        Self::new(SenderConfig::default())
    }
}

/// Error of a poisoned table (a panic while it was held).
fn poisoned() -> ScoringError {
    ScoringError::Poisoned("sender table")
}

impl SenderReputation {
    pub fn new(config: SenderConfig) -> Self {
        SenderReputation {
            config,
            table: Mutex::new(Table::default()),
        }
    }

    /// Salted hash of the sender (spaces, dashes and brackets ignored).
    pub fn sender_key(&self, sender: &str) -> [u8; 16] {
        let mut hasher = Sha256::new();
        hasher.update(&self.config.salt);
        hasher.update(crate::rules::normalize_sender(sender).as_bytes());
        let digest = hasher.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    /// Salted 64-bit hash of a device or reporter id.
    pub fn id_key(&self, id: &str) -> u64 {
        let digest = Sha256::new()
            .chain_update(&self.config.salt)
            .chain_update(id.as_bytes())
            .finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
    }

    /// Counts one message from `sender` to `device_id` at `at_ms`.
    pub fn observe(&self, sender: &str, device_id: &str, at_ms: i64) -> Result<(), ScoringError> {
        let (key, device) = (self.sender_key(sender), self.id_key(device_id));
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        table
            .touch(key, at_ms, self.config.max_senders)
            .observe(at_ms, device);
        Ok(())
    }

    /// Feeds back a final verdict on a message of `sender`.
    pub fn record_verdict(&self, sender: &str, spam: bool) -> Result<(), ScoringError> {
        self.update_counts(self.sender_key(sender), |s| {
            let count = if spam {
                &mut s.spam_verdicts
            } else {
                &mut s.ham_verdicts
            };
            *count = count.saturating_add(1);
        })
    }

    /// Feeds back `reporter`'s report on a message of `sender`: its one vote on the sender,
    /// replacing an earlier one. Counted votes weigh twice a verdict (see [`Self::assess`]).
    pub fn record_report(
        &self,
        sender: &str,
        reporter: &str,
        spam: bool,
    ) -> Result<(), ScoringError> {
        self.record_report_by_key(self.sender_key(sender), reporter, spam)
    }

    /// [`Self::record_report`] for the sender of hash `key` ([`Self::sender_key`]).
    pub fn record_report_by_key(
        &self,
        key: [u8; 16],
        reporter: &str,
        spam: bool,
    ) -> Result<(), ScoringError> {
        let reporter = self.id_key(reporter);
        self.update_counts(key, |s| s.vote(reporter, spam))
    }

    fn update_counts(
        &self,
        key: [u8; 16],
        change: impl FnOnce(&mut SenderStats),
    ) -> Result<(), ScoringError> {
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        // A sender known only from verdicts has no first-seen time yet (i64::MAX): its first
        // observation sets it.
        change(table.touch(key, i64::MAX, self.config.max_senders));
        Ok(())
    }

    /// Number of senders tracked now (never above `max_senders`).
    pub fn tracked_senders(&self) -> usize {
        self.table.lock().map(|t| t.senders.len()).unwrap_or(0)
    }

    /// The windows of `sender` as of `now_ms`, if tracked. Does not count as a use.
    pub fn snapshot(&self, sender: &str, now_ms: i64) -> Option<SenderSnapshot> {
        let key = self.sender_key(sender);
        let table = self.table.lock().ok()?;
        table.senders.get(&key).map(|s| snapshot_of(s, now_ms))
    }

    /// Spamminess of a snapshot, and a reason.
    pub fn assess(&self, snap: &SenderSnapshot) -> (f32, String) {
        let cfg = &self.config;
        let over =
            |value: u32, normal: u32| value.saturating_sub(normal) as f32 / normal.max(1) as f32;
        let pressure = over(snap.last_minute, cfg.normal_per_minute)
            + over(snap.last_hour, cfg.normal_per_hour)
            + over(snap.devices_last_hour, cfg.normal_devices);
        let burst = 1.0 - (-pressure).exp();
        // New senders get the full burst; a day-old one a third.
        let age_h = (snap.age_ms.max(0) as f32 / HOUR_MS as f32).max(1.0);
        let novelty = 1.0 - (2.0 / 3.0) * ((age_h - 1.0) / 23.0).min(1.0);
        let counted = |reporters: u32| {
            if reporters >= cfg.report_quorum.max(1) {
                reporters as f32
            } else {
                0.0
            }
        };
        let spam_votes = snap.spam_verdicts as f32 + 2.0 * counted(snap.spam_reports);
        let ham_votes = snap.ham_verdicts as f32 + 2.0 * counted(snap.ham_reports);
        let votes = spam_votes + ham_votes;
        let confidence = votes / (votes + 3.0);
        let spam_share = if votes > 0.0 { spam_votes / votes } else { 0.0 };
        let ham_damping = 1.0 - confidence * (1.0 - spam_share);
        let burst_score = burst * novelty * ham_damping;
        let history_score = spam_share * confidence;
        let score = 1.0 - (1.0 - burst_score) * (1.0 - history_score);
        let reason = format!(
            "sender hash window: {} msg/min, {} msg/h, {} devices/h, age {} min, spam share {:.2} of {} votes",
            snap.last_minute,
            snap.last_hour,
            snap.devices_last_hour,
            snap.age_ms / MINUTE_MS,
            spam_share,
            votes
        );
        (crate::clamp_unit(score), reason)
    }
}

fn snapshot_of(stats: &SenderStats, now_ms: i64) -> SenderSnapshot {
    let devices = stats
        .devices
        .iter()
        .filter(|(_, t)| *t > now_ms - HOUR_MS && *t <= now_ms)
        .count();
    let (spam_reports, ham_reports) = stats.votes();
    let age_ms = if stats.first_seen_ms == i64::MAX {
        0
    } else {
        now_ms.saturating_sub(stats.first_seen_ms)
    };
    SenderSnapshot {
        last_minute: stats.per_second.sum(now_ms),
        last_hour: stats.per_minute.sum(now_ms),
        devices_last_hour: devices as u32,
        age_ms: age_ms.min(DAY_MS * 365),
        spam_verdicts: stats.spam_verdicts,
        ham_verdicts: stats.ham_verdicts,
        spam_reports,
        ham_reports,
    }
}

impl Scorer for SenderReputation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        self.observe(msg.sender, msg.device_id, msg.received_at_ms)?;
        let snap = self
            .snapshot(msg.sender, msg.received_at_ms)
            .ok_or_else(poisoned)?;
        let (score, reason) = self.assess(&snap);
        Ok(ModelScore::new(NAME, score, reason))
    }
}

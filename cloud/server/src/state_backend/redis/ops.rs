//! [`StateBackend`] on Redis: each operation is one pipeline or one script call.

use std::collections::BTreeMap;

use redis::Value;
use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::sender::SenderSnapshot;
use smsguard_scoring::similarity::{
    decode_audit, decode_entry, encode_audit, encode_entry, id_hash, AuditRecord, Entry,
    PrefixBucket, UserReport, DISTRUST_MIN_DISAGREED,
};

use super::keys::{self, bands, BUCKET_IDS};
use super::{corrupt, RedisState, SENDER_EXPIRY_SECONDS, SENDER_MAX_DEVICES};
use crate::operator_list::OperatorListing;
use crate::state_backend::{
    PrefetchRequest, Prefetched, RateLimit, RecordedReport, SharedInputs, StateBackend, StateError,
};
use crate::sync::{sender_rule_changes, Change, SyncPage};

/// A sender seen for longer than this is as old as senders get (as in the embedded windows).
const MAX_AGE_MS: i64 = 365 * 24 * 3_600_000;

fn label_code(label: Label) -> i64 {
    Label::ALL.iter().position(|l| *l == label).unwrap_or(0) as i64
}

/// An entry from `id .. record` bytes (what the lookup script returns).
fn entry_of(id: &[u8], record: &[u8]) -> Result<Entry, StateError> {
    decode_entry(id, record).map_err(corrupt)
}

fn parse<T: redis::FromRedisValue>(value: Value, what: &str) -> Result<T, StateError> {
    redis::from_redis_value(value).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// The invocation's keys: the entry group, the 16 bucket groups, the entry count.
fn entry_keys(fp: &Fingerprint) -> (Vec<Vec<u8>>, Vec<[u8; 8]>) {
    let bands = bands(fp);
    let mut keys = vec![keys::entry_key(fp.id()).into_bytes()];
    keys.extend(bands.iter().map(|(key, _)| key.clone().into_bytes()));
    keys.push(keys::ENTRY_COUNT.as_bytes().to_vec());
    (keys, bands.into_iter().map(|(_, band)| band).collect())
}

/// The arguments every entry-creating script starts with: id, new record, band keys, cap.
fn entry_args(fp: &Fingerprint, new: &Entry, band_keys: &[[u8; 8]]) -> Vec<Vec<u8>> {
    let mut args = vec![fp.id().to_be_bytes().to_vec(), encode_entry(new).to_vec()];
    args.extend(band_keys.iter().map(|band| band.to_vec()));
    args.push((BUCKET_IDS * 8).to_string().into_bytes());
    args
}

fn sender_snapshot(values: &[i64], at_ms: i64) -> Result<SenderSnapshot, StateError> {
    let [minute, hour, devices, first, spam, ham] = values else {
        return Err(corrupt(format!("sender window of {} values", values.len())));
    };
    let count = |n: &i64| u32::try_from(*n).unwrap_or(0);
    Ok(SenderSnapshot {
        last_minute: count(minute),
        last_hour: count(hour),
        devices_last_hour: count(devices),
        age_ms: at_ms.saturating_sub(*first).clamp(0, MAX_AGE_MS),
        spam_verdicts: 0,
        ham_verdicts: 0,
        spam_reports: count(spam),
        ham_reports: count(ham),
    })
}

/// Milliseconds between two tokens of `limit`.
fn token_interval_ms(limit: &RateLimit<'_>) -> f64 {
    1000.0 / limit.rate_per_second.max(1e-9)
}

impl RedisState {
    /// Adds one message's prefetch to `pipe`: band lookup, sender window, rate token.
    fn push_prefetch(&self, pipe: &mut redis::Pipeline, request: &PrefetchRequest<'_>) {
        let bands = bands(request.fingerprint);
        let mut lookup = self.scripts.lookup.prepare_invoke();
        for (key, _) in &bands {
            lookup.key(key.as_str());
        }
        for (_, band) in &bands {
            lookup.arg(&band[..]);
        }
        lookup.arg(BUCKET_IDS).arg(keys::ENTRY_KEY_HEAD);
        pipe.invoke_script(&lookup);
        let mut sender = self.scripts.sender_observe.prepare_invoke();
        sender
            .key(keys::sender_key(&request.sender_key))
            .arg(request.at_ms)
            .arg(format!("{:016x}", request.device_key))
            .arg(SENDER_MAX_DEVICES)
            .arg(SENDER_EXPIRY_SECONDS);
        pipe.invoke_script(&sender);
        if let Some(limit) = &request.rate {
            let mut tokens = self.scripts.take_tokens.prepare_invoke();
            tokens
                .key(keys::rate_key(limit.key_id))
                .arg(token_interval_ms(limit))
                .arg(limit.burst)
                .arg(1);
            pipe.invoke_script(&tokens);
        }
    }
}

/// Reads one message's answers (in [`RedisState::push_prefetch`]'s order) off `values`.
fn take_prefetch(
    values: &mut impl Iterator<Item = Value>,
    request: &PrefetchRequest<'_>,
) -> Result<Prefetched, StateError> {
    let mut next = |what: &str| values.next().ok_or_else(|| corrupt(format!("no {what}")));
    let found: Vec<Vec<u8>> = parse(next("lookup")?, "lookup")?;
    let window: Vec<i64> = parse(next("sender window")?, "sender window")?;
    let rate_allowed = match request.rate {
        Some(_) => parse::<i64>(next("rate limit")?, "rate limit")? > 0,
        None => true,
    };
    let candidates = found
        .iter()
        .filter(|bytes| bytes.len() > 8)
        .map(|bytes| entry_of(&bytes[..8], &bytes[8..]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Prefetched::Shared(SharedInputs {
        candidates,
        sender: sender_snapshot(&window, request.at_ms)?,
        rate_allowed,
    }))
}

impl StateBackend for RedisState {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn shared(&self) -> bool {
        true
    }

    fn prefetch(&self, request: &PrefetchRequest<'_>) -> Result<Prefetched, StateError> {
        let mut fetched = self.prefetch_many(std::slice::from_ref(request))?;
        fetched
            .pop()
            .ok_or_else(|| corrupt("a prefetch without an answer"))
    }

    fn prefetch_many(
        &self,
        requests: &[PrefetchRequest<'_>],
    ) -> Result<Vec<Prefetched>, StateError> {
        let mut pipe = redis::pipe();
        for request in requests {
            self.push_prefetch(&mut pipe, request);
        }
        let values: Vec<Value> = self.query_within(self.timeout, pipe)?;
        let mut values = values.into_iter();
        requests
            .iter()
            .map(|request| take_prefetch(&mut values, request))
            .collect()
    }

    fn similarity_len(&self) -> usize {
        let mut pipe = redis::pipe();
        pipe.get(keys::ENTRY_COUNT);
        self.query::<(Option<u64>,)>(pipe)
            .ok()
            .and_then(|(n,)| n)
            .map_or(0, |n| n as usize)
    }

    fn entry(&self, id: u64) -> Result<Option<Entry>, StateError> {
        let mut pipe = redis::pipe();
        pipe.hget(keys::entry_key(id), &id.to_be_bytes()[..]);
        let (record,): (Option<Vec<u8>>,) = self.query(pipe)?;
        record
            .map(|record| entry_of(&id.to_be_bytes(), &record))
            .transpose()
    }

    fn add_spam(&self, fp: &Fingerprint, label: Label) -> Result<Entry, StateError> {
        if !label.is_spam() {
            return Err(StateError::Store(format!(
                "add_spam needs a spam label, got {label}"
            )));
        }
        let (keys, band_keys) = entry_keys(fp);
        let new = Entry {
            label,
            seed_count: 1,
            ..Entry::empty(fp)
        };
        let mut args = entry_args(fp, &new, &band_keys);
        args.push(label_code(label).to_string().into_bytes());
        let record: Vec<u8> = self.invoke(|s| &s.add_spam, keys, args)?;
        entry_of(&fp.id().to_be_bytes(), &record)
    }

    fn record_report(
        &self,
        fp: &Fingerprint,
        report: &UserReport<'_>,
    ) -> Result<RecordedReport, StateError> {
        let (mut keys, band_keys) = entry_keys(fp);
        keys.push(keys::votes_key(fp.id()).into_bytes());
        keys.push(keys::REPUTATION.as_bytes().to_vec());
        keys.push(keys::AUDIT.as_bytes().to_vec());
        let class = report.class.filter(|c| report.spam && c.is_spam());
        let audit = AuditRecord {
            reporter_hash: id_hash(report.reporter),
            device_hash: id_hash(report.device),
            fingerprint_id: fp.id(),
            at_ms: report.at_ms,
            spam: report.spam,
            class: report.class.filter(|_| report.spam),
            counted: true,
        };
        let mut args = entry_args(fp, &Entry::empty(fp), &band_keys);
        args.extend([
            id_hash(report.reporter).to_be_bytes().to_vec(),
            if report.spam {
                b"1".to_vec()
            } else {
                b"0".to_vec()
            },
            class.map_or(-1, label_code).to_string().into_bytes(),
            self.quorum.to_string().into_bytes(),
            encode_audit(&audit).to_vec(),
            DISTRUST_MIN_DISAGREED.to_string().into_bytes(),
        ]);
        let records: Vec<Vec<u8>> = self.invoke(|s| &s.report, keys, args)?;
        self.wait_for_disk()?;
        let [before, after] = records.as_slice() else {
            return Err(corrupt("a report answer without two records"));
        };
        let id = fp.id().to_be_bytes();
        Ok(RecordedReport {
            before: (!before.is_empty())
                .then(|| entry_of(&id, before))
                .transpose()?,
            after: entry_of(&id, after)?,
        })
    }

    fn record_sender_report(
        &self,
        sender_key: [u8; 16],
        reporter: &str,
        spam: bool,
    ) -> Result<(), StateError> {
        let key = keys::sender_key(&sender_key);
        let mut pipe = redis::pipe();
        pipe.hset(
            &key,
            format!("V:{:016x}", id_hash(reporter)),
            if spam { "1" } else { "0" },
        )
        .ignore()
        .expire(&key, SENDER_EXPIRY_SECONDS as i64)
        .ignore();
        self.query::<()>(pipe)
    }

    fn take_token(&self, limit: &RateLimit<'_>) -> Result<bool, StateError> {
        let keys = vec![keys::rate_key(limit.key_id).into_bytes()];
        let args = vec![
            token_interval_ms(limit).to_string().into_bytes(),
            limit.burst.to_string().into_bytes(),
            b"1".to_vec(),
        ];
        let granted: i64 = self.invoke(|s| &s.take_tokens, keys, args)?;
        Ok(granted > 0)
    }

    fn sync_append(&self, changes: &[Change]) -> Result<u64, StateError> {
        let keys = vec![
            keys::SYNC_VERSION.as_bytes().to_vec(),
            keys::SYNC_LOG.as_bytes().to_vec(),
        ];
        let args = changes
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StateError::Store(e.to_string()))?;
        self.invoke(|s| &s.sync_append, keys, args)
    }

    fn sync_since(&self, since: u64, max_entries: usize) -> Result<SyncPage, StateError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGEBYSCORE")
            .arg(keys::SYNC_LOG)
            .arg(format!("({since}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(max_entries.saturating_add(1));
        let (members,): (Vec<Vec<u8>>,) = self.query(pipe)?;
        let mut changes = Vec::with_capacity(members.len());
        for member in &members {
            let text = std::str::from_utf8(member).map_err(|_| corrupt("a sync log entry"))?;
            let (version, json) = text
                .split_once(':')
                .ok_or_else(|| corrupt("a sync log entry without a version"))?;
            let version: u64 = version.parse().map_err(|_| corrupt("a sync log version"))?;
            changes.push((version, serde_json::from_str::<Change>(json).ok()));
        }
        Ok(SyncPage::from_changes(since, changes, max_entries))
    }

    fn sync_version(&self) -> Result<u64, StateError> {
        let mut pipe = redis::pipe();
        pipe.get(keys::SYNC_VERSION);
        let (version,): (Option<u64>,) = self.query(pipe)?;
        Ok(version.unwrap_or(0))
    }

    fn sync_sender_rules(&self, current: &BTreeMap<String, i32>) -> Result<usize, StateError> {
        for _ in 0..8 {
            let mut pipe = redis::pipe();
            pipe.get(keys::SYNC_SENDER_RULES);
            let (stored,): (Option<String>,) = self.query(pipe)?;
            let stored = stored.unwrap_or_default();
            let previous: BTreeMap<String, i32> = serde_json::from_str(&stored).unwrap_or_default();
            let changes = sender_rule_changes(&previous, current);
            if changes.is_empty() {
                return Ok(0);
            }
            let keys = [keys::SYNC_SENDER_RULES, keys::SYNC_VERSION, keys::SYNC_LOG]
                .map(|k| k.as_bytes().to_vec())
                .to_vec();
            let mut args = vec![
                stored.into_bytes(),
                serde_json::to_vec(current).map_err(|e| StateError::Store(e.to_string()))?,
            ];
            for change in &changes {
                args.push(
                    serde_json::to_vec(change).map_err(|e| StateError::Store(e.to_string()))?,
                );
            }
            let logged: i64 = self.invoke(|s| &s.sync_sender_rules, keys, args)?;
            if logged >= 0 {
                return Ok(logged as usize);
            }
        }
        Err(StateError::Unavailable(
            "sender rules kept changing under concurrent replicas".into(),
        ))
    }

    fn recent_reports(&self, limit: usize) -> Result<Vec<AuditRecord>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.lrange(keys::AUDIT, -(limit as isize), -1);
        let (records,): (Vec<Vec<u8>>,) = self.query(pipe)?;
        Ok(records
            .iter()
            .rev()
            .filter_map(|r| decode_audit(r))
            .collect())
    }

    fn operator_listings(&self) -> Result<Vec<OperatorListing>, StateError> {
        let mut pipe = redis::pipe();
        pipe.hvals(keys::OPERATOR_LIST);
        let (values,): (Vec<Vec<u8>>,) = self.query(pipe)?;
        values
            .iter()
            .map(|v| {
                serde_json::from_slice(v).map_err(|e| corrupt(format!("an operator listing: {e}")))
            })
            .collect()
    }

    fn put_operator_listing(&self, listing: &OperatorListing) -> Result<(), StateError> {
        let value = serde_json::to_vec(listing).map_err(|e| StateError::Store(e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.hset(
            keys::OPERATOR_LIST,
            &listing.fingerprint_id.to_be_bytes()[..],
            value,
        )
        .ignore();
        self.query::<()>(pipe)?;
        self.wait_for_disk()
    }

    fn remove_operator_listing(&self, id: u64) -> Result<(), StateError> {
        let mut pipe = redis::pipe();
        pipe.hdel(keys::OPERATOR_LIST, &id.to_be_bytes()[..])
            .ignore();
        self.query::<()>(pipe)?;
        self.wait_for_disk()
    }

    /// See `prefix`: prefixes of at least 12 bits, one bucket group per band.
    fn prefix_buckets(
        &self,
        prefixes: &[u32],
        bits: u32,
        cap: usize,
    ) -> Result<Vec<PrefixBucket>, StateError> {
        let wanted: Vec<(usize, u32)> = prefixes.iter().copied().enumerate().collect();
        self.read_prefix_buckets(&wanted, bits, cap)
    }

    fn min_prefix_bits(&self) -> u32 {
        keys::GROUP_BITS
    }

    fn flush(&self) -> Result<(), StateError> {
        // Redis persists by itself (append-only file); there is nothing to push.
        Ok(())
    }
}

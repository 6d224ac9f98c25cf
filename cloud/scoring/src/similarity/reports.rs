//! User reports on fingerprints: one vote per reporter, the audit trail of every report, and
//! each reporter's track record against the consensus.
//!
//! # Votes (tree `votes`)
//! Key: the fingerprint id (big-endian), then the reporter's hash. Value: the vote (1 spam,
//! 0 not spam), then whether it counts (1) or was cast by a distrusted reporter (0). Stores of
//! the first layout hold the vote byte alone; such a vote counts.
//!
//! # Audit trail (tree `audit`)
//! Every report, counted or not, in arrival order: key = server time in ms (big-endian) and a
//! sequence number; value = [`AUDIT_RECORD_LEN`] bytes, see [`AuditRecord`]. Hashes and ids
//! only: never text, never a device id or key id in the clear. It grows by 42 bytes a report;
//! the per-key report budget of the server bounds how fast.
//!
//! # Reputation (tree `reputation`)
//! When the reports on a fingerprint reach a consensus or change it, every reporter's vote on
//! it is settled against the new consensus (agreed or disagreed); a vote cast on a fingerprint
//! that already has a consensus is settled at once. A reporter with at least
//! [`DISTRUST_MIN_DISAGREED`] disagreeing votes, more than it has agreeing ones, is distrusted:
//! its later votes are recorded (and audited) but count for nothing, so a key that keeps voting
//! against what independent keys conclude loses its say. Trust comes back when enough of its
//! votes agree again. Settling iterates the votes of one fingerprint: a few per quorum.

use smsguard_core::fingerprint::splitmix64;
use smsguard_core::Label;

use super::{Consensus, Entry, SimilarityError};

pub(super) const VOTES_TREE: &str = "votes";
pub(super) const AUDIT_TREE: &str = "audit";
pub(super) const REPUTATION_TREE: &str = "reputation";
const SPAM_VOTE: u8 = 1;
const NOT_SPAM_VOTE: u8 = 0;
/// Settled disagreeing votes from which a reporter that disagrees more than it agrees is
/// distrusted.
pub const DISTRUST_MIN_DISAGREED: u32 = 3;
/// Length of one audit record: reporter hash, device hash, fingerprint id, time (8 bytes each),
/// vote, class code, counted (1 byte each), 7 bytes reserved (zero).
pub const AUDIT_RECORD_LEN: usize = 42;

/// A user's report on one fingerprint; see [`super::SimilarityStore::record_report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserReport<'a> {
    /// Who reports: an identity the client cannot mint (the server passes the API key's id;
    /// stored only as a hash). One vote per reporter and fingerprint: the latest counts. The
    /// empty id is one anonymous reporter like any other.
    pub reporter: &'a str,
    /// The device the client names; not an identity, kept (hashed) for the audit trail only.
    pub device: &'a str,
    /// When the report arrived, by the server's clock (ms since the Unix epoch).
    pub at_ms: i64,
    /// "spam" (true) or "not spam" (false).
    pub spam: bool,
    /// The spam class the user chose, if any; ignored for "not spam" and for `Ham`.
    pub class: Option<Label>,
}

/// One report as the audit trail keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRecord {
    /// One-way hash of the reporter (the API key's id); see [`id_hash`].
    pub reporter_hash: u64,
    /// One-way hash of the device id the client named.
    pub device_hash: u64,
    pub fingerprint_id: u64,
    pub at_ms: i64,
    pub spam: bool,
    /// The class the user chose, if any.
    pub class: Option<Label>,
    /// False when the reporter was distrusted and the vote counted for nothing.
    pub counted: bool,
}

/// A reporter's settled votes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reputation {
    pub agreed: u32,
    pub disagreed: u32,
}

impl Reputation {
    /// True when the reporter's votes no longer count (see the module documentation).
    pub fn distrusted(&self) -> bool {
        self.disagreed >= DISTRUST_MIN_DISAGREED && self.disagreed > self.agreed
    }
}

/// One-way 64-bit hash of a reporter or device id (FNV-1a, mixed by SplitMix64), so the ids
/// themselves are never stored.
pub fn id_hash(id: &str) -> u64 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    splitmix64(hash)
}

/// The report trees of one store.
#[derive(Debug)]
pub(super) struct ReportTrees {
    pub votes: sled::Tree,
    pub audit: sled::Tree,
    pub reputation: sled::Tree,
    pub db: sled::Db,
}

impl ReportTrees {
    /// Casts `report` on `entry` (fingerprint `entry.id`): replaces the reporter's earlier vote,
    /// moves the entry's counts of counted votes, and audits it. Returns whether the vote is
    /// new or changed (repeating a vote changes nothing but the audit trail).
    pub fn cast(
        &self,
        entry: &mut Entry,
        report: &UserReport<'_>,
    ) -> Result<bool, SimilarityError> {
        let reporter = id_hash(report.reporter);
        let counted = !self.reputation(reporter)?.distrusted();
        let key = vote_key(entry.id, reporter);
        let vote = if report.spam {
            SPAM_VOTE
        } else {
            NOT_SPAM_VOTE
        };
        let previous = self.votes.get(key)?.map(|v| decode_vote(&v));
        if let Some((previous, true)) = previous {
            let count = vote_count(entry, previous);
            *count = count.saturating_sub(1);
        }
        if counted {
            let count = vote_count(entry, vote);
            *count = count.saturating_add(1);
        }
        self.votes.insert(key, &[vote, u8::from(counted)])?;
        self.audit(entry.id, reporter, report, counted)?;
        Ok(previous.map(|(v, _)| v) != Some(vote))
    }

    fn audit(
        &self,
        fingerprint_id: u64,
        reporter: u64,
        report: &UserReport<'_>,
        counted: bool,
    ) -> Result<(), SimilarityError> {
        let record = AuditRecord {
            reporter_hash: reporter,
            device_hash: id_hash(report.device),
            fingerprint_id,
            at_ms: report.at_ms,
            spam: report.spam,
            class: report.class.filter(|_| report.spam),
            counted,
        };
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&report.at_ms.to_be_bytes());
        key[8..].copy_from_slice(&self.db.generate_id()?.to_be_bytes());
        self.audit.insert(key, encode_audit(&record).to_vec())?;
        Ok(())
    }

    /// Settles the votes on fingerprint `id` against `consensus`: all of them when the
    /// consensus just formed or changed, else only `reporter`'s new one.
    pub fn settle(
        &self,
        id: u64,
        consensus: Consensus,
        only: Option<&str>,
    ) -> Result<(), SimilarityError> {
        let spam_consensus = match consensus {
            Consensus::None => return Ok(()),
            Consensus::Spam => true,
            Consensus::NotSpam => false,
        };
        let votes: Vec<(u64, bool)> = match only {
            Some(reporter) => {
                let reporter = id_hash(reporter);
                let vote = self.votes.get(vote_key(id, reporter))?;
                vote.map(|v| (reporter, decode_vote(&v).0 == SPAM_VOTE))
                    .into_iter()
                    .collect()
            }
            None => self
                .votes
                .scan_prefix(id.to_be_bytes())
                .filter_map(|item| {
                    let (key, value) = item.ok()?;
                    let reporter = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
                    Some((reporter, decode_vote(&value).0 == SPAM_VOTE))
                })
                .collect(),
        };
        for (reporter, spam) in votes {
            let mut reputation = self.reputation(reporter)?;
            if spam == spam_consensus {
                reputation.agreed = reputation.agreed.saturating_add(1);
            } else {
                reputation.disagreed = reputation.disagreed.saturating_add(1);
            }
            let mut value = [0u8; 8];
            value[..4].copy_from_slice(&reputation.agreed.to_le_bytes());
            value[4..].copy_from_slice(&reputation.disagreed.to_le_bytes());
            self.reputation.insert(reporter.to_be_bytes(), &value)?;
        }
        Ok(())
    }

    /// The settled votes of the reporter with hash `reporter`.
    pub fn reputation(&self, reporter: u64) -> Result<Reputation, SimilarityError> {
        let Some(value) = self.reputation.get(reporter.to_be_bytes())? else {
            return Ok(Reputation::default());
        };
        let u32_at = |at: usize| {
            value
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        Ok(Reputation {
            agreed: u32_at(0),
            disagreed: u32_at(4),
        })
    }

    /// Every audit record, oldest first (records that do not decode are skipped).
    pub fn audit_trail(&self) -> Result<Vec<AuditRecord>, SimilarityError> {
        let mut records = Vec::new();
        for item in self.audit.iter() {
            let (_, value) = item?;
            records.extend(decode_audit(&value));
        }
        Ok(records)
    }

    /// The newest `limit` reports of the audit trail, newest first.
    pub fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, SimilarityError> {
        let mut records = Vec::new();
        for item in self.audit.iter().rev().take(limit) {
            let (_, value) = item?;
            records.extend(decode_audit(&value));
        }
        Ok(records)
    }
}

/// (vote, counted) of a stored vote; a one-byte vote of the first layout counts.
fn decode_vote(value: &[u8]) -> (u8, bool) {
    let vote = value.first().copied().unwrap_or(NOT_SPAM_VOTE);
    (vote, value.get(1).is_none_or(|&c| c != 0))
}

/// The counter of `entry` that a vote of kind `vote` increments.
fn vote_count(entry: &mut Entry, vote: u8) -> &mut u32 {
    if vote == SPAM_VOTE {
        &mut entry.user_spam_reports
    } else {
        &mut entry.not_spam_reports
    }
}

/// Key of a reporter's vote on fingerprint `id`: the big-endian id, then the reporter's hash.
fn vote_key(id: u64, reporter: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8..].copy_from_slice(&reporter.to_be_bytes());
    key
}

/// The stored form of an audit record (also what a shared store keeps).
pub fn encode_audit(record: &AuditRecord) -> [u8; AUDIT_RECORD_LEN] {
    let mut out = [0u8; AUDIT_RECORD_LEN];
    out[..8].copy_from_slice(&record.reporter_hash.to_be_bytes());
    out[8..16].copy_from_slice(&record.device_hash.to_be_bytes());
    out[16..24].copy_from_slice(&record.fingerprint_id.to_be_bytes());
    out[24..32].copy_from_slice(&record.at_ms.to_be_bytes());
    out[32] = u8::from(record.spam);
    // 0: no class; else 1 + the index in Label::ALL.
    out[33] = record.class.map_or(0, |class| {
        1 + Label::ALL.iter().position(|l| *l == class).unwrap_or(0) as u8
    });
    out[34] = u8::from(record.counted);
    out
}

/// Reads one audit record ([`AUDIT_RECORD_LEN`] bytes); `None` for any other length.
pub fn decode_audit(value: &[u8]) -> Option<AuditRecord> {
    if value.len() != AUDIT_RECORD_LEN {
        return None;
    }
    let u64_at = |at: usize| value[at..at + 8].try_into().ok().map(u64::from_be_bytes);
    Some(AuditRecord {
        reporter_hash: u64_at(0)?,
        device_hash: u64_at(8)?,
        fingerprint_id: u64_at(16)?,
        at_ms: u64_at(24)? as i64,
        spam: value[32] != 0,
        class: match value[33] {
            0 => None,
            code => Some(*Label::ALL.get(usize::from(code) - 1)?),
        },
        counted: value[34] != 0,
    })
}

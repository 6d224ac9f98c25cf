//! The decision log: an append-only file of new decisions in the store directory, written with
//! one `write(2)` per decision before `classify` returns. The OS page cache keeps what was
//! written when the process dies (kill -9, a crash, the app killed by the system), so sled can
//! take the decision later, off the hot path. With [`Durability::Power`] each append is also
//! fsynced, which survives power loss.
//!
//! Format: segment files `decisions-<n>.log`; each holds frames of
//! `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`. A process killed in the
//! middle of a write leaves a torn last frame; reading skips any span that does not parse (a bad
//! length or checksum) byte by byte until a valid frame follows, so earlier records are never
//! lost and a damaged span is counted, never a panic.
//!
//! A segment is deleted only once every decision in it is applied to sled and sled is flushed
//! (a checkpoint). Replay on open is idempotent: a decision whose message id is already in sled
//! is skipped.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::MessageRecord;

const SEGMENT_PREFIX: &str = "decisions-";
const SEGMENT_SUFFIX: &str = ".log";
const HEADER_BYTES: usize = 8;
/// Longest payload a frame may claim; a longer length can only be a torn or damaged header.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// How far a returned decision survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// No decision log: sled writes the decision in `classify` and flushes on its own schedule
    /// (every 500 ms), so a crash may lose the latest decisions. For measurements and tests.
    None,
    /// Logged to the page cache before `classify` returns: survives the death of the process,
    /// not the loss of power.
    #[default]
    Process,
    /// Logged and fsynced before `classify` returns: survives power loss (costs an fsync per
    /// message).
    Power,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Process => "process",
            Durability::Power => "power",
        }
    }

    /// Whether decisions go through the log.
    pub fn logged(self) -> bool {
        self != Durability::None
    }
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "none" => Ok(Durability::None),
            "process" => Ok(Durability::Process),
            "power" => Ok(Durability::Power),
            other => Err(format!(
                "unknown durability {other:?} (none, process or power)"
            )),
        }
    }
}

/// Also reads the boolean of the former `durable_writes` setting: `true` (fsync before
/// returning) is `power`, `false` (no guarantee) is `none`.
impl<'de> Deserialize<'de> for Durability {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Flag(bool),
            Name(String),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Flag(true) => Ok(Durability::Power),
            Wire::Flag(false) => Ok(Durability::None),
            Wire::Name(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A decision on its way into sled: the record's JSON (the value sled stores) with what its
/// batch needs beside it.
#[derive(Debug, Clone)]
pub(super) struct PendingDecision {
    pub id: u64,
    pub quarantined: bool,
    pub queued: bool,
    pub counters: Vec<Cow<'static, str>>,
    /// The record's JSON is `bytes[value_at..]` (the log frame itself, not a copy of it).
    bytes: Vec<u8>,
    value_at: usize,
}

impl PendingDecision {
    /// The value sled stores for the record.
    pub fn value(&self) -> &[u8] {
        &self.bytes[self.value_at..]
    }
}

/// Encodes `record` and its counters as one log frame (`decision.frame()`).
/// Payload: `[counter count: u8]([name length: u8][name])*[record JSON]`.
pub(super) fn encode_decision(
    record: &MessageRecord,
    counters: &[&'static str],
    sealer: Option<&super::sealing::Sealer>,
) -> Result<PendingDecision, super::StoreError> {
    let mut frame = Vec::with_capacity(640);
    frame.extend_from_slice(&[0; HEADER_BYTES]);
    let names: Vec<&str> = counters
        .iter()
        .copied()
        .filter(|name| name.len() <= usize::from(u8::MAX))
        .take(usize::from(u8::MAX))
        .collect();
    frame.push(names.len() as u8);
    for name in &names {
        frame.push(name.len() as u8);
        frame.extend_from_slice(name.as_bytes());
    }
    let value_at = frame.len();
    super::sealing::encode_record(sealer, record, &mut frame)?;
    seal_frame(&mut frame);
    Ok(PendingDecision {
        id: record.id,
        quarantined: record.state == super::MessageState::Quarantined,
        queued: record.queued,
        counters: names.into_iter().map(Cow::Borrowed).collect(),
        bytes: frame,
        value_at,
    })
}

impl PendingDecision {
    /// The log frame of a decision made by `encode_decision`.
    pub fn frame(&self) -> &[u8] {
        &self.bytes
    }
}

/// Fills in the header of a frame whose payload follows its `HEADER_BYTES` placeholder.
fn seal_frame(frame: &mut [u8]) {
    let (header, payload) = frame.split_at_mut(HEADER_BYTES);
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
}

/// Frames `payload` (tests build logs with it).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0; HEADER_BYTES];
    frame.extend_from_slice(payload);
    seal_frame(&mut frame);
    frame
}

/// Decodes the payload of a decision frame.
pub(super) fn decode_decision(payload: &[u8]) -> Option<PendingDecision> {
    let (&count, mut rest) = payload.split_first()?;
    let mut counters = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (&len, tail) = rest.split_first()?;
        let (name, tail) = tail.split_at_checked(usize::from(len))?;
        counters.push(Cow::Owned(std::str::from_utf8(name).ok()?.to_string()));
        rest = tail;
    }
    let record: MessageRecord = serde_json::from_slice(rest).ok()?;
    Some(PendingDecision {
        id: record.id,
        quarantined: record.state == super::MessageState::Quarantined,
        queued: record.queued,
        counters,
        bytes: rest.to_vec(),
        value_at: 0,
    })
}

/// The message id of a decision log payload, or `None` when the payload is not a decision
/// (what replay counts as `unreadable_records`). Public for the fuzzing harness, which feeds
/// it the payloads `read_frames` finds in arbitrary bytes.
pub fn decision_id(payload: &[u8]) -> Option<u64> {
    decode_decision(payload).map(|decision| decision.id)
}

/// What reading the log found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecovery {
    /// Segments read (left by a process that did not close the store).
    pub segments: usize,
    /// Decisions applied to sled from the log (sled had lost them).
    pub replayed: usize,
    /// Decisions sled already had.
    pub already_stored: usize,
    /// Decisions whose record retention had pruned since (left out, not brought back).
    #[serde(default)]
    pub pruned: usize,
    /// Spans that were not valid frames (a torn tail from a kill mid-write, or damage).
    pub damaged_spans: usize,
    /// Bytes in those spans.
    pub damaged_bytes: u64,
    /// Valid frames whose payload is not a decision.
    pub unreadable_records: usize,
}

/// The valid frames' payloads of `bytes`, in order, and the damaged spans skipped between them.
pub fn read_frames(bytes: &[u8]) -> (Vec<&[u8]>, usize, u64) {
    let mut payloads = Vec::new();
    let (mut spans, mut skipped) = (0, 0_u64);
    let mut in_damage = false;
    let mut at = 0;
    while at < bytes.len() {
        match frame_at(&bytes[at..]) {
            Some(payload) => {
                payloads.push(payload);
                at += HEADER_BYTES + payload.len();
                in_damage = false;
            }
            None => {
                spans += usize::from(!in_damage);
                in_damage = true;
                skipped += 1;
                at += 1;
            }
        }
    }
    (payloads, spans, skipped)
}

/// The payload of a valid frame starting at `bytes[0]`.
fn frame_at(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if len == 0 || len > MAX_PAYLOAD_BYTES {
        return None;
    }
    let payload = bytes.get(HEADER_BYTES..HEADER_BYTES + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// A log segment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Segment {
    pub number: u64,
    pub path: PathBuf,
}

/// The segments in `dir`, oldest first.
pub(super) fn segments_in(dir: &Path) -> io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        segments.push(Segment {
            number,
            path: entry.path(),
        });
    }
    segments.sort_by_key(|s| s.number);
    Ok(segments)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{number:020}{SEGMENT_SUFFIX}"))
}

/// Everything up to a log position: segments through `segment` are covered once the first
/// `appended` decisions are applied and sled is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checkpoint {
    pub segment: u64,
    pub appended: u64,
}

/// The open log.
#[derive(Debug)]
pub(super) struct DecisionLog {
    dir: PathBuf,
    sync_each: bool,
    state: Mutex<LogState>,
    /// `state.bytes`, readable without the lock.
    current_bytes: AtomicU64,
}

#[derive(Debug)]
struct LogState {
    file: File,
    segment: u64,
    bytes: u64,
    /// Decisions appended since the log was opened.
    appended: u64,
}

impl DecisionLog {
    /// Starts segment `first_segment` in `dir` (segments before it must have been replayed).
    pub fn create(dir: &Path, first_segment: u64, durability: Durability) -> io::Result<Self> {
        let sync_each = durability == Durability::Power;
        let file = create_segment(dir, first_segment, sync_each)?;
        Ok(DecisionLog {
            dir: dir.to_path_buf(),
            sync_each,
            current_bytes: AtomicU64::new(0),
            state: Mutex::new(LogState {
                file,
                segment: first_segment,
                bytes: 0,
                appended: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the decision's frame with a single write (fsynced with `Durability::Power`),
    /// then hands the decision to `then` while still holding the log, so that whatever `then`
    /// queues is in log order. On a short or failed write the decision is not counted and comes
    /// back; the partial bytes read back as a damaged span.
    pub fn append_then(
        &self,
        decision: PendingDecision,
        then: impl FnOnce(PendingDecision),
    ) -> Result<(), PendingDecision> {
        let mut state = self.lock();
        // `write_all` on an O_APPEND file: one write(2) unless the kernel takes it short.
        if state.file.write_all(decision.frame()).is_err()
            || (self.sync_each && state.file.sync_data().is_err())
        {
            return Err(decision);
        }
        state.bytes += decision.frame().len() as u64;
        state.appended += 1;
        self.current_bytes.store(state.bytes, Ordering::Relaxed);
        then(decision);
        Ok(())
    }

    /// Decisions appended since opening.
    pub fn appended(&self) -> u64 {
        self.lock().appended
    }

    /// Bytes in the current segment (without waiting for the log).
    pub fn current_bytes(&self) -> u64 {
        self.current_bytes.load(Ordering::Relaxed)
    }

    /// [`rotate`](Self::rotate) unless an append holds the log (the writer thread must never
    /// wait for it: an append may be waiting for the writer).
    pub fn try_rotate(&self) -> Option<Checkpoint> {
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        self.rotate_locked(state).ok()
    }

    /// Starts a new segment; the returned checkpoint covers every segment before it.
    pub fn rotate(&self) -> io::Result<Checkpoint> {
        self.rotate_locked(self.lock())
    }

    fn rotate_locked(&self, mut state: MutexGuard<'_, LogState>) -> io::Result<Checkpoint> {
        let next = state.segment + 1;
        state.file = create_segment(&self.dir, next, self.sync_each)?;
        let checkpoint = Checkpoint {
            segment: state.segment,
            appended: state.appended,
        };
        state.segment = next;
        state.bytes = 0;
        self.current_bytes.store(0, Ordering::Relaxed);
        Ok(checkpoint)
    }

    /// Deletes the segments through `checkpoint.segment` (their decisions are in flushed sled).
    pub fn remove_through(&self, checkpoint: Checkpoint) -> io::Result<()> {
        for segment in segments_in(&self.dir)? {
            if segment.number <= checkpoint.segment {
                remove_if_present(&segment.path)?;
            }
        }
        Ok(())
    }
}

fn create_segment(dir: &Path, number: u64, sync_dir: bool) -> io::Result<File> {
    let file = super::private::private_file_options()
        .create(true)
        .append(true)
        .open(segment_path(dir, number))?;
    if sync_dir {
        // The new name must survive power loss too.
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_damage_around_them() {
        let mut log = frame(b"first");
        log.extend_from_slice(&[7, 0, 0]); // garbage between frames
        log.extend(frame(b"second"));
        let mut torn = frame(b"third, torn");
        torn.truncate(torn.len() - 3);
        log.extend_from_slice(&torn);
        let (payloads, spans, skipped) = read_frames(&log);
        assert_eq!(payloads, vec![&b"first"[..], &b"second"[..]]);
        assert_eq!(spans, 2);
        assert_eq!(skipped, 3 + torn.len() as u64);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut log = frame(b"payload");
        let last = log.len() - 1;
        log[last] ^= 1;
        let (payloads, spans, _) = read_frames(&log);
        assert!(payloads.is_empty());
        assert_eq!(spans, 1);
    }

    #[test]
    fn durability_reads_names_and_the_former_boolean() {
        let parse = |json: &str| serde_json::from_str::<Durability>(json).unwrap();
        assert_eq!(parse("\"process\""), Durability::Process);
        assert_eq!(parse("\"power\""), Durability::Power);
        assert_eq!(parse("\"none\""), Durability::None);
        assert_eq!(parse("true"), Durability::Power);
        assert_eq!(parse("false"), Durability::None);
        assert!(serde_json::from_str::<Durability>("\"fast\"").is_err());
        assert_eq!(
            serde_json::to_string(&Durability::Process).unwrap(),
            "\"process\""
        );
    }
}

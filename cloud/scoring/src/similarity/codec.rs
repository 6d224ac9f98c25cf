//! The on-disk layout of the similarity store: the format marker and the fixed-size entry
//! record.

use std::path::Path;

use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::Label;

use super::{Entry, SimilarityError};

const META_TREE: &str = "meta";
const FORMAT_KEY: &[u8] = b"format";
/// Version of the on-disk record layout; a store written with another version is refused.
/// Version 2 split the spam count into seeded and user-reported counts and added `votes`.
const FORMAT_VERSION: u8 = 2;
/// The store marker: record layout and MinHash definition. Fingerprints of another
/// `FINGERPRINT_VERSION` never match today's, so such a store is refused rather than silently
/// matching nothing.
const FORMAT_MARKER: [u8; 2] = [
    FORMAT_VERSION,
    smsguard_core::fingerprint::FINGERPRINT_VERSION as u8,
];
pub(super) const RECORD_LEN: usize = 2 + 3 * 4 + NUM_HASHES * 4;
const SLOTS_AT: usize = 2 + 3 * 4;

/// Writes the format marker into a new store, refuses a store of another layout or
/// fingerprint version.
pub(super) fn check_format(db: &sled::Db, path: &Path) -> Result<(), SimilarityError> {
    let open_error = |source| SimilarityError::Open {
        path: path.to_path_buf(),
        source,
    };
    let meta = db.open_tree(META_TREE).map_err(open_error)?;
    match meta.get(FORMAT_KEY).map_err(open_error)? {
        None => {
            meta.insert(FORMAT_KEY, &FORMAT_MARKER)
                .map_err(open_error)?;
            Ok(())
        }
        Some(v) if v.as_ref() == FORMAT_MARKER => Ok(()),
        Some(v) => Err(SimilarityError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "store written by another format or fingerprint version (marker {:?}, expected \
                 {FORMAT_MARKER:?}); rebuild it from the corpora and reports",
                v.as_ref()
            ),
        }),
    }
}

fn label_code(label: Label) -> u8 {
    Label::ALL.iter().position(|l| *l == label).unwrap_or(0) as u8
}

/// Record layout: format version (1 byte), label index in [`Label::ALL`] (1), seed count, user
/// spam reports, not-spam reports (u32 LE each), 64 MinHash slots (u32 LE each).
pub fn encode_entry(entry: &Entry) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[0] = FORMAT_VERSION;
    out[1] = label_code(entry.label);
    out[2..6].copy_from_slice(&entry.seed_count.to_le_bytes());
    out[6..10].copy_from_slice(&entry.user_spam_reports.to_le_bytes());
    out[10..14].copy_from_slice(&entry.not_spam_reports.to_le_bytes());
    for (chunk, slot) in out[SLOTS_AT..].chunks_exact_mut(4).zip(&entry.minhash) {
        chunk.copy_from_slice(&slot.to_le_bytes());
    }
    out
}

/// Decodes one stored record (`key`: the fingerprint id, big-endian); a damaged record is an
/// error naming what is wrong, never a panic (public for the fuzzing harness).
pub fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, String> {
    let id = u64::from_be_bytes(
        key.try_into()
            .map_err(|_| format!("key of {} bytes, expected 8", key.len()))?,
    );
    let bad = |what: &str| format!("record of fingerprint {id:016x}: {what}");
    if value.len() != RECORD_LEN {
        return Err(bad(&format!(
            "{} bytes, expected {RECORD_LEN}",
            value.len()
        )));
    }
    if value[0] != FORMAT_VERSION {
        return Err(bad(&format!("record version {}", value[0])));
    }
    let label = *Label::ALL
        .get(value[1] as usize)
        .ok_or_else(|| bad("unknown label code"))?;
    let u32_at =
        |at: usize| u32::from_le_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    let mut minhash = [0u32; NUM_HASHES];
    for (i, slot) in minhash.iter_mut().enumerate() {
        *slot = u32_at(SLOTS_AT + 4 * i);
    }
    Ok(Entry {
        id,
        minhash,
        label,
        seed_count: u32_at(2),
        user_spam_reports: u32_at(6),
        not_spam_reports: u32_at(10),
    })
}

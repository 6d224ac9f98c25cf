//! The Redis key layout (version 1). Every key starts with `smsguard:v1:`, so one Redis can be
//! shared with other applications and a layout change gets new names instead of misreading old
//! ones. The part in braces is the Redis Cluster hash tag: keys with the same tag share a slot.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `smsguard:v1:{lsh:BB:GGG}` | hash | LSH buckets of band `BB` (00..15) whose band key starts with the 12 bits `GGG`: field `n` + band key (8 bytes) → ids of the newest entries (8 bytes each, newest first, at most 48); field `r` + band key → ids of every user-reported entry |
//! | `smsguard:v1:{fp:XXXX}` | hash | entries whose id starts with the 16 bits `XXXX`: field id (8 bytes) → the 270-byte record of `smsguard_scoring::similarity::encode_entry` |
//! | `smsguard:v1:{fp:XXXX}:votes:ID` | hash | one vote per reporter hash (8 bytes) → vote, counted (2 bytes) |
//! | `smsguard:v1:{reports}:entries` | string | number of entries |
//! | `smsguard:v1:{reports}:reputation` | hash | reporter hash → agreed, disagreed (u32 LE each) |
//! | `smsguard:v1:{reports}:audit` | list | every report, 42-byte `AuditRecord`s in arrival order |
//! | `smsguard:v1:{snd:HASH}` | hash | one sender's windows (fields `S:` second, `M:` minute, `D:` device, `V:` reporter, `first`); expires 2 days after its last message |
//! | `smsguard:v1:{rl:HASH}` | string | a rate limit's theoretical arrival time (GCRA), expires when full again |
//! | `smsguard:v1:{operator}:list` | hash | the console's whitelist and blacklist: fingerprint id (8 bytes) → JSON `OperatorListing` |
//! | `smsguard:v1:{sync}:version`, `:log`, `:sender_rules` | string, sorted set, string | the change log: counter, `version:json` members scored by version, the sender rules last logged |
//!
//! Grouping buckets and records into hashes (4,096 groups per band, 65,536 record groups) keeps
//! the per-key overhead of Redis off the 16 buckets of every entry: small hashes are stored as
//! compact listpacks.

use smsguard_core::lsh::band_key;
use smsguard_core::Fingerprint;
use smsguard_scoring::similarity::BANDS;

pub const PREFIX: &str = "smsguard:v1:";
/// The entry-group key without its last 5 characters (`XXXX}`), for the lookup script.
pub const ENTRY_KEY_HEAD: &str = "smsguard:v1:{fp:";
/// Newest entries kept per bucket: exactly what the embedded index scans
/// (`smsguard_scoring::similarity::MAX_BUCKET_SCAN`).
pub const BUCKET_IDS: usize = smsguard_scoring::similarity::MAX_BUCKET_SCAN;

pub const ENTRY_COUNT: &str = "smsguard:v1:{reports}:entries";
pub const REPUTATION: &str = "smsguard:v1:{reports}:reputation";
pub const AUDIT: &str = "smsguard:v1:{reports}:audit";
pub const OPERATOR_LIST: &str = "smsguard:v1:{operator}:list";
pub const SYNC_VERSION: &str = "smsguard:v1:{sync}:version";
pub const SYNC_LOG: &str = "smsguard:v1:{sync}:log";
pub const SYNC_SENDER_RULES: &str = "smsguard:v1:{sync}:sender_rules";

/// Bits of a band key that name its bucket group (the `GGG` of `{lsh:BB:GGG}`, 3 hex digits):
/// a private-similarity prefix of at least this many bits lies in one group.
pub const GROUP_BITS: u32 = 12;

/// The bucket-group key of band `band` and band key `key`.
pub fn bucket_key(band: usize, key: u64) -> String {
    format!("{PREFIX}{{lsh:{band:02}:{:03x}}}", key >> (64 - GROUP_BITS))
}

/// Field kinds of a bucket group: the newest ids of a band key, and its reported ids.
pub const NEWEST_FIELD: u8 = b'n';
pub const REPORTED_FIELD: u8 = b'r';

/// The 16 bucket-group keys and band keys of a fingerprint, band by band.
pub fn bands(fp: &Fingerprint) -> Vec<(String, [u8; 8])> {
    (0..BANDS)
        .map(|band| {
            let key = band_key(&fp.minhash, band);
            (bucket_key(band, key), key.to_be_bytes())
        })
        .collect()
}

/// The entry-group key of fingerprint id `id` (the lookup script builds the same name).
pub fn entry_key(id: u64) -> String {
    format!("{ENTRY_KEY_HEAD}{:04x}}}", id >> 48)
}

/// The votes of fingerprint id `id` (same slot as its entry).
pub fn votes_key(id: u64) -> String {
    format!("{}:votes:{id:016x}", entry_key(id))
}

/// One sender's windows (`hash`: the salted sender hash).
pub fn sender_key(hash: &[u8; 16]) -> String {
    format!("{PREFIX}{{snd:{}}}", hex::encode(hash))
}

/// The rate limit of an API key (by the one-way hash of its id).
pub fn rate_key(key_id: &str) -> String {
    let hash = smsguard_scoring::similarity::id_hash(key_id);
    format!("{PREFIX}{{rl:{hash:016x}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_and_votes_keys_share_a_hash_tag() {
        let id = 0xabcd_0123_4567_89ef;
        assert_eq!(entry_key(id), "smsguard:v1:{fp:abcd}");
        assert!(votes_key(id).starts_with("smsguard:v1:{fp:abcd}:votes:"));
        assert_eq!(
            bucket_key(3, 0xfff0_0000_0000_0001),
            "smsguard:v1:{lsh:03:fff}"
        );
    }
}

//! The private similarity lookup on Redis. A band's buckets are grouped by the top
//! [`GROUP_BITS`] bits of their band key (`{lsh:BB:GGG}`), so a prefix of at least 12 bits lies
//! in one group: one `HGETALL` per band (16 in one pipelined round trip) lists the newest and
//! the reported ids of every band key of the group, the ids are chosen by the rule the embedded
//! store follows too ([`key_share`]), and a second round trip reads their records. A shorter
//! prefix would read 2^(12 - P) groups per band (4,096 groups at 4 bits): refused, and the
//! server never suggests one (`StateBackend::min_prefix_bits`).
//!
//! The two round trips are not one transaction: an entry added between them is either listed
//! with its record or not listed, never half; entries are never deleted.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use smsguard_scoring::similarity::{
    decode_entry, key_share, prefix_range, Entry, PrefixBucket, BANDS,
};

use super::keys::{self, GROUP_BITS, NEWEST_FIELD, REPORTED_FIELD};
use super::{corrupt, RedisState};
use crate::state_backend::StateError;

/// One band key's ids as its group holds them: newest first; reported, most recent first.
#[derive(Debug, Default)]
struct KeyIds {
    newest: Vec<u64>,
    reported: Vec<u64>,
}

/// The ids of a packed list (8 bytes each, big-endian).
fn unpack_ids(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(|chunk| {
        let mut id = [0u8; 8];
        id.copy_from_slice(chunk);
        u64::from_be_bytes(id)
    })
}

/// The band keys of one group's fields (kind byte + 8-byte band key) that lie in `range`,
/// in ascending order, with their ids.
fn keys_in_range(
    fields: HashMap<Vec<u8>, Vec<u8>>,
    range: &RangeInclusive<u64>,
) -> BTreeMap<u64, KeyIds> {
    let mut found: BTreeMap<u64, KeyIds> = BTreeMap::new();
    for (field, value) in fields {
        let Some((&kind, key)) = field.split_first() else {
            continue;
        };
        let Ok(key) = <[u8; 8]>::try_from(key).map(u64::from_be_bytes) else {
            continue;
        };
        if !range.contains(&key) {
            continue;
        }
        let ids = found.entry(key).or_default();
        match kind {
            NEWEST_FIELD => ids.newest.extend(unpack_ids(&value)),
            REPORTED_FIELD => ids.reported.extend(unpack_ids(&value)),
            _ => {}
        }
    }
    found
}

/// One bucket's choice: how many entries its keys offer, and the first `cap` (band key, id)
/// pairs.
type Chosen = (usize, Vec<(u64, u64)>);

fn choose(keys: BTreeMap<u64, KeyIds>, cap: usize) -> Chosen {
    let mut stored = 0;
    let mut chosen = Vec::new();
    for (key, ids) in keys {
        let share = key_share(ids.newest, ids.reported);
        stored += share.len();
        let room = cap.saturating_sub(chosen.len());
        chosen.extend(share.into_iter().take(room).map(|id| (key, id)));
    }
    (stored, chosen)
}

impl RedisState {
    /// The buckets of the (band, prefix) pairs `wanted` at `bits` bits, at most `cap` entries
    /// each: two round trips whatever the number of bands.
    pub(super) fn read_prefix_buckets(
        &self,
        wanted: &[(usize, u32)],
        bits: u32,
        cap: usize,
    ) -> Result<Vec<PrefixBucket>, StateError> {
        if bits < GROUP_BITS {
            return Err(StateError::Unsupported {
                backend: "redis",
                what:
                    "prefixes shorter than 12 bits (a band's buckets are grouped by 12-bit prefix)",
            });
        }
        // A band or prefix out of range is an empty bucket, as on the embedded store.
        let ranges: Vec<(usize, Option<RangeInclusive<u64>>)> = wanted
            .iter()
            .map(|&(band, prefix)| {
                let range = prefix_range(prefix, bits).filter(|_| band < BANDS);
                (band, range)
            })
            .collect();
        let chosen = self.choose_ids(&ranges, cap)?;
        let records = self.read_entries(chosen.iter().flat_map(|(_, ids)| ids.iter()))?;
        chosen
            .into_iter()
            .map(|(stored, ids)| {
                let entries = ids
                    .into_iter()
                    .map(|(key, id)| match records.get(&id) {
                        Some(entry) => Ok((key, entry.clone())),
                        None => Err(corrupt(format!("bucket id {id:016x} has no record"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(PrefixBucket { stored, entries })
            })
            .collect()
    }

    /// Reads the group of every range (one pipeline) and chooses each bucket's ids.
    fn choose_ids(
        &self,
        ranges: &[(usize, Option<RangeInclusive<u64>>)],
        cap: usize,
    ) -> Result<Vec<Chosen>, StateError> {
        let mut pipe = redis::pipe();
        for (band, range) in ranges {
            if let Some(range) = range {
                pipe.hgetall(keys::bucket_key(*band, *range.start()));
            }
        }
        let groups: Vec<HashMap<Vec<u8>, Vec<u8>>> =
            if ranges.iter().any(|(_, range)| range.is_some()) {
                self.query(pipe)?
            } else {
                Vec::new()
            };
        let mut groups = groups.into_iter();
        ranges
            .iter()
            .map(|(_, range)| match range {
                None => Ok((0, Vec::new())),
                Some(range) => {
                    let fields = groups
                        .next()
                        .ok_or_else(|| corrupt("a bucket group without an answer"))?;
                    Ok(choose(keys_in_range(fields, range), cap))
                }
            })
            .collect()
    }

    /// The records of the chosen ids (each read once, one pipeline).
    fn read_entries<'a>(
        &self,
        chosen: impl Iterator<Item = &'a (u64, u64)>,
    ) -> Result<HashMap<u64, Entry>, StateError> {
        let mut ids: Vec<u64> = chosen.map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(keys::entry_key(*id), &id.to_be_bytes()[..]);
        }
        let records: Vec<Option<Vec<u8>>> = self.query(pipe)?;
        ids.iter()
            .zip(records)
            .filter_map(|(id, record)| record.map(|record| (*id, record)))
            .map(|(id, record)| {
                let entry = decode_entry(&id.to_be_bytes(), &record).map_err(corrupt)?;
                Ok((id, entry))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: u8, key: u64) -> Vec<u8> {
        let mut field = vec![kind];
        field.extend(key.to_be_bytes());
        field
    }

    fn packed(ids: &[u64]) -> Vec<u8> {
        ids.iter().flat_map(|id| id.to_be_bytes()).collect()
    }

    #[test]
    fn a_group_is_filtered_to_the_prefix_and_read_in_key_order() {
        let fields = HashMap::from([
            (field(b'n', 0xabc2_0000_0000_0002), packed(&[5, 4])),
            (field(b'n', 0xabc1_0000_0000_0001), packed(&[3])),
            (field(b'r', 0xabc1_0000_0000_0001), packed(&[9, 3])),
            (field(b'n', 0xabd0_0000_0000_0000), packed(&[7])),
            (b"junk".to_vec(), packed(&[8])),
        ]);
        let range = prefix_range(0xabc, 12).unwrap();
        let (stored, chosen) = choose(keys_in_range(fields.clone(), &range), 128);
        assert_eq!(stored, 4);
        assert_eq!(
            chosen,
            [
                (0xabc1_0000_0000_0001, 3),
                (0xabc1_0000_0000_0001, 9),
                (0xabc2_0000_0000_0002, 5),
                (0xabc2_0000_0000_0002, 4),
            ]
        );
        let (stored, chosen) = choose(keys_in_range(fields, &range), 3);
        assert_eq!((stored, chosen.len()), (4, 3), "capped, still counted");
    }
}

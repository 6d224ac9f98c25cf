//! `PrivateSimilarity`: the private similarity lookup. The phone sends the top `prefix_bits`
//! bits of each of its message's LSH band keys; the answer lists, per (band, prefix) bucket,
//! the entries its band keys offer (at most [`MAX_BUCKET_ENTRIES`]: band keys in ascending order,
//! per key its newest 48 then its user-reported ones, the same on every state backend:
//! `smsguard_scoring::similarity::key_share`) with their full band key, label and counted
//! spam evidence, and the phone matches its full keys locally. A bucket storing fewer than k
//! entries ([`crate::config::ServerConfig::private_min_bucket_entries`]) is answered empty, so an
//! answer never narrows a query to fewer than k stored messages. The server sees prefixes only.

use std::collections::HashMap;

use smsguard_proto::v1;
use smsguard_scoring::similarity::{
    whitelists, PrefixBucket, SimilarityConfig, BANDS, PREFIX_BITS,
};

use crate::error::RequestError;
use crate::state_backend::StateBackend;

/// Most entries returned per bucket (in band-key order, each key's share in `key_share`'s
/// order). With at most [`BANDS`] buckets of entries of at most 26 encoded bytes, an answer stays
/// under 16 × 128 × 26 B ≈ 53 KB, within 64 KB.
pub const MAX_BUCKET_ENTRIES: usize = 128;
/// Largest encoded answer (checked by the tests).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Checks the request's shape: 1 to [`BANDS`] prefixes, each fitting in `prefix_bits` bits.
fn validate(request: &v1::PrivateSimilarityRequest) -> Result<(), RequestError> {
    if !PREFIX_BITS.contains(&request.prefix_bits) {
        return Err(RequestError::Invalid {
            field: "prefix_bits",
            reason: format!(
                "{} is outside {}..={}",
                request.prefix_bits,
                PREFIX_BITS.start(),
                PREFIX_BITS.end()
            ),
        });
    }
    if request.prefixes.is_empty() {
        return Err(RequestError::Empty { field: "prefixes" });
    }
    if request.prefixes.len() > BANDS {
        return Err(RequestError::Invalid {
            field: "prefixes",
            reason: format!(
                "{} prefixes; one per band, at most {BANDS}",
                request.prefixes.len()
            ),
        });
    }
    let bits = request.prefix_bits;
    if bits < 32 && request.prefixes.iter().any(|p| p >> bits != 0) {
        return Err(RequestError::Invalid {
            field: "prefixes",
            reason: format!("a prefix is wider than {bits} bits"),
        });
    }
    Ok(())
}

/// The answer to one lookup: prefix `b` of the request is band `b`'s. A prefix shorter than
/// the backend serves is FAILED_PRECONDITION, naming the shortest it does.
pub fn answer(
    state: &dyn StateBackend,
    config: &SimilarityConfig,
    min_bucket_entries: usize,
    request: &v1::PrivateSimilarityRequest,
) -> Result<v1::PrivateSimilarityResponse, RequestError> {
    validate(request)?;
    let min_bits = state.min_prefix_bits();
    if request.prefix_bits < min_bits {
        return Err(RequestError::NotServed(format!(
            "the {} state serves prefix_bits >= {min_bits}; ask again with at least {min_bits}",
            state.kind()
        )));
    }
    let found = state.prefix_buckets(&request.prefixes, request.prefix_bits, MAX_BUCKET_ENTRIES)?;
    // Response-local entry numbers: the same stored entry gets the same number in every bucket.
    let mut numbers: HashMap<u64, u32> = HashMap::new();
    let buckets = found
        .into_iter()
        .enumerate()
        .map(|(band, found)| bucket(band, found, min_bucket_entries, config, &mut numbers))
        .collect();
    Ok(v1::PrivateSimilarityResponse {
        buckets,
        min_bucket_entries: min_bucket_entries as u32,
        max_bucket_entries: MAX_BUCKET_ENTRIES as u32,
        suggested_prefix_bits: suggestion(state, min_bucket_entries),
    })
}

/// The prefix length to suggest: [`suggested_bits`] for the memory's size, never shorter than
/// the backend serves.
pub fn suggestion(state: &dyn StateBackend, min_bucket_entries: usize) -> u32 {
    suggested_bits(state.similarity_len(), min_bucket_entries).max(state.min_prefix_bits())
}

/// The similarity fields of `PrivateParams`.
pub fn fill_params(
    state: &dyn StateBackend,
    min_bucket_entries: usize,
    params: &mut v1::PrivateParamsResponse,
) {
    params.suggested_prefix_bits = suggestion(state, min_bucket_entries);
    params.min_prefix_bits = state.min_prefix_bits();
    params.min_bucket_entries = min_bucket_entries as u32;
    params.max_bucket_entries = MAX_BUCKET_ENTRIES as u32;
}

/// The longest prefix at which a (band, prefix) bucket of a memory of `entries` holds at least
/// `2k` entries on average (each band's keys spread evenly over the prefixes), within
/// [`PREFIX_BITS`]: about half that mean still reaches k in most buckets.
pub fn suggested_bits(entries: usize, k: usize) -> u32 {
    let per_bucket = (2 * k.max(1)) as f64;
    let bits = (entries as f64 / per_bucket).log2().floor();
    (bits.max(0.0) as u32).clamp(*PREFIX_BITS.start(), *PREFIX_BITS.end())
}

fn bucket(
    band: usize,
    found: PrefixBucket,
    k: usize,
    config: &SimilarityConfig,
    numbers: &mut HashMap<u64, u32>,
) -> v1::PrivateSimilarityBucket {
    if found.stored < k {
        return v1::PrivateSimilarityBucket {
            band: band as u32,
            stored: 0,
            withheld: true,
            entries: Vec::new(),
        };
    }
    let entries = found
        .entries
        .into_iter()
        .map(|(band_key, entry)| {
            let next = numbers.len() as u32;
            v1::PrivateSimilarityEntry {
                band_key,
                label: v1::Label::from(entry.label) as i32,
                spam_evidence: entry.counted_spam_evidence(config.report_quorum),
                whitelisting: whitelists(config, &entry),
                entry: *numbers.entry(entry.id).or_insert(next),
            }
        })
        .collect();
    v1::PrivateSimilarityBucket {
        band: band as u32,
        stored: found.stored.min(u32::MAX as usize) as u32,
        withheld: false,
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bits: u32, prefixes: Vec<u32>) -> v1::PrivateSimilarityRequest {
        v1::PrivateSimilarityRequest {
            prefix_bits: bits,
            prefixes,
            device_id: String::new(),
        }
    }

    #[test]
    fn the_suggested_prefix_grows_with_the_memory() {
        assert_eq!(suggested_bits(0, 8), 4);
        assert_eq!(suggested_bits(3001, 8), 7);
        assert_eq!(suggested_bits(1 << 20, 8), 16);
        assert_eq!(suggested_bits(usize::MAX, 1), 32);
    }

    #[test]
    fn malformed_requests_are_refused_with_the_field() {
        let field = |r| match validate(&r) {
            Err(RequestError::Invalid { field, .. } | RequestError::Empty { field }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(request(3, vec![0])), "prefix_bits");
        assert_eq!(field(request(33, vec![0])), "prefix_bits");
        assert_eq!(field(request(16, vec![])), "prefixes");
        assert_eq!(field(request(16, vec![0; BANDS + 1])), "prefixes");
        assert_eq!(field(request(16, vec![1 << 16])), "prefixes");
        assert!(validate(&request(16, vec![0xffff; BANDS])).is_ok());
        assert!(validate(&request(32, vec![u32::MAX])).is_ok());
    }
}

//! `PrivateSimilarity` on a real server on loopback: a spam feed's message seeds the memory,
//! and its near-duplicate is matched on the "phone" from the answer to its band-key prefixes
//! alone; malformed requests are INVALID_ARGUMENT, buckets under k are answered empty, the
//! answer stays under 64 KB. The same lookup on the Redis state: `private_similarity_redis`.

use std::sync::LazyLock;

use prost::Message;
use smsguard_core::{normalize, MinHasher};
use smsguard_private::similarity::{band_prefixes, match_locally, BucketEntry, LocalMatch};
use smsguard_proto::v1;
use smsguard_server::private_similarity::{MAX_ANSWER_BYTES, MAX_BUCKET_ENTRIES};
use tonic::Code;

use crate::common::{self, client, run, TestServer};

const SPAM: &str = "Your parcel is held at customs, pay the 2.99 release fee within 24 hours at parcel-release.example/track or it returns to sender";
const NEAR_DUPLICATE: &str = "Your parcel is held at customs, pay the 3.49 release fee within 24 hours at parcel-release.example/track or it returns to sender";
const UNRELATED: &str =
    "Dinner at ours on Saturday? Bring the board game and some of that bread you made";
/// Generated filler spam, enough for every bucket of a 4-bit prefix to pass the cap.
const FILLER: usize = 3000;
const K: usize = 8;

/// Filler texts: 14 words drawn by an LCG from a small vocabulary (distinct, unrelated texts).
pub(crate) fn filler(i: usize) -> String {
    const WORDS: [&str; 32] = [
        "win",
        "cash",
        "prize",
        "claim",
        "now",
        "free",
        "offer",
        "bonus",
        "urgent",
        "account",
        "verify",
        "click",
        "link",
        "limited",
        "deal",
        "reward",
        "gift",
        "card",
        "loan",
        "rate",
        "today",
        "call",
        "text",
        "stop",
        "credit",
        "points",
        "expire",
        "unlock",
        "member",
        "exclusive",
        "voucher",
        "winner",
    ];
    let mut state = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..14)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            WORDS[(state >> 59) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
        + &format!(" {i}")
}

/// One server on the embedded state (a prefix scan needs it), seeded by a spam feed whose last
/// line (the newest entry of its buckets) is [`SPAM`].
static SERVER: LazyLock<(TestServer, tempfile::TempDir)> = LazyLock::new(|| {
    let files = tempfile::tempdir().unwrap();
    let feed = files.path().join("feed.tsv");
    let mut lines: String = (0..FILLER)
        .map(|i| format!("spam\t{}\n", filler(i)))
        .collect();
    lines.push_str(&format!("fraud\t{SPAM}\n"));
    std::fs::write(&feed, lines).unwrap();
    let server = run(common::start(|config| {
        config.state = None;
        config.spam_feed_path = Some(feed);
        config.private_min_bucket_entries = K;
    }));
    (server, files)
});

pub(crate) fn request(bits: u32, prefixes: Vec<u32>) -> v1::PrivateSimilarityRequest {
    v1::PrivateSimilarityRequest {
        prefix_bits: bits,
        prefixes,
        device_id: "device-1".into(),
    }
}

pub(crate) fn ask(
    addr: std::net::SocketAddr,
    request: v1::PrivateSimilarityRequest,
) -> Result<v1::PrivateSimilarityResponse, tonic::Status> {
    run(async move {
        let mut client = client(addr).await;
        client
            .private_similarity(request)
            .await
            .map(|r| r.into_inner())
    })
}

pub(crate) fn minhash(text: &str) -> [u32; 64] {
    MinHasher::new().fingerprint(&normalize(text).text).minhash
}

/// The phone's reading of an answer.
pub(crate) fn entries(answer: &v1::PrivateSimilarityResponse) -> Vec<BucketEntry> {
    answer
        .buckets
        .iter()
        .flat_map(|b| {
            b.entries.iter().map(move |e| BucketEntry {
                band: b.band as usize,
                band_key: e.band_key,
                entry: e.entry,
                spam_evidence: if e.label == v1::Label::Ham as i32 {
                    0
                } else {
                    e.spam_evidence
                },
                whitelisting: e.whitelisting,
            })
        })
        .collect()
}

#[test]
fn a_near_duplicate_of_fed_spam_is_matched_on_the_phone_from_prefixes_only() {
    let addr = SERVER.0.addr();
    let message = minhash(NEAR_DUPLICATE);
    let answer = ask(addr, request(8, band_prefixes(&message, 8))).unwrap();
    assert_eq!(answer.buckets.len(), 16);
    assert_eq!(answer.min_bucket_entries as usize, K);
    assert_eq!(answer.suggested_prefix_bits, 7, "log2(3001 / 16)");
    let found = match_locally(&message, entries(&answer));
    let LocalMatch::Spam {
        shared_bands,
        evidence,
    } = found
    else {
        panic!("no match: {found:?}");
    };
    assert!(shared_bands >= 2 && evidence >= 1, "{found:?}");
    let fraud = answer
        .buckets
        .iter()
        .flat_map(|b| &b.entries)
        .any(|e| e.label == v1::Label::Fraud as i32);
    assert!(fraud, "the fed message's label comes back");

    let unrelated = minhash(UNRELATED);
    let answer = ask(addr, request(8, band_prefixes(&unrelated, 8))).unwrap();
    assert_eq!(
        match_locally(&unrelated, entries(&answer)),
        LocalMatch::None
    );
}

#[test]
fn the_request_type_carries_only_prefixes_and_the_device_id() {
    let set = prost_types::FileDescriptorSet::decode(v1::FILE_DESCRIPTOR_SET).unwrap();
    let message = set
        .file
        .iter()
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "PrivateSimilarityRequest")
        .unwrap();
    let fields: Vec<(&str, i32)> = message
        .field
        .iter()
        .map(|f| (f.name(), f.r#type() as i32))
        .collect();
    use prost_types::field_descriptor_proto::Type;
    assert_eq!(
        fields,
        [
            ("prefix_bits", Type::Uint32 as i32),
            ("prefixes", Type::Uint32 as i32),
            ("device_id", Type::String as i32),
        ]
    );
    // A full query at the phone's 16 bits: 16 prefixes of 2 bytes of information each.
    let query = request(16, band_prefixes(&minhash(SPAM), 16));
    println!("private similarity query: {} bytes", query.encoded_len());
    assert!(query.encoded_len() < 100);
}

#[test]
fn malformed_requests_are_invalid_argument_and_the_server_goes_on() {
    let addr = SERVER.0.addr();
    for bad in [
        request(3, vec![0]),
        request(33, vec![0]),
        request(16, vec![]),
        request(16, vec![0; 17]),
        request(16, vec![1 << 16]),
        request(16, vec![0; 100_000]),
    ] {
        let status = ask(addr, bad).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    assert!(ask(addr, request(16, vec![0; 16])).is_ok());
}

#[test]
fn a_bucket_under_k_is_answered_empty() {
    let addr = SERVER.0.addr();
    let message = minhash(SPAM);
    // At 32 bits a bucket holds the entries of one band key: SPAM's own, fewer than k.
    let answer = ask(addr, request(32, band_prefixes(&message, 32))).unwrap();
    assert_eq!(answer.buckets.len(), 16);
    for bucket in &answer.buckets {
        assert!(bucket.withheld && bucket.entries.is_empty() && bucket.stored == 0);
    }
    assert_eq!(match_locally(&message, entries(&answer)), LocalMatch::None);
    // The same message at 8 bits: its buckets hold k or more and come back.
    let answer = ask(addr, request(8, band_prefixes(&message, 8))).unwrap();
    for bucket in answer.buckets.iter().filter(|b| !b.withheld) {
        assert!(bucket.stored as usize >= K && !bucket.entries.is_empty());
    }
}

#[test]
fn the_largest_answer_is_capped_per_bucket_and_under_64_kb() {
    let addr = SERVER.0.addr();
    for bits in [4, 8, 16] {
        let answer = ask(addr, request(bits, band_prefixes(&minhash(SPAM), bits))).unwrap();
        let entries: usize = answer.buckets.iter().map(|b| b.entries.len()).sum();
        println!(
            "private similarity answer at {bits} bits over {} entries: {} bytes, {entries} entries",
            FILLER + 1,
            answer.encoded_len()
        );
        assert!(answer.encoded_len() <= MAX_ANSWER_BYTES);
        for bucket in &answer.buckets {
            let stored = bucket.stored as usize;
            assert_eq!(bucket.entries.len(), stored.min(MAX_BUCKET_ENTRIES));
        }
        if bits == 4 {
            let capped = answer
                .buckets
                .iter()
                .filter(|b| b.stored as usize > MAX_BUCKET_ENTRIES);
            assert!(capped.count() >= 8, "most 4-bit buckets pass the cap");
        }
    }
}

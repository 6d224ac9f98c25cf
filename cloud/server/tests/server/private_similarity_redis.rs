//! `PrivateSimilarity` on the Redis state (a real `redis-server`): two replicas on one Redis and
//! one server on the embedded state, fed the same spam and given the same reports, answer every
//! lookup of 12 bits or more bucket for bucket alike (the same entries in the same order, the
//! same buckets withheld under k); a prefix under 12 bits is FAILED_PRECONDITION naming 12, and
//! a report through one replica is in the other's answers.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use smsguard_core::{normalize, MinHasher};
use smsguard_private::similarity::band_prefixes;
use smsguard_proto::v1;
use smsguard_scoring::similarity::MAX_BUCKET_SCAN;
use tonic::Code;

use crate::common::{self, client, run, TestServer};
use crate::private_similarity::{ask, filler, minhash, request};
use crate::test_redis::TestRedis;

/// Unrelated filler spam.
const TEXTS: usize = 600;
/// Variants of one campaign: they share most band keys, so some keys hold more than the 48
/// ids Redis keeps per key.
const VARIANTS: usize = 80;
const CAMPAIGN: &str = "Final notice from the parcel depot: your delivery is on hold until the customs fee is settled online at depot-fees.example within two days";
const K: usize = 2;

fn variant(i: usize) -> String {
    format!("{CAMPAIGN} ref {i} code {}", i * 7919)
}

/// Reported through every server after the feed (a new text, a fed one, a variant).
fn reported_texts() -> [String; 3] {
    [
        "Your mailbox is full: confirm your password at mail-quota.example to keep receiving"
            .into(),
        filler(11),
        variant(3),
    ]
}

struct Servers {
    embedded: TestServer,
    a: TestServer,
    b: TestServer,
    _redis: TestRedis,
    _files: tempfile::TempDir,
}

static SERVERS: LazyLock<Servers> = LazyLock::new(|| {
    let files = tempfile::tempdir().unwrap();
    let feed = files.path().join("feed.tsv");
    let mut lines: String = (0..TEXTS)
        .map(|i| format!("spam\t{}\n", filler(i)))
        .collect();
    lines.extend((0..VARIANTS).map(|i| format!("fraud\t{}\n", variant(i))));
    std::fs::write(&feed, lines).unwrap();
    let redis = TestRedis::start();
    let start = |state: Option<String>| {
        let feed = feed.clone();
        run(common::start(move |config| {
            config.state = state;
            config.spam_feed_path = Some(feed);
            config.private_min_bucket_entries = K;
            config.report_quorum = 1;
        }))
    };
    let servers = Servers {
        embedded: start(None),
        a: start(Some(redis.url(0))),
        b: start(Some(redis.url(0))),
        _redis: redis,
        _files: files,
    };
    for text in reported_texts() {
        report(&servers.embedded, &text);
        report(&servers.a, &text);
    }
    servers
});

fn report(server: &TestServer, text: &str) {
    let fp = MinHasher::new().fingerprint(&normalize(text).text);
    let request = v1::ReportRequest {
        feedback: v1::Feedback::Spam as i32,
        category: v1::Label::Fraud as i32,
        fingerprint: fp.to_hex(),
        minhash: fp.minhash.to_vec(),
        sender: String::new(),
        device_id: "phone".into(),
        reported_at_ms: 1_700_000_000_000,
    };
    let addr = server.addr();
    run(async move { client(addr).await.report(request).await.unwrap() });
}

/// The most entries one band key has in any bucket of `answer`.
fn most_per_key(answer: &v1::PrivateSimilarityResponse) -> usize {
    let mut most = 0;
    for bucket in &answer.buckets {
        let mut per_key: HashMap<u64, usize> = HashMap::new();
        for entry in &bucket.entries {
            *per_key.entry(entry.band_key).or_default() += 1;
        }
        most = most.max(per_key.into_values().max().unwrap_or(0));
    }
    most
}

#[test]
fn both_replicas_answer_as_the_embedded_state_does_at_12_bits_and_more() {
    let servers = &*SERVERS;
    let mut texts: Vec<String> = (0..40).map(filler).collect();
    texts.extend((0..VARIANTS).step_by(9).map(variant));
    texts.extend(reported_texts());
    let (mut withheld, mut returned, mut most) = (0, 0, 0);
    let (mut embedded_time, mut redis_time) = (Duration::ZERO, Duration::ZERO);
    for text in &texts {
        for bits in [12, 13, 16, 32] {
            let query = || request(bits, band_prefixes(&minhash(text), bits));
            let started = Instant::now();
            let embedded = ask(servers.embedded.addr(), query()).unwrap();
            embedded_time += started.elapsed();
            let started = Instant::now();
            let a = ask(servers.a.addr(), query()).unwrap();
            redis_time += started.elapsed();
            let b = ask(servers.b.addr(), query()).unwrap();
            assert_eq!(a.buckets, embedded.buckets, "{bits} bits");
            assert_eq!(b, a, "the two replicas");
            assert_eq!(a.min_bucket_entries as usize, K);
            assert_eq!(a.suggested_prefix_bits, 12, "never under what Redis serves");
            withheld += a.buckets.iter().filter(|b| b.withheld).count();
            returned += a.buckets.iter().filter(|b| !b.entries.is_empty()).count();
            most = most.max(most_per_key(&a));
        }
    }
    let lookups = texts.len() as u32 * 4;
    println!(
        "redis vs embedded: {lookups} lookups alike, {withheld} buckets withheld under k = {K}, \
         {returned} returned, at most {most} entries of one band key; mean call (client, \
         connect included) embedded {:?}, redis {:?}",
        embedded_time / lookups,
        redis_time / lookups
    );
    assert!(withheld > 0 && returned > 0);
    assert_eq!(
        most,
        MAX_BUCKET_SCAN + 1,
        "48 newest and the reported variant"
    );
    // Last: it reports through one replica only, so the embedded state then differs.
    a_report_through_one_replica_is_in_the_others_answer(servers);
}

#[test]
fn a_bucket_under_k_is_withheld_on_redis() {
    let servers = &*SERVERS;
    // At 32 bits the reported mailbox text's buckets hold its own entry alone: fewer than k.
    let message = minhash(&reported_texts()[0]);
    let embedded = ask(
        servers.embedded.addr(),
        request(32, band_prefixes(&message, 32)),
    );
    assert!(embedded.unwrap().buckets.iter().all(|b| b.withheld));
    let answer = ask(servers.b.addr(), request(32, band_prefixes(&message, 32))).unwrap();
    assert_eq!(answer.buckets.len(), 16);
    for bucket in &answer.buckets {
        assert!(bucket.withheld && bucket.entries.is_empty() && bucket.stored == 0);
    }
}

#[test]
fn a_prefix_under_12_bits_is_failed_precondition_naming_12() {
    let servers = &*SERVERS;
    let message = minhash(&variant(0));
    for bits in [4, 8, 11] {
        let status = ask(
            servers.a.addr(),
            request(bits, band_prefixes(&message, bits)),
        )
        .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains(">= 12"), "{status:?}");
    }
    // The embedded state serves the same query.
    let answer = ask(
        servers.embedded.addr(),
        request(8, band_prefixes(&message, 8)),
    );
    assert!(answer.is_ok());
}

/// Two near-duplicates reported through replica A share band keys: B answers their buckets
/// (two entries, k = 2) where before it had none.
fn a_report_through_one_replica_is_in_the_others_answer(servers: &Servers) {
    let texts = [
        "Your tax refund of 412 is waiting for you: claim it today at refund-portal.example/claim before it lapses",
        "Your tax refund of 977 is waiting for you: claim it today at refund-portal.example/claim before it lapses",
    ];
    let message = minhash(texts[0]);
    let query = || request(32, band_prefixes(&message, 32));
    let before = ask(servers.b.addr(), query()).unwrap();
    assert!(before.buckets.iter().all(|b| b.entries.is_empty()));
    for text in texts {
        report(&servers.a, text);
    }
    let after = ask(servers.b.addr(), query()).unwrap();
    let shared: Vec<_> = after.buckets.iter().filter(|b| !b.withheld).collect();
    assert!(!shared.is_empty(), "the near-duplicates share a band key");
    for bucket in shared {
        assert_eq!(bucket.entries.len(), 2);
        for entry in &bucket.entries {
            assert_eq!(entry.label, v1::Label::Fraud as i32);
            assert_eq!(entry.spam_evidence, 1, "one report, counted at quorum 1");
        }
    }
}

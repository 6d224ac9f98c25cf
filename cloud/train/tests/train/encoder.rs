//! The trained vocabulary file: a valid `tokenizers` document whose ids follow the shared
//! feature encoder's layout.

use std::str::FromStr;

use smsguard_core::features::FIRST_CHAR_ID;
use tokenizers::Tokenizer;

use crate::fixture;

#[test]
fn vocab_round_trips_through_tokenizers_json() {
    let (json, encoder, _, _) = fixture::prepared();
    let tokenizer = Tokenizer::from_str(&json).expect("tokenizers parses the vocabulary");
    assert_eq!(tokenizer.to_string(false).unwrap(), json);
    assert_eq!(tokenizer.get_vocab_size(false), encoder.vocab_size());
    for c in ['a', 'e', ' ', '!'] {
        let id = tokenizer
            .token_to_id(&c.to_string())
            .expect("frequent char is known");
        assert_eq!(i64::from(id), encoder.char_id(c));
    }
    assert_eq!(tokenizer.token_to_id("[PAD]"), Some(0));
    assert_eq!(tokenizer.token_to_id("<url>"), Some(1));
}

#[test]
fn encoder_uses_the_reserved_ids_and_hash_buckets() {
    let (_, encoder, _, _) = fixture::prepared();
    let ids = encoder.encode("<url> a<num>\u{4e2d}");
    assert_eq!(ids.len(), fixture::SEQ_LEN);
    assert_eq!(ids[0], 1);
    assert_eq!(ids[3], 4);
    let known = (FIRST_CHAR_ID as i64)..(FIRST_CHAR_ID + encoder.known_chars()) as i64;
    assert!(known.contains(&ids[1]) && known.contains(&ids[2]));
    let buckets = known.end..encoder.vocab_size() as i64;
    assert!(
        buckets.contains(&ids[4]),
        "unseen char must hash into a bucket"
    );
    assert!(ids[5..].iter().all(|&id| id == 0));
}

#[test]
fn frequent_characters_get_the_lowest_ids() {
    let (_, encoder, _, _) = fixture::prepared();
    // ' ' is by far the most frequent character of the fixture.
    assert_eq!(encoder.char_id(' '), FIRST_CHAR_ID as i64);
}

//! The container round-trips and refuses every kind of damage with its own error.

use proptest::prelude::*;
use smsguard_container::{
    open, seal, seal_with_nonce, ContainerError, ContainerKey, Header, FORMAT_VERSION,
    HEADER_BYTES, MAGIC, TAG_BYTES,
};

const MODEL: &[u8] = b"\x08\x07\x12\x04onnx-like model bytes, long enough to matter";

fn key(byte: u8) -> ContainerKey {
    ContainerKey::from_bytes([byte; 32])
}

#[test]
fn a_sealed_model_opens_with_its_key_and_hides_the_plaintext() {
    let container = seal(&key(1), MODEL).unwrap();
    assert_eq!(container.len(), HEADER_BYTES + MODEL.len() + TAG_BYTES);
    assert!(!container
        .windows(16)
        .any(|w| MODEL.windows(16).any(|m| m == w)));
    assert_eq!(&*open(&key(1), &container).unwrap(), MODEL);
    // Two seals of the same bytes differ (fresh nonce each time).
    assert_ne!(container, seal(&key(1), MODEL).unwrap());
    assert_eq!(&*open(&key(1), &seal(&key(1), b"").unwrap()).unwrap(), b"");
}

#[test]
fn another_key_is_refused_by_its_id() {
    let container = seal(&key(1), MODEL).unwrap();
    let err = open(&key(2), &container).unwrap_err();
    assert_eq!(
        err,
        ContainerError::WrongKey {
            expected: key(2).key_id_hex(),
            found: key(1).key_id_hex(),
        }
    );
}

#[test]
fn a_forged_key_id_still_does_not_open() {
    // A container whose header names key 2 but whose ciphertext is key 1's.
    let mut container = seal(&key(1), MODEL).unwrap();
    container[MAGIC.len() + 1..MAGIC.len() + 9].copy_from_slice(&key(2).key_id());
    assert_eq!(open(&key(2), &container), Err(ContainerError::Corrupt));
}

#[test]
fn truncated_containers_are_refused_as_truncated_or_corrupt() {
    let container = seal(&key(1), MODEL).unwrap();
    for len in [0, 3] {
        assert!(matches!(
            open(&key(1), &container[..len]),
            Err(ContainerError::Truncated { .. })
        ));
    }
    for len in [4, HEADER_BYTES, HEADER_BYTES + TAG_BYTES - 1] {
        assert_eq!(
            open(&key(1), &container[..len]),
            Err(ContainerError::Truncated {
                len,
                minimum: HEADER_BYTES + TAG_BYTES
            })
        );
    }
    // Long enough for a header and a tag, but cut: the tag no longer matches.
    assert_eq!(
        open(&key(1), &container[..container.len() - 1]),
        Err(ContainerError::Corrupt)
    );
}

#[test]
fn another_format_and_another_version_have_their_own_errors() {
    let container = seal(&key(1), MODEL).unwrap();
    let mut foreign = container.clone();
    foreign[0] = b'X';
    assert_eq!(open(&key(1), &foreign), Err(ContainerError::BadMagic));
    assert_eq!(
        open(&key(1), b"\x08\x07\x12\x04 a plain onnx file"),
        Err(ContainerError::BadMagic)
    );
    let mut old = container.clone();
    old[MAGIC.len()] = FORMAT_VERSION + 1;
    assert_eq!(
        open(&key(1), &old),
        Err(ContainerError::UnknownVersion {
            found: FORMAT_VERSION + 1
        })
    );
    let mut zero = container;
    zero[MAGIC.len()] = 0;
    assert_eq!(
        open(&key(1), &zero),
        Err(ContainerError::UnknownVersion { found: 0 })
    );
}

#[test]
fn the_header_is_authenticated_even_where_it_is_not_checked_by_value() {
    // The nonce is not compared with anything: only the AEAD notices a change to it.
    let container = seal_with_nonce(&key(1), [7; 24], MODEL);
    let header = Header::parse(&container).unwrap();
    assert_eq!(header.nonce, [7; 24]);
    let mut moved = container;
    moved[HEADER_BYTES - 1] ^= 0x80;
    assert_eq!(open(&key(1), &moved), Err(ContainerError::Corrupt));
}

#[test]
fn keys_never_print_and_bad_lengths_are_refused() {
    let secret = key(0xab);
    assert!(!format!("{secret:?}").contains("abab"));
    assert_eq!(
        ContainerKey::from_slice(&[1; 31]).unwrap_err(),
        ContainerError::BadKeyLength(31)
    );
    assert_eq!(
        ContainerKey::from_slice(&[1; 32]).unwrap().key_id(),
        key(1).key_id()
    );
    assert_ne!(
        ContainerKey::generate().key_id(),
        ContainerKey::generate().key_id()
    );
}

proptest! {
    #[test]
    fn flipping_any_single_byte_is_refused(
        plaintext in proptest::collection::vec(any::<u8>(), 0..200),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let container = seal(&key(3), &plaintext).unwrap();
        let mut damaged = container.clone();
        let at = position.index(damaged.len());
        damaged[at] ^= flip;
        prop_assert!(open(&key(3), &damaged).is_err(), "flipped byte {} opened", at);
        prop_assert_eq!(&*open(&key(3), &container).unwrap(), plaintext.as_slice());
    }
}

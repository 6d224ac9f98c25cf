//! Encryption at rest of what is private in a message record: its sender and its body.
//!
//! With a [`StoreKey`] the store writes each record with an empty `sender`, no `body` and a
//! `sealed` field: hex of a random 24-byte nonce and the XChaCha20-Poly1305 ciphertext of
//! `[sender, body]`, authenticated together with the record's id (so a sealed pair cannot be
//! moved to another record). Everything else (state, verdict, fingerprint) stays readable, so
//! retention and log replay work without the key. Records written before a key was given stay
//! readable as they are.
//!
//! The store remembers that it is sealed (a sealed check value in `meta`): opening it without
//! its key, or with another key, fails rather than writing plaintext beside ciphertext.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use super::{tree, MessageRecord, StoreError};

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// Authenticated beside every record's sealed fields (with its id).
const RECORD_CONTEXT: &[u8] = b"smsguard.edge.record.v1";
/// What the key check value seals: proves a key is the store's without any record.
const CHECK_CONTEXT: &[u8] = b"smsguard.edge.key-check.v1";

/// The key that seals message senders and bodies in the store: 32 bytes from the host (the
/// Android app's keystore-wrapped secret, or the CLI's key file). Never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StoreKey([u8; KEY_BYTES]);

impl StoreKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey, StoreError> {
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| {
            StoreError::Key(format!(
                "a store key is {KEY_BYTES} bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(StoreKey(key))
    }

    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<StoreKey, StoreError> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| StoreError::Key(format!("a store key is 64 hex digits: {e}")))?;
        StoreKey::from_bytes(&bytes)
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> StoreKey {
        StoreKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// In configuration (JSON, also through JNI) a key is 64 hex digits.
impl Serialize for StoreKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for StoreKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StoreKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Derives the key that hashes list entries from the store key.
const LIST_KEY_CONTEXT: &[u8] = b"smsguard.edge.sender-list.v1";

type ListMac = Hmac<Sha256>;

/// Seals and opens records with one key, and hashes sender-list entries with a key derived
/// from it.
pub(super) struct Sealer {
    cipher: XChaCha20Poly1305,
    list_mac: ListMac,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

/// A record as written: the record (private fields blanked when sealed) and its sealed pair.
#[derive(Serialize)]
struct SealedOut<'a> {
    #[serde(flatten)]
    record: &'a MessageRecord,
    sealed: String,
}

/// A record as read: any record, with its sealed pair if it has one.
#[derive(Deserialize)]
struct RecordIn {
    #[serde(flatten)]
    record: MessageRecord,
    #[serde(default)]
    sealed: Option<String>,
}

impl Sealer {
    pub fn new(key: &StoreKey) -> Result<Sealer, StoreError> {
        let derived = list_mac_key(&key.0, LIST_KEY_CONTEXT)?;
        Ok(Sealer {
            cipher: <XChaCha20Poly1305 as KeyInit>::new(&key.0.into()),
            list_mac: list_mac_key_init(&derived)?,
        })
    }

    /// The keyed hash of a canonical sender on a list.
    pub fn list_mac(&self, canonical: &str) -> [u8; 32] {
        let mut mac = self.list_mac.clone();
        mac.update(canonical.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<String, StoreError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext,
            aad: context,
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| StoreError::Key("encryption failed".to_string()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(hex::encode(sealed))
    }

    fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = hex::decode(sealed).ok()?;
        let (nonce, ciphertext) = bytes.split_at_checked(NONCE_BYTES)?;
        let payload = Payload {
            msg: ciphertext,
            aad: context,
        };
        self.cipher.decrypt(XNonce::from_slice(nonce), payload).ok()
    }

    /// The value that proves a key is this store's.
    pub fn key_check(&self) -> Result<String, StoreError> {
        self.seal(CHECK_CONTEXT, &[])
    }

    /// Whether `check` (from [`Sealer::key_check`]) was made with this key.
    pub fn verifies(&self, check: &str) -> bool {
        self.open(CHECK_CONTEXT, check).is_some()
    }
}

/// The HMAC-SHA256 of `context` under the store key: the key that hashes list entries.
fn list_mac_key(key: &[u8], context: &[u8]) -> Result<[u8; 32], StoreError> {
    let mut mac = list_mac_key_init(key)?;
    mac.update(context);
    Ok(mac.finalize().into_bytes().into())
}

fn list_mac_key_init(key: &[u8]) -> Result<ListMac, StoreError> {
    // HMAC takes a key of any length; the error cannot happen, but is not unwrapped.
    <ListMac as Mac>::new_from_slice(key).map_err(|e| StoreError::Key(e.to_string()))
}

fn record_context(id: u64) -> Vec<u8> {
    let mut context = RECORD_CONTEXT.to_vec();
    context.extend_from_slice(&id.to_be_bytes());
    context
}

/// The JSON of `record` as the store keeps it: sealed with `sealer`, plain without one.
pub(super) fn encode_record(
    sealer: Option<&Sealer>,
    record: &MessageRecord,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let encode_error = |e: serde_json::Error| StoreError::Encode {
        tree: tree::MESSAGES,
        reason: e.to_string(),
    };
    let Some(sealer) = sealer else {
        return serde_json::to_writer(out, record).map_err(encode_error);
    };
    let private = serde_json::to_vec(&(&record.sender, &record.body)).map_err(encode_error)?;
    let blanked = MessageRecord {
        sender: String::new(),
        body: None,
        ..record.clone()
    };
    let sealed = SealedOut {
        record: &blanked,
        sealed: sealer.seal(&record_context(record.id), &private)?,
    };
    serde_json::to_writer(out, &sealed).map_err(encode_error)
}

/// A stored record with its sender and body opened.
pub(super) fn decode_record(
    sealer: Option<&Sealer>,
    raw: &[u8],
) -> Result<MessageRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: tree::MESSAGES,
        reason,
    };
    let stored: RecordIn = serde_json::from_slice(raw).map_err(|e| corrupt(e.to_string()))?;
    let Some(sealed) = stored.sealed else {
        return Ok(stored.record);
    };
    let id = stored.record.id;
    let sealer = sealer.ok_or_else(|| {
        StoreError::Key(format!(
            "message {id} is encrypted and no store key was given"
        ))
    })?;
    let private = sealer.open(&record_context(id), &sealed).ok_or_else(|| {
        corrupt(format!(
            "message {id}: sealed fields do not open with this key"
        ))
    })?;
    let (sender, body): (String, Option<String>) =
        serde_json::from_slice(&private).map_err(|e| corrupt(e.to_string()))?;
    Ok(MessageRecord {
        sender,
        body,
        ..stored.record
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MessageState, Source, StoredVerdict};
    use smsguard_core::Label;
    use smsguard_model::Action;

    fn record(id: u64) -> MessageRecord {
        MessageRecord {
            id,
            state: MessageState::Quarantined,
            sender: "+447700900777".into(),
            body: Some("WIN a prize at http://x.example".into()),
            received_at_ms: 1,
            decided_at_ms: 2,
            verdict: StoredVerdict {
                label: Label::Fraud,
                spam_score: 0.99,
                action: Action::Quarantine,
                source: Source::Local,
            },
            fingerprint: "ab".into(),
            minhash: vec![1, 2, 3],
            queued: false,
        }
    }

    fn encoded(sealer: Option<&Sealer>, record: &MessageRecord) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(sealer, record, &mut out).unwrap();
        out
    }

    #[test]
    fn a_sealed_record_hides_sender_and_body_and_opens_with_its_key() {
        let sealer = Sealer::new(&StoreKey::generate()).unwrap();
        let raw = encoded(Some(&sealer), &record(7));
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains("7700900777") && !text.contains("prize"),
            "{text}"
        );
        // What retention reads needs no key.
        let plain: MessageRecord = serde_json::from_slice(&raw).unwrap();
        assert_eq!((plain.id, plain.state), (7, MessageState::Quarantined));
        assert_eq!(decode_record(Some(&sealer), &raw).unwrap(), record(7));
    }

    #[test]
    fn a_sealed_record_does_not_open_with_another_key_another_id_or_no_key() {
        let sealer = Sealer::new(&StoreKey::generate()).unwrap();
        let raw = encoded(Some(&sealer), &record(7));
        let other = Sealer::new(&StoreKey::generate()).unwrap();
        assert!(decode_record(Some(&other), &raw).is_err());
        assert!(matches!(decode_record(None, &raw), Err(StoreError::Key(_))));
        // The sealed pair moved to another record's id fails authentication.
        let moved = String::from_utf8(raw)
            .unwrap()
            .replace("\"id\":7", "\"id\":8");
        assert!(decode_record(Some(&sealer), moved.as_bytes()).is_err());
    }

    #[test]
    fn plain_records_stay_readable_with_a_key() {
        let sealer = Sealer::new(&StoreKey::generate()).unwrap();
        let raw = encoded(None, &record(3));
        assert_eq!(decode_record(Some(&sealer), &raw).unwrap(), record(3));
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        let key = StoreKey::generate();
        let check = Sealer::new(&key).unwrap().key_check().unwrap();
        assert!(Sealer::new(&key).unwrap().verifies(&check));
        assert!(!Sealer::new(&StoreKey::generate()).unwrap().verifies(&check));
        assert_eq!(format!("{key:?}"), "StoreKey(<redacted>)");
        assert_eq!(StoreKey::from_hex(&key.to_hex()).unwrap(), key);
        assert!(StoreKey::from_hex("abcd").is_err());
    }
}

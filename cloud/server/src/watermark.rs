//! Per-device watermark of a served edge model: 64 int8 weights of the model's largest int8
//! tensor (the n-gram branch's per-bucket weights) each moved by one step, +1 or −1 by one bit of
//! the requesting device's key id, so a leaked copy names the device it was served to. The
//! positions come from a key only the operator holds (derived from the model signing key), so
//! the marked weights cannot be told from the others without the original; the operator reads
//! the mark back by comparing a leaked file with the original ([`Watermarker::read`]).
//!
//! A step moves a spam score by up to about 2e-3, which flips the verdict of a dev message lying
//! that close to a threshold (1 to 8 in 47,765 dev verdicts with free positions). So marks go
//! only into buckets of a [`SafeBuckets`] plan made for this model on the dev split
//! (`examples/watermark_dev.rs calibrate`): no bucket any near-threshold dev message reads. A
//! model without a plan for its exact bytes is served unmarked.
//!
//! What it does not do: survive a re-quantisation or fine-tuning of the stolen weights, or two
//! colluding devices comparing their copies (the differing bytes show where the marks are).

use std::ops::Range;

use onnx_protobuf::{tensor_proto::DataType, ModelProto};
use protobuf::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smsguard_signing::{sha256_hex, SigningKey};

/// File name of the plan beside a model (`edge/models/`, or a served model folder).
pub const PLAN_FILE: &str = "watermark.json";

/// Which elements of the marked tensor may carry a mark, for one model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafeBuckets {
    /// SHA-256 of the model the plan was made for.
    pub model_sha256: String,
    /// The tensor the marks go into.
    pub tensor: String,
    /// Bitset over the tensor's elements (bit i of byte i / 8), hex: 1 = may be marked.
    pub safe: String,
    /// How close to a threshold (spam score, or ham-versus-best-spam probability) a dev message
    /// had to be for its buckets to be excluded.
    pub margin: f32,
    /// Dev messages read, and how many of them were near a threshold.
    pub dev_messages: usize,
    pub near_messages: usize,
    /// The command that wrote the plan.
    pub command: String,
}

impl SafeBuckets {
    fn allows(&self, element: usize) -> bool {
        let Some(pair) = self.safe.get(element / 8 * 2..element / 8 * 2 + 2) else {
            return false;
        };
        u8::from_str_radix(pair, 16).is_ok_and(|byte| byte >> (element % 8) & 1 == 1)
    }

    /// A plan from a bitset of allowed elements.
    pub fn from_bits(bits: &[bool]) -> String {
        bits.chunks(8)
            .map(|chunk| {
                let byte = chunk
                    .iter()
                    .enumerate()
                    .fold(0_u8, |byte, (i, &on)| byte | (u8::from(on) << i));
                format!("{byte:02x}")
            })
            .collect()
    }
}

/// Bits of the mark: the first 8 bytes of the device public key's id.
pub const MARK_BITS: usize = 64;

/// Where and how marks go into one model.
#[derive(Clone)]
pub struct Watermarker {
    key: [u8; 32],
    /// The initializer the marks go into.
    tensor: String,
    /// Byte offsets of the marked weights in the model file, one per bit.
    positions: Vec<usize>,
}

impl std::fmt::Debug for Watermarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watermarker")
            .field("tensor", &self.tensor)
            .field("positions", &self.positions.len())
            .finish_non_exhaustive()
    }
}

impl Watermarker {
    /// Plans the marks of `model` under a key derived from `signing_key`, in the elements
    /// `plan` allows; `None` when the plan is for other bytes or another tensor, or leaves too
    /// few elements.
    pub fn new(model: &[u8], signing_key: &SigningKey, plan: &SafeBuckets) -> Option<Watermarker> {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"smsguard watermark v1")
            .chain_update(signing_key.to_hex().as_bytes())
            .finalize()
            .into();
        if plan.model_sha256 != sha256_hex(model) {
            return None;
        }
        let (tensor, region) = largest_int8_tensor(model)?;
        if tensor != plan.tensor {
            return None;
        }
        let positions = pick_positions(model, region, &key, plan)?;
        Some(Watermarker {
            key,
            tensor,
            positions,
        })
    }

    /// `model` carrying `mark`.
    pub fn mark(&self, model: &[u8], mark: u64) -> Vec<u8> {
        let mut marked = model.to_vec();
        for (bit, &position) in self.positions.iter().enumerate() {
            let step: i8 = if (mark >> bit) & 1 == 1 { 1 } else { -1 };
            marked[position] = (marked[position] as i8 + step) as u8;
        }
        marked
    }

    /// The mark a copy of `original` carries; `None` when it carries none of this operator's
    /// (or was altered where the marks lie).
    pub fn read(&self, original: &[u8], copy: &[u8]) -> Option<u64> {
        if original.len() != copy.len() {
            return None;
        }
        let mut mark = 0_u64;
        for (bit, &position) in self.positions.iter().enumerate() {
            match (copy[position] as i8).wrapping_sub(original[position] as i8) {
                1 => mark |= 1 << bit,
                -1 => {}
                _ => return None,
            }
        }
        Some(mark)
    }

    /// Name of the int8 initializer that carries the marks.
    pub fn tensor(&self) -> &str {
        &self.tensor
    }

    /// Whether two watermarkers mark the same weights with the same key.
    pub fn same_as(&self, other: &Watermarker) -> bool {
        self.key == other.key && self.positions == other.positions
    }
}

/// The mark of a device: the first 8 bytes of its public key id.
pub fn device_mark(key_id: &[u8]) -> u64 {
    let mut bytes = [0_u8; 8];
    for (slot, byte) in bytes.iter_mut().zip(key_id) {
        *slot = *byte;
    }
    u64::from_be_bytes(bytes)
}

/// The largest int8 initializer: its name and the byte range of its raw data in the model file.
fn largest_int8_tensor(model: &[u8]) -> Option<(String, Range<usize>)> {
    let proto = ModelProto::parse_from_bytes(model).ok()?;
    let tensor = proto
        .graph
        .initializer
        .iter()
        .filter(|t| t.data_type == DataType::INT8 as i32)
        .max_by_key(|t| t.raw_data.len())?;
    let raw = &tensor.raw_data;
    if raw.len() < 4 * MARK_BITS {
        return None;
    }
    let start = model.windows(raw.len()).position(|w| w == raw.as_slice())?;
    Some((tensor.name.clone(), start..start + raw.len()))
}

/// The marked tensor of `model`: its name and element count.
pub fn marked_tensor(model: &[u8]) -> Option<(String, usize)> {
    largest_int8_tensor(model).map(|(name, region)| (name, region.len()))
}

/// `MARK_BITS` distinct offsets in `region` drawn from `key` among the elements `plan` allows.
fn pick_positions(
    model: &[u8],
    region: Range<usize>,
    key: &[u8; 32],
    plan: &SafeBuckets,
) -> Option<Vec<usize>> {
    let mut positions = Vec::with_capacity(MARK_BITS);
    let len = region.len() as u64;
    for counter in 0_u64..(MARK_BITS as u64 * 4096) {
        if positions.len() == MARK_BITS {
            break;
        }
        let digest = Sha256::new()
            .chain_update(key)
            .chain_update(counter.to_le_bytes())
            .finalize();
        let draw = u64::from_le_bytes(digest[..8].try_into().ok()?);
        let element = (draw % len) as usize;
        let position = region.start + element;
        // A weight at the int8 limits could not step both ways.
        let value = model[position] as i8;
        let movable = value > i8::MIN && value < i8::MAX;
        if movable && plan.allows(element) && !positions.contains(&position) {
            positions.push(position);
        }
    }
    (positions.len() == MARK_BITS).then_some(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &[u8] = include_bytes!("../../../edge/models/edge-int8.onnx");

    /// A plan for `MODEL` that allows the elements `allowed` says.
    fn plan(allowed: impl Fn(usize) -> bool) -> SafeBuckets {
        let (tensor, elements) = marked_tensor(MODEL).unwrap();
        let bits: Vec<bool> = (0..elements).map(allowed).collect();
        SafeBuckets {
            model_sha256: sha256_hex(MODEL),
            tensor,
            safe: SafeBuckets::from_bits(&bits),
            margin: 0.0,
            dev_messages: 0,
            near_messages: 0,
            command: String::new(),
        }
    }

    #[test]
    fn a_mark_is_read_back_from_a_marked_copy_and_only_there() {
        let key = SigningKey::generate().unwrap();
        let marker = Watermarker::new(MODEL, &key, &plan(|_| true)).expect("an int8 tensor");
        for mark in [0, u64::MAX, 0x0123_4567_89ab_cdef] {
            let marked = marker.mark(MODEL, mark);
            assert_eq!(marked.len(), MODEL.len());
            let changed = marked.iter().zip(MODEL).filter(|(a, b)| a != b).count();
            assert_eq!(changed, MARK_BITS);
            assert_eq!(marker.read(MODEL, &marked), Some(mark));
        }
        assert_eq!(
            marker.read(MODEL, MODEL),
            None,
            "the original carries no mark"
        );
        let other =
            Watermarker::new(MODEL, &SigningKey::generate().unwrap(), &plan(|_| true)).unwrap();
        assert!(!other.same_as(&marker));
        assert_eq!(
            other.read(MODEL, &marker.mark(MODEL, 7)),
            None,
            "another operator's key"
        );
    }

    #[test]
    fn the_marked_model_still_parses_with_the_same_tensors() {
        let key = SigningKey::generate().unwrap();
        let marker = Watermarker::new(MODEL, &key, &plan(|_| true)).unwrap();
        let marked = ModelProto::parse_from_bytes(&marker.mark(MODEL, 42)).unwrap();
        let original = ModelProto::parse_from_bytes(MODEL).unwrap();
        assert_eq!(marked.graph.node, original.graph.node);
        assert_eq!(
            marked.graph.initializer.len(),
            original.graph.initializer.len()
        );
    }

    #[test]
    fn marks_go_only_where_the_plan_allows_and_only_for_its_model() {
        let key = SigningKey::generate().unwrap();
        let (_, elements) = marked_tensor(MODEL).unwrap();
        let even = plan(|i| i % 2 == 0);
        let marker = Watermarker::new(MODEL, &key, &even).unwrap();
        let (_, region) = largest_int8_tensor(MODEL).unwrap();
        assert!(marker
            .positions
            .iter()
            .all(|p| (p - region.start) % 2 == 0 && *p < region.start + elements));
        assert!(
            Watermarker::new(MODEL, &key, &plan(|_| false)).is_none(),
            "nothing allowed"
        );
        let other_model = SafeBuckets {
            model_sha256: "0".repeat(64),
            ..even
        };
        assert!(Watermarker::new(MODEL, &key, &other_model).is_none());
    }
}

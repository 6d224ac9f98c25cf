//! Stage 6: Traditional -> Simplified Chinese.

use super::*;

pub(super) fn simplify_han(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() || !may_simplify(&text) {
        return text;
    }
    let converter = zhconv::get_builtin_converter(zhconv::Variant::ZhHans);
    let mut out = String::with_capacity(text.len());
    let mut changed = 0;
    for (han, run) in split_runs(&text, is_han) {
        if !han {
            out.push_str(run);
            continue;
        }
        let start = out.len();
        converter.convert_to(run, &mut out);
        if out[start..] != *run {
            // A variant can map onto a character that maps again (戱 -> 戯 -> 戏): convert until
            // stable (idempotence), at most twice more.
            for _ in 0..2 {
                let again = converter.convert(&out[start..]);
                if again == out[start..] {
                    break;
                }
                out.truncate(start);
                out.push_str(&again);
            }
        }
        changed += count_changed_chars(run, &out[start..]);
    }
    tally.add(Transform::TraditionalToSimplified, changed);
    out
}

/// Where the zh-Hans converter can change anything in the main CJK block (most Han), built
/// from the converter's own rules. Only about 1 in 25 Chinese messages has a Traditional
/// character; the others skip the converter, which costs over 100 instructions a character.
pub(super) struct HansChanges {
    /// A bit per main-block character: a changing rule starts with it.
    starts: Vec<u64>,
    /// A bit per main-block character: a rule changes it on its own.
    singles: Vec<u64>,
    /// A bit per [`pair_hash`] of the first two characters of each changing rule of 2+
    /// characters: a pair whose bit is clear starts none of them.
    phrase_pairs: Vec<u64>,
}

pub(super) const MAIN_CJK: std::ops::RangeInclusive<u32> = 0x4E00..=0x9FFF;

pub(super) static HANS_CHANGES: LazyLock<HansChanges> = LazyLock::new(|| {
    let main_words = (MAIN_CJK.end() - MAIN_CJK.start()) as usize / 64 + 1;
    let mut table = HansChanges {
        starts: vec![0; main_words],
        singles: vec![0; main_words],
        phrase_pairs: vec![0; (PAIR_HASH_MASK as usize + 1) / 64],
    };
    for (from, to) in zhconv::tables::expand_table(zhconv::tables::ZH_HANS_TABLE) {
        let mut chars = from.chars();
        let (Some(first), false) = (chars.next(), from == to) else {
            continue;
        };
        let Some(i) = main_cjk_index(first) else {
            continue; // never checked: Han outside the block always goes to the converter
        };
        set_bit(&mut table.starts, i);
        match chars.next() {
            None => set_bit(&mut table.singles, i),
            Some(second) => set_bit(&mut table.phrase_pairs, pair_hash(first, second)),
        }
    }
    table
});

/// 2^16 bits for a few hundred phrase starts: few false hits.
pub(super) const PAIR_HASH_MASK: u32 = 0xFFFF;

pub(super) fn pair_hash(first: char, second: char) -> u32 {
    (u32::from(first).wrapping_mul(0x9E37) ^ u32::from(second)) & PAIR_HASH_MASK
}

/// `c - U+4E00` for a character of the main CJK block.
pub(super) fn main_cjk_index(c: char) -> Option<u32> {
    u32::from(c)
        .checked_sub(*MAIN_CJK.start())
        .filter(|&i| i <= MAIN_CJK.end() - MAIN_CJK.start())
}

pub(super) fn set_bit(bits: &mut [u64], i: u32) {
    bits[i as usize / 64] |= 1 << (i % 64);
}

pub(super) fn bit(bits: &[u64], i: u32) -> bool {
    bits[i as usize / 64] >> (i % 64) & 1 != 0
}

/// Whether the zh-Hans converter may change a run of Han in `text`: a Han character outside
/// the main block (rare; not in the table), one that a rule changes alone, or the first two
/// characters of a changing phrase. A run without any of them matches no changing rule.
pub(super) fn may_simplify(text: &str) -> bool {
    let table = &*HANS_CHANGES;
    // Bytes, not chars: every byte from 0xE3 on is a lead byte (continuation bytes are below
    // 0xC0), no character below U+3000 (lead bytes up to 0xE2) is Han, and the main block is
    // lead bytes 0xE4..=0xE9 (from U+4000) decoded by hand.
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&lead) = bytes.get(i) {
        if lead < 0xE3 {
            i += 1;
            continue;
        }
        let main = match bytes.get(i..i + 3) {
            Some(&[b0 @ 0xE4..=0xE9, b1, b2]) => {
                let c = (u32::from(b0 & 0x0F) << 12)
                    | (u32::from(b1 & 0x3F) << 6)
                    | u32::from(b2 & 0x3F);
                c.checked_sub(*MAIN_CJK.start())
            }
            _ => None,
        };
        let Some(index) = main else {
            // Another character from U+3000 on: Han outside the main block, or no Han at all.
            let c = text[i..].chars().next();
            if c.is_some_and(is_han) {
                return true;
            }
            i += c.map_or(1, char::len_utf8);
            continue;
        };
        i += 3;
        if bit(&table.starts, index) && may_start_change(&text[i - 3..]) {
            return true;
        }
    }
    false
}

/// Whether `text`, which starts with a character of [`HansChanges::starts`], starts with a
/// character a rule changes alone or with the first two characters of a changing phrase.
pub(super) fn may_start_change(text: &str) -> bool {
    let table = &*HANS_CHANGES;
    let mut chars = text.chars();
    let Some((c, index)) = chars.next().and_then(|c| Some((c, main_cjk_index(c)?))) else {
        return true;
    };
    bit(&table.singles, index)
        || chars
            .next()
            .is_some_and(|next| bit(&table.phrase_pairs, pair_hash(c, next)))
}

pub(super) fn count_changed_chars(before: &str, after: &str) -> u32 {
    if before == after {
        return 0;
    }
    let same_len = before.chars().count() == after.chars().count();
    if same_len {
        count_u32(
            before
                .chars()
                .zip(after.chars())
                .filter(|(a, b)| a != b)
                .count(),
        )
    } else {
        1
    }
}

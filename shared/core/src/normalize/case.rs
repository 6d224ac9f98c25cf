//! Stage 5: case folding.

use super::*;

pub(super) fn fold_case(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() {
        return fold_ascii_case(text, tally);
    }
    let (mut changed, mut ascii_only) = (0, true);
    for c in text.chars().filter(|&c| changes_case(c)) {
        changed += 1;
        ascii_only &= c.is_ascii();
    }
    if changed == 0 {
        return text;
    }
    tally.add(Transform::CaseFold, count_u32(changed));
    if ascii_only {
        // Every other character lower-cases to itself: no need to rebuild the string.
        let mut text = text;
        text.make_ascii_lowercase();
        return text;
    }
    text.to_lowercase()
}

/// [`fold_case`], then NFKC again only if the text holds a combining diacritic (U+0300..U+036F,
/// UTF-8 lead byte 0xCC or 0xCD): of all the marks, only those compose with a lower-case letter
/// whose capital they did not compose with (`T`+U+0308 has no composed form, `t`+U+0308 is
/// U+1E97), and only those come out of lower-casing (`İ` gives `i`+U+0307); a test checks this
/// against every cased character. The input is NFKC already, so nothing else can change.
pub(super) fn fold_case_then_nfkc(text: String, tally: &mut Tally) -> String {
    let before = tally.get(Transform::CaseFold);
    let text = fold_case(text, tally);
    let has_diacritic = || any_byte_pair(text.as_bytes(), |b0, _| b0 & 0xFE == 0xCC);
    if tally.get(Transform::CaseFold) == before || !has_diacritic() {
        return text;
    }
    nfkc_again(text, tally)
}

/// Case folding of text whose only cased characters are ASCII letters.
pub(super) fn fold_ascii_case(mut text: String, tally: &mut Tally) -> String {
    let upper = count_ascii_upper(text.as_bytes());
    if upper > 0 {
        text.make_ascii_lowercase();
        tally.add(Transform::CaseFold, upper);
    }
    text
}

pub(super) fn count_ascii_upper(bytes: &[u8]) -> u32 {
    count_bytes(bytes, |b| b.wrapping_sub(b'A') < 26)
}

/// Number of bytes for which `pred` holds, summed in byte-sized counters over blocks of 255
/// bytes: that vectorises, a per-byte `usize` count did not.
#[inline(always)]
pub(super) fn count_bytes(bytes: &[u8], pred: impl Fn(u8) -> bool) -> u32 {
    bytes
        .chunks(255)
        .map(|chunk| u32::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(pred(b)))))
        .sum()
}

/// Whether lower-casing changes `c`; ASCII and Han (most characters) skip the Unicode table.
pub(super) fn changes_case(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    !is_han(c) && !is_caseless(c) && !c.to_lowercase().eq(std::iter::once(c))
}

/// Blocks without case that Chinese messages are full of (general punctuation, CJK symbols,
/// kana, emoji); spares them the case table search. The tests check every character.
pub(super) fn is_caseless(c: char) -> bool {
    matches!(c,
        '\u{2000}'..='\u{206F}'
        | '\u{3000}'..='\u{30FF}'
        | '\u{1F000}'..='\u{1FAFF}')
}

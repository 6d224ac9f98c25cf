//! Character classes and block-wise byte scans shared by the stages.

use super::*;

/// Han ideographs (CJK unified, extension A-F, compatibility); NFKC maps radicals onto these.
#[inline]
pub fn is_han(c: char) -> bool {
    // Most characters are ASCII or in the main CJK block: two compares decide them.
    if c < '\u{3400}' {
        return false;
    }
    if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
        return true;
    }
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '\u{30000}'..='\u{3134F}')
}

/// Characters that change nothing a reader reads: zero-width and bidi controls, fillers,
/// variation selectors, tag characters, and (pipeline version 4) the underline, overline and
/// strike-through marks (U+0305, U+0332..U+0337, U+033F) that decorate a letter (`A̲c̲c̲o̲u̲n̲t̲`);
/// no alphabet composes a letter from them; and (version 5) the keycap U+20E3 that draws a
/// digit as an emoji key (`4️⃣4️⃣`), so that a number written in keycaps is a number.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{0305}' | '\u{0332}'..='\u{0337}' | '\u{033F}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{20E3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// An emoji's presentation mark: a variation selector (U+FE0E, U+FE0F: `❤️`) or a zero-width
/// joiner (`👨‍👩‍👧`) right after a symbol that is not a letter, digit or ASCII. Stage 1 removes it
/// like any invisible character but does not count it as one: it is how phones write emoji,
/// not a disguise (a joiner or selector inside a word, `A\u{200D}m\u{200D}azon`, still counts).
pub(super) fn is_emoji_mark(c: char, previous: Option<char>) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}' | '\u{200D}')
        && previous.is_some_and(|p| !p.is_ascii() && !p.is_alphanumeric() && !p.is_whitespace())
}

/// Characters stage 1 removes: invisibles and non-whitespace controls.
pub(super) fn is_stripped(c: char) -> bool {
    // Printable ASCII and the main CJK block, most characters, are neither.
    if (' '..='~').contains(&c) || ('\u{4E00}'..='\u{9FFF}').contains(&c) {
        return false;
    }
    is_invisible(c) || (c.is_control() && !c.is_whitespace())
}

pub(super) fn is_full_width(c: char) -> bool {
    matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')
}

pub(super) fn is_placeholder_at(text: &str, byte: usize) -> Option<usize> {
    let rest = &text[byte..];
    placeholder::ALL
        .iter()
        .find(|p| rest.starts_with(**p))
        .map(|p| p.len())
}

/// Text made only of printable ASCII, tab, line breaks, [`is_plain_cjk`] and [`is_plain_other`]
/// characters, as most messages are: nothing in it is invisible, a control, full-width, Greek or Cyrillic, changed
/// by NFKC (nor by its quick check) or cased except ASCII letters.
#[cfg(test)]
pub(super) fn is_plain(text: &str) -> bool {
    plain_full_width_count(text) == Some(0)
}

/// How many full-width forms keep `text` from being plain, if nothing else does: `Some(0)` for
/// plain text, `None` for text that needs stages 1-3. One pass for both questions.
pub(super) fn plain_full_width_count(text: &str) -> Option<u32> {
    if text.is_ascii() {
        return (!has_ascii_control(text.as_bytes())).then_some(0);
    }
    let (mut full_width, mut composed) = (0, false);
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // Bytes first: printable ASCII and lead bytes 0xE4..=0xE9 (U+4000..U+9FFF, CJK, all
        // plain) are most characters of a message; only the others are decoded.
        if matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        if matches!(b, 0xE4..=0xE9) {
            i += 3;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        if is_full_width(c) {
            full_width += 1;
        } else if !is_plain_char(c) {
            if !is_plain_composed(c) {
                return None;
            }
            composed = true;
        }
    }
    // NFKC, which runs when there is a full-width form, counts composed letters (`é`), which
    // it maps onto themselves, as changed: stages 1-3 must count them.
    (full_width == 0 || !composed).then_some(full_width)
}

/// Whether ASCII text holds a control character other than tab, line feed and carriage return.
pub(super) fn has_ascii_control(bytes: &[u8]) -> bool {
    count_bytes(bytes, |b| {
        (b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r')) | (b == 0x7F)
    }) > 0
}

pub(super) fn is_plain_char(c: char) -> bool {
    match c {
        ' '..='~' | '\t' | '\n' | '\r' => true,
        c => is_plain_cjk(c) || is_plain_other(c),
    }
}

/// Other characters below U+10000 with the properties [`is_plain`] promises (`£`, `€`, kana
/// ...), found once by testing them: messages with them would otherwise take stages 1-3
/// and Unicode case folding, which cost thousands of instructions a message and change nothing.
/// A composition needs a second character with NFKC_QC=Maybe, which none of them has, so
/// none composes with a neighbour either.
pub(super) fn is_plain_other(c: char) -> bool {
    u32::from(c) < 0x10000 && bit(&PLAIN_OTHER.plain, u32::from(c))
}

/// Characters with the plain properties but for a canonical decomposition (`é`, `ǐ`): NFKC
/// maps them onto themselves, but counts them when it runs ([`plain_full_width_count`]).
pub(super) fn is_plain_composed(c: char) -> bool {
    u32::from(c) < 0x10000 && bit(&PLAIN_OTHER.composed, u32::from(c))
}

/// Bit sets over U+0000..U+FFFF for [`is_plain_other`] and [`is_plain_composed`].
pub(super) struct PlainOther {
    plain: Vec<u64>,
    composed: Vec<u64>,
}

pub(super) static PLAIN_OTHER: LazyLock<PlainOther> = LazyLock::new(|| {
    let mut sets = PlainOther {
        plain: vec![0; 0x10000 / 64],
        composed: vec![0; 0x10000 / 64],
    };
    // Characters `is_plain_cjk` accepts are never looked up here (see `is_plain_char`); leaving
    // them out skips a third of the property checks when the table is built.
    let candidates = ('\u{80}'..='\u{FFFF}').filter(|&c| !is_plain_cjk(c));
    for c in candidates.filter(|&c| has_plain_properties(c)) {
        let set = if has_decomposition(c) {
            &mut sets.composed
        } else {
            &mut sets.plain
        };
        set_bit(set, u32::from(c));
    }
    sets
});

/// Not removed by stage 1, not folded by NFKC or the confusable stage, not changed by NFKC's
/// quick check or by lower-casing, and combining with nothing.
pub(super) fn has_plain_properties(c: char) -> bool {
    !is_stripped(c)
        && !is_full_width(c)
        && !is_greek_or_cyrillic(c)
        && !super::turned::may_start_a_disguise(c)
        && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes
        && unicode_normalization::char::canonical_combining_class(c) == 0
        && c.to_lowercase().eq(std::iter::once(c))
}

/// Stages 1-3 for text that is plain but for full-width forms ([`plain_full_width_count`]), as
/// Chinese text with `，！：` is: NFKC maps each onto ASCII ([`full_width_to_ascii`]); every
/// other character is plain, so NFKC changes nothing else and nothing composes (all are
/// starters, none part of a composition with another), and stage 1 only counts them. The result
/// is plain.
pub(super) fn fold_plain_full_width(text: &str) -> String {
    // Never longer: each full-width form (3 bytes) becomes one ASCII byte.
    let mut out = String::with_capacity(text.len());
    // Full-width forms start with byte 0xEF (U+FF01..U+FF5E) or 0xE3 (U+3000); the text
    // between them is copied as it is.
    let mut copied_to = 0;
    for at in memchr::memchr2_iter(0xEF, 0xE3, text.as_bytes()) {
        let Some(c) = text[at..].chars().next().filter(|&c| is_full_width(c)) else {
            continue;
        };
        out.push_str(&text[copied_to..at]);
        out.push(full_width_to_ascii(c));
        copied_to = at + c.len_utf8();
    }
    out.push_str(&text[copied_to..]);
    out
}

/// NFKC of a full-width form (U+FF01..U+FF5E are U+0021..U+007E shifted by 0xFEE0, U+3000 is a
/// space); other characters are returned as they are.
pub(super) fn full_width_to_ascii(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        c => c,
    }
}

/// Han and common CJK punctuation and quotes; the tests check the properties [`is_plain`]
/// promises for every one of them.
pub(super) fn is_plain_cjk(c: char) -> bool {
    is_nfkc_stable(c)
        || matches!(
            c,
            '\u{2014}' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}'
        )
}

// ---------------------------------------------------------------------------------------------
// Block-wise byte scans
//
// The prefilters that let most messages skip a stage look at every byte. A loop with a
// data-dependent branch per byte cost more than the stages they guard; evaluated on fixed
// blocks of 16 windows without a branch inside, they compile to SSE2 compares. Bytes past the
// end of the text read as 0: every predicate must be false on a window of zeros, and must take
// a 0 after its first byte for "no such byte" (none of them accepts a 0 there).

/// Windows tested per block: one SSE2 vector of bytes.
pub(super) const SCAN_BLOCK: usize = 16;

/// Position of the first byte for which `pred` holds, found a block at a time (the test of a
/// block vectorises; a byte-by-byte search with an early exit does not).
pub(super) fn find_byte(bytes: &[u8], pred: impl Fn(u8) -> bool) -> Option<usize> {
    let mut offset = 0;
    for block in bytes.chunks(SCAN_BLOCK) {
        if block.iter().fold(false, |any, &b| any | pred(b)) {
            return block.iter().position(|&b| pred(b)).map(|at| offset + at);
        }
        offset += block.len();
    }
    None
}

/// Whether `pred(b0, b1)` holds for some pair of consecutive bytes (the last byte pairs with 0).
pub(super) fn any_byte_pair(bytes: &[u8], pred: impl Fn(u8, u8) -> bool) -> bool {
    any_byte_triple(bytes, |b0, b1, _| pred(b0, b1))
}

/// Whether `pred(b0, b1, b2)` holds for some window of three consecutive bytes starting in
/// `bytes` (windows at the end are padded with 0).
pub(super) fn any_byte_triple(bytes: &[u8], pred: impl Fn(u8, u8, u8) -> bool) -> bool {
    // A hit flag per block, not a bit mask: shifting each lane into place does not vectorise.
    let block_hits = |block: &[u8; SCAN_BLOCK + 2]| {
        let mut hits = 0u8;
        for k in 0..SCAN_BLOCK {
            hits |= u8::from(pred(block[k], block[k + 1], block[k + 2]));
        }
        hits != 0
    };
    let mut start = 0;
    while let Some(block) = bytes.get(start..start + SCAN_BLOCK + 2) {
        if block.try_into().is_ok_and(&block_hits) {
            return true;
        }
        start += SCAN_BLOCK;
    }
    // The last (up to SCAN_BLOCK + 1) windows, zero-padded, in at most two blocks.
    let rest = &bytes[start..];
    let mut padded = [0u8; 2 * SCAN_BLOCK + 2];
    padded[..rest.len()].copy_from_slice(rest);
    let first = padded[..SCAN_BLOCK + 2].try_into().is_ok_and(&block_hits);
    let second = rest.len() > SCAN_BLOCK && padded[SCAN_BLOCK..].try_into().is_ok_and(&block_hits);
    first || second
}

/// Start of the first window of three consecutive bytes at or after `from` for which `pred`
/// holds, windows at the end padded with 0 as in [`any_byte_triple`]. (That one does not call
/// this: built on it, the yes/no scans every message runs cost 400 instructions more a message.)
pub(super) fn find_byte_triple(
    bytes: &[u8],
    from: usize,
    pred: impl Fn(u8, u8, u8) -> bool,
) -> Option<usize> {
    let block_hits = |block: &[u8; SCAN_BLOCK + 2]| {
        let mut hits = 0u8;
        for k in 0..SCAN_BLOCK {
            hits |= u8::from(pred(block[k], block[k + 1], block[k + 2]));
        }
        hits != 0
    };
    let first_hit = |block: &[u8; SCAN_BLOCK + 2]| {
        (0..SCAN_BLOCK).find(|&k| pred(block[k], block[k + 1], block[k + 2]))
    };
    let mut start = from;
    while let Some(block) = bytes.get(start..start + SCAN_BLOCK + 2) {
        if let Ok(block) = <&[u8; SCAN_BLOCK + 2]>::try_from(block) {
            if block_hits(block) {
                return first_hit(block).map(|k| start + k);
            }
        }
        start += SCAN_BLOCK;
    }
    let rest = bytes.get(start..)?;
    let mut padded = [0u8; SCAN_BLOCK + 2];
    for chunk_start in (0..rest.len()).step_by(SCAN_BLOCK) {
        let chunk = &rest[chunk_start..];
        padded.fill(0);
        let len = chunk.len().min(SCAN_BLOCK + 2);
        padded[..len].copy_from_slice(&chunk[..len]);
        if let Some(k) = first_hit(&padded) {
            return Some(start + chunk_start + k).filter(|&at| at < bytes.len());
        }
    }
    None
}

//! Stages 11 (keywords) and 12 (whitespace).

use super::*;

pub(super) fn fold_keywords(text: String, tally: &mut Tally) -> String {
    match crate::keywords::table().fold(&text) {
        Some((out, folded)) => {
            tally.add(Transform::KeywordFolded, folded);
            out
        }
        None => text,
    }
}

pub(super) fn fold_whitespace(text: String, tally: &mut Tally) -> String {
    if is_whitespace_folded(&text) {
        return text;
    }
    let trimmed = text.trim();
    let mut folded = u32::from(text.len() - text.trim_start().len() > 0)
        + u32::from(text.len() - text.trim_end().len() > 0);
    let mut out = String::with_capacity(trimmed.len());
    if trimmed.is_ascii() {
        folded += fold_ascii_whitespace_runs(trimmed, &mut out);
    } else {
        for (is_space, run) in split_runs(trimmed, char::is_whitespace) {
            if !is_space {
                out.push_str(run);
                continue;
            }
            if run != " " {
                folded += 1;
            }
            out.push(' ');
        }
    }
    if folded == 0 {
        return text;
    }
    tally.add(Transform::WhitespaceFolded, folded);
    out
}

/// Copies trimmed ASCII text to `out` with each whitespace run as one space; returns how many
/// runs were not a single space already. Byte by byte: the char-run split of other text decodes
/// and classifies every character twice.
pub(super) fn fold_ascii_whitespace_runs(text: &str, out: &mut String) -> u32 {
    // `char::is_whitespace` on ASCII: U+0009..U+000D and the space.
    let is_space = |b: u8| b == b' ' || b.wrapping_sub(b'\t') <= b'\r' - b'\t';
    let bytes = text.as_bytes();
    let mut folded = 0;
    let mut copied_to = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_space(bytes[i]) {
            i += 1;
            continue;
        }
        let run_end = bytes[i..]
            .iter()
            .position(|&b| !is_space(b))
            .map_or(bytes.len(), |len| i + len);
        if &bytes[i..run_end] != b" " {
            out.push_str(&text[copied_to..i]);
            out.push(' ');
            copied_to = run_end;
            folded += 1;
        }
        i = run_end;
    }
    out.push_str(&text[copied_to..]);
    folded
}

/// Whether `b0 b1 b2` start the UTF-8 of a whitespace character other than the ASCII space:
/// `\t`..`\r`, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F or U+3000.
/// Non-short-circuiting `|`, so that the scans over all windows vectorise.
pub(super) fn starts_other_whitespace(b0: u8, b1: u8, b2: u8) -> bool {
    let general_punctuation = b0 == 0xE2
        && ((b1 == 0x80 && (b2.wrapping_sub(0x80) <= 0x0A) | matches!(b2, 0xA8 | 0xA9 | 0xAF))
            | (b1 == 0x81 && b2 == 0x9F));
    (b0.wrapping_sub(b'\t') <= b'\r' - b'\t')
        | (b0 == 0xC2 && (b1 == 0x85) | (b1 == 0xA0))
        | (b0 == 0xE1 && b1 == 0x9A && b2 == 0x80)
        | general_punctuation
        | (b0 == 0xE3 && b1 == 0x80 && b2 == 0x80)
}

/// Whether whitespace folding would leave `text` as it is: no whitespace at either end and
/// every whitespace run a single ASCII space. Most messages are; they skip the rebuild.
pub(super) fn is_whitespace_folded(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    if text.is_ascii() {
        // Only the ASCII whitespace of `starts_other_whitespace` can occur: fewer compares.
        return !any_byte_pair(bytes, |b0, b1| {
            (b0 == b' ' && b1 == b' ') | (b0.wrapping_sub(b'\t') <= b'\r' - b'\t')
        });
    }
    !any_byte_triple(bytes, |b0, b1, b2| {
        (b0 == b' ' && b1 == b' ') | starts_other_whitespace(b0, b1, b2)
    })
}

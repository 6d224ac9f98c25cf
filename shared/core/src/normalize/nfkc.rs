//! Stages 1 (invisible and control characters) and 2 (NFKC).

use super::*;

pub(super) fn strip_invisible(text: &str, tally: &mut Tally) -> String {
    if text.is_ascii() && !has_ascii_control(text.as_bytes()) {
        return text.to_owned();
    }
    // Most non-ASCII messages (Chinese) have nothing to strip or count: copy them in one go.
    if !text.chars().any(|c| is_full_width(c) || is_stripped(c)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let (mut invisible, mut control, mut full_width) = (0, 0, 0);
    for c in text.chars() {
        if is_full_width(c) {
            full_width += 1;
        }
        if is_invisible(c) {
            if !is_emoji_mark(c, out.chars().next_back()) {
                invisible += 1;
            }
        } else if c.is_control() && !c.is_whitespace() {
            control += 1;
        } else {
            out.push(c);
        }
    }
    tally.add(Transform::InvisibleRemoved, invisible);
    tally.add(Transform::ControlRemoved, control);
    tally.add(Transform::FullWidth, full_width);
    out
}

// ---------------------------------------------------------------------------------------------
// 2. NFKC

pub(super) fn apply_nfkc(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() || is_nfkc_quick_fast(&text) == IsNormalized::Yes {
        return text;
    }
    let changed = text
        .chars()
        .filter(|&c| {
            !c.is_ascii() && !is_nfkc_stable(c) && !is_full_width(c) && has_decomposition(c)
        })
        .count();
    tally.add(Transform::Nfkc, count_u32(changed));
    let out = nfkc_between_stable(&text);
    // Removing invisibles never re-exposes them after NFKC except through compatibility
    // mappings; strip again so the result stays free of them.
    if out
        .chars()
        .any(|c| is_invisible(c) || (c.is_control() && !c.is_whitespace()))
    {
        out.chars().filter(|&c| !is_stripped(c)).collect()
    } else {
        out
    }
}

/// Common CJK characters that NFKC leaves alone and that never interact with a neighbour:
/// combining class 0, NFKC_QC=Yes, and part of no canonical composition (neither first nor
/// second). The tests check all three properties for every character of the set.
pub(super) fn is_nfkc_stable(c: char) -> bool {
    matches!(c,
        '\u{3001}'..='\u{3002}'
        | '\u{3008}'..='\u{3011}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}')
}

/// `is_nfkc_quick(text.chars())`, without the table lookups for stable characters: the quick
/// check treats a starter that is NFKC_QC=Yes exactly like ASCII, so they are passed as `a`.
pub(super) fn is_nfkc_quick_fast(text: &str) -> IsNormalized {
    is_nfkc_quick(
        text.chars()
            .map(|c| if is_nfkc_stable(c) { 'a' } else { c }),
    )
}

/// `text.nfkc()`, normalising only the runs between stable characters: a stable character
/// neither changes nor composes, reorders or decomposes with its neighbours, so NFKC of the
/// text is the concatenation of NFKC of the runs and the stable characters themselves.
pub(super) fn nfkc_between_stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (stable, run) in split_runs(text, is_nfkc_stable) {
        if stable {
            out.push_str(run);
        } else {
            out.extend(run.nfkc());
        }
    }
    out
}

pub(super) fn has_decomposition(c: char) -> bool {
    let mut differs = false;
    unicode_normalization::char::decompose_compatible(c, |d| differs |= d != c);
    differs
}

pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

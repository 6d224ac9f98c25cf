//! Stage 4: the corpora's digit and contact masks folded into the shared placeholders.

use super::*;

/// FBS placeholder words, what they become, and whether they are folded outside Han messages.
pub(super) const CORPUS_WORDS: [(&str, &str, bool); 10] = [
    ("CELLPHONE", placeholder::PHONE, false),
    ("HOTLINE", placeholder::PHONE, false),
    ("WECHAT", placeholder::PHONE, false),
    ("PHONE", placeholder::PHONE, false),
    ("DIGIT", placeholder::NUM, true),
    ("PLACE", "", false),
    ("NAME", "", false),
    ("BANK", "", false),
    ("URL", placeholder::URL, true),
    ("QQ", "qq", false),
];

pub(super) fn fold_corpus_masks(text: String, tally: &mut Tally) -> String {
    // Only FBS words need to know whether the message has Han; scan for it once, when asked.
    let mut han_scan: Option<bool> = None;
    let mut has_han = || *han_scan.get_or_insert_with(|| text.chars().any(is_han));
    let mut out = String::new();
    let mut folded = 0;
    let mut last = 0;
    for (start, end) in corpus_mask_candidates(text.as_bytes()) {
        let Some(mask) = corpus_mask(&text, start, end, &mut has_han) else {
            continue;
        };
        out.reserve(text.len() + 8);
        out.push_str(&text[last..start]);
        folded += mask.push(&text[start..end], &mut out);
        last = end;
    }
    if folded == 0 {
        return text;
    }
    out.push_str(&text[last..]);
    tally.add(Transform::CorpusMaskFolded, folded);
    out
}

/// How an ASCII letter/digit run folds.
pub(super) enum CorpusMask {
    /// FBS placeholder words, this many.
    Words(u32),
    /// An x digit mask, with its placeholder.
    Digits(&'static str),
}

impl CorpusMask {
    /// Appends the replacement of `token`; returns the number of masks folded.
    fn push(self, token: &str, out: &mut String) -> u32 {
        match self {
            CorpusMask::Words(n) => {
                for (_, replacement, _) in corpus_word_split(token).flatten() {
                    out.push_str(replacement);
                }
                n
            }
            CorpusMask::Digits(placeholder) => {
                out.push_str(placeholder);
                1
            }
        }
    }
}

/// How the run `text[start..end]` folds, if it does.
pub(super) fn corpus_mask(
    text: &str,
    start: usize,
    end: usize,
    has_han: &mut impl FnMut() -> bool,
) -> Option<CorpusMask> {
    let token = &text[start..end];
    if !may_be_corpus_mask(token) || (is_all_q(token) && !has_corpus_mask_letter(text)) {
        return None;
    }
    if let Some(n) = corpus_words(token, has_han) {
        return Some(CorpusMask::Words(n));
    }
    let (before, after) = (
        text[..start].chars().next_back(),
        text[end..].chars().next(),
    );
    x_mask(token, before, after).map(CorpusMask::Digits)
}

/// Byte ranges of the ASCII letter/digit runs that hold an `x`/`X`, or two capitals of which
/// the first starts a placeholder word: every run that [`corpus_words`] or [`x_mask`] accepts
/// does. Found with a block scan from one run to the next: most runs hold neither, and most
/// messages none.
pub(super) fn corpus_mask_candidates(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = find_byte_triple(bytes, from, |b0, b1, _| is_corpus_mask_start(b0, b1))?;
        let alnum = u8::is_ascii_alphanumeric;
        let start = bytes[..at]
            .iter()
            .rposition(|b| !alnum(b))
            .map_or(0, |p| p + 1);
        let end = bytes[at..]
            .iter()
            .position(|b| !alnum(b))
            .map_or(bytes.len(), |len| at + len);
        from = end;
        Some((start, end))
    })
}

/// An `x`/`X`, or a capital that starts a [`CORPUS_WORDS`] word followed by a capital. Non-short-circuiting: the block
/// scan over all windows vectorises.
#[inline(always)]
pub(super) fn is_corpus_mask_start(b0: u8, b1: u8) -> bool {
    let starts_word = (b0 == b'C')
        | (b0 == b'H')
        | (b0 == b'W')
        | (b0 == b'P')
        | (b0 == b'D')
        | (b0 == b'N')
        | (b0 == b'B')
        | (b0 == b'U')
        | (b0 == b'Q');
    (b0 | 0x20 == b'x') | (starts_word & b1.is_ascii_uppercase())
}

/// A token of `Q`s only (`QQQQ`, which folds to `qqqq` in a Han message).
pub(super) fn is_all_q(token: &str) -> bool {
    token.bytes().all(|b| b == b'Q')
}

/// Whether the message holds one of `xXDUCHWPNB`: corpus masks have always skipped messages
/// without any (a `QQ` run alone is the brand name anyway), which only a run of `Q`s can tell,
/// since every other run that folds holds one of them itself.
pub(super) fn has_corpus_mask_letter(text: &str) -> bool {
    text.bytes().any(|b| {
        matches!(
            b,
            b'x' | b'X' | b'D' | b'U' | b'C' | b'H' | b'W' | b'P' | b'N' | b'B'
        )
    })
}

/// A cheap necessary condition for [`corpus_words`] or [`x_mask`] to accept `token`: it starts
/// like a placeholder word (upper case) or like an x mask (`x`, `X` or a digit). Most words
/// fail it, which spares looking at their neighbours.
pub(super) fn may_be_corpus_mask(token: &str) -> bool {
    token.bytes().next().is_some_and(|first| {
        matches!(first, b'x' | b'X' | b'0'..=b'9')
            || (first.is_ascii_uppercase()
                && CORPUS_WORDS
                    .iter()
                    .any(|(word, _, _)| word.as_bytes()[0] == first))
    })
}

/// A token made only of FBS placeholder words (`DIGIT`, `CELLPHONEQQ`, ...): how many. `has_han`
/// says whether the message has Han; it is asked only for words that fold in Han messages alone.
pub(super) fn corpus_words(token: &str, has_han: &mut impl FnMut() -> bool) -> Option<u32> {
    if !token.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let (mut n, mut qq, mut other_kept) = (0, 0, 0);
    for entry in corpus_word_split(token) {
        let &(word, replacement, anywhere) = entry?;
        if !anywhere && !has_han() {
            return None;
        }
        n += 1;
        if word == "QQ" {
            qq += 1;
        } else if !replacement.is_empty() {
            other_kept += 1;
        }
    }
    // A lone QQ is the real brand name, not a mask (also between removed words: `NAMEQQ` would
    // become just `qq`).
    (qq != 1 || other_kept > 0).then_some(n)
}

/// The [`CORPUS_WORDS`] entries `token` is made of, in order; `None` where no word starts.
pub(super) fn corpus_word_split(
    token: &str,
) -> impl Iterator<Item = Option<&'static (&'static str, &'static str, bool)>> + '_ {
    let mut rest = token;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let entry = CORPUS_WORDS.iter().find(|(w, _, _)| rest.starts_with(w));
        rest = entry.map_or("", |(word, _, _)| &rest[word.len()..]);
        Some(entry)
    })
}

/// An `x`/`X` digit mask, see the module docs; returns its placeholder.
pub(super) fn x_mask(
    token: &str,
    before: Option<char>,
    after: Option<char>,
) -> Option<&'static str> {
    let xs = token.bytes().filter(|b| matches!(b, b'x' | b'X')).count();
    let digits = token.bytes().filter(u8::is_ascii_digit).count();
    if xs == 0 || xs + digits != token.len() {
        return None;
    }
    let upper = token.bytes().all(|b| b != b'x');
    // A Han neighbour marks a DataCastle digit mask (x月x号) unless the other side glues the x to
    // Latin text (v-x号 is an obfuscated "vx").
    let loose = |c: Option<char>| {
        c.is_none_or(|c| is_han(c) || c.is_whitespace() || matches!(c, '.' | ',' | ':' | '/'))
    };
    let next_to_han = (before.is_some_and(is_han) && loose(after))
        || (after.is_some_and(is_han) && loose(before));
    // Any case for the unambiguous shapes (a capital X often starts a sentence: "Xxxx");
    // a short all-lower-case run without a Han neighbour stays (kisses).
    let is_mask = if digits > 0 {
        xs >= 2
    } else {
        xs >= 4 || (upper && xs >= 2) || next_to_han
    };
    if !is_mask {
        return None;
    }
    Some(if token.len() >= 7 {
        placeholder::PHONE
    } else {
        placeholder::NUM
    })
}

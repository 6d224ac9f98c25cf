//! Stage 3: Cyrillic/Greek look-alikes folded to Latin.

use super::*;

pub(super) static CONFUSABLES: LazyLock<Vec<(char, char)>> = LazyLock::new(|| {
    let mut table: Vec<(char, char)> = data_rows(include_str!("../../data/confusables.tsv"))
        .filter_map(|fields| {
            let from = single_char(fields.first()?)?;
            let to = single_char(fields.get(1)?)?;
            Some((from, to))
        })
        .collect();
    table.sort_unstable();
    table
});

pub(super) fn single_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

pub(super) fn confusable(c: char) -> Option<char> {
    let twin = |c: char| {
        CONFUSABLES
            .binary_search_by_key(&c, |(from, _)| *from)
            .ok()
            .map(|i| CONFUSABLES[i].1)
    };
    // A capital folds when its small letter is a look-alike (see [`small`]).
    twin(c).or_else(|| twin(small(c)))
}

/// `c` in lower case when that is one char. Case folding runs after the confusable stage, so
/// the stage judges letters by the case they end in (Cyrillic П becomes п, a look-alike of n;
/// Latin Ɬ becomes ɡ): otherwise a second run would fold what the first left (idempotence).
pub(super) fn small(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(small), None) => small,
        _ => c,
    }
}

pub(super) fn is_greek_or_cyrillic(c: char) -> bool {
    let in_range = |c: char| matches!(c, '\u{0370}'..='\u{052F}' | '\u{0261}');
    in_range(c) || in_range(small(c))
}

/// Whether `text` holds a UTF-8 lead byte of U+0240..U+053F or one of the two capitals outside
/// that range whose small letter is in it (Ohm sign, Latin Ɬ): a superset of the characters
/// [`is_greek_or_cyrillic`] accepts; Chinese (lead bytes E3..E9) and ASCII fail it at once.
pub(super) fn has_greek_or_cyrillic(text: &str) -> bool {
    may_hold_greek_or_cyrillic(text) && text.chars().any(is_greek_or_cyrillic)
}

pub(super) fn may_hold_greek_or_cyrillic(text: &str) -> bool {
    // U+2126 is E2 84 A6, U+A7AC is EA 9E AC.
    any_byte_triple(text.as_bytes(), |b0, b1, b2| {
        (b0.wrapping_sub(0xC9) <= 0xD4 - 0xC9)
            | (b0 == 0xE2 && b1 == 0x84 && b2 == 0xA6)
            | (b0 == 0xEA && b1 == 0x9E && b2 == 0xAC)
    })
}

pub(super) fn is_latin_letter(c: char) -> bool {
    let in_range = |c: char| {
        c.is_ascii_alphabetic() || (matches!(c, '\u{00C0}'..='\u{024F}') && c.is_alphabetic())
    };
    in_range(c) || in_range(small(c))
}

pub(super) fn fold_confusables(text: String, tally: &mut Tally) -> String {
    if !has_greek_or_cyrillic(&text) {
        return text;
    }
    // Genuine Russian or Greek always has letters without a Latin twin (и, л, λ ...); a message
    // whose Greek/Cyrillic letters are all look-alikes is disguised Latin. Neither this test nor
    // the word split below depends on later stages, which keeps normalisation idempotent.
    let all_foreign_lookalike = text
        .chars()
        .filter(|&c| is_greek_or_cyrillic(c) && c.is_alphabetic())
        .all(|c| confusable(c).is_some());
    let mut out = String::with_capacity(text.len());
    let mut folded = 0;
    // Combining marks belong to the word they sit in: NFKC may compose them into a letter,
    // and the word must be the same one then (idempotence).
    let word_char = |c: char| {
        (c.is_alphanumeric() || unicode_normalization::char::canonical_combining_class(c) != 0)
            && !is_han(c)
    };
    for (is_word, part) in split_runs(&text, word_char) {
        let letters = || part.chars().filter(|c| c.is_alphabetic());
        let lookalikes = letters().filter(|&c| confusable(c).is_some()).count();
        let has_latin = letters().any(is_latin_letter);
        let disguised =
            all_foreign_lookalike && lookalikes >= 2 && letters().all(|c| confusable(c).is_some());
        if is_word && lookalikes > 0 && (has_latin || disguised) {
            out.extend(part.chars().map(|c| confusable(c).unwrap_or(c)));
            folded += count_u32(lookalikes);
        } else {
            out.push_str(part);
        }
    }
    tally.add(Transform::Confusable, folded);
    out
}

/// Splits `text` into maximal runs of characters that do / do not satisfy `pred`.
pub(super) fn split_runs(
    text: &str,
    pred: impl Fn(char) -> bool,
) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let kind = pred(first);
        let end = rest
            .char_indices()
            .find(|&(_, c)| pred(c) != kind)
            .map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some((kind, run))
    })
}

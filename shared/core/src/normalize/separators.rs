//! Stage 8: junk between single characters collapsed.

use super::*;

/// Punctuation that structures sentences; it is never junk between obfuscated characters.
/// Whitespace (newlines included) is not listed: whitespace folding turns it into spaces later,
/// and the decision must not change when it has (idempotence).
pub(super) fn is_clause_punct(c: char) -> bool {
    matches!(
        c,
        ',' | '!'
            | '?'
            | ';'
            | ':'
            | '"'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '。'
            | '、'
            | '…'
            | '“'
            | '”'
            | '‘'
            | '’'
            | '【'
            | '】'
            | '《'
            | '》'
            | '「'
            | '」'
            | '『'
            | '』'
            | '〈'
            | '〉'
    )
}

/// Characters that separate words: whitespace, punctuation and symbols (emoji included).
pub(super) fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_alphanumeric();
    }
    // Common Han first: most characters of a Chinese message, and never a separator.
    if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
        return false;
    }
    c.is_whitespace()
        || matches!(c,
            '\u{00A0}'..='\u{00BF}' | '\u{00D7}' | '\u{00F7}'
            | '\u{2000}'..='\u{2BFF}'
            | '\u{3000}'..='\u{303F}'
            | '\u{FE30}'..='\u{FE4F}'
            | '\u{FF00}'..='\u{FF0F}'
            | '\u{1F000}'..='\u{1FAFF}')
}

pub(super) fn is_strong_junk(c: char) -> bool {
    matches!(c, '-' | '*' | '_' | '|' | '~' | '+')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnitKind {
    HanSingle,
    AsciiLetter,
    AsciiDigit,
    HanWord,
    Other,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unit {
    start: usize,
    end: usize,
    kind: UnitKind,
}

impl UnitKind {
    fn is_han(self) -> bool {
        matches!(self, UnitKind::HanSingle | UnitKind::HanWord)
    }

    fn is_single(self) -> bool {
        matches!(
            self,
            UnitKind::HanSingle | UnitKind::AsciiLetter | UnitKind::AsciiDigit
        )
    }
}

/// Whether ASCII text holds a chain of single units that [`chain_collapses`] may accept: three
/// or more, or two letters joined by `-*_|~+` only, each pair joined by separators without
/// clause punctuation or `..` ([`linkable`]). In ASCII text every chain link joins two single
/// units, length-1 runs of letters/digits, so without such a chain nothing collapses. (A change
/// of separator, which also ends a chain, is not looked at: that only lets more texts through.)
/// Singles are few: each is found with a block scan, and only the runs after it are looked at.
pub(super) fn has_collapsible_ascii_chain(bytes: &[u8]) -> bool {
    let mut next_single = next_ascii_single(bytes, 0);
    while let Some(first) = next_single {
        let (mut len, mut letters, mut strong) = (1, bytes[first].is_ascii_alphabetic(), true);
        let mut last = first;
        while let Some(next) = next_ascii_run(bytes, last) {
            let sep = &bytes[last + 1..next];
            let clean = !sep.iter().any(|&b| is_clause_punct(char::from(b)))
                && !sep.windows(2).any(|pair| pair == b"..");
            if !clean || !is_ascii_single_at(bytes, next) {
                break;
            }
            len += 1;
            letters &= bytes[next].is_ascii_alphabetic();
            strong &= sep.iter().all(|&b| is_strong_junk(char::from(b)));
            last = next;
        }
        if len >= 3 || (len == 2 && letters && strong) {
            return true;
        }
        next_single = next_ascii_single(bytes, last + 1);
    }
    false
}

/// Whether byte `i` is an ASCII letter or digit with none on either side.
pub(super) fn is_ascii_single_at(bytes: &[u8], i: usize) -> bool {
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    alnum(&bytes[i]) && (i == 0 || !alnum(&bytes[i - 1])) && !bytes.get(i + 1).is_some_and(alnum)
}

/// The first single ASCII letter/digit ([`is_ascii_single_at`]) at or after byte `from`: the
/// middle byte of a window found by a block scan (or the first byte).
pub(super) fn next_ascii_single(bytes: &[u8], from: usize) -> Option<usize> {
    if from == 0 && !bytes.is_empty() && is_ascii_single_at(bytes, 0) {
        return Some(0);
    }
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    find_byte_triple(bytes, from.saturating_sub(1), |b0, b1, b2| {
        !alnum(b0) & alnum(b1) & !alnum(b2)
    })
    .map(|window| window + 1)
}

/// Start of the next run of ASCII letters/digits after the single one at `single`.
pub(super) fn next_ascii_run(bytes: &[u8], single: usize) -> Option<usize> {
    let offset = bytes[single + 1..]
        .iter()
        .position(u8::is_ascii_alphanumeric)?;
    Some(single + 1 + offset)
}

/// A vectorised necessary condition for [`has_collapsible_ascii_chain`]: some ASCII letter or
/// digit has none on either side.
pub(super) fn has_ascii_single(bytes: &[u8]) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let first_single =
        bytes.first().is_some_and(|&b| alnum(b)) && !bytes.get(1).is_some_and(|&b| alnum(b));
    first_single || any_byte_triple(bytes, |b0, b1, b2| !alnum(b0) & alnum(b1) & !alnum(b2))
}

/// Whether some separator run without clause punctuation lies between two units that may link
/// ([`linkable`]): two single units, or a single Han character and a Han word. Every chain link
/// is one. The units are split at every separator: a placeholder's `<` and `>` are clause
/// punctuation then (a unit with a placeholder is never single nor a Han word, so no link
/// crosses one either way), and an apostrophe inside a word splits it, which only lets more
/// texts through.
pub(super) fn may_have_link(text: &str) -> bool {
    // The kind of the last finished unit (`None` before the first one), whether the
    // separators since it are free of clause punctuation, and the unit being read.
    let mut before: Option<UnitKind> = None;
    let mut clean = true;
    let mut unit: Option<(char, usize, bool)> = None; // (first char, chars, all Han)
    for c in text.chars() {
        if !is_separator(c) {
            match &mut unit {
                Some((_, len, all_han)) => (*len, *all_han) = (*len + 1, *all_han && is_han(c)),
                None => unit = Some((c, 1, is_han(c))),
            }
            continue;
        }
        if let Some(done) = unit.take() {
            let kind = scanned_unit_kind(done);
            if clean && before.is_some_and(|b| may_link(b, kind)) {
                return true;
            }
            (before, clean) = (Some(kind), true);
        }
        clean &= !is_clause_punct(c);
    }
    let last = unit.map(scanned_unit_kind);
    clean && before.zip(last).is_some_and(|(b, last)| may_link(b, last))
}

/// The kind of a unit read by [`may_have_link`] (ASCII letters and digits as one kind).
pub(super) fn scanned_unit_kind((first, len, all_han): (char, usize, bool)) -> UnitKind {
    match (len, all_han) {
        (1, true) => UnitKind::HanSingle,
        (1, false) if first.is_ascii_alphanumeric() => UnitKind::AsciiLetter,
        (_, true) => UnitKind::HanWord,
        _ => UnitKind::Other,
    }
}

/// Whether units of kinds `a` and `b` may link: both single, or a Han word and a single Han
/// character.
pub(super) fn may_link(a: UnitKind, b: UnitKind) -> bool {
    (a.is_single() && b.is_single())
        || matches!(
            (a, b),
            (UnitKind::HanWord, UnitKind::HanSingle) | (UnitKind::HanSingle, UnitKind::HanWord)
        )
}

/// Splits text into word units: maximal runs of non-separators, where a placeholder counts as
/// word characters (so `<num>元` is one unit, exactly like the `4558元` it was masked from).
pub(super) fn word_units(text: &str) -> Vec<Unit> {
    if text.is_ascii() {
        ascii_word_units(text)
    } else {
        any_word_units(text)
    }
}

/// [`word_units`] of any text.
pub(super) fn any_word_units(text: &str) -> Vec<Unit> {
    // Words average well over 4 bytes; one allocation instead of a series of regrowths.
    let mut units = Vec::with_capacity(text.len() / 4 + 1);
    let mut current: Option<(Unit, usize, bool)> = None; // (unit, chars, all Han)
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let placeholder_len = if c == '<' {
            is_placeholder_at(text, i)
        } else {
            None
        };
        let len = placeholder_len.unwrap_or(c.len_utf8());
        let apostrophe_in_word = matches!(c, '\'' | '’')
            && text[..i]
                .chars()
                .next_back()
                .is_some_and(|p| p.is_ascii_alphabetic())
            && text[i + len..]
                .chars()
                .next()
                .is_some_and(|n| n.is_ascii_alphabetic());
        if placeholder_len.is_none() && is_separator(c) && !apostrophe_in_word {
            if let Some(done) = current.take() {
                units.push(finish_unit(done, text));
            }
        } else {
            let han = placeholder_len.is_none() && is_han(c);
            let (_, chars, all_han) = current.get_or_insert((
                Unit {
                    start: i,
                    end: i,
                    kind: UnitKind::Other,
                },
                0,
                true,
            ));
            *chars += if placeholder_len.is_some() { 2 } else { 1 };
            *all_han &= han;
            if let Some((unit, _, _)) = current.as_mut() {
                unit.end = i + len;
            }
        }
        i += len;
    }
    if let Some(done) = current.take() {
        units.push(finish_unit(done, text));
    }
    units
}

/// [`word_units`] of ASCII text, byte by byte: every character is one byte, a separator is any
/// byte but a letter or digit, and no character is Han.
pub(super) fn ascii_word_units(text: &str) -> Vec<Unit> {
    let bytes = text.as_bytes();
    let mut units = Vec::with_capacity(text.len() / 4 + 1);
    // (start, chars) of the unit being read.
    let mut current: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let placeholder_len = if b == b'<' {
            is_placeholder_at(text, i)
        } else {
            None
        };
        let apostrophe_in_word = b == b'\''
            && i > 0
            && bytes[i - 1].is_ascii_alphabetic()
            && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic);
        let len = placeholder_len.unwrap_or(1);
        if placeholder_len.is_none() && !b.is_ascii_alphanumeric() && !apostrophe_in_word {
            if let Some((start, chars)) = current.take() {
                units.push(ascii_unit(text, start, i, chars));
            }
        } else {
            let (_, chars) = current.get_or_insert((i, 0));
            *chars += if placeholder_len.is_some() { 2 } else { 1 };
        }
        i += len;
    }
    if let Some((start, chars)) = current {
        units.push(ascii_unit(text, start, bytes.len(), chars));
    }
    units
}

/// The unit `text[start..end]` of `chars` characters in ASCII text (as [`finish_unit`] says).
pub(super) fn ascii_unit(text: &str, start: usize, end: usize, chars: usize) -> Unit {
    let first = text.as_bytes()[start];
    let kind = match chars {
        1 if first.is_ascii_alphabetic() => UnitKind::AsciiLetter,
        1 if first.is_ascii_digit() => UnitKind::AsciiDigit,
        _ => UnitKind::Other,
    };
    Unit { start, end, kind }
}

pub(super) fn finish_unit((mut unit, chars, all_han): (Unit, usize, bool), text: &str) -> Unit {
    let first = text[unit.start..].chars().next();
    unit.kind = match (chars, all_han, first) {
        (1, true, _) => UnitKind::HanSingle,
        (1, false, Some(c)) if c.is_ascii_alphabetic() => UnitKind::AsciiLetter,
        (1, false, Some(c)) if c.is_ascii_digit() => UnitKind::AsciiDigit,
        (_, true, _) => UnitKind::HanWord,
        _ => UnitKind::Other,
    };
    unit
}

/// Whether `a sep b` continues a chain that already holds `chain_len` units.
pub(super) fn linkable(a: &Unit, sep: &str, b: &Unit, chain_len: usize) -> bool {
    // A Han word may absorb a neighbouring single Han character, but a full stop between a word
    // and a single is a sentence end ("位子.乙") unless singles already form a chain ("加.微.信息").
    let word_link_ok = || !sep.contains('.') || chain_len >= 2;
    let a_ok = a.kind.is_single()
        || (a.kind == UnitKind::HanWord && b.kind == UnitKind::HanSingle && word_link_ok());
    let b_ok = b.kind.is_single()
        || (b.kind == UnitKind::HanWord && a.kind == UnitKind::HanSingle && word_link_ok());
    // An ellipsis ("..", NFKC of "…") ends a thought; it is not stuffing. Looked at last: most
    // pairs of neighbouring words are not two single characters.
    a_ok && b_ok && !sep.is_empty() && !sep.chars().any(is_clause_punct) && !sep.contains("..")
}

/// A separator with whitespace runs folded to one space, so the decision does not change when
/// whitespace folding has run (idempotence). Yields chars instead of building a `String`:
/// collapsing compares the separators of every pair of neighbouring units.
pub(super) fn separator_key(sep: &str) -> impl Iterator<Item = char> + '_ {
    let mut after_space = false;
    sep.chars().filter_map(move |c| {
        let space = c.is_whitespace();
        let skip = space && after_space;
        after_space = space;
        match (skip, space) {
            (true, _) => None,
            (false, true) => Some(' '),
            (false, false) => Some(c),
        }
    })
}

/// The most single digits a dashed chain may hold and still be read as a code, not a disguise.
pub(super) const MAX_DIGIT_CODE: usize = 4;

pub(super) fn chain_collapses(text: &str, chain: &[Unit]) -> bool {
    let has_han = chain.iter().any(|u| u.kind.is_han());
    if has_han {
        return chain.len() >= 2;
    }
    let seps = || chain.windows(2).map(|w| &text[w[0].end..w[1].start]);
    // Up to four single digits joined by dashes are a code or a date (`取件码 6-2-1-9`), not a
    // disguise: no phone or QQ number is that short (pipeline version 4).
    if chain.len() <= MAX_DIGIT_CODE
        && chain.iter().all(|u| u.kind == UnitKind::AsciiDigit)
        && seps().all(|s| s == "-")
    {
        return false;
    }
    let whitespace_only = seps().all(|s| s.chars().all(char::is_whitespace));
    let strong_only = seps().all(|s| s.chars().all(is_strong_junk));
    let letters_only = chain.iter().all(|u| u.kind == UnitKind::AsciiLetter);
    (chain.len() >= 3 && !whitespace_only)
        || chain.len() >= 4
        || (chain.len() == 2 && letters_only && strong_only)
}

pub(super) fn collapse_separators(text: String, tally: &mut Tally) -> String {
    let may_collapse = if text.is_ascii() {
        let bytes = text.as_bytes();
        has_ascii_single(bytes) && has_collapsible_ascii_chain(bytes)
    } else {
        may_have_link(&text)
    };
    if !may_collapse {
        return text;
    }
    let units = word_units(&text);
    if units.len() < 2 {
        return text;
    }
    let mut remove: Vec<(usize, usize)> = Vec::new();
    let mut chain_start = 0;
    // The separator of the chain's first link (compared by `separator_key`).
    let mut chain_sep: Option<&str> = None;
    for i in 1..=units.len() {
        let mut continues = false;
        if i < units.len() {
            let (a, b) = (&units[i - 1], &units[i]);
            let sep = &text[a.end..b.start];
            // Latin obfuscation repeats one separator ("w.e.i", "v - x"); a change of separator
            // ends the chain ("n.a.v- 1", "a/c u"). Han chains may mix junk ("加 * 微.信").
            let han = a.kind.is_han() || b.kind.is_han();
            continues = linkable(a, sep, b, i - chain_start)
                && (han
                    || chain_sep.is_none_or(|chain| separator_key(chain).eq(separator_key(sep))));
            if continues && chain_sep.is_none() {
                chain_sep = Some(sep);
            }
        }
        if !continues {
            let chain = &units[chain_start..i];
            if chain.len() >= 2 && chain_collapses(&text, chain) {
                remove.extend(chain.windows(2).map(|w| (w[0].end, w[1].start)));
            }
            chain_start = i;
            chain_sep = None;
        }
    }
    if remove.is_empty() {
        return text;
    }
    tally.add(Transform::SeparatorCollapsed, count_u32(remove.len()));
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in remove {
        out.push_str(&text[last..start]);
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

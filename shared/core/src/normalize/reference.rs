//! The implementation of `normalize` as it was before the performance work of issue 2, kept
//! verbatim (test builds only) as the oracle for the equivalence tests: models carry
//! `PIPELINE_VERSION`, so the optimised pipeline must return exactly what this one returns.

#![allow(dead_code)]

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use super::{MaskKind, Masked, Normalized, Tally, Transform};
use crate::placeholder;
use crate::taxonomy::data_rows;

/// Extra pipeline runs allowed when a run exposed new work for an earlier stage. Chains of three
/// occur (`XXXXhttp://$扣扣`: the keyword fold exposes leetspeak, which exposes a URL, whose
/// placeholder exposes an x-mask); each run that changes nothing ends the loop, so a higher
/// cap costs ordinary messages nothing and bounds adversarial ones.
const MAX_RERUNS: usize = 4;

/// Normalises one message; see the module docs for the stages.
pub fn normalize(text: &str) -> Normalized {
    let mut tally = Tally::default();
    let mut masked = Vec::new();
    let mut current = run_pipeline(text, &mut tally, &mut masked);
    let mut rerun = needs_rerun(&tally)
        || masked_in_foreign_text(&tally, &current)
        || has_glued_placeholder(&current);
    for _ in 0..MAX_RERUNS {
        if !rerun {
            break;
        }
        let mut rerun_tally = Tally::default();
        let mut rerun_masked = Vec::new();
        let next = run_pipeline(&current, &mut rerun_tally, &mut rerun_masked);
        if next == current {
            break;
        }
        for t in Transform::ALL {
            tally.add(t, rerun_tally.get(t));
        }
        masked.append(&mut rerun_masked);
        current = next;
        rerun = needs_rerun(&rerun_tally)
            || masked_in_foreign_text(&rerun_tally, &current)
            || has_glued_placeholder(&current);
    }
    Normalized {
        original: text.to_owned(),
        text: current,
        transforms: tally.into_map(),
        masked,
    }
}

fn then_nfkc_if_fired(
    text: String,
    tally: &mut Tally,
    transform: Transform,
    stage: fn(String, &mut Tally) -> String,
) -> String {
    let before = tally.get(transform);
    let text = stage(text, tally);
    if tally.get(transform) == before {
        return text;
    }
    // Counted only when it changes the text: NFKC's count also takes in characters that it
    // maps onto themselves (composed Indic vowel signs), which the first pass counted already.
    let mut nfkc_tally = Tally::default();
    let composed = apply_nfkc(text.clone(), &mut nfkc_tally);
    if composed != text {
        tally.add(Transform::Nfkc, nfkc_tally.get(Transform::Nfkc));
    }
    composed
}

fn needs_rerun(tally: &Tally) -> bool {
    tally.merged_units
        || tally.get(Transform::SeparatorCollapsed) > 0
        || tally.get(Transform::Leetspeak) > 0
        || tally.get(Transform::KeywordFolded) > 0
        || tally.get(Transform::Refanged) > 0
}

/// A mask in text with Greek or Cyrillic letters: the confusable stage splits words at the
/// placeholder on the next run.
fn masked_in_foreign_text(tally: &Tally, text: &str) -> bool {
    let masked = tally.get(Transform::NumberMasked)
        + tally.get(Transform::PhoneMasked)
        + tally.get(Transform::UrlMasked)
        + tally.get(Transform::EmailMasked);
    masked > 0 && text.chars().any(is_greek_or_cyrillic)
}

/// A placeholder touching URL-ish characters (`com<phone>`): the ASCII word boundary that URL
/// detection saw has moved, so another run may find more.
fn has_glued_placeholder(text: &str) -> bool {
    let urlish = |c: Option<char>| {
        c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '/'))
    };
    text.match_indices('<').any(|(i, _)| {
        is_placeholder_at(text, i).is_some_and(|len| {
            urlish(text[..i].chars().next_back()) || urlish(text[i + len..].chars().next())
        })
    })
}

fn run_pipeline(text: &str, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    let s = strip_invisible(text, tally);
    // Not in the implementation this file kept (pipeline version 1): one shared stage.
    let s = super::symbols::fold_letter_symbols(s, tally);
    // Not in the implementation this file kept (pipeline version 1): shared stages.
    let s = super::turned::fold_small_capitals(s, tally);
    let s = super::turned::turn_upside_down(s, tally);
    let s = super::turned::fold_script_lookalikes(s, tally);
    let s = apply_nfkc(s, tally);
    // A folded or removed character can leave a combining mark on a new base: compose again.
    let s = then_nfkc_if_fired(s, tally, Transform::Confusable, fold_confusables);
    let s = super::turned::strip_stray_marks(s, tally);
    let s = then_nfkc_if_fired(s, tally, Transform::CorpusMaskFolded, fold_corpus_masks);
    let s = then_nfkc_if_fired(s, tally, Transform::CaseFold, fold_case);
    let s = simplify_han(s, tally);
    // Not in the implementation this file kept (pipeline version 1): shared stages.
    let s = super::turned::turn_backwards_text(s, tally);
    let s = super::refang::refang(s, tally);
    let s = mask_web(s, tally, masked);
    let s = collapse_separators(s, tally);
    let s = super::spelled::read_spelled_digits(s, tally);
    let s = mask_numbers(s, tally, masked);
    let s = fold_leetspeak(s, tally);
    let s = fold_keywords(s, tally);
    fold_whitespace(s, tally)
}

// ---------------------------------------------------------------------------------------------
// Character classes

/// Han ideographs (CJK unified, extension A-F, compatibility); NFKC maps radicals onto these.
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}'
        | '\u{30000}'..='\u{3134F}')
}

fn is_invisible(c: char) -> bool {
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

/// Characters stage 1 removes: invisibles and non-whitespace controls.
fn is_stripped(c: char) -> bool {
    is_invisible(c) || (c.is_control() && !c.is_whitespace())
}

fn is_full_width(c: char) -> bool {
    matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')
}

fn is_placeholder_at(text: &str, byte: usize) -> Option<usize> {
    let rest = &text[byte..];
    placeholder::ALL
        .iter()
        .find(|p| rest.starts_with(**p))
        .map(|p| p.len())
}

// ---------------------------------------------------------------------------------------------
// 1. Invisible and control characters

fn strip_invisible(text: &str, tally: &mut Tally) -> String {
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let (mut invisible, mut control, mut full_width) = (0, 0, 0);
    for c in text.chars() {
        if is_full_width(c) {
            full_width += 1;
        }
        if is_invisible(c) {
            // Not in the implementation this file kept (pipeline version 1): shared.
            if !super::chars::is_emoji_mark(c, out.chars().next_back()) {
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

fn apply_nfkc(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() || is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        return text;
    }
    let changed = text
        .chars()
        .filter(|&c| !c.is_ascii() && !is_full_width(c) && has_decomposition(c))
        .count();
    tally.add(Transform::Nfkc, count_u32(changed));
    let out: String = text.nfkc().collect();
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

fn has_decomposition(c: char) -> bool {
    let mut differs = false;
    unicode_normalization::char::decompose_compatible(c, |d| differs |= d != c);
    differs
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// 3. Confusables

static CONFUSABLES: LazyLock<Vec<(char, char)>> = LazyLock::new(|| {
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

fn single_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

fn confusable(c: char) -> Option<char> {
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
fn small(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(small), None) => small,
        _ => c,
    }
}

fn is_greek_or_cyrillic(c: char) -> bool {
    let in_range = |c: char| matches!(c, '\u{0370}'..='\u{052F}' | '\u{0261}');
    in_range(c) || in_range(small(c))
}

fn is_latin_letter(c: char) -> bool {
    let in_range = |c: char| {
        c.is_ascii_alphabetic() || (matches!(c, '\u{00C0}'..='\u{024F}') && c.is_alphabetic())
    };
    in_range(c) || in_range(small(c))
}

fn fold_confusables(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() || !text.chars().any(is_greek_or_cyrillic) {
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
fn split_runs(text: &str, pred: impl Fn(char) -> bool) -> impl Iterator<Item = (bool, &str)> {
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

// ---------------------------------------------------------------------------------------------
// 4. Corpus masks

/// FBS placeholder words, what they become, and whether they are folded outside Han messages.
const CORPUS_WORDS: [(&str, &str, bool); 10] = [
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

fn fold_corpus_masks(text: String, tally: &mut Tally) -> String {
    if !text.bytes().any(|b| {
        matches!(
            b,
            b'x' | b'X' | b'D' | b'U' | b'C' | b'H' | b'W' | b'P' | b'N' | b'B'
        )
    }) {
        return text;
    }
    // Only FBS words need to know whether the message has Han; scan for it once, when asked.
    let mut han_scan: Option<bool> = None;
    let mut has_han = || *han_scan.get_or_insert_with(|| text.chars().any(is_han));
    let mut out = String::new();
    let mut folded = 0;
    let mut last = 0;
    for (start, end) in ascii_alnum_tokens(&text) {
        let token = &text[start..end];
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let replacement =
            corpus_words(token, &mut has_han).or_else(|| x_mask(token, before, after));
        if let Some((replacement, n)) = replacement {
            out.reserve(text.len() + 8);
            out.push_str(&text[last..start]);
            out.push_str(&replacement);
            last = end;
            folded += n;
        }
    }
    if folded == 0 {
        return text;
    }
    out.push_str(&text[last..]);
    tally.add(Transform::CorpusMaskFolded, folded);
    out
}

/// Byte ranges of maximal runs of ASCII letters and digits.
fn ascii_alnum_tokens(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let start = i + bytes[i..].iter().position(u8::is_ascii_alphanumeric)?;
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |len| start + len);
        i = end;
        Some((start, end))
    })
}

/// A token made only of FBS placeholder words (`DIGIT`, `CELLPHONEQQ`, ...). `has_han` says
/// whether the message has Han; it is asked only for words that fold in Han messages alone.
fn corpus_words(token: &str, has_han: &mut impl FnMut() -> bool) -> Option<(String, u32)> {
    if !token.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut rest = token;
    let mut out = String::new();
    let mut n = 0;
    while !rest.is_empty() {
        let (word, replacement, anywhere) =
            CORPUS_WORDS.iter().find(|(w, _, _)| rest.starts_with(w))?;
        if !anywhere && !has_han() {
            return None;
        }
        out.push_str(replacement);
        rest = &rest[word.len()..];
        n += 1;
    }
    // A lone QQ is the real brand name, not a mask.
    (out != "qq").then_some((out, n))
}

/// An `x`/`X` digit mask, see the module docs; returns its placeholder.
fn x_mask(token: &str, before: Option<char>, after: Option<char>) -> Option<(String, u32)> {
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
    let placeholder = if token.len() >= 7 {
        placeholder::PHONE
    } else {
        placeholder::NUM
    };
    Some((placeholder.to_owned(), 1))
}

// ---------------------------------------------------------------------------------------------
// 5. Case folding

fn fold_case(mut text: String, tally: &mut Tally) -> String {
    if text.is_ascii() {
        let upper = text.bytes().filter(u8::is_ascii_uppercase).count();
        if upper > 0 {
            text.make_ascii_lowercase();
            tally.add(Transform::CaseFold, count_u32(upper));
        }
        return text;
    }
    let changed = text.chars().filter(|&c| changes_case(c)).count();
    if changed == 0 {
        return text;
    }
    tally.add(Transform::CaseFold, count_u32(changed));
    text.to_lowercase()
}

/// Whether lower-casing changes `c`; ASCII and Han (most characters) skip the Unicode table.
fn changes_case(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    !is_han(c) && !c.to_lowercase().eq(std::iter::once(c))
}

// ---------------------------------------------------------------------------------------------
// 6. Traditional -> Simplified

fn simplify_han(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() || !text.chars().any(is_han) {
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

fn count_changed_chars(before: &str, after: &str) -> u32 {
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

// ---------------------------------------------------------------------------------------------
// 7. URLs and e-mails

const URL_PATH: &str = r"[a-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*";
const STRONG_TLDS: &str = "com|net|org|info|biz|ly|io|cn|ng|uk|ru|tk|xyz|top|vip|cc|tv|gl|gd|link|site|online|club|shop|app|ke|za|gov|edu|mobi|ws|store|live|icu|pw|ml|ga|cf|gq|bit|page|click|work|cloud|co\\.in|co\\.uk|co\\.za|co\\.id|co\\.ke|com\\.[a-z]{2}";
const WEAK_TLDS: &str =
    "co|in|it|me|my|us|id|de|es|fr|tr|br|mx|au|ca|jp|kr|hk|tw|sg|ph|pk|bd|to|be|nl|pl|se|ch|at|ly";

static WEB_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let label = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?";
    let email = r"[a-z0-9][a-z0-9._%+\-]*@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}";
    // Whitespace inside broken URLs is matched as `\s*`, never a fixed number of spaces, so the
    // result does not depend on whether whitespace folding has run (idempotence).
    let scheme = format!(
        r"(?:https?|hxxps?)\s*:?\s*//\s*[a-z0-9][a-z0-9\-]*(?:\s*\.\s*[a-z0-9\-]+)*(?::[0-9]+)?(?:[/?#]{URL_PATH})?"
    );
    let glued = r"(?-u:\b)(?:https?(?:www)?|www)[a-z0-9]{2,}?(?:com|net|org|ly|in)[a-z0-9]*(?:/[a-z0-9\-._~/?=&%]*)?";
    let www = format!(r"(?-u:\b)www\s*\.\s*{label}(?:\.{label})+(?:[/?#:]{URL_PATH})?");
    let bare_strong =
        format!(r"(?-u:\b){label}(?:\.{label})*\.(?:{STRONG_TLDS})(?-u:\b)(?:[/?#:]{URL_PATH})?");
    let bare_weak = format!(r"(?-u:\b){label}(?:\.{label})*\.(?:{WEAK_TLDS})/{URL_PATH}");
    let pattern = format!("{email}|{scheme}|{www}|{glued}|{bare_strong}|{bare_weak}");
    Regex::new(&pattern).ok()
});

fn mask_web(text: String, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    if !may_hold_web_address(&text) {
        return text;
    }
    let Some(re) = WEB_RE.as_ref() else {
        return text;
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in re.find_iter(&text) {
        let span = found.as_str();
        out.push_str(&text[last..found.start()]);
        last = found.end();
        if let Some((_, domain)) = span.split_once('@').filter(|_| !span.contains("//")) {
            out.push_str(placeholder::EMAIL);
            tally.add(Transform::EmailMasked, 1);
            masked.push(Masked {
                kind: MaskKind::Email,
                value: domain.to_owned(),
            });
        } else {
            out.push_str(placeholder::URL);
            tally.add(Transform::UrlMasked, 1);
            masked.push(Masked {
                kind: MaskKind::Url,
                value: url_host(span),
            });
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A cheap necessary condition for a `WEB_RE` match, which most messages fail ("ok... see u"):
/// every alternative holds `@` (e-mail), `//` (scheme), `http`/`www` (glued, www) or a dot
/// followed by an ASCII letter (the TLD of a bare domain).
fn may_hold_web_address(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.contains(&b'@')
        || bytes
            .windows(2)
            .any(|w| w == b"//" || (w[0] == b'.' && w[1].is_ascii_alphabetic()))
        || text.contains("http")
        || text.contains("www")
}

/// Lower-case host of a matched URL span (spaces from broken URLs removed).
fn url_host(span: &str) -> String {
    let after_scheme = span
        .split_once("//")
        .map_or(span, |(_, rest)| rest)
        .trim_start();
    if !span.contains("//") && !span.contains('.') {
        return glued_host(span);
    }
    after_scheme
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// Host of a glued URL such as `httptinyurlcomabc` -> `tinyurl.com`.
fn glued_host(span: &str) -> String {
    let body = span
        .strip_prefix("https")
        .or_else(|| span.strip_prefix("http"))
        .unwrap_or(span);
    let www = body.starts_with("www");
    let body = body.strip_prefix("www").unwrap_or(body);
    let tld_at = ["com", "net", "org", "ly", "in"]
        .iter()
        .filter_map(|tld| {
            body.get(2..)
                .and_then(|b| b.find(tld))
                .map(|i| (i + 2, *tld))
        })
        .min();
    match tld_at {
        Some((i, tld)) => format!("{}{}.{}", if www { "www." } else { "" }, &body[..i], tld),
        None => body.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Separator collapsing

/// Punctuation that structures sentences; it is never junk between obfuscated characters.
/// Whitespace (newlines included) is not listed: whitespace folding turns it into spaces later,
/// and the decision must not change when it has (idempotence).
fn is_clause_punct(c: char) -> bool {
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
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_alphanumeric();
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

fn is_strong_junk(c: char) -> bool {
    matches!(c, '-' | '*' | '_' | '|' | '~' | '+')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    HanSingle,
    AsciiLetter,
    AsciiDigit,
    HanWord,
    Other,
}

struct Unit {
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

/// Splits text into word units: maximal runs of non-separators, where a placeholder counts as
/// word characters (so `<num>元` is one unit, exactly like the `4558元` it was masked from).
fn word_units(text: &str) -> Vec<Unit> {
    let mut units = Vec::new();
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

fn finish_unit((mut unit, chars, all_han): (Unit, usize, bool), text: &str) -> Unit {
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
fn linkable(a: &Unit, sep: &str, b: &Unit, chain_len: usize) -> bool {
    // An ellipsis ("..", NFKC of "…") ends a thought; it is not stuffing.
    let junk = !sep.is_empty() && !sep.chars().any(is_clause_punct) && !sep.contains("..");
    // A Han word may absorb a neighbouring single Han character, but a full stop between a word
    // and a single is a sentence end ("位子.乙") unless singles already form a chain ("加.微.信息").
    let word_link_ok = !sep.contains('.') || chain_len >= 2;
    let a_ok = a.kind.is_single()
        || (a.kind == UnitKind::HanWord && b.kind == UnitKind::HanSingle && word_link_ok);
    let b_ok = b.kind.is_single()
        || (b.kind == UnitKind::HanWord && a.kind == UnitKind::HanSingle && word_link_ok);
    junk && a_ok && b_ok
}

/// A separator with whitespace runs folded to one space, so the decision does not change when
/// whitespace folding has run (idempotence). Yields chars instead of building a `String`:
/// collapsing compares the separators of every pair of neighbouring units.
fn separator_key(sep: &str) -> impl Iterator<Item = char> + '_ {
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
const MAX_DIGIT_CODE: usize = 4;

fn chain_collapses(text: &str, chain: &[Unit]) -> bool {
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

fn collapse_separators(text: String, tally: &mut Tally) -> String {
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

// ---------------------------------------------------------------------------------------------
// 9. Phones and numbers

static NUMBER_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // Any whitespace run counts as one separator: whitespace folding runs later.
    let phone = r"\+?[0-9](?:(?:\s+|-)?[0-9]){6,}";
    let number = r"[0-9](?:[.,]?[0-9]){3,}";
    Regex::new(&format!("(?P<phone>{phone})|{number}")).ok()
});

fn mask_numbers(text: String, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    if text.bytes().filter(u8::is_ascii_digit).count() < 4 {
        return text;
    }
    let Some(re) = NUMBER_RE.as_ref() else {
        return text;
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for found in re.find_iter(&text) {
        let span = found.as_str();
        out.push_str(&text[last..found.start()]);
        last = found.end();
        let digits: String = span
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        let digit_count = digits.bytes().filter(u8::is_ascii_digit).count();
        // Any span holding separators asks for another run; the fast pipeline asks only when
        // a single digit at the span's edge could have linked to a single unit outside it.
        tally.merged_units |= digits.len() < span.len();
        let is_phone = digit_count >= 7 && !span.contains(['.', ',']);
        let (kind, transform, token) = if is_phone {
            (MaskKind::Phone, Transform::PhoneMasked, placeholder::PHONE)
        } else {
            (MaskKind::Number, Transform::NumberMasked, placeholder::NUM)
        };
        out.push_str(token);
        tally.add(transform, 1);
        masked.push(Masked {
            kind,
            value: digits,
        });
    }
    out.push_str(&text[last..]);
    out
}

// ---------------------------------------------------------------------------------------------
// 10. Leetspeak

fn is_leet_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'@' || b == b'$'
}

fn leet_letter(b: u8) -> Option<u8> {
    match b {
        b'0' => Some(b'o'),
        b'1' => Some(b'i'),
        b'3' => Some(b'e'),
        b'4' => Some(b'a'),
        b'5' => Some(b's'),
        b'7' => Some(b't'),
        b'@' => Some(b'a'),
        b'$' => Some(b's'),
        _ => None,
    }
}

fn fold_leetspeak(text: String, tally: &mut Tally) -> String {
    if !text.bytes().any(|b| leet_letter(b).is_some()) || !has_leet_token(text.as_bytes()) {
        return text;
    }
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut folded = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_leet_token_char(bytes[i]) {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_leet_token_char(bytes[i]) {
            i += 1;
        }
        let token = &bytes[start..i];
        if is_leet_token(token) && !is_at_address(token) {
            folded += push_leet(token, &mut out);
        } else {
            out.extend_from_slice(token);
        }
    }
    if folded == 0 {
        return text;
    }
    tally.add(Transform::Leetspeak, folded);
    // Only ASCII bytes of ASCII tokens were replaced by ASCII bytes, so UTF-8 is preserved.
    String::from_utf8(out).unwrap_or(text)
}

/// Maximal runs of leet token bytes (`[a-z0-9@$]+`).
fn leet_tokens(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| !is_leet_token_char(b))
        .filter(|token| !token.is_empty())
}

/// Whether some token folds; checked first so that most messages (digits, no leetspeak) are
/// returned without building a copy.
fn has_leet_token(bytes: &[u8]) -> bool {
    leet_tokens(bytes).any(|token| is_leet_token(token) && !is_at_address(token))
}

fn is_leet_token(token: &[u8]) -> bool {
    let letters = token.iter().filter(|b| b.is_ascii_lowercase()).count();
    let leet = token.iter().filter(|b| !b.is_ascii_lowercase()).count();
    let first_ok = token
        .first()
        .is_some_and(|&b| b.is_ascii_lowercase() || b == b'$');
    let all_leet = token
        .iter()
        .all(|&b| b.is_ascii_lowercase() || leet_letter(b).is_some());
    if letters < 2 || leet == 0 || !first_ok || !all_leet {
        return false;
    }
    // Letters followed only by digits look like a model number (mp3, win10) unless the digits
    // repeat one letter (fr33).
    let trailing_start = token
        .iter()
        .rposition(u8::is_ascii_lowercase)
        .map_or(0, |p| p + 1);
    let inner_leet = token[..trailing_start]
        .iter()
        .any(|b| !b.is_ascii_lowercase());
    let trailing = &token[trailing_start..];
    inner_leet || (trailing.len() >= 2 && trailing.iter().all(|&b| b == trailing[0]))
}

/// `sharp@the`: an `@` with 3+ letters on both sides is the word "at", not an obfuscated `a`.
fn is_at_address(token: &[u8]) -> bool {
    token.iter().position(|&b| b == b'@').is_some_and(|at| {
        let letters = |part: &[u8]| part.iter().filter(|b| b.is_ascii_lowercase()).count();
        letters(&token[..at]) >= 3 && letters(&token[at + 1..]) >= 3
    })
}

fn push_leet(token: &[u8], out: &mut Vec<u8>) -> u32 {
    let mut folded = 0;
    for (i, &b) in token.iter().enumerate() {
        let Some(mut letter) = leet_letter(b) else {
            out.push(b);
            continue;
        };
        if b == b'1' {
            let near_l = |j: Option<usize>| {
                j.and_then(|j| token.get(j))
                    .is_some_and(|&n| n == b'l' || n == b'1')
            };
            if near_l(i.checked_sub(1)) || near_l(Some(i + 1)) {
                letter = b'l';
            }
        }
        out.push(letter);
        folded += 1;
    }
    folded
}

// ---------------------------------------------------------------------------------------------
// 11. Keywords and 12. whitespace

fn fold_keywords(text: String, tally: &mut Tally) -> String {
    match crate::keywords::table().fold(&text) {
        Some((out, folded)) => {
            tally.add(Transform::KeywordFolded, folded);
            out
        }
        None => text,
    }
}

fn fold_whitespace(text: String, tally: &mut Tally) -> String {
    if is_whitespace_folded(&text) {
        return text;
    }
    let trimmed = text.trim();
    let mut folded = u32::from(text.len() - text.trim_start().len() > 0)
        + u32::from(text.len() - text.trim_end().len() > 0);
    let mut out = String::with_capacity(trimmed.len());
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
    if folded == 0 {
        return text;
    }
    tally.add(Transform::WhitespaceFolded, folded);
    out
}

/// Whether whitespace folding would leave `text` as it is: no whitespace at either end and
/// every whitespace run a single ASCII space. Most messages are; they skip the rebuild.
fn is_whitespace_folded(text: &str) -> bool {
    let mut after_space = true; // a leading space is not folded text
    for c in text.chars() {
        let space = c.is_whitespace();
        if space && (after_space || c != ' ') {
            return false;
        }
        after_space = space;
    }
    !after_space || text.is_empty()
}

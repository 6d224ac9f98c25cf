//! Text normalisation: the single function every model, rule and fingerprint sees text through.
//!
//! [`normalize`] runs these stages, in this order (each counts how often it fired in
//! [`Normalized::transforms`]):
//!
//! 1. **Invisible / control removal**: zero-width and bidi controls, soft hyphen, variation
//!    selectors, tag characters, Hangul fillers ([`Transform::InvisibleRemoved`]) and C0/C1
//!    controls other than whitespace ([`Transform::ControlRemoved`]). Full-width forms
//!    (U+FF01..U+FF5E, U+3000) are counted as [`Transform::FullWidth`] here, before NFKC folds them.
//! 2. **NFKC** ([`Transform::Nfkc`]: characters with a compatibility or canonical decomposition,
//!    full-width ones excluded). Folds math alphanumerics, circled letters, Kangxi radicals, ...
//! 3. **Confusables** ([`Transform::Confusable`]): Cyrillic/Greek look-alikes (`data/confusables.tsv`)
//!    become Latin inside words (letter/digit runs) that also contain Latin letters, and in words
//!    of 2+ look-alikes when every Greek/Cyrillic letter of the message is a look-alike (`РАУРАL`).
//!    Genuine Russian or Greek text is left alone; Han is never folded.
//! 4. **Corpus masks** ([`Transform::CorpusMaskFolded`], case-sensitive, so before case folding):
//!    the corpora hide digits and contacts in different ways; all become the same placeholders:
//!    * `DIGIT` -> `<num>`, `URL` -> `<url>` anywhere (also glued, `DIGITDIGIT`);
//!    * in messages containing Han only (the FBS corpus; in English these are real words):
//!      `CELLPHONE`, `PHONE`, `HOTLINE`, `WECHAT` -> `<phone>`; `NAME`, `PLACE`, `BANK` are
//!      removed (a real message has a name there, which carries no spam signal); `QQ` stays `qq`;
//!    * `x`/`X` digit masks: an ASCII token made of x's and digits with at least two x's
//!      (`9717XXXX01`), a run of 4+ x's, an upper-case `XX`/`XXX`, or x's next to a Han character
//!      (`x月x号`, `满xxx元`) -> `<phone>` when it stands for 7+ digits, else `<num>`. Lower-case
//!      `xx`/`xxx` in Latin text are kept: in the English ham corpora they are kisses.
//! 5. **Case folding** ([`Transform::CaseFold`]): Unicode lower case.
//! 6. **Traditional -> Simplified** ([`Transform::TraditionalToSimplified`], characters changed):
//!    `zhconv` (zh-Hans) on runs of Han characters only; skipped when no character can start a
//!    change (a table built from zhconv's own rules).
//! 7. **URL / e-mail masking** ([`Transform::UrlMasked`], [`Transform::EmailMasked`]): scheme
//!    URLs (also broken `http //x.com`, `hxxp`), `www.` hosts, bare domains with common TLDs
//!    (ambiguous two-letter TLDs such as `.in`, `.me`, `.it` only with a path), and glued ones
//!    (`httptinyurlcomabc`). [`Masked::value`] is the lower-case host (URL) or domain (e-mail).
//! 8. **Separator collapsing** ([`Transform::SeparatorCollapsed`], separators removed): junk
//!    between single characters is removed: `加.微.信`, `加*V*信`, `v-x`, `w e i x i n`. A chain of
//!    single characters (and Han words at its ends) joined by junk (spaces, `.*-_|/~+#` ...,
//!    emoji; not clause punctuation such as `,!?;:。、`) collapses when it holds a Han character and
//!    2+ units, or 3+ ASCII units with some punctuation, or 4+ ASCII units separated by spaces
//!    only, or exactly two letters joined by `-*_|~+`.
//! 9. **Phone / number masking** ([`Transform::PhoneMasked`], [`Transform::NumberMasked`]):
//!    7+ digits with optional `+` and single space/dash separators -> `<phone>`; other runs of 4+
//!    digits (with `.`/`,` inside) -> `<num>`. Numbers of 1-3 digits are kept (`10p`, `£400`,
//!    `2mrw`, `5折`): they carry meaning and are not identifying. [`Masked::value`] is the digits.
//! 10. **Leetspeak** ([`Transform::Leetspeak`], characters changed): in ASCII tokens that start
//!     with a letter (or `$`), contain 2+ letters and only the digits 0 1 3 4 5 7: `0->o 1->i/l
//!     3->e 4->a 5->s 7->t @->a $->s` (`1` is `l` next to another `l`/`1`). A token that is
//!     letters followed by digits only folds just when it ends in 2+ equal digits (`fr33`; not
//!     `mp3`, `win10`). Tokens starting with a digit (`2mrw`, `10p`, `4g`) are kept, and so is an
//!     `@` with 3+ letters on both sides (`sharp@the`).
//! 11. **Keyword folding** ([`Transform::KeywordFolded`]): `data/keywords.tsv`, see [`crate::keywords`].
//! 12. **Whitespace folding** ([`Transform::WhitespaceFolded`]): whitespace runs -> one space, trim.
//!
//! When separator collapsing, leetspeak or keyword folding fired, a placeholder ended up glued
//! to an ASCII letter or digit (`com<phone>`), or a masked number took in a single digit that
//! could have chained to a neighbour (`13800138000 3`), stages 1-12 run again on the result (at
//! most four times, until nothing changes), since each can expose new work for the
//! others; this makes the output a
//! fixed point, so `normalize(&normalize(x).text).text == normalize(x).text`. Placeholders are
//! atomic for every stage. The output has at most `4 * chars + 16` characters. Never panics.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use crate::placeholder;
use crate::taxonomy::data_rows;

#[cfg(test)]
mod reference;

/// One kind of change `normalize` can make; serialised as snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    InvisibleRemoved,
    ControlRemoved,
    FullWidth,
    Nfkc,
    Confusable,
    CorpusMaskFolded,
    CaseFold,
    TraditionalToSimplified,
    UrlMasked,
    EmailMasked,
    SeparatorCollapsed,
    PhoneMasked,
    NumberMasked,
    Leetspeak,
    KeywordFolded,
    WhitespaceFolded,
}

impl Transform {
    pub const ALL: [Transform; 16] = [
        Transform::InvisibleRemoved,
        Transform::ControlRemoved,
        Transform::FullWidth,
        Transform::Nfkc,
        Transform::Confusable,
        Transform::CorpusMaskFolded,
        Transform::CaseFold,
        Transform::TraditionalToSimplified,
        Transform::UrlMasked,
        Transform::EmailMasked,
        Transform::SeparatorCollapsed,
        Transform::PhoneMasked,
        Transform::NumberMasked,
        Transform::Leetspeak,
        Transform::KeywordFolded,
        Transform::WhitespaceFolded,
    ];

    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Transform::InvisibleRemoved => "invisible_removed",
            Transform::ControlRemoved => "control_removed",
            Transform::FullWidth => "full_width",
            Transform::Nfkc => "nfkc",
            Transform::Confusable => "confusable",
            Transform::CorpusMaskFolded => "corpus_mask_folded",
            Transform::CaseFold => "case_fold",
            Transform::TraditionalToSimplified => "traditional_to_simplified",
            Transform::UrlMasked => "url_masked",
            Transform::EmailMasked => "email_masked",
            Transform::SeparatorCollapsed => "separator_collapsed",
            Transform::PhoneMasked => "phone_masked",
            Transform::NumberMasked => "number_masked",
            Transform::Leetspeak => "leetspeak",
            Transform::KeywordFolded => "keyword_folded",
            Transform::WhitespaceFolded => "whitespace_folded",
        }
    }
}

/// What a placeholder in the normalised text stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    Url,
    Email,
    Phone,
    Number,
}

/// One masked span: URL -> lower-case host, e-mail -> lower-case domain, phone/number -> its digits
/// (phone keeps a leading `+`). Corpus masks (`XXXX`, `DIGIT`) have no value and are not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masked {
    pub kind: MaskKind,
    pub value: String,
}

/// Result of [`normalize`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    pub original: String,
    pub text: String,
    /// How often each transform fired; transforms that did not fire are absent.
    pub transforms: BTreeMap<Transform, u32>,
    pub masked: Vec<Masked>,
}

impl Normalized {
    /// How often `transform` fired (0 if it did not).
    pub fn count(&self, transform: Transform) -> u32 {
        self.transforms.get(&transform).copied().unwrap_or(0)
    }
}

/// Counts per transform, indexed by the enum's declaration order.
#[derive(Default)]
struct Tally {
    counts: [u32; Transform::ALL.len()],
    /// A masked number span held separators (`138 0013 8000`): the units that separator
    /// collapsing saw have merged, so another run may collapse differently (idempotence).
    merged_units: bool,
}

impl Tally {
    fn add(&mut self, transform: Transform, n: u32) {
        self.counts[transform as usize] = self.counts[transform as usize].saturating_add(n);
    }

    fn get(&self, transform: Transform) -> u32 {
        self.counts[transform as usize]
    }

    fn into_map(self) -> BTreeMap<Transform, u32> {
        // Inserted in key order: `collect` would first gather, sort and then bulk-build.
        let mut map = BTreeMap::new();
        for t in Transform::ALL {
            if self.get(t) > 0 {
                map.insert(t, self.get(t));
            }
        }
        map
    }
}

/// Extra pipeline runs allowed when a run exposed new work for an earlier stage. Chains of three
/// occur (`XXXXhttp://$扣扣`: the keyword fold exposes leetspeak, which exposes a URL, whose
/// placeholder exposes an x-mask); each run that changes nothing ends the loop, so a higher
/// cap costs ordinary messages nothing and bounds adversarial ones.
const MAX_RERUNS: usize = 4;

/// One message that reaches every stage of [`normalize`]: invisible and control characters,
/// full-width and compatibility forms, Cyrillic look-alikes, a corpus mask, capitals,
/// Traditional characters, a URL, an e-mail address, letters and Han characters with separators
/// between them, a phone number, a four-digit number, leetspeak, a homophone keyword and runs of spaces.
pub const WARM_UP_TEXT: &str = "\u{200B}\u{7}Ｆｒｅｅ ﬁle \u{0430}ccount XXXX FREE 澳門線上賭場 \
    http://warm-up.example.top/a a@example.com f.r.e.e 加 薇 信 13800138000 fr33 威信   end 8888";

/// Builds everything [`normalize`] builds on first use (character tables, the
/// Traditional-to-Simplified change table and converter, look-alike and keyword tables, URL
/// patterns: a few milliseconds) by normalising one message that reaches every stage, so that a
/// service pays that cost when it starts instead of on its first message.
pub fn warm_up() {
    let _ = normalize(WARM_UP_TEXT);
}

/// Normalises one message; see the module docs for the stages.
pub fn normalize(text: &str) -> Normalized {
    let mut tally = Tally::default();
    let mut masked = Vec::new();
    let mut current = run_pipeline(text, &mut tally, &mut masked);
    let mut rerun = needs_rerun(&tally)
        || masked_in_foreign_text(&tally, &current)
        || glued_placeholder_needs_rerun(&current);
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
            || glued_placeholder_needs_rerun(&current);
    }
    Normalized {
        original: text.to_owned(),
        text: current,
        transforms: tally.into_map(),
        masked,
    }
}

/// Runs `stage` and, when it fired, NFKC again: a folded or removed character can leave a
/// combining mark on a new base (`comе\u{301}` becomes `come\u{301}`; `かNAME\u{3099}加` becomes
/// `か\u{3099}加`; `T\u{308}`, which has no composed capital, becomes `t\u{308}`, which composes
/// to `ẗ`), which a second run would compose (idempotence). Plain text has no marks.
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
    nfkc_again(text, tally)
}

/// NFKC of text that went through NFKC before and was changed since.
fn nfkc_again(text: String, tally: &mut Tally) -> String {
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
}

/// Whether a run masked a number or web address in text with Greek or Cyrillic letters: the
/// confusable stage judged the word the span sat in with the span's characters, and a second run
/// judges the parts on either side of the placeholder (`ее1111か1` is one word without Latin;
/// in `ее<num>か1`, `ее` alone is disguised Latin). Rare in real messages; the rerun makes the
/// output a fixed point.
fn masked_in_foreign_text(tally: &Tally, text: &str) -> bool {
    let masked = [
        Transform::NumberMasked,
        Transform::PhoneMasked,
        Transform::UrlMasked,
        Transform::EmailMasked,
    ]
    .iter()
    .any(|&t| tally.get(t) > 0);
    masked && has_greek_or_cyrillic(text)
}

/// Whether a glued placeholder ([`has_glued_placeholder`]) in the output of a run that no other
/// rerun condition holds for changes anything on another run. Of all stages, only corpus masks
/// and URL detection read ASCII words across a placeholder: word units count it as word
/// characters (like the digits it replaced), number masking, leetspeak and keyword folding ran
/// after it was put in, and the other stages do not look at ASCII words. So when those two
/// leave the text as it is, so does the whole pipeline; a full run is spared (a third of the
/// reruns on the corpora). The equivalence tests check this against the reference pipeline,
/// which always reruns.
fn glued_placeholder_needs_rerun(text: &str) -> bool {
    if !has_glued_placeholder(text) {
        return false;
    }
    let mut tally = Tally::default();
    let folded = fold_corpus_masks(text.to_owned(), &mut tally);
    if tally.get(Transform::CorpusMaskFolded) > 0 {
        return true;
    }
    mask_web(folded, &mut tally, &mut Vec::new());
    tally.get(Transform::UrlMasked) > 0 || tally.get(Transform::EmailMasked) > 0
}

/// A placeholder touching an ASCII letter or digit (`com<phone>`, `xx1<url>`): the ASCII word
/// boundary that URL detection and corpus masks saw has moved, so another run may find more.
///
/// Other neighbours (`<num>.`, `2/22/<num>`, `rs.<num>`, a third of all corpus messages) need
/// no rerun: of the stages before number masking, only URL detection reads across a
/// non-alphanumeric character, and no URL alternative matches `<` or `>` or can start at one,
/// while the digits the placeholder replaced were outside every URL it found; with the
/// placeholder it can only find less, and it found nothing there. (The reference pipeline also
/// reruns for `.`, `@` and `/`; the equivalence tests check that this changes nothing.)
fn has_glued_placeholder(text: &str) -> bool {
    // Bytes, not chars: the byte next to a character is ASCII only if the character is.
    let bytes = text.as_bytes();
    let alnum_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    memchr::memchr_iter(b'<', bytes).any(|i| {
        is_placeholder_at(text, i)
            .is_some_and(|len| (i > 0 && alnum_at(i - 1)) || alnum_at(i + len))
    })
}

fn run_pipeline(text: &str, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    // Plain text has nothing for stages 1-3 and only ASCII upper case for stage 5; corpus masks
    // only put ASCII in, so the text stays plain until then. Text that is plain but for
    // full-width punctuation (most Chinese messages) becomes plain in stages 1-3.
    let full_width = plain_full_width_count(text);
    let plain = full_width.is_some();
    let s = if let Some(full_width) = full_width.filter(|&n| n > 0) {
        tally.add(Transform::FullWidth, full_width);
        fold_plain_full_width(text)
    } else if plain {
        text.to_owned()
    } else {
        let s = strip_invisible(text, tally);
        let s = apply_nfkc(s, tally);
        then_nfkc_if_fired(s, tally, Transform::Confusable, fold_confusables)
    };
    let s = if plain {
        let s = fold_corpus_masks(s, tally);
        fold_ascii_case(s, tally)
    } else {
        let s = then_nfkc_if_fired(s, tally, Transform::CorpusMaskFolded, fold_corpus_masks);
        fold_case_then_nfkc(s, tally)
    };
    let s = simplify_han(s, tally);
    let s = mask_web(s, tally, masked);
    let s = collapse_separators(s, tally);
    let s = mask_numbers(s, tally, masked);
    let s = fold_leetspeak(s, tally);
    let s = fold_keywords(s, tally);
    fold_whitespace(s, tally)
}

// ---------------------------------------------------------------------------------------------
// Character classes

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

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Characters stage 1 removes: invisibles and non-whitespace controls.
fn is_stripped(c: char) -> bool {
    // Printable ASCII and the main CJK block, most characters, are neither.
    if (' '..='~').contains(&c) || ('\u{4E00}'..='\u{9FFF}').contains(&c) {
        return false;
    }
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

/// Text made only of printable ASCII, tab, line breaks, [`is_plain_cjk`] and [`is_plain_other`]
/// characters, as most messages are: nothing in it is invisible, a control, full-width, Greek or Cyrillic, changed
/// by NFKC (nor by its quick check) or cased except ASCII letters.
#[cfg(test)]
fn is_plain(text: &str) -> bool {
    plain_full_width_count(text) == Some(0)
}

/// How many full-width forms keep `text` from being plain, if nothing else does: `Some(0)` for
/// plain text, `None` for text that needs stages 1-3. One pass for both questions.
fn plain_full_width_count(text: &str) -> Option<u32> {
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
fn has_ascii_control(bytes: &[u8]) -> bool {
    count_bytes(bytes, |b| {
        (b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r')) | (b == 0x7F)
    }) > 0
}

fn is_plain_char(c: char) -> bool {
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
fn is_plain_other(c: char) -> bool {
    u32::from(c) < 0x10000 && bit(&PLAIN_OTHER.plain, u32::from(c))
}

/// Characters with the plain properties but for a canonical decomposition (`é`, `ǐ`): NFKC
/// maps them onto themselves, but counts them when it runs ([`plain_full_width_count`]).
fn is_plain_composed(c: char) -> bool {
    u32::from(c) < 0x10000 && bit(&PLAIN_OTHER.composed, u32::from(c))
}

/// Bit sets over U+0000..U+FFFF for [`is_plain_other`] and [`is_plain_composed`].
struct PlainOther {
    plain: Vec<u64>,
    composed: Vec<u64>,
}

static PLAIN_OTHER: LazyLock<PlainOther> = LazyLock::new(|| {
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
fn has_plain_properties(c: char) -> bool {
    !is_stripped(c)
        && !is_full_width(c)
        && !is_greek_or_cyrillic(c)
        && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes
        && unicode_normalization::char::canonical_combining_class(c) == 0
        && c.to_lowercase().eq(std::iter::once(c))
}

/// Stages 1-3 for text that is plain but for full-width forms ([`plain_full_width_count`]), as
/// Chinese text with `，！：` is: NFKC maps each onto ASCII ([`full_width_to_ascii`]); every
/// other character is plain, so NFKC changes nothing else and nothing composes (all are
/// starters, none part of a composition with another), and stage 1 only counts them. The result
/// is plain.
fn fold_plain_full_width(text: &str) -> String {
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
fn full_width_to_ascii(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        c => c,
    }
}

/// Han and common CJK punctuation and quotes; the tests check the properties [`is_plain`]
/// promises for every one of them.
fn is_plain_cjk(c: char) -> bool {
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
const SCAN_BLOCK: usize = 16;

/// Position of the first byte for which `pred` holds, found a block at a time (the test of a
/// block vectorises; a byte-by-byte search with an early exit does not).
fn find_byte(bytes: &[u8], pred: impl Fn(u8) -> bool) -> Option<usize> {
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
fn any_byte_pair(bytes: &[u8], pred: impl Fn(u8, u8) -> bool) -> bool {
    any_byte_triple(bytes, |b0, b1, _| pred(b0, b1))
}

/// Whether `pred(b0, b1, b2)` holds for some window of three consecutive bytes starting in
/// `bytes` (windows at the end are padded with 0).
fn any_byte_triple(bytes: &[u8], pred: impl Fn(u8, u8, u8) -> bool) -> bool {
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
fn find_byte_triple(bytes: &[u8], from: usize, pred: impl Fn(u8, u8, u8) -> bool) -> Option<usize> {
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

// ---------------------------------------------------------------------------------------------
// 1. Invisible and control characters

fn strip_invisible(text: &str, tally: &mut Tally) -> String {
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
            invisible += 1;
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
fn is_nfkc_stable(c: char) -> bool {
    matches!(c,
        '\u{3001}'..='\u{3002}'
        | '\u{3008}'..='\u{3011}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}')
}

/// `is_nfkc_quick(text.chars())`, without the table lookups for stable characters: the quick
/// check treats a starter that is NFKC_QC=Yes exactly like ASCII, so they are passed as `a`.
fn is_nfkc_quick_fast(text: &str) -> IsNormalized {
    is_nfkc_quick(
        text.chars()
            .map(|c| if is_nfkc_stable(c) { 'a' } else { c }),
    )
}

/// `text.nfkc()`, normalising only the runs between stable characters: a stable character
/// neither changes nor composes, reorders or decomposes with its neighbours, so NFKC of the
/// text is the concatenation of NFKC of the runs and the stable characters themselves.
fn nfkc_between_stable(text: &str) -> String {
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
    let mut table: Vec<(char, char)> = data_rows(include_str!("../data/confusables.tsv"))
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

/// Whether `text` holds a UTF-8 lead byte of U+0240..U+053F or one of the two capitals outside
/// that range whose small letter is in it (Ohm sign, Latin Ɬ): a superset of the characters
/// [`is_greek_or_cyrillic`] accepts; Chinese (lead bytes E3..E9) and ASCII fail it at once.
fn has_greek_or_cyrillic(text: &str) -> bool {
    may_hold_greek_or_cyrillic(text) && text.chars().any(is_greek_or_cyrillic)
}

fn may_hold_greek_or_cyrillic(text: &str) -> bool {
    // U+2126 is E2 84 A6, U+A7AC is EA 9E AC.
    any_byte_triple(text.as_bytes(), |b0, b1, b2| {
        (b0.wrapping_sub(0xC9) <= 0xD4 - 0xC9)
            | (b0 == 0xE2 && b1 == 0x84 && b2 == 0xA6)
            | (b0 == 0xEA && b1 == 0x9E && b2 == 0xAC)
    })
}

fn is_latin_letter(c: char) -> bool {
    let in_range = |c: char| {
        c.is_ascii_alphabetic() || (matches!(c, '\u{00C0}'..='\u{024F}') && c.is_alphabetic())
    };
    in_range(c) || in_range(small(c))
}

fn fold_confusables(text: String, tally: &mut Tally) -> String {
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
enum CorpusMask {
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
fn corpus_mask(
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
fn corpus_mask_candidates(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
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
fn is_corpus_mask_start(b0: u8, b1: u8) -> bool {
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
fn is_all_q(token: &str) -> bool {
    token.bytes().all(|b| b == b'Q')
}

/// Whether the message holds one of `xXDUCHWPNB`: corpus masks have always skipped messages
/// without any (a `QQ` run alone is the brand name anyway), which only a run of `Q`s can tell,
/// since every other run that folds holds one of them itself.
fn has_corpus_mask_letter(text: &str) -> bool {
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
fn may_be_corpus_mask(token: &str) -> bool {
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
fn corpus_words(token: &str, has_han: &mut impl FnMut() -> bool) -> Option<u32> {
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
fn corpus_word_split(
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
fn x_mask(token: &str, before: Option<char>, after: Option<char>) -> Option<&'static str> {
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

// ---------------------------------------------------------------------------------------------
// 5. Case folding

fn fold_case(text: String, tally: &mut Tally) -> String {
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
fn fold_case_then_nfkc(text: String, tally: &mut Tally) -> String {
    let before = tally.get(Transform::CaseFold);
    let text = fold_case(text, tally);
    let has_diacritic = || any_byte_pair(text.as_bytes(), |b0, _| b0 & 0xFE == 0xCC);
    if tally.get(Transform::CaseFold) == before || !has_diacritic() {
        return text;
    }
    nfkc_again(text, tally)
}

/// Case folding of text whose only cased characters are ASCII letters.
fn fold_ascii_case(mut text: String, tally: &mut Tally) -> String {
    let upper = count_ascii_upper(text.as_bytes());
    if upper > 0 {
        text.make_ascii_lowercase();
        tally.add(Transform::CaseFold, upper);
    }
    text
}

fn count_ascii_upper(bytes: &[u8]) -> u32 {
    count_bytes(bytes, |b| b.wrapping_sub(b'A') < 26)
}

/// Number of bytes for which `pred` holds, summed in byte-sized counters over blocks of 255
/// bytes: that vectorises, a per-byte `usize` count did not.
#[inline(always)]
fn count_bytes(bytes: &[u8], pred: impl Fn(u8) -> bool) -> u32 {
    bytes
        .chunks(255)
        .map(|chunk| u32::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(pred(b)))))
        .sum()
}

/// Whether lower-casing changes `c`; ASCII and Han (most characters) skip the Unicode table.
fn changes_case(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    !is_han(c) && !is_caseless(c) && !c.to_lowercase().eq(std::iter::once(c))
}

/// Blocks without case that Chinese messages are full of (general punctuation, CJK symbols,
/// kana, emoji); spares them the case table search. The tests check every character.
fn is_caseless(c: char) -> bool {
    matches!(c,
        '\u{2000}'..='\u{206F}'
        | '\u{3000}'..='\u{30FF}'
        | '\u{1F000}'..='\u{1FAFF}')
}

// ---------------------------------------------------------------------------------------------
// 6. Traditional -> Simplified

fn simplify_han(text: String, tally: &mut Tally) -> String {
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
struct HansChanges {
    /// A bit per main-block character: a changing rule starts with it.
    starts: Vec<u64>,
    /// A bit per main-block character: a rule changes it on its own.
    singles: Vec<u64>,
    /// A bit per [`pair_hash`] of the first two characters of each changing rule of 2+
    /// characters: a pair whose bit is clear starts none of them.
    phrase_pairs: Vec<u64>,
}

const MAIN_CJK: std::ops::RangeInclusive<u32> = 0x4E00..=0x9FFF;

static HANS_CHANGES: LazyLock<HansChanges> = LazyLock::new(|| {
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
const PAIR_HASH_MASK: u32 = 0xFFFF;

fn pair_hash(first: char, second: char) -> u32 {
    (u32::from(first).wrapping_mul(0x9E37) ^ u32::from(second)) & PAIR_HASH_MASK
}

/// `c - U+4E00` for a character of the main CJK block.
fn main_cjk_index(c: char) -> Option<u32> {
    u32::from(c)
        .checked_sub(*MAIN_CJK.start())
        .filter(|&i| i <= MAIN_CJK.end() - MAIN_CJK.start())
}

fn set_bit(bits: &mut [u64], i: u32) {
    bits[i as usize / 64] |= 1 << (i % 64);
}

fn bit(bits: &[u64], i: u32) -> bool {
    bits[i as usize / 64] >> (i % 64) & 1 != 0
}

/// Whether the zh-Hans converter may change a run of Han in `text`: a Han character outside
/// the main block (rare; not in the table), one that a rule changes alone, or the first two
/// characters of a changing phrase. A run without any of them matches no changing rule.
fn may_simplify(text: &str) -> bool {
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
fn may_start_change(text: &str) -> bool {
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
    any_byte_triple(text.as_bytes(), |b0, b1, b2| {
        (b0 == b'@')
            | (b0 == b'/' && b1 == b'/')
            | (b0 == b'h' && b1 == b't' && b2 == b't')
            | (b0 == b'w' && b1 == b'w' && b2 == b'w')
            | (b0 == b'.' && b1.is_ascii_alphabetic())
    })
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

fn is_strong_junk(c: char) -> bool {
    matches!(c, '-' | '*' | '_' | '|' | '~' | '+')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    HanSingle,
    AsciiLetter,
    AsciiDigit,
    HanWord,
    Other,
}

#[derive(Debug, PartialEq, Eq)]
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

/// Whether ASCII text holds a chain of single units that [`chain_collapses`] may accept: three
/// or more, or two letters joined by `-*_|~+` only, each pair joined by separators without
/// clause punctuation or `..` ([`linkable`]). In ASCII text every chain link joins two single
/// units, length-1 runs of letters/digits, so without such a chain nothing collapses. (A change
/// of separator, which also ends a chain, is not looked at: that only lets more texts through.)
/// Singles are few: each is found with a block scan, and only the runs after it are looked at.
fn has_collapsible_ascii_chain(bytes: &[u8]) -> bool {
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
fn is_ascii_single_at(bytes: &[u8], i: usize) -> bool {
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    alnum(&bytes[i]) && (i == 0 || !alnum(&bytes[i - 1])) && !bytes.get(i + 1).is_some_and(alnum)
}

/// The first single ASCII letter/digit ([`is_ascii_single_at`]) at or after byte `from`: the
/// middle byte of a window found by a block scan (or the first byte).
fn next_ascii_single(bytes: &[u8], from: usize) -> Option<usize> {
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
fn next_ascii_run(bytes: &[u8], single: usize) -> Option<usize> {
    let offset = bytes[single + 1..]
        .iter()
        .position(u8::is_ascii_alphanumeric)?;
    Some(single + 1 + offset)
}

/// A vectorised necessary condition for [`has_collapsible_ascii_chain`]: some ASCII letter or
/// digit has none on either side.
fn has_ascii_single(bytes: &[u8]) -> bool {
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
fn may_have_link(text: &str) -> bool {
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
fn scanned_unit_kind((first, len, all_han): (char, usize, bool)) -> UnitKind {
    match (len, all_han) {
        (1, true) => UnitKind::HanSingle,
        (1, false) if first.is_ascii_alphanumeric() => UnitKind::AsciiLetter,
        (_, true) => UnitKind::HanWord,
        _ => UnitKind::Other,
    }
}

/// Whether units of kinds `a` and `b` may link: both single, or a Han word and a single Han
/// character.
fn may_link(a: UnitKind, b: UnitKind) -> bool {
    (a.is_single() && b.is_single())
        || matches!(
            (a, b),
            (UnitKind::HanWord, UnitKind::HanSingle) | (UnitKind::HanSingle, UnitKind::HanWord)
        )
}

/// Splits text into word units: maximal runs of non-separators, where a placeholder counts as
/// word characters (so `<num>元` is one unit, exactly like the `4558元` it was masked from).
fn word_units(text: &str) -> Vec<Unit> {
    if text.is_ascii() {
        ascii_word_units(text)
    } else {
        any_word_units(text)
    }
}

/// [`word_units`] of any text.
fn any_word_units(text: &str) -> Vec<Unit> {
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
fn ascii_word_units(text: &str) -> Vec<Unit> {
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
fn ascii_unit(text: &str, start: usize, end: usize, chars: usize) -> Unit {
    let first = text.as_bytes()[start];
    let kind = match chars {
        1 if first.is_ascii_alphabetic() => UnitKind::AsciiLetter,
        1 if first.is_ascii_digit() => UnitKind::AsciiDigit,
        _ => UnitKind::Other,
    };
    Unit { start, end, kind }
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

fn chain_collapses(text: &str, chain: &[Unit]) -> bool {
    let has_han = chain.iter().any(|u| u.kind.is_han());
    if has_han {
        return chain.len() >= 2;
    }
    let seps = || chain.windows(2).map(|w| &text[w[0].end..w[1].start]);
    let whitespace_only = seps().all(|s| s.chars().all(char::is_whitespace));
    let strong_only = seps().all(|s| s.chars().all(is_strong_junk));
    let letters_only = chain.iter().all(|u| u.kind == UnitKind::AsciiLetter);
    (chain.len() >= 3 && !whitespace_only)
        || chain.len() >= 4
        || (chain.len() == 2 && letters_only && strong_only)
}

fn collapse_separators(text: String, tally: &mut Tally) -> String {
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

// ---------------------------------------------------------------------------------------------
// 9. Phones and numbers

// The spans are those of the regex (leftmost-first)
//     (?P<phone>\+?[0-9](?:(?:\s+|-)?[0-9]){6,})|[0-9](?:[.,]?[0-9]){3,}
// found by a hand scanner: each repetition of either pattern can go on in at most one way, so
// the greedy match needs no backtracking. Any whitespace run counts as one separator:
// whitespace folding runs later.

/// Byte range of the first phone or number span starting at or after `from`.
fn next_number_span(text: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let is_start = |b: u8| (b == b'+') | (b.wrapping_sub(b'0') < 10);
    let mut p = from;
    loop {
        p += find_byte(&bytes[p..], is_start)?;
        if let Some(end) = phone_end(text, p).or_else(|| number_end(bytes, p)) {
            return Some((p, end));
        }
        // Neither pattern matches at the next digit of the same run either: its greedy match
        // would be one repetition shorter than the one that fell short here.
        let digit_run = bytes[p].is_ascii_digit();
        p += 1;
        while digit_run && bytes.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
    }
}

/// End of `\+?[0-9](?:(?:\s+|-)?[0-9]){6,}` matched at `start`.
fn phone_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let first_digit = start + usize::from(bytes[start] == b'+');
    if !bytes.get(first_digit).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut end = first_digit + 1;
    let mut repetitions = 0;
    loop {
        let after_space = end + leading_whitespace_len(&text[end..]);
        let digit_at = if after_space > end {
            after_space
        } else {
            end + usize::from(bytes.get(end) == Some(&b'-'))
        };
        if !bytes.get(digit_at).is_some_and(u8::is_ascii_digit) {
            break;
        }
        end = digit_at + 1;
        repetitions += 1;
    }
    (repetitions >= 6).then_some(end)
}

/// End of `[0-9](?:[.,]?[0-9]){3,}` matched at `start`.
fn number_end(bytes: &[u8], start: usize) -> Option<usize> {
    if !bytes[start].is_ascii_digit() {
        return None;
    }
    let mut end = start + 1;
    let mut repetitions = 0;
    loop {
        let digit_at = end + usize::from(matches!(bytes.get(end), Some(b'.' | b',')));
        if !bytes.get(digit_at).is_some_and(u8::is_ascii_digit) {
            break;
        }
        end = digit_at + 1;
        repetitions += 1;
    }
    (repetitions >= 3).then_some(end)
}

/// Whether masking the number span `text[start..end]`, which holds separators, can change what
/// separator collapsing does on another run: only a single digit at an edge of the span (`3` in
/// `13800138000 3`) could have linked, through separators, to a single unit outside it (the
/// other digit groups are longer units, which never link). Collapsing ran before masking, so
/// another run sees `<phone>` where it saw that digit (`13800138000\t3😀v*v`: the `3` took the
/// `v` into a chain that ended at the `*`; without it `v*v` collapses).
fn may_link_across(text: &str, start: usize, end: usize) -> bool {
    let span = &text.as_bytes()[start..end];
    let digits = span.strip_prefix(b"+").unwrap_or(span);
    let single_first = digits.len() > 1 && !digits[1].is_ascii_digit();
    let single_last = span.len() > 1 && !span[span.len() - 2].is_ascii_digit();
    (single_first && single_unit_before(&text[..start]))
        || (single_last && single_unit_after(&text[end..]))
}

/// Whether `text` ends with separators after a unit of one character.
fn single_unit_before(text: &str) -> bool {
    let rest = text.trim_end_matches(is_separator);
    rest.len() < text.len() && {
        let mut chars = rest.chars().rev();
        chars
            .next()
            .is_some_and(|c| is_han(c) || c.is_ascii_alphanumeric())
            && chars.next().is_none_or(is_separator)
    }
}

/// Whether `text` starts with separators before a unit of one character.
fn single_unit_after(text: &str) -> bool {
    let rest = text.trim_start_matches(is_separator);
    rest.len() < text.len() && {
        let mut chars = rest.chars();
        chars
            .next()
            .is_some_and(|c| is_han(c) || c.is_ascii_alphanumeric())
            && chars.next().is_none_or(is_separator)
    }
}

fn leading_whitespace_len(text: &str) -> usize {
    text.find(|c: char| !c.is_whitespace())
        .unwrap_or(text.len())
}

fn mask_numbers(text: String, tally: &mut Tally, masked: &mut Vec<Masked>) -> String {
    if count_bytes(text.as_bytes(), |b| b.wrapping_sub(b'0') < 10) < 4 {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    while let Some((start, end)) = next_number_span(&text, last) {
        let span = &text[start..end];
        out.push_str(&text[last..start]);
        last = end;
        // Sized up front: collecting a filter would regrow the string digit by digit.
        let mut digits = String::with_capacity(span.len());
        digits.extend(span.chars().filter(|c| c.is_ascii_digit() || *c == '+'));
        let digit_count = digits.bytes().filter(u8::is_ascii_digit).count();
        tally.merged_units |= digits.len() < span.len() && may_link_across(&text, start, end);
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
    if !has_letter_next_to_leet(text.as_bytes()) || !has_leet_token(text.as_bytes()) {
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

/// A vectorised necessary condition for [`has_leet_token`]: a folding token holds letters and
/// leet characters only, both kinds, so one of each stand side by side somewhere.
fn has_letter_next_to_leet(bytes: &[u8]) -> bool {
    // 0 1 3 4 5 7 as the digits 0..=7 but 2 and 6: fewer compares per lane.
    let is_leet = |b: u8| {
        ((b.wrapping_sub(b'0') < 8) & (b != b'2') & (b != b'6')) | (b == b'@') | (b == b'$')
    };
    any_byte_pair(bytes, |b0, b1| {
        (is_leet(b0) & b1.is_ascii_lowercase()) | (b0.is_ascii_lowercase() & is_leet(b1))
    })
}

/// Whether some token folds; checked first so that most messages (digits, no leetspeak) are
/// returned without building a copy. Only the tokens around leet characters are looked at: a
/// token without one never folds.
fn has_leet_token(bytes: &[u8]) -> bool {
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| leet_letter(b).is_some()) {
        let at = from + offset;
        let start = bytes[..at]
            .iter()
            .rposition(|&b| !is_leet_token_char(b))
            .map_or(0, |p| p + 1);
        let end = bytes[at..]
            .iter()
            .position(|&b| !is_leet_token_char(b))
            .map_or(bytes.len(), |len| at + len);
        let token = &bytes[start..end];
        if is_leet_token(token) && !is_at_address(token) {
            return true;
        }
        from = end;
    }
    false
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
fn fold_ascii_whitespace_runs(text: &str, out: &mut String) -> u32 {
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
fn starts_other_whitespace(b0: u8, b1: u8, b2: u8) -> bool {
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
fn is_whitespace_folded(text: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;
    use unicode_normalization::char::{canonical_combining_class, decompose_canonical};

    use super::*;

    #[test]
    fn warm_up_text_reaches_every_stage() {
        let warmed = normalize(WARM_UP_TEXT);
        let missing: Vec<&str> = Transform::ALL
            .iter()
            .filter(|&&t| warmed.count(t) == 0)
            .map(|t| t.as_str())
            .collect();
        assert!(missing.is_empty(), "warm-up text misses {missing:?}");
        warm_up();
    }

    fn assert_same_as_reference(text: &str) {
        let (fast, slow) = (normalize(text), reference::normalize(text));
        // Compare without printing the message itself: corpus lines are real SMS.
        assert!(
            fast == slow,
            "normalize differs from the reference for a message of {} bytes: {:?} vs {:?}",
            text.len(),
            (&fast.transforms, fast.masked.len()),
            (&slow.transforms, slow.masked.len())
        );
    }

    /// Placeholders glued to words, where another run does or does not find more.
    #[test]
    fn glued_placeholders_rerun_exactly_when_the_reference_finds_more() {
        for text in [
            "XX\u{FF11}http://a",
            "xxxx1234abc",
            "abc.com1234",
            "call13800138000now",
            "ngn12345 credited",
            "rs.1000 only, 2/22/2024.",
            "www1234com",
            "x1234 xx5678",
        ] {
            assert_same_as_reference(text);
            let once = normalize(text).text;
            assert_eq!(normalize(&once).text, once, "{text:?}");
        }
    }

    fn datasets_root() -> PathBuf {
        std::env::var_os("SMSGUARD_DATASETS").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"),
            PathBuf::from,
        )
    }

    /// `text` of every `label<TAB>text` line of every corpus's `dev.tsv`.
    fn dev_messages() -> Vec<String> {
        let Ok(dirs) = std::fs::read_dir(datasets_root()) else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        for dir in dirs.flatten() {
            if let Ok(tsv) = std::fs::read_to_string(dir.path().join("dev.tsv")) {
                messages.extend(
                    tsv.lines()
                        .filter_map(|line| line.split_once('\t'))
                        .map(|(_, text)| text.to_owned()),
                );
            }
        }
        messages
    }

    #[test]
    fn matches_reference_on_every_corpus_dev_line() {
        let messages = dev_messages();
        if messages.is_empty() {
            eprintln!(
                "no corpora at {}; reference equivalence checked on generated text only",
                datasets_root().display()
            );
        }
        for message in &messages {
            assert_same_as_reference(message);
            // Also the second pass, which takes the fast paths for already normalised text.
            assert_same_as_reference(&normalize(message).text);
        }
    }

    #[test]
    fn matches_reference_on_tricky_snippets() {
        let snippets = [
            "",
            "I'm a u r 2 b",
            "Ｗｅｉｘｉｎ：１３８００１３８０００",
            "е\u{301}\u{302}a\u{316}漢字，\u{3099}か\u{309A}",
            "ＰＡＹＰＡＬ РАУРАL",
            "x月x号 XXXX 9717XXXX01 DIGITDIGIT CELLPHONE 加NAME",
            "Ⓐⓑ 𝐀𝐁 ﬁ ㈱ ⅷ",
            "w e i x i n · v-x 加.微.信",
            "QQQQ",
            "QQQQ Dad",
            "QQNAME 加",
            "£5 €３ ǐ，の か\u{3099}",
            "café ok",
            "u r a b, v-x, a, b, c. w.e.i a..b..c I'm a u r 2 x_y q - r",
            "加 微信 · 好 的, a é b",
            "v <num> 加 I’m a",
            "café １",
            "你好QQQQ",
            "你好QQQQ D",
            "你好NAMEQQ x QQQQ",
            "加QQBANKQQ xx HOTLINEQQ",
            "+86 138 0013 8000, 1.234,5 12-34-567",
        ];
        for snippet in snippets {
            assert_same_as_reference(snippet);
        }
    }

    fn mixed_script_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "I", "u", "x", "X", "XX", "DIGIT", "NAME", "QQ", "1", "3", "0", "@", "$", " ",
            ".", "-", "*", "'", "\n", "<num>", "<url>", "www.", "http://", ".com", "/a", "е", "Р",
            "λ", "и", "é", "e\u{301}", "\u{301}", "\u{316}", "\u{200b}", "\u{3000}", "Ｖ", "１",
            "，", "。", "、", "「", "加", "微", "信", "發", "體", "漢", "丽", "\u{F900}", "⼀",
            "㈱", "ﬁ", "😀", "\u{FE0F}", "か", "\u{3099}", "ｶ", "\u{FF9E}", "Ⓐ", "£", "ǐ", "ß",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn matches_reference_on_arbitrary_text(text in any::<String>()) {
            assert_same_as_reference(&text);
        }

        #[test]
        fn matches_reference_on_mixed_script_text(text in mixed_script_text()) {
            assert_same_as_reference(&text);
        }

        /// Arbitrary strings seldom hold corpus masks, placeholders or combining marks next to
        /// each other; these pieces do (they found `かNAME\u{3099}加`).
        #[test]
        fn idempotent_on_mixed_script_text(text in mixed_script_text()) {
            let once = normalize(&text).text;
            prop_assert_eq!(normalize(&once).text, once);
        }
    }

    fn all_chars() -> impl Iterator<Item = char> {
        (0..=u32::from(char::MAX)).filter_map(char::from_u32)
    }

    fn number_like_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "0", "1", "5", "9", "12", "+", "-", ".", ",", " ", "  ", "\n", "\u{3000}", "\u{a0}",
            "a", "x", "元", "<num>", "--", "+8", "://", "@",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
    }

    /// Pieces of URLs, e-mails and numbers, to check where a placeholder next to punctuation
    /// needs another run.
    fn url_like_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "http",
            "://",
            "www",
            ".",
            "com",
            "in",
            "co",
            "/",
            "@",
            "abc",
            "x",
            "xx",
            "1",
            "12",
            "1234",
            "13800138000",
            "+",
            "-",
            ",",
            ":",
            " ",
            "<num>",
            "<url>",
            "<phone>",
            "加",
            "A",
            "X",
            "?",
            "=",
        ]);
        prop::collection::vec(pieces, 0..30).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn matches_reference_on_number_like_text(text in number_like_text()) {
            assert_same_as_reference(&text);
        }

        #[test]
        fn matches_reference_on_url_like_text(text in url_like_text()) {
            assert_same_as_reference(&text);
        }
    }

    /// ASCII text with what splits it into word units: letters, digits, separators,
    /// apostrophes and placeholders (whole and broken).
    fn ascii_unit_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "b", "u", "1", "22", "abc", "'", " ", "  ", "-", ".", "*", "<num>", "<url>", "<",
            ">", "num", "\t", "i'm", "x",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|pieces| pieces.concat())
    }

    /// [`has_collapsible_ascii_chain`] by its definition, on the alternating runs of letters/
    /// digits and other bytes: consecutive runs of length 1 linked by separator runs without
    /// clause punctuation or `..`, three or more, or two letters linked by `-*_|~+` only.
    fn collapsible_chain_by_runs(bytes: &[u8]) -> bool {
        let mut runs: Vec<&[u8]> = bytes
            .chunk_by(|a, b| a.is_ascii_alphanumeric() == b.is_ascii_alphanumeric())
            .collect();
        if runs
            .first()
            .is_some_and(|run| !run[0].is_ascii_alphanumeric())
        {
            runs.remove(0);
        }
        // runs[0], runs[2], ... are letter/digit runs, runs[1], runs[3], ... separators.
        let units: Vec<&[u8]> = runs.iter().copied().step_by(2).collect();
        let seps: Vec<&[u8]> = runs.iter().copied().skip(1).step_by(2).collect();
        let clean = |sep: &[u8]| {
            !sep.iter().any(|&b| is_clause_punct(char::from(b)))
                && !sep.windows(2).any(|w| w == b"..")
        };
        let (mut len, mut letters, mut strong) = (0, true, true);
        for (i, unit) in units.iter().enumerate() {
            let linked = len > 0 && unit.len() == 1 && clean(seps[i - 1]);
            if linked {
                len += 1;
                letters &= unit[0].is_ascii_alphabetic();
                strong &= seps[i - 1].iter().all(|&b| is_strong_junk(char::from(b)));
            } else {
                (len, letters, strong) = (
                    usize::from(unit.len() == 1),
                    unit[0].is_ascii_alphabetic(),
                    true,
                );
            }
            if len >= 3 || (len == 2 && letters && strong) {
                return true;
            }
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn ascii_word_units_match_the_general_split(text in ascii_unit_text()) {
            prop_assert_eq!(ascii_word_units(&text), any_word_units(&text));
        }

        #[test]
        fn collapsible_chains_are_found_as_defined(
            text in "[ab1 .,*_|~+-]{0,40}|[a-z ]{0,60}|([a-z]{1,3} ){0,12}|([ab1]{1,2}[ .-]{1,2}){0,12}"
        ) {
            prop_assert_eq!(
                has_collapsible_ascii_chain(text.as_bytes()),
                collapsible_chain_by_runs(text.as_bytes())
            );
        }
    }

    #[test]
    fn stripped_fast_paths_agree_with_the_definition() {
        for c in all_chars() {
            let by_definition = is_invisible(c) || (c.is_control() && !c.is_whitespace());
            assert_eq!(is_stripped(c), by_definition, "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn hans_prefilter_flags_every_main_block_character_the_converter_changes() {
        let converter = zhconv::get_builtin_converter(zhconv::Variant::ZhHans);
        for c in MAIN_CJK.filter_map(char::from_u32) {
            let alone = c.to_string();
            if converter.convert(&alone) != alone {
                assert!(may_simplify(&alone), "{:04X}", u32::from(c));
            }
        }
        for (from, to) in zhconv::tables::expand_table(zhconv::tables::ZH_HANS_TABLE) {
            if from != to && from.chars().all(is_han) {
                assert!(may_simplify(&from), "{from}");
            }
        }
        assert!(!may_simplify("你好，我们的电话是多少"));
    }

    #[test]
    fn every_corpus_word_starts_a_candidate() {
        for (word, _, _) in CORPUS_WORDS {
            let b = word.as_bytes();
            assert!(is_corpus_mask_start(b[0], b[1]), "{word}");
        }
    }

    #[test]
    fn lead_bytes_e4_to_e9_are_plain() {
        let not_plain = ('\u{4000}'..='\u{9FFF}').find(|&c| !is_plain_char(c));
        assert_eq!(not_plain, None);
    }

    #[test]
    fn han_is_exactly_its_documented_blocks() {
        let blocks = [
            0x3400..=0x4DBF,
            0x4E00..=0x9FFF,
            0xF900..=0xFAFF,
            0x20000..=0x2FA1F,
            0x30000..=0x3134F,
        ];
        for c in all_chars() {
            let in_block = blocks.iter().any(|b| b.contains(&u32::from(c)));
            assert_eq!(is_han(c), in_block, "{:04X}", u32::from(c));
        }
    }

    #[test]
    fn stable_characters_are_untouched_by_nfkc_and_never_compose() {
        let mut composition_parts = Vec::new();
        for c in all_chars() {
            let mut parts = Vec::new();
            decompose_canonical(c, |d| parts.push(d));
            // Singleton decompositions (U+2329 -> U+3008) are never recomposed; only characters
            // with a decomposition of 2+ parts are composites whose parts may compose.
            if parts.len() >= 2 {
                composition_parts.extend(parts);
            }
        }
        for c in all_chars().filter(|&c| is_nfkc_stable(c)) {
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
            assert_eq!(
                is_nfkc_quick(std::iter::once(c)),
                IsNormalized::Yes,
                "{c:?}"
            );
            assert!(!has_decomposition(c), "{c:?}");
            assert!(!composition_parts.contains(&c), "{c:?}");
        }
    }

    #[test]
    fn plain_characters_need_no_early_stage() {
        let plain = all_chars().filter(|&c| is_plain(c.encode_utf8(&mut [0; 4])));
        for c in plain {
            assert!(
                !is_stripped(c) && !is_full_width(c) && !is_greek_or_cyrillic(c),
                "{c:?}"
            );
            assert_eq!(
                is_nfkc_quick(std::iter::once(c)),
                IsNormalized::Yes,
                "{c:?}"
            );
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
            let lower_changes = !c.to_lowercase().eq(std::iter::once(c));
            assert_eq!(lower_changes, c.is_ascii_uppercase(), "{c:?}");
        }
    }

    #[test]
    fn full_width_forms_fold_to_their_nfkc_ascii() {
        for c in all_chars().filter(|&c| is_full_width(c)) {
            let ascii = full_width_to_ascii(c);
            assert!(ascii != c && is_plain_char(ascii), "{c:?}");
            assert!(c.to_string().nfkc().eq(std::iter::once(ascii)), "{c:?}");
        }
    }

    #[test]
    fn caseless_characters_have_no_lower_case() {
        for c in all_chars().filter(|&c| is_caseless(c)) {
            assert!(c.to_lowercase().eq(std::iter::once(c)), "{c:?}");
        }
    }

    #[test]
    fn whitespace_prefilter_sees_every_whitespace_but_the_space() {
        for c in all_chars().filter(|&c| c.is_whitespace() && c != ' ') {
            let mut utf8 = [0; 4];
            c.encode_utf8(&mut utf8);
            assert!(starts_other_whitespace(utf8[0], utf8[1], utf8[2]), "{c:?}");
        }
    }

    #[test]
    fn lower_casing_exposes_nfkc_work_only_through_combining_diacritics() {
        let diacritic = |c: char| ('\u{300}'..='\u{36F}').contains(&c);
        // Every mark that ends a canonical decomposition: the candidates for composing.
        let seconds: std::collections::BTreeSet<char> = all_chars()
            .filter_map(|x| {
                let mut parts = Vec::new();
                decompose_canonical(x, |d| parts.push(d));
                (parts.len() >= 2).then(|| parts[parts.len() - 1])
            })
            .collect();
        // Only characters that survive NFKC reach case folding.
        let nfkc_stable = |c: char| c.to_string().nfkc().eq(std::iter::once(c));
        let cased = all_chars().filter(|&c| !c.to_lowercase().eq(std::iter::once(c)));
        for c in cased.filter(|&c| nfkc_stable(c)) {
            for small in c.to_lowercase() {
                assert!(nfkc_stable(small) || diacritic(small), "{c:?} -> {small:?}");
                assert!(
                    canonical_combining_class(small) == 0 || diacritic(small),
                    "{c:?} -> {small:?}"
                );
                for &mark in &seconds {
                    let newly_composes = unicode_normalization::char::compose(small, mark)
                        .is_some()
                        && unicode_normalization::char::compose(c, mark).is_none();
                    assert!(!newly_composes || diacritic(mark), "{c:?} {mark:?}");
                }
            }
        }
    }

    #[test]
    fn greek_and_cyrillic_prefilter_is_a_superset() {
        for c in all_chars().filter(|&c| is_greek_or_cyrillic(c)) {
            assert!(
                may_hold_greek_or_cyrillic(c.encode_utf8(&mut [0; 4])),
                "{c:?}"
            );
        }
    }
}

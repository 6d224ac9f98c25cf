//! Text normalisation: the single function every model, rule and fingerprint sees text through.
//!
//! [`normalize`] runs these stages, in this order (each counts how often it fired in
//! [`Normalized::transforms`]):
//!
//! 1. **Invisible / control removal**: zero-width and bidi controls, soft hyphen, variation
//!    selectors, tag characters, Hangul fillers ([`Transform::InvisibleRemoved`]) and C0/C1
//!    controls other than whitespace ([`Transform::ControlRemoved`]). Full-width forms
//!    (U+FF01..U+FF5E, U+3000) are counted as [`Transform::FullWidth`] here, before NFKC folds them.
//!    Underline, overline and strike-through marks (`A̲c̲c̲o̲u̲n̲t̲`) count as invisible (version 4).
//!    Then (shared stages, `normalize/symbols.rs` and `normalize/turned.rs`) Latin letters drawn
//!    as symbols (`🅵🆁🅴🅴`), small capitals (`ʙᴇsᴛ`) and upside-down text (`ǝǝɹɟ 00Ɩ`) become
//!    plain letters, each only in a message holding at least three of them, and Cherokee, Lisu,
//!    Armenian and IPA look-alikes (`Ꮯlaim`, `yօur`) become Latin ([`Transform::Confusable`]).
//!    After stage 3, combining marks left on an ASCII letter or digit (`f̴r̷e̸e̵`) are removed
//!    ([`Transform::InvisibleRemoved`]).
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
//!
//!    Then **text written backwards** is turned round (version 4; a message without Han holding
//!    three different common English words spelled backwards, more than twice as many as it has
//!    forwards; counted [`Transform::Refanged`]; see `normalize/turned.rs`).
//!
//!    Then **refanging** ([`Transform::Refanged`], spans rewritten; pipeline version 2): numeric
//!    HTML entities are decoded (`h&#111;t`), a bracketed dot between letters or digits (`[.]`,
//!    `(dot)`) and a spelled-out dot before a top-level domain (`shop dot xyz`, not `the dot
//!    com`) become `.`, so that stage 7 masks the disguised link; so do (version 4) `点`, `。` and a
//!    spaced ` . ` before a top-level domain or after `www`. See `normalize/refang.rs`.
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
//!
//!    Then (version 5, `normalize/spelled.rs`) a **phone number spelled out** in English digit
//!    words or Chinese numerals (`nine four seven, five five two…`, `四零零-捌陆贰-伍伍柒叁`,
//!    `1五8二二零六七七九八`) becomes its digits when the chain holds 7+ digits, 3+ of them
//!    spelled ([`Transform::Leetspeak`], one per spelled digit). Counting words and dates
//!    (`五六七八九月`, `七七四十九`) never reach seven digits. A keycap (`4️⃣`, U+20E3) is removed as
//!    invisible in stage 1, so a number drawn as keys is a number.
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
//! When separator collapsing, leetspeak, keyword folding or refanging fired, a placeholder ended up glued
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
#[cfg(test)]
mod tests;

mod case;
mod chars;
mod confusables;
mod corpus_masks;
mod leetspeak;
mod nfkc;
mod numbers;
mod refang;
mod separators;
mod simplify;
mod spelled;
mod surface;
mod symbols;
mod turned;
mod web;
mod whitespace;

use case::*;
pub use chars::is_han;
use chars::*;
use confusables::*;
use corpus_masks::*;
use leetspeak::*;
use nfkc::*;
use numbers::*;
use refang::*;
use separators::*;
use simplify::*;
pub use surface::surface_form;
use web::*;
use whitespace::*;

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
    Refanged,
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
    pub const ALL: [Transform; 17] = [
        Transform::InvisibleRemoved,
        Transform::ControlRemoved,
        Transform::FullWidth,
        Transform::Nfkc,
        Transform::Confusable,
        Transform::CorpusMaskFolded,
        Transform::CaseFold,
        Transform::TraditionalToSimplified,
        Transform::Refanged,
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
            Transform::Refanged => "refanged",
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

    /// The lower-case hosts of the links the message carries (its `<url>` masks), in order.
    pub fn link_hosts(&self) -> impl Iterator<Item = &str> {
        self.masked
            .iter()
            .filter(|m| m.kind == MaskKind::Url)
            .map(|m| m.value.as_str())
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
/// Traditional characters, an HTML entity, a URL, an e-mail address, letters and Han characters with separators
/// between them, a phone number, a four-digit number, leetspeak, a homophone keyword and runs of spaces.
pub const WARM_UP_TEXT: &str = "\u{200B}\u{7}Ｆｒｅｅ ﬁle \u{0430}ccount XXXX FREE 澳門線上賭場 \
    http://warm-up.example.top/a a@example.com h&#111;t f.r.e.e 加 薇 信 13800138000 fr33 威信   end 8888";

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
        || tally.get(Transform::Refanged) > 0
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
        let s = symbols::fold_letter_symbols(s, tally);
        let s = turned::fold_small_capitals(s, tally);
        let s = turned::turn_upside_down(s, tally);
        let s = turned::fold_script_lookalikes(s, tally);
        let s = apply_nfkc(s, tally);
        let s = then_nfkc_if_fired(s, tally, Transform::Confusable, fold_confusables);
        turned::strip_stray_marks(s, tally)
    };
    let s = if plain {
        let s = fold_corpus_masks(s, tally);
        fold_ascii_case(s, tally)
    } else {
        let s = then_nfkc_if_fired(s, tally, Transform::CorpusMaskFolded, fold_corpus_masks);
        fold_case_then_nfkc(s, tally)
    };
    let s = simplify_han(s, tally);
    let s = turned::turn_backwards_text(s, tally);
    let s = refang(s, tally);
    let s = mask_web(s, tally, masked);
    let s = collapse_separators(s, tally);
    let s = spelled::read_spelled_digits(s, tally);
    let s = mask_numbers(s, tally, masked);
    let s = fold_leetspeak(s, tally);
    let s = fold_keywords(s, tally);
    fold_whitespace(s, tally)
}

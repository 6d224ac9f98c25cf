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
        "a", "I", "u", "x", "X", "XX", "DIGIT", "NAME", "QQ", "1", "3", "0", "@", "$", " ", ".",
        "-", "*", "'", "\n", "<num>", "<url>", "www.", "http://", ".com", "/a", "е", "Р", "λ", "и",
        "é", "e\u{301}", "\u{301}", "\u{316}", "\u{200b}", "\u{3000}", "Ｖ", "１", "，", "。",
        "、", "「", "加", "微", "信", "發", "體", "漢", "丽", "\u{F900}", "⼀", "㈱", "ﬁ", "😀",
        "\u{FE0F}", "か", "\u{3099}", "ｶ", "\u{FF9E}", "Ⓐ", "£", "ǐ", "ß",
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
        "0", "1", "5", "9", "12", "+", "-", ".", ",", " ", "  ", "\n", "\u{3000}", "\u{a0}", "a",
        "x", "元", "<num>", "--", "+8", "://", "@",
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
        "a", "b", "u", "1", "22", "abc", "'", " ", "  ", "-", ".", "*", "<num>", "<url>", "<", ">",
        "num", "\t", "i'm", "x",
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
        !sep.iter().any(|&b| is_clause_punct(char::from(b))) && !sep.windows(2).any(|w| w == b"..")
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
                let newly_composes = unicode_normalization::char::compose(small, mark).is_some()
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

/// `normalize(text)` is a fixed point of `normalize` and equals the reference pipeline's output.
fn assert_fixed_point_like_reference(text: &str) {
    let once = normalize(text);
    assert_eq!(
        normalize(&once.text).text,
        once.text,
        "not a fixed point: {text:?}"
    );
    assert_same_as_reference(text);
}

/// Text made of up to 24 of `pieces`, in any order and number: disguise parts that may create
/// work for each other.
fn pieces_of(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(pieces), 0..24)
        .prop_map(|parts| parts.concat())
}

const TURNING_PIECES: [&str; 31] = [
    "ǝ", "ɐ", "ʇ", "ɔ", "ı", "p", "u", "9", "ᴀ", "ɪ", " ", "eht", "dna", "uoy", "the", "点", "com",
    " . ", "www", "\u{332}", "\u{301}", "\u{338}", "=", "Ꮯ", "ꮯ", "օ", "ꓑ", "ɑ", "ọ", "Հ", "𝒞",
];

/// Digits spelled in words and numerals, the gaps a chain allows and what ends one.
const SPELLING_PIECES: [&str; 20] = [
    "one",
    "two",
    "nine",
    "zero",
    "someone",
    "五",
    "捌",
    "幺",
    "〇",
    "十",
    "一个",
    " ",
    ", ",
    "-",
    "1",
    "7",
    "a",
    "4\u{fe0f}\u{20e3}",
    "电话",
    "<phone>",
];

const REFANGING_PIECES: [&str; 15] = [
    "&#", ";", "[.]", "(dot)", " dot ", "com", "x", "4", "6", "&", "#", "a", " ", "\u{200B}", "Ｘ",
];

/// Disguises built to make refanging create new work for itself: each must come out a fixed
/// point, equal to the reference pipeline's output.
#[test]
fn refanging_is_a_fixed_point_on_nested_disguises() {
    let long_chain = format!("{}com", "a[.]".repeat(40));
    let cases = [
        "&#38;#46;",               // decodes to `&`: left alone, no new entity
        "&&#35;46;",               // `#` is never decoded
        "&#&#51;6;",               // a digit after `&#` would complete `&#36;`
        "&#x2&#101;;",             // a hex letter after `&#x2` would complete `&#x2e;`
        "a[[.].]b.com",            // nested brackets
        "x (d&#111;t) top",        // an entity inside the bracket word
        "d0t com example d0t com", // leetspeak makes the spelled dot
        "example  [ . ]  com",     // not a bracketed dot (spaces inside)
        long_chain.as_str(),
        "ｅｘａｍｐｌｅ［．］ｃｏｍ", // full-width brackets fold first
        "a\u{200B}[.]top",            // an invisible character beside the dot
    ];
    for text in cases {
        assert_fixed_point_like_reference(text);
    }
    assert_eq!(
        normalize(&long_chain).text,
        "<url>",
        "a long chain comes undone in one run"
    );
}

/// Turned text comes out a fixed point, equal to the reference pipeline's output: turning it
/// once leaves nothing to turn back.
#[test]
fn turned_text_is_a_fixed_point() {
    let cases = [
        "ǝǝɹɟ 00Ɩ spins",
        "pǝǝɹɟ nq ǝɥʇ ʇnq ǝɥʇ",            // ASCII letters inside the run swap
        "ʇǝƃ ʙᴇsᴛ ǝɥʇ",                    // small capitals and turned letters together
        "eht dna uoy the and you eht dna", // as many forwards as backwards: left alone
        "eht dna uoy siht ym",
        "\u{202E}eht dna uoy siht", // a right-to-left override hides the order
        "www 点 www 点 com",
        "Ꮯօ ꓑɑ օꮯ", // everywhere-folds make a word Latin in one pass
        "e\u{301}\u{338} =\u{338} a\u{336}\u{336}", // composed marks stay, stray ones go
        "a . com . com",
    ];
    for text in cases {
        assert_fixed_point_like_reference(text);
    }
}

/// The proptest form of [`assert_fixed_point_like_reference`].
fn fixed_point_like_reference(text: &str) -> Result<(), TestCaseError> {
    let once = normalize(text);
    prop_assert_eq!(normalize(&once.text).text, once.text);
    prop_assert!(normalize(text) == reference::normalize(text));
    Ok(())
}

proptest! {
    #[test]
    fn turning_keeps_normalize_idempotent(text in pieces_of(&TURNING_PIECES)) {
        fixed_point_like_reference(&text)?;
    }

    #[test]
    fn refanging_keeps_normalize_idempotent(text in pieces_of(&REFANGING_PIECES)) {
        fixed_point_like_reference(&text)?;
    }

    #[test]
    fn reading_spelled_digits_keeps_normalize_idempotent(text in pieces_of(&SPELLING_PIECES)) {
        fixed_point_like_reference(&text)?;
    }
}

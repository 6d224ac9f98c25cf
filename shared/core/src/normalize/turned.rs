//! Stages 1c, 3b and 6a (pipeline version 4): Latin text drawn so that a filter reads nothing
//! while a person still reads it.
//! * **Small capitals** (`ʙᴇsᴛ sʟᴏᴛs`, phonetic letters NFKC leaves alone) become the plain
//!   lower-case letter, in a message holding at least [`MIN_DISGUISED_LETTERS`] of them.
//! * **Upside-down text** (`ǝǝɹɟ 00Ɩ`, read by turning the phone round): a run of words holding
//!   turned letters is put back in reading order and each character replaced by the one it
//!   shows turned (`ǝ` -> `e`, and within the run `d` <-> `p`, `b` <-> `q`, `n` <-> `u`,
//!   `6` <-> `9`), in a message holding at least [`MIN_DISGUISED_LETTERS`] turned letters.
//!   Letters that are also plain letters of a living alphabet (Turkish `ı`, Twi `ɔ` and `ɛ`,
//!   Bopomofo `ㄣ`) never start a run, only take part in one.
//! * **Letters of other scripts drawn as Latin** (`Ꮯlaim your ꓑrize`, `yօur ɑccount`): Cherokee
//!   and Lisu letters that look like a Latin one always become it (no message of ours is written
//!   in those scripts; homoglyph generators pick them), the Armenian and IPA look-alikes only
//!   inside a word that also holds an ASCII letter (Armenian text keeps its letters).
//! * **Stray combining marks** (`f̴r̷e̸e̵`, "Zalgo" text; stage 3b, after NFKC and the
//!   confusables have made every letter they can): a combining mark still sitting on an ASCII
//!   letter or digit decorates it, and is removed. Marks on other letters (Yoruba `ẹ́`, Thai,
//!   Devanagari) stay.
//! * **Text written backwards** (stage 6a, after case folding: `sdrawkcab siht daer`, or
//!   forwards behind a right-to-left override, which stage 1 strips): a message without Han
//!   whose words include at least [`MIN_BACKWARD_WORDS`] different common English words spelled
//!   backwards, more than twice as many as it has spelled forwards, is turned round. Turned text
//!   reads forwards, so the stage never fires twice and the pipeline stays a fixed point.
//!
//! Small capitals, upside-down text and other scripts' look-alikes count as
//! [`Transform::Confusable`] (look-alike letters), stray marks as
//! [`Transform::InvisibleRemoved`], backwards text as [`Transform::Refanged`] (a disguise undone,
//! as a link written backwards is). Both pipelines share these stages.

use super::*;

/// Disguised letters a message needs before any is folded: one or two are a phonetic
/// transcription or a name, three spell a word.
pub(super) const MIN_DISGUISED_LETTERS: usize = 3;

/// Different backwards English words a message needs before it is turned round.
pub(super) const MIN_BACKWARD_WORDS: u32 = 3;

/// The plain lower-case letter a small capital shows.
fn small_capital(c: char) -> Option<char> {
    Some(match c {
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ꜰ' => 'f',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ꞯ' => 'q',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        _ => return None,
    })
}

/// Whether `c` is a small capital or a letter that gives upside-down text away: text holding
/// one is not plain (it needs stage 1c).
pub(super) fn may_start_a_disguise(c: char) -> bool {
    small_capital(c).is_some() || gives_turning_away(c) || script_lookalike(c).is_some()
}

/// The Cherokee capital of a Cherokee small letter (Unicode 8 gave the script a lower case),
/// else `c`.
fn cherokee_capital(c: char) -> char {
    let code = u32::from(c);
    let capital = match code {
        0xAB70..=0xABBF => code - 0xAB70 + 0x13A0,
        0x13F8..=0x13FD => code - 8,
        _ => code,
    };
    char::from_u32(capital).unwrap_or(c)
}

/// The lower-case Latin letter a letter of another script is drawn as, and whether it folds
/// everywhere (Cherokee, Lisu) or only inside a word with an ASCII letter (Armenian, IPA; capitals
/// by their small letter, which case folding makes of them).
fn script_lookalike(c: char) -> Option<(char, bool)> {
    let everywhere = |latin| Some((latin, true));
    let in_latin_words = |latin| Some((latin, false));
    match cherokee_capital(c) {
        'Ꭺ' => everywhere('a'),
        'Ᏼ' | 'Ꮟ' => everywhere('b'),
        'Ꮯ' => everywhere('c'),
        'Ꭰ' => everywhere('d'),
        'Ꭼ' => everywhere('e'),
        'Ꮐ' => everywhere('g'),
        'Ꮋ' => everywhere('h'),
        'Ꭵ' => everywhere('i'),
        'Ꭻ' => everywhere('j'),
        'Ꮶ' => everywhere('k'),
        'Ꮮ' => everywhere('l'),
        'Ꮇ' => everywhere('m'),
        'Ꮲ' => everywhere('p'),
        'Ꭱ' | 'Ꮢ' => everywhere('r'),
        'Ꮪ' => everywhere('s'),
        'Ꭲ' => everywhere('t'),
        'Ꮩ' => everywhere('v'),
        'Ꮃ' | 'Ꮤ' => everywhere('w'),
        'Ꮓ' => everywhere('z'),
        'ꓮ' => everywhere('a'),
        'ꓐ' => everywhere('b'),
        'ꓚ' => everywhere('c'),
        'ꓓ' => everywhere('d'),
        'ꓰ' => everywhere('e'),
        'ꓝ' => everywhere('f'),
        'ꓖ' => everywhere('g'),
        'ꓧ' => everywhere('h'),
        'ꓲ' => everywhere('i'),
        'ꓙ' => everywhere('j'),
        'ꓗ' => everywhere('k'),
        'ꓡ' => everywhere('l'),
        'ꓟ' => everywhere('m'),
        'ꓠ' => everywhere('n'),
        'ꓳ' => everywhere('o'),
        'ꓑ' => everywhere('p'),
        'ꓣ' => everywhere('r'),
        'ꓢ' => everywhere('s'),
        'ꓔ' => everywhere('t'),
        'ꓴ' => everywhere('u'),
        'ꓦ' => everywhere('v'),
        'ꓪ' => everywhere('w'),
        'ꓫ' => everywhere('x'),
        'ꓬ' => everywhere('y'),
        'ꓜ' => everywhere('z'),
        _ => match confusables::small(c) {
            'օ' => in_latin_words('o'),
            'ս' => in_latin_words('u'),
            'ց' => in_latin_words('g'),
            'հ' => in_latin_words('h'),
            'ո' => in_latin_words('n'),
            'զ' => in_latin_words('q'),
            'ɑ' => in_latin_words('a'),
            'ȷ' => in_latin_words('j'),
            _ => None,
        },
    }
}

pub(super) fn fold_script_lookalikes(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() || !text.chars().any(|c| script_lookalike(c).is_some()) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut folded = 0;
    let mut rest = text.as_str();
    // Word by word: a run of letters, digits and combining marks (a mark that a later stage
    // strips must not split a word here), then what separates it from the next.
    let in_word = |c: char| {
        c.is_alphanumeric() || unicode_normalization::char::canonical_combining_class(c) != 0
    };
    while !rest.is_empty() {
        let (word, after) = split_where(rest, |c| !in_word(c));
        // A letter that folds everywhere, or that NFKC (the next stage) makes ASCII (`𝒞`),
        // counts as Latin already: one pass is then enough, so the output is a fixed point.
        let latin_word = word.chars().any(|c| {
            c.is_ascii_alphabetic()
                || script_lookalike(c).is_some_and(|(_, everywhere)| everywhere)
                || becomes_ascii_letter(c)
        });
        for c in word.chars() {
            match script_lookalike(c) {
                Some((latin, everywhere)) if everywhere || latin_word => {
                    folded += 1;
                    out.push(latin);
                }
                _ => out.push(c),
            }
        }
        let (gap, next) = split_where(after, in_word);
        out.push_str(gap);
        rest = next;
    }
    tally.add(Transform::Confusable, folded);
    out
}

/// Whether NFKC turns the non-ASCII `c` into text starting with an ASCII letter (`𝒞`, `Ｃ`, `ⓒ`).
fn becomes_ascii_letter(c: char) -> bool {
    let mut first = None;
    if !c.is_ascii() {
        unicode_normalization::char::decompose_compatible(c, |d| {
            first.get_or_insert(d);
        });
    }
    first.is_some_and(|d| d.is_ascii_alphabetic())
}

/// `text` split before its first character for which `at` holds (all of it if there is none).
fn split_where(text: &str, at: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(at).unwrap_or(text.len()))
}

/// Whether a combining mark on an ASCII letter is part of a letter after all: it composes with
/// the small letter (`T`+U+0308 becomes `ẗ` once lower-cased), or it is the dot that lower-casing
/// `İ` leaves on an `i` (the pipeline keeps that `i`+U+0307, and this stage runs again on it).
fn mark_belongs(base: char, mark: char) -> bool {
    unicode_normalization::char::compose(base.to_ascii_lowercase(), mark).is_some()
        || (mark == '\u{307}' && base.eq_ignore_ascii_case(&'i'))
}

/// Removes combining marks left on an ASCII letter or digit after NFKC (see the module notes).
/// The text is copied only from the first stray mark on.
pub(super) fn strip_stray_marks(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() {
        return text;
    }
    let mut out: Option<String> = None;
    let mut removed = 0;
    // The ASCII letter or digit the current marks sit on, while they are stray.
    let mut base: Option<char> = None;
    for (at, c) in text.char_indices() {
        if unicode_normalization::char::canonical_combining_class(c) == 0 {
            base = c.is_ascii_alphanumeric().then_some(c);
        } else if let Some(letter) = base {
            if mark_belongs(letter, c) {
                // The rest of its stack stays too: it sits on a letter of some alphabet.
                base = None;
            } else {
                removed += 1;
                out.get_or_insert_with(|| text[..at].to_owned());
                continue;
            }
        }
        if let Some(out) = out.as_mut() {
            out.push(c);
        }
    }
    tally.add(Transform::InvisibleRemoved, removed);
    out.unwrap_or(text)
}

pub(super) fn fold_small_capitals(text: String, tally: &mut Tally) -> String {
    if text.is_ascii() {
        return text;
    }
    super::symbols::fold_if_enough(text, tally, MIN_DISGUISED_LETTERS, small_capital)
}

/// What a character of upside-down text shows when turned, and whether it gives the disguise
/// away (no living alphabet writes it as a letter).
fn turned(c: char) -> Option<(char, bool)> {
    Some(match c {
        'ɐ' | '∀' => ('a', true),
        'ɔ' | 'Ɔ' => ('c', false),
        'ǝ' | 'Ǝ' => ('e', true),
        'ɟ' | 'Ⅎ' => ('f', true),
        'ƃ' | '⅁' => ('g', true),
        'ɥ' => ('h', true),
        'ᴉ' => ('i', true),
        'ı' => ('i', false),
        'ɾ' => ('j', true),
        'ʞ' => ('k', true),
        '˥' => ('l', true),
        'ɯ' => ('m', true),
        'ɹ' | 'ᴚ' => ('r', true),
        'ʇ' | '⊥' => ('t', true),
        '∩' => ('u', true),
        'ʌ' => ('v', true),
        'ʍ' => ('w', true),
        'ʎ' | '⅄' => ('y', true),
        'Ɩ' | 'ɩ' => ('1', true),
        'ᄅ' => ('2', true),
        'Ɛ' | 'ɛ' => ('3', false),
        'ㄣ' => ('4', false),
        'ϛ' => ('5', true),
        'ㄥ' => ('7', false),
        '¡' => ('!', false),
        '¿' => ('?', false),
        '˙' => ('.', true),
        'p' => ('d', false),
        'd' => ('p', false),
        'b' => ('q', false),
        'q' => ('b', false),
        'n' => ('u', false),
        'u' => ('n', false),
        '6' => ('9', false),
        '9' => ('6', false),
        _ => return None,
    })
}

fn gives_turning_away(c: char) -> bool {
    turned(c).is_some_and(|(_, telling)| telling)
}

/// Whether a word can stand inside a run of upside-down text: every character is a turned
/// one, an ASCII letter or digit, or punctuation.
fn may_be_turned(word: &str) -> bool {
    word.chars()
        .all(|c| turned(c).is_some() || c.is_ascii_alphanumeric() || c.is_ascii_punctuation())
}

pub(super) fn turn_upside_down(text: String, tally: &mut Tally) -> String {
    if text.is_ascii()
        || text.chars().filter(|&c| gives_turning_away(c)).count() < MIN_DISGUISED_LETTERS
    {
        return text;
    }
    let words: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut folded = 0;
    let mut i = 0;
    while i < words.len() {
        if !words[i].1.chars().any(gives_turning_away) {
            i += 1;
            continue;
        }
        // The run: from this word to the last word that gives the turning away, across words
        // that may stand inside upside-down text.
        let mut last = i;
        let mut j = i + 1;
        while j < words.len() && may_be_turned(words[j].1) {
            if words[j].1.chars().any(gives_turning_away) {
                last = j;
            }
            j += 1;
        }
        let (start, _) = words[i];
        let end = words[last].0 + words[last].1.len();
        out.push_str(&text[copied..start]);
        for c in text[start..end].chars().rev() {
            match turned(c) {
                Some((shown, _)) => {
                    folded += 1;
                    out.push(shown);
                }
                None => out.push(c),
            }
        }
        copied = end;
        i = last + 1;
    }
    out.push_str(&text[copied..]);
    tally.add(Transform::Confusable, folded);
    out
}

/// Which common English word a lower-case ASCII word is, spelled backwards (`Ok(i)`) or forwards
/// (`Err(i)`). Only words that are no word the other way round: `won`, `era`, `ton` and the
/// Indonesian `ini`, `si`, `ni` are left out. (A `match` on byte strings: measured cheaper than
/// a binary search over the words packed into integers.)
fn common_word(word: &[u8]) -> Option<Result<u32, u32>> {
    Some(match word {
        b"eht" => Ok(0),
        b"the" => Err(0),
        b"dna" => Ok(1),
        b"and" => Err(1),
        b"uoy" => Ok(2),
        b"you" => Err(2),
        b"ruoy" => Ok(3),
        b"your" => Err(3),
        b"siht" => Ok(4),
        b"this" => Err(4),
        b"taht" => Ok(5),
        b"that" => Err(5),
        b"rof" => Ok(6),
        b"for" => Err(6),
        b"htiw" => Ok(7),
        b"with" => Err(7),
        b"morf" => Ok(8),
        b"from" => Err(8),
        b"evah" => Ok(9),
        b"have" => Err(9),
        b"lliw" => Ok(10),
        b"will" => Err(10),
        b"nac" => Ok(11),
        b"can" => Err(11),
        b"ohw" => Ok(12),
        b"who" => Err(12),
        b"tahw" => Ok(13),
        b"what" => Err(13),
        b"ot" => Ok(14),
        b"to" => Err(14),
        b"ti" => Ok(15),
        b"it" => Err(15),
        b"fo" => Ok(16),
        b"of" => Err(16),
        b"ym" => Ok(17),
        b"my" => Err(17),
        b"teg" => Ok(18),
        b"get" => Err(18),
        b"dnes" => Ok(19),
        b"send" => Err(19),
        b"daer" => Ok(20),
        b"read" => Err(20),
        b"kcilc" => Ok(21),
        b"click" => Err(21),
        b"eerf" => Ok(22),
        b"free" => Err(22),
        b"llac" => Ok(23),
        b"call" => Err(23),
        b"txet" => Ok(24),
        b"text" => Err(24),
        b"ylper" => Ok(25),
        b"reply" => Err(25),
        _ => return None,
    })
}

/// Counts (different backwards words, forwards words) among the message's lower-case ASCII
/// words (the stage runs after case folding); `None` as soon as a Han character shows the
/// message is Chinese, which is never turned. Bytes only: a character is decoded only where
/// its lead byte may start a Han one.
fn backward_and_forward_words(text: &str) -> Option<(u32, u32)> {
    let bytes = text.as_bytes();
    let (mut backward, mut forward) = (0u32, 0u32);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii_lowercase() {
            let start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_lowercase) {
                i += 1;
            }
            match common_word(&bytes[start..i]) {
                Some(Ok(at)) => backward |= 1 << at,
                Some(Err(_)) => forward += 1,
                None => {}
            }
            continue;
        }
        if b >= 0xE3 && text[i..].chars().next().is_some_and(is_han) {
            return None;
        }
        i += 1;
    }
    Some((backward.count_ones(), forward))
}

pub(super) fn turn_backwards_text(text: String, tally: &mut Tally) -> String {
    let Some((backward, forward)) = backward_and_forward_words(&text) else {
        return text;
    };
    if backward < MIN_BACKWARD_WORDS || backward <= 2 * forward {
        return text;
    }
    tally.add(Transform::Refanged, 1);
    text.chars().rev().collect()
}

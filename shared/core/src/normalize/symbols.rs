//! Stage 1b: Latin letters drawn as symbols that NFKC leaves alone, the negative circled
//! (🅐, U+1F150..U+1F169) and negative squared (🅰, U+1F170..U+1F189) capitals, become the ASCII
//! capital they show (`🅵🆁🅴🅴` -> `FREE`). Their positive forms (Ⓐ, 🄰) NFKC already folds.
//! Counted as [`Transform::Confusable`]: a look-alike letter. Only a message with at least
//! [`MIN_SYMBOL_LETTERS`] of them is folded: one or two are emoji (🅿️ parking, 🅰️🅱️ blood
//! types), three spell a word. Regional indicators (🇦) are left alone: two of them are a flag,
//! which legitimate messages carry. One shared stage for both pipelines (it reads no earlier
//! stage's output but the invisible-character strip).

use super::*;

/// The ASCII capital a symbol letter shows, if `c` is one.
pub(super) fn letter_symbol(c: char) -> Option<char> {
    let offset = match u32::from(c) {
        code @ 0x1F150..=0x1F169 => code - 0x1F150,
        code @ 0x1F170..=0x1F189 => code - 0x1F170,
        _ => return None,
    };
    char::from_u32(u32::from('A') + offset)
}

/// Symbol letters a message needs before any is folded.
pub(super) const MIN_SYMBOL_LETTERS: usize = 3;

pub(super) fn fold_letter_symbols(text: String, tally: &mut Tally) -> String {
    // Both blocks are U+1F1xx, whose UTF-8 starts F0 9F 85 / F0 9F 86.
    if memchr::memmem::find(text.as_bytes(), &[0xF0, 0x9F]).is_none() {
        return text;
    }
    fold_if_enough(text, tally, MIN_SYMBOL_LETTERS, letter_symbol)
}

/// Replaces every character `letter` maps by what it maps to, counted as
/// [`Transform::Confusable`], when the text holds at least `min` of them; else returns it as is.
pub(super) fn fold_if_enough(
    text: String,
    tally: &mut Tally,
    min: usize,
    letter: impl Fn(char) -> Option<char>,
) -> String {
    if text.chars().filter(|&c| letter(c).is_some()).count() < min {
        return text;
    }
    let mut folded = 0;
    let out = text
        .chars()
        .map(|c| match letter(c) {
            Some(letter) => {
                folded += 1;
                letter
            }
            None => c,
        })
        .collect();
    tally.add(Transform::Confusable, folded);
    out
}

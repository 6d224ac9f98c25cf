//! The surface form: the message as written, minus the obfuscation that never carries meaning.
//! Models that read the raw text (the cloud's lexical scorer) learn the corpora's own spelling,
//! masking styles included, which the full normalisation removes on purpose; but a zero-width
//! space between letters or full-width Latin letters only hide a word from such a model. This
//! folds exactly those: invisible and format characters removed, full-width ASCII letters and
//! digits made ASCII, then lower case. Full-width punctuation (ordinary Chinese typography),
//! numbers, URLs and everything else stay as written.

use super::chars::{full_width_to_ascii, is_invisible};

pub fn surface_form(text: &str) -> String {
    text.chars()
        .filter(|&c| !is_invisible(c))
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
                full_width_to_ascii(c)
            }
            c => c,
        })
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::surface_form;

    #[test]
    fn folds_hiding_characters_and_keeps_the_rest_as_written() {
        for (input, expected) in [
            ("F\u{200B}R\u{200B}E\u{200B}E prize", "free prize"),
            ("ＶＩＡＧＲＡ ＣＡＳＨ　ＦＡＳＴ", "viagra cash　fast"),
            ("ｗｉｎ１００", "win100"),
            ("加\u{FEFF}微\u{200D}信，领取！", "加微信，领取！"),
            (
                "Call 07700 900123 at http://Win.example",
                "call 07700 900123 at http://win.example",
            ),
            ("v.i.a.g.r.a v1agra", "v.i.a.g.r.a v1agra"),
            ("", ""),
        ] {
            assert_eq!(surface_form(input), expected, "{input:?}");
        }
    }
}

//! Folding of obfuscated spam keywords (威信, V信, +v, 代款, 菠菜 ...) to one canonical spelling,
//! so that every obfuscation of a word shares the features of the word.
//!
//! The table is `data/keywords.tsv` (`variant<TAB>canonical<TAB>note`), compiled in. It is applied
//! by [`crate::normalize()`] after Traditional -> Simplified conversion, separator collapsing and
//! leetspeak folding, longest match first.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::taxonomy::data_rows;

/// The raw table, `variant<TAB>canonical<TAB>note`; `#` starts a comment line.
pub const KEYWORDS_TSV: &str = include_str!("../data/keywords.tsv");

/// One row of the keyword table after normalisation of both columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordEntry {
    pub variant: String,
    pub canonical: String,
}

/// The compiled keyword folder: an Aho-Corasick automaton over every variant and every canonical
/// form (canonical forms map to themselves, so a longer canonical wins over a shorter variant).
#[derive(Debug)]
pub struct KeywordTable {
    entries: Vec<KeywordEntry>,
    /// Replacement of pattern `i`, and whether it is a real fold (false for identity patterns).
    replacements: Vec<(String, bool)>,
    automaton: Option<AhoCorasick>,
    /// The ASCII patterns alone, for ASCII text (most English messages), which no other pattern
    /// can match: a few patterns let the automaton's SIMD prefilter skip most of the text. With
    /// the index of each of its patterns in `replacements`.
    ascii_automaton: Option<(AhoCorasick, Vec<usize>)>,
}

static TABLE: LazyLock<KeywordTable> = LazyLock::new(|| KeywordTable::from_tsv(KEYWORDS_TSV));

/// The compiled-in keyword table.
pub fn table() -> &'static KeywordTable {
    &TABLE
}

/// Canonical keywords in table order, without duplicates (useful as hand-crafted features).
pub fn canonical_keywords() -> Vec<&'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for entry in table().entries() {
        if !seen.contains(&entry.canonical.as_str()) {
            seen.push(entry.canonical.as_str());
        }
    }
    seen
}

/// Lower-cases and converts to Simplified Chinese, the form the text has when folding runs.
fn normalise_key(key: &str) -> String {
    let lower = key.to_lowercase();
    if lower.chars().any(crate::normalize::is_han) {
        zhconv::zhconv(&lower, zhconv::Variant::ZhHans)
    } else {
        lower
    }
}

impl KeywordTable {
    /// Builds the table from TSV text; rows with fewer than two columns or an empty variant are
    /// skipped, duplicate variants keep their first row.
    pub fn from_tsv(tsv: &'static str) -> Self {
        let mut entries: Vec<KeywordEntry> = Vec::new();
        for fields in data_rows(tsv) {
            let (Some(variant), Some(canonical)) = (fields.first(), fields.get(1)) else {
                continue;
            };
            let variant = normalise_key(variant);
            let canonical = normalise_key(canonical);
            if variant.is_empty() || variant == canonical {
                continue;
            }
            if entries.iter().all(|e| e.variant != variant) {
                entries.push(KeywordEntry { variant, canonical });
            }
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut replacements: Vec<(String, bool)> = Vec::new();
        for entry in &entries {
            patterns.push(entry.variant.clone());
            replacements.push((entry.canonical.clone(), true));
        }
        for entry in &entries {
            if !patterns.contains(&entry.canonical) {
                patterns.push(entry.canonical.clone());
                replacements.push((entry.canonical.clone(), false));
            }
        }
        let automaton = build_automaton(&patterns);
        let ascii: Vec<usize> = (0..patterns.len())
            .filter(|&i| patterns[i].is_ascii())
            .collect();
        let ascii_patterns: Vec<&String> = ascii.iter().map(|&i| &patterns[i]).collect();
        let ascii_automaton = build_automaton(&ascii_patterns).map(|a| (a, ascii));
        KeywordTable {
            entries,
            replacements,
            automaton,
            ascii_automaton,
        }
    }

    pub fn entries(&self) -> &[KeywordEntry] {
        &self.entries
    }

    /// Replaces every variant in `text` by its canonical form, writing the result to `out`, and
    /// returns the number of replacements. A canonical form that would touch an ASCII letter or
    /// digit of the surrounding text gets a space in between, so that folding never glues new
    /// tokens together (which would make normalisation non-idempotent).
    pub fn fold_into(&self, text: &str, out: &mut String) -> u32 {
        let mut folded = 0;
        let mut copied_to = 0;
        for (start, end, replacement) in self.folds(text) {
            out.push_str(&text[copied_to..start]);
            push_with_guard(out, replacement, text[end..].chars().next());
            copied_to = end;
            folded += 1;
        }
        out.push_str(&text[copied_to..]);
        folded
    }

    /// Like [`KeywordTable::fold_into`] into an empty string, but returns `None` (and copies
    /// nothing) when no variant occurs, which is the case for most messages.
    pub fn fold(&self, text: &str) -> Option<(String, u32)> {
        // Finding the first fold stops early; the full pass runs only for messages with one.
        self.folds(text).next()?;
        let mut out = String::with_capacity(text.len() + 8);
        let folded = self.fold_into(text, &mut out);
        Some((out, folded))
    }

    /// The folds to make in `text`: `(start, end, canonical)` of every variant match that lies
    /// at ASCII word boundaries (identity matches of canonical forms are skipped).
    fn folds<'a>(&'a self, text: &'a str) -> impl Iterator<Item = (usize, usize, &'a str)> + 'a {
        // Leftmost-longest matching over the patterns that can occur in the text: leaving out
        // patterns that cannot match changes no match.
        match &self.ascii_automaton {
            Some((automaton, ids)) if text.is_ascii() => {
                self.folds_by(Some(automaton), Some(ids), text)
            }
            _ => self.folds_by(self.automaton.as_ref(), None, text),
        }
    }

    /// The folds found by `automaton`, whose pattern `i` is pattern `ids[i]` of the table (`i`
    /// itself without `ids`).
    fn folds_by<'a>(
        &'a self,
        automaton: Option<&'a AhoCorasick>,
        ids: Option<&'a Vec<usize>>,
        text: &'a str,
    ) -> impl Iterator<Item = (usize, usize, &'a str)> + 'a {
        automaton
            .into_iter()
            .flat_map(move |automaton| automaton.find_iter(text))
            .filter_map(move |found| {
                let (start, end) = (found.start(), found.end());
                let pattern = found.pattern().as_usize();
                let index = ids.map_or(pattern, |ids| ids[pattern]);
                let (replacement, is_fold) = &self.replacements[index];
                (*is_fold && at_ascii_word_boundary(text, start, end)).then_some((
                    start,
                    end,
                    replacement.as_str(),
                ))
            })
    }
}

fn build_automaton<P: AsRef<[u8]>>(patterns: &[P]) -> Option<AhoCorasick> {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .ok()
}

fn is_ascii_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// A match whose first (last) character is an ASCII letter or digit must not continue an ASCII
/// word on its left (right).
fn at_ascii_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let matched = &text[start..end];
    let left_ok =
        !is_ascii_word(matched.chars().next()) || !is_ascii_word(text[..start].chars().next_back());
    let right_ok =
        !is_ascii_word(matched.chars().next_back()) || !is_ascii_word(text[end..].chars().next());
    left_ok && right_ok
}

/// A letter or digit of a non-Han script, which would merge with an ASCII canonical form.
fn is_alphabetic_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() && !crate::normalize::is_han(c))
}

fn push_with_guard(out: &mut String, replacement: &str, next: Option<char>) {
    if is_ascii_word(replacement.chars().next()) && is_alphabetic_word(out.chars().next_back()) {
        out.push(' ');
    }
    out.push_str(replacement);
    if is_ascii_word(replacement.chars().next_back()) && is_alphabetic_word(next) {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ASCII text built from the table's ASCII patterns, pieces of them and word separators.
    fn ascii_keyword_text() -> impl Strategy<Value = String> {
        let mut pieces: Vec<String> = table()
            .replacements
            .iter()
            .map(|(r, _)| r.clone())
            .chain(table().entries.iter().map(|e| e.variant.clone()))
            .filter(|p| p.is_ascii())
            .collect();
        let prefixes: Vec<String> = pieces.iter().map(|p| p[..p.len() / 2].to_owned()).collect();
        pieces.extend(prefixes);
        pieces.extend([" ", "+", "a", "x", "1", ".", "-"].map(str::to_owned));
        prop::collection::vec(prop::sample::select(pieces), 0..12).prop_map(|p| p.concat())
    }

    #[test]
    fn the_table_has_ascii_patterns() {
        let (_, ids) = table().ascii_automaton.as_ref().unwrap();
        assert!(ids.len() >= 10, "{} ASCII patterns", ids.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn ascii_automaton_finds_the_folds_of_the_full_one(text in ascii_keyword_text()) {
            let table = table();
            let fast: Vec<_> = table.folds(&text).collect();
            let full: Vec<_> = table.folds_by(table.automaton.as_ref(), None, &text).collect();
            prop_assert_eq!(fast, full);
        }
    }
}

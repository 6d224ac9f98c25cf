//! Reading and validating knowledge tables, and compiling their entries into one matcher.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;

/// Levels of the cue automaton whose states get full transition tables: none. A dense root
/// cost 16.9 KB of the phone's 200 KB at revision `2026-12-07.8` (128,356 B of matcher against
/// 111,496) and bought no speed (lookup p50 3.42 against 3.44 µs over the dev splits).
const DENSE_DEPTH: usize = 0;
use regex::{Regex, RegexBuilder, RegexSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::{Entry, KnowledgeBase, KnowledgeError, TermOwner, FORMAT};
use crate::taxonomy::Label;
use crate::verdict::Action;

/// Largest compiled size of one pattern, so that a hostile file cannot eat memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Requirements of one entry are bits of a `u32`: cue sets, the pattern and the hosts.
const MAX_CUE_SETS: usize = 30;

/// A knowledge table as written: `format`, `revision` and its `[[entry]]`s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeFile {
    format: Spanned<u32>,
    revision: String,
    #[serde(default)]
    entry: Vec<EntryDef>,
}

/// One `[[entry]]` as written. Other files (the cloud's rules file) may hold entries too.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDef {
    id: Spanned<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    label: Option<Label>,
    /// Required, so that a forgotten weight is an error rather than a silent 0.
    weight: f32,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    cues: Vec<Vec<String>>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    hosts: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    counter_examples: Vec<String>,
}

/// Entries to compile, with the text they came from (for line numbers in errors).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
    pub revision: Option<&'a str>,
    pub entries: &'a [EntryDef],
}

impl KnowledgeFile {
    /// Parses a table; syntax errors and an unknown format name the line.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KnowledgeError> {
        let file: KnowledgeFile = toml::from_str(text).map_err(|e| KnowledgeError {
            source_name: source_name.to_owned(),
            line: e.span().map_or(0, |span| line_of(text, span.start)),
            entry: None,
            message: e.message().trim().to_owned(),
        })?;
        if *file.format.get_ref() != FORMAT {
            return Err(KnowledgeError {
                source_name: source_name.to_owned(),
                line: line_of(text, file.format.span().start),
                entry: None,
                message: format!(
                    "unsupported knowledge format {}, expected {FORMAT}",
                    file.format.get_ref()
                ),
            });
        }
        Ok(file)
    }

    /// The table as a [`Source`] of its own text.
    pub fn source<'a>(&'a self, text: &'a str, name: &'a str) -> Source<'a> {
        Source {
            name,
            text,
            revision: Some(&self.revision),
            entries: &self.entry,
        }
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }
}

/// 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[derive(Default)]
struct Builder {
    entries: Vec<Entry>,
    /// Entry id -> where it was first defined.
    ids: HashMap<String, (String, usize)>,
    terms: Vec<String>,
    term_owner: Vec<TermOwner>,
    patterns: Vec<String>,
    pattern_owner: Vec<usize>,
    host_patterns: Vec<String>,
    host_owner: Vec<usize>,
}

pub(super) fn compile(sources: &[Source<'_>]) -> Result<KnowledgeBase, KnowledgeError> {
    let mut builder = Builder::default();
    for source in sources {
        for def in source.entries {
            builder.add(def, source)?;
        }
    }
    let whole = |message: String| KnowledgeError {
        source_name: sources.first().map(|s| s.name).unwrap_or("").to_owned(),
        line: 0,
        entry: None,
        message,
    };
    let terms = if builder.terms.is_empty() {
        None
    } else {
        // No dense states: the default (3 levels) spends a full transition table on every
        // state near the root, most of the matcher's memory on a phone.
        let automaton = AhoCorasick::builder()
            .dense_depth(DENSE_DEPTH)
            .build(&builder.terms);
        Some(automaton.map_err(|e| whole(format!("cue automaton: {e}")))?)
    };
    let set = |patterns: &[String]| {
        RegexSetBuilder::new(patterns)
            .size_limit(PATTERN_SIZE_LIMIT * 8)
            .build()
            .map_err(|e| whole(format!("patterns too large together: {e}")))
    };
    // One regex per entry, run only when the entry's other requirements already hold: a set of
    // all patterns ran on every message, and windowed patterns (`.{0,40}`) made its p99 slow.
    let patterns = builder
        .patterns
        .iter()
        .map(|pattern| {
            RegexBuilder::new(pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
        })
        .collect::<Result<Vec<Regex>, _>>()
        .map_err(|e| whole(format!("pattern: {e}")))?;
    Ok(KnowledgeBase {
        patterns,
        host_patterns: set(&builder.host_patterns)?,
        entries: builder.entries,
        revisions: sources
            .iter()
            .filter_map(|s| s.revision.map(str::to_owned))
            .collect(),
        terms,
        term_owner: builder.term_owner,
        pattern_owner: builder.pattern_owner,
        host_owner: builder.host_owner,
    })
}

impl Builder {
    fn add(&mut self, def: &EntryDef, source: &Source<'_>) -> Result<(), KnowledgeError> {
        let id = def.id.get_ref().trim().to_owned();
        let line = line_of(source.text, def.id.span().start);
        let invalid = |message: String| KnowledgeError {
            source_name: source.name.to_owned(),
            line,
            entry: Some(id.clone()),
            message,
        };
        if id.is_empty() {
            return Err(invalid("empty id".into()));
        }
        if let Some((first_source, first_line)) = self.ids.get(&id) {
            return Err(invalid(format!(
                "duplicate id (first defined at {first_source}:{first_line})"
            )));
        }
        check_fields(def).map_err(invalid)?;
        let index = self.entries.len();
        let owner_index =
            u16::try_from(index).map_err(|_| invalid(format!("more than {} entries", u16::MAX)))?;
        let mut bit = 0;
        for set in &def.cues {
            let before = self.terms.len();
            for term in set.iter().map(|t| normalize_term(t)) {
                if term.is_empty() {
                    return Err(invalid(format!(
                        "cue set {} has a term that is empty once normalised",
                        bit + 1
                    )));
                }
                let ascii_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                let needs_boundary =
                    ascii_edge(term.chars().next()) || ascii_edge(term.chars().next_back());
                self.terms.push(term);
                self.term_owner.push(TermOwner {
                    entry: owner_index,
                    bit_index: bit,
                    needs_boundary,
                });
            }
            if self.terms.len() == before {
                return Err(invalid(format!("cue set {} is empty", bit + 1)));
            }
            bit += 1;
        }
        let mut next_bit = || {
            let b = 1u32 << bit;
            bit += 1;
            b
        };
        let pattern_bit = match &def.pattern {
            Some(pattern) => {
                check_pattern(pattern).map_err(|e| invalid(format!("bad pattern: {e}")))?;
                self.patterns.push(pattern.clone());
                self.pattern_owner.push(index);
                Some(next_bit())
            }
            None => None,
        };
        let host_bit = match &def.hosts {
            Some(hosts) => {
                check_pattern(hosts).map_err(|e| invalid(format!("bad hosts pattern: {e}")))?;
                self.host_patterns.push(hosts.clone());
                self.host_owner.push(index);
                Some(next_bit())
            }
            None => None,
        };
        self.ids.insert(id.clone(), (source.name.to_owned(), line));
        self.entries.push(Entry {
            id,
            kind: def.kind.clone(),
            label: def.label,
            weight: def.weight,
            action: def.action,
            description: def.description.trim().to_owned(),
            examples: def.examples.clone(),
            counter_examples: def.counter_examples.clone(),
            source_name: source.name.to_owned(),
            line,
            all_bits: u32::MAX >> (32 - bit),
            pattern_bit,
            host_bit,
        });
        Ok(())
    }
}

/// The checks of one entry that need no other entry.
fn check_fields(def: &EntryDef) -> Result<(), String> {
    let kind_ok = !def.kind.is_empty()
        && def
            .kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !kind_ok {
        return Err("`type` must be a snake_case name such as `impersonate_authority`".into());
    }
    if !(0.0..=1.0).contains(&def.weight) {
        return Err(format!("weight {} is outside 0..=1", def.weight));
    }
    if def.action == Some(Action::Tag) {
        return Err("action must be allow, quarantine or block".into());
    }
    if def.label == Some(Label::Ham) && def.action != Some(Action::Allow) {
        return Err("label `ham` is only for entries whose action is `allow`".into());
    }
    if def.cues.is_empty() && def.pattern.is_none() && def.hosts.is_none() {
        return Err("an entry needs cues, a pattern or hosts".into());
    }
    if def.cues.len() > MAX_CUE_SETS {
        return Err(format!("more than {MAX_CUE_SETS} cue sets"));
    }
    if def.description.trim().is_empty() {
        return Err("no description".into());
    }
    if def.examples.is_empty() {
        return Err("no examples (at least one message it must fire on)".into());
    }
    Ok(())
}

fn check_pattern(pattern: &str) -> Result<(), regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map(drop)
}

/// A term as it appears in a normalised message. A placeholder such as `<num>` is kept as
/// written (normalising it would mask it again).
fn normalize_term(term: &str) -> String {
    let term = term.trim();
    if crate::placeholder::ALL.contains(&term) {
        return term.to_owned();
    }
    crate::normalize(term).text.trim().to_owned()
}

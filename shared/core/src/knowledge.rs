//! The fraud and spam knowledge base: one curated, versioned table of message types (the public
//! typology of SMS fraud in Chinese and English, gambling, adult and fake-document spam,
//! promotions with an opt-out) and of cross-cutting signals (contact lures, look-alike links,
//! urgency, secrecy, money transfer), shared by the edge (compiled in) and the cloud's rules
//! scorer (compiled in, or a file on disk that it hot-reloads).
//!
//! # Format (`data/knowledge.toml`; TOML)
//! ```toml
//! format = 1                      # the format this code reads
//! revision = "2026-12-07.1"       # the data's version: bump it with every edit
//! [[entry]]
//! id = "zh-police-case"           # unique
//! type = "impersonate_authority"  # the type it evidences (snake_case); hits are reported per type
//! label = "fraud"                 # optional: the class it evidences (none: a signal of no class)
//! weight = 0.6                    # 0..=1, its strength as evidence (noisy-or in the cloud);
//!                                 # 0 for a marker that only explains (an opt-out footer)
//! action = "allow"                # optional, cloud only: allow | quarantine | block
//! description = "..."             # what the type is, in words
//! cues = [["公安", "民警"], ["洗钱", "涉嫌"]]  # every set needs one term in the message
//! pattern = '(账户|银行卡).{0,8}冻结'          # optional regex that must match as well
//! hosts = '(?:^|[.-])(?:verify|secure)[.-]'  # optional regex one link host must match
//! examples = ["..."]              # messages it must fire on (checked)
//! counter_examples = ["..."]      # messages it must not fire on (checked)
//! ```
//! An entry of type `scam_warning` (an anti-fraud notice, "we never ask for a fee") switches the harmful
//! and junk entries off for the message it fires on, unless the message carries a link: [`SCAM_WARNING`].
//! Cues and patterns see the normalised text (lower case, Simplified Chinese, half-width,
//! look-alikes and contact lures folded, `<url>` `<email>` `<phone>` `<num>` placeholders).
//! Terms are normalised when loaded, so they may be written in any form; a term that starts or
//! ends with an ASCII letter or digit matches only at ASCII word boundaries there.
//!
//! One Aho-Corasick pass finds every term; an entry's pattern runs only when its cues and hosts
//! are met.

mod compile;
mod offline;
mod table;

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexSet};

use crate::normalize::Normalized;
use crate::taxonomy::Label;
use crate::verdict::Action;

pub use compile::{EntryDef, KnowledgeFile, Source};
pub use offline::{offline_rule, offline_tag, OfflineTag, DISGUISE_MIN_LEAN, PROMOTION_MIN_SCORE};
pub use table::{TableText, MAX_TABLE_BYTES};

/// The shipped knowledge base.
pub const BUILTIN_TOML: &str = include_str!("../data/knowledge.toml");
/// The name the built-in table has in errors.
pub const BUILTIN_NAME: &str = "knowledge.toml (built in)";
/// The type of entries that find an advertisement's opt-out ("回T退订", "reply STOP").
pub const OPT_OUT: &str = "opt_out";
/// The type of entries that find a warning *about* scams (an anti-fraud notice, a bank's "we
/// never ask for a fee"). When one fires on a message without a link, harmful and junk entries do
/// not: such notices quote the very phrases the fraud and junk entries look for ("安全账户",
/// "转账汇款", "转发给十个人"), negated. A link keeps them: phishing borrows the reassurance
/// ("our agent will never ask for your details", then the link; corpus spam has such messages),
/// while a notice has nothing to click.
pub const SCAM_WARNING: &str = "scam_warning";
/// The format version this code reads.
pub const FORMAT: u32 = 1;

/// A table that does not load, or an entry whose examples disagree with it. `line` is 1-based
/// (0 when no line applies); no error quotes a message, only entry ids and example numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {}{message}", entry_prefix(.entry))]
pub struct KnowledgeError {
    pub source_name: String,
    pub line: usize,
    /// The entry at fault, when there is one.
    pub entry: Option<String>,
    pub message: String,
}

fn entry_prefix(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|id| format!("entry `{id}`: "))
        .unwrap_or_default()
}

/// One compiled entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// The type it evidences, e.g. `impersonate_authority`.
    pub kind: String,
    pub label: Option<Label>,
    pub weight: f32,
    /// An action the cloud forces when it fires (never [`Action::Tag`]).
    pub action: Option<Action>,
    pub description: String,
    pub examples: Vec<String>,
    pub counter_examples: Vec<String>,
    /// Where it was defined.
    pub source_name: String,
    pub line: usize,
    /// Bits of every requirement (cue sets, then pattern, then hosts): fires when all are met.
    all_bits: u32,
    pattern_bit: Option<u32>,
    host_bit: Option<u32>,
}

impl Entry {
    /// True for evidence of fraud or illegal content (not an allow template): what the edge tags
    /// on and what keeps a promotion from being let off as one.
    pub fn is_harmful(&self) -> bool {
        matches!(self.label, Some(Label::Fraud | Label::Illegal))
            && self.action != Some(Action::Allow)
    }

    /// True for evidence of a junk type that is neither fraud nor illegal (chain letters, bought
    /// followers, pharmacy spam; see [`is_junk`]): tagged when the model or fusion allows, never
    /// more, on the phone and in the cloud.
    pub fn is_junk(&self) -> bool {
        is_junk(self.label) && self.action != Some(Action::Allow)
    }

    /// True for a cross-cutting fraud signal ([`is_signal`]).
    pub fn is_signal(&self) -> bool {
        is_signal(self.label, self.weight, &self.kind)
    }
}

/// Whether a hit of this label, weight and type is a cross-cutting fraud signal (a contact lure,
/// urgency, a look-alike link, a transfer request): evidence of no class on its own, so it has no
/// label, but a weight; a marker (weight 0) or a scam warning is not one. The one rule for the
/// phone's entries and the cloud's rule hits.
pub fn is_signal(label: Option<Label>, weight: f32, kind: &str) -> bool {
    label.is_none() && weight > 0.0 && kind != SCAM_WARNING
}

/// Whether a hit of this label names a junk type: label `spam`, the class of unwanted messages
/// that are neither fraud, illegal nor a promotion. Such an entry is as specific as a harmful one
/// (it names a type and needs its cues), so it tags on its own; over the 32,593 ham of every
/// corpus's train and dev splits the four of them (chain letters, bought followers, pharmacy
/// spam, premium-rate charges) fire once (README, "Junk types tag"). The one rule for the
/// phone's entries and the cloud's rule hits.
pub fn is_junk(label: Option<Label>) -> bool {
    label == Some(Label::Spam)
}

/// The least spam score (the edge model's on the phone, the fused one in the cloud) at which a
/// fraud signal tags an allowed message: the signal alone is no evidence of a class, the lean
/// towards spam alone is under the market's tag threshold, together they are both. Measured on
/// the 3,622 dev ham of the corpora: none more tagged on the phone, one in the cloud (README,
/// "Fraud signals offline").
pub const SIGNAL_MIN_SCORE: f32 = 0.5;

/// Per Aho-Corasick pattern: its entry, the index of its cue set's bit, and whether it needs
/// ASCII word boundaries. Four bytes, not sixteen: there is one per cue term (over a thousand),
/// and the phone counts every byte of the table against its 200 KB.
#[derive(Debug, Clone, Copy)]
struct TermOwner {
    entry: u16,
    bit_index: u8,
    needs_boundary: bool,
}

/// A compiled knowledge base. Immutable; the cloud swaps whole ones on reload.
#[derive(Debug)]
pub struct KnowledgeBase {
    entries: Vec<Entry>,
    revisions: Vec<String>,
    terms: Option<AhoCorasick>,
    term_owner: Vec<TermOwner>,
    /// One per entry with a pattern, in `pattern_owner` order.
    patterns: Vec<Regex>,
    pattern_owner: Vec<usize>,
    host_patterns: RegexSet,
    host_owner: Vec<usize>,
}

impl KnowledgeBase {
    /// The compiled-in table, built once (its examples are checked by the tests, not here).
    pub fn builtin() -> &'static KnowledgeBase {
        static KB: OnceLock<KnowledgeBase> = OnceLock::new();
        KB.get_or_init(|| {
            Self::parse(BUILTIN_TOML, BUILTIN_NAME).expect("the built-in knowledge base loads")
        })
    }

    /// One table, its examples unchecked (see [`Self::check_examples`]).
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KnowledgeError> {
        let file = KnowledgeFile::parse(text, source_name)?;
        Self::compile(&[file.source(text, source_name)])
    }

    /// Compiles the entries of several sources into one base; ids must be unique across them.
    pub fn compile(sources: &[Source<'_>]) -> Result<Self, KnowledgeError> {
        compile::compile(sources)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The revisions of the tables it was compiled from, in order.
    pub fn revisions(&self) -> &[String] {
        &self.revisions
    }

    /// Heap bytes of the compiled matchers (the table's cost on the phone, with its text).
    pub fn memory_usage(&self) -> usize {
        self.terms.as_ref().map_or(0, AhoCorasick::memory_usage)
            + self.term_owner.len() * std::mem::size_of::<TermOwner>()
    }

    /// Every entry that fires on `normalized`, in table order.
    pub fn hits(&self, normalized: &Normalized) -> Vec<&Entry> {
        self.fired(&normalized.text, normalized)
            .into_iter()
            .map(|i| &self.entries[i])
            .collect()
    }

    /// The first harmful entry (see [`Entry::is_harmful`]) in table order that fires.
    pub fn first_harmful(&self, normalized: &Normalized) -> Option<&Entry> {
        self.fired(&normalized.text, normalized)
            .into_iter()
            .map(|i| &self.entries[i])
            .find(|e| e.is_harmful())
    }

    /// Whether entry `index` fires on the normalisation of a text (for the example checks).
    fn fires(&self, index: usize, normalized: &Normalized) -> bool {
        self.fired(&normalized.text, normalized).contains(&index)
    }

    /// Indices of the entries that fire, in table order.
    fn fired(&self, text: &str, normalized: &Normalized) -> Vec<usize> {
        let mut bits = vec![0u32; self.entries.len()];
        if let Some(terms) = &self.terms {
            for found in terms.find_overlapping_iter(text) {
                let owner = self.term_owner[found.pattern().as_usize()];
                if owner.needs_boundary && !at_word_boundaries(text, found.range()) {
                    continue;
                }
                bits[usize::from(owner.entry)] |= 1 << owner.bit_index;
            }
        }
        if !self.host_owner.is_empty() {
            for host in normalized.link_hosts() {
                for i in self.host_patterns.matches(host).into_iter() {
                    let entry = self.host_owner[i];
                    bits[entry] |= self.entries[entry].host_bit.unwrap_or(0);
                }
            }
        }
        // Patterns last, each only when everything else its entry needs is already there.
        for (pattern, &entry) in self.patterns.iter().zip(&self.pattern_owner) {
            let pattern_bit = self.entries[entry].pattern_bit.unwrap_or(0);
            let others = self.entries[entry].all_bits & !pattern_bit;
            if bits[entry] & others == others && pattern.is_match(text) {
                bits[entry] |= pattern_bit;
            }
        }
        let mut fired: Vec<usize> = bits
            .into_iter()
            .enumerate()
            .filter(|&(i, hit)| hit != 0 && hit == self.entries[i].all_bits)
            .map(|(i, _)| i)
            .collect();
        let warned = fired.iter().any(|&i| self.entries[i].kind == SCAM_WARNING);
        if warned && normalized.link_hosts().next().is_none() {
            fired.retain(|&i| !self.entries[i].is_harmful() && !self.entries[i].is_junk());
        }
        fired
    }

    /// Checks every entry against its own examples and counter-examples (normalised like
    /// messages): the first disagreement is the error, naming the entry and the example's number.
    pub fn check_examples(&self) -> Result<(), KnowledgeError> {
        for (index, entry) in self.entries.iter().enumerate() {
            let failure = |what: &str, n: usize| KnowledgeError {
                source_name: entry.source_name.clone(),
                line: entry.line,
                entry: Some(entry.id.clone()),
                message: format!("{what} {n} (1-based)"),
            };
            for (n, example) in entry.examples.iter().enumerate() {
                if !self.fires(index, &crate::normalize(example)) {
                    return Err(failure("does not fire on its example", n + 1));
                }
            }
            for (n, counter) in entry.counter_examples.iter().enumerate() {
                if self.fires(index, &crate::normalize(counter)) {
                    return Err(failure("fires on its counter-example", n + 1));
                }
            }
        }
        Ok(())
    }
}

fn at_word_boundaries(text: &str, range: std::ops::Range<usize>) -> bool {
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !is_word(before) && !is_word(after)
}

#[cfg(test)]
mod tests;

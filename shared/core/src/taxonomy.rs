//! The coarse label taxonomy shared by every model and report, and the mapping from the fine
//! labels of the individual corpora to it.
//!
//! The mapping lives in `datasets/label-map.tsv` (`fine_label<TAB>label<TAB>note`), compiled in
//! with `include_str!` so that the trainer, the evaluators and the edge agree on it. A fine label
//! missing from the table maps to `None`: the corpus reader reports it instead of guessing.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// The raw mapping table, `fine_label<TAB>label<TAB>note`; `#` starts a comment line.
pub const LABEL_MAP_TSV: &str = include_str!("../../../datasets/label-map.tsv");

/// Coarse message class. `Ham` is the only non-spam class and always comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Ham,
    Ad,
    Fraud,
    Illegal,
    Spam,
}

/// Error for a string that names no [`Label`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown label (length {len})")]
pub struct UnknownLabel {
    /// Length of the rejected string in bytes (the string itself may be user text).
    pub len: usize,
}

impl Label {
    /// All labels in output order of the models (`Ham` first).
    pub const ALL: [Label; 5] = [
        Label::Ham,
        Label::Ad,
        Label::Fraud,
        Label::Illegal,
        Label::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Ham => "ham",
            Label::Ad => "ad",
            Label::Fraud => "fraud",
            Label::Illegal => "illegal",
            Label::Spam => "spam",
        }
    }

    /// True for every class a user would want filtered, i.e. everything except `Ham`.
    pub fn is_spam(self) -> bool {
        self != Label::Ham
    }

    /// Maps a corpus fine label (e.g. `fraud:phishing_bank`, `smishing`, `normal`) to its coarse
    /// label using `datasets/label-map.tsv`; `None` for labels the table does not list.
    pub fn from_fine(fine: &str) -> Option<Label> {
        FINE_MAP
            .iter()
            .find(|(name, _)| *name == fine.trim())
            .map(|(_, label)| *label)
    }

    /// Every `(fine_label, label)` pair of the mapping table, in file order.
    pub fn fine_labels() -> &'static [(&'static str, Label)] {
        &FINE_MAP
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = UnknownLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::ALL
            .into_iter()
            .find(|label| label.as_str() == s)
            .ok_or(UnknownLabel { len: s.len() })
    }
}

/// Parsed mapping table. A malformed row is a build-time data bug: the taxonomy test parses every
/// row, and rows that do not parse are skipped here rather than panicking at run time.
static FINE_MAP: LazyLock<Vec<(&'static str, Label)>> = LazyLock::new(|| {
    data_rows(LABEL_MAP_TSV)
        .filter_map(|fields| {
            let fine = *fields.first()?;
            let label = fields.get(1)?.parse().ok()?;
            Some((fine, label))
        })
        .collect()
});

/// Non-comment, non-blank lines of a compiled-in TSV table, split on tabs.
pub(crate) fn data_rows(table: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    table
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split('\t').map(str::trim).collect())
}

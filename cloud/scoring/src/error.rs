//! The crate's error type. Messages name files, rule ids, keys and lengths, never message text
//! or sender numbers.

use crate::rules::RulesError;
use crate::similarity::SimilarityError;

/// Any error a scorer can return.
#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    #[error(transparent)]
    Similarity(#[from] SimilarityError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("{0} is unavailable (a writer panicked)")]
    Poisoned(&'static str),
}

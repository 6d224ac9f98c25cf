//! [`RulesHandle`]: the rules in force, swapped whole when the rules file or the knowledge table
//! it names changes; and [`StaticRules`], a fixed set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{outcome_score, RuleSet, RulesError, NAME};
use crate::{MessageContext, ModelScore, Scorer, ScoringError};

/// (mtime, length) of the rules file and of its knowledge table file, if it has one.
type Stamp = (Option<(SystemTime, u64)>, Option<(SystemTime, u64)>);

#[derive(Debug)]
struct ReloadState {
    /// Stamps of the files last tried, successful or not.
    seen: Stamp,
    last_check: Option<Instant>,
    last_error: Option<RulesError>,
}

/// A rules file that reloads itself when it changes; the `rules` [`Scorer`].
#[derive(Debug)]
pub struct RulesHandle {
    path: PathBuf,
    check_every: Duration,
    current: RwLock<Arc<RuleSet>>,
    state: Mutex<ReloadState>,
}

/// Alias: the handle is the scorer.
pub type RulesScorer = RulesHandle;

impl RulesHandle {
    /// Loads `path` (which must be valid now); `score` checks for changes at most every
    /// `check_every`.
    pub fn open(path: impl Into<PathBuf>, check_every: Duration) -> Result<Self, RulesError> {
        let path = path.into();
        let rules = RuleSet::load(&path)?;
        let seen = stamp(&path, &rules);
        Ok(RulesHandle {
            path,
            check_every,
            current: RwLock::new(Arc::new(rules)),
            state: Mutex::new(ReloadState {
                seen,
                last_check: Some(Instant::now()),
                last_error: None,
            }),
        })
    }

    /// The rules now in force.
    pub fn current(&self) -> Result<Arc<RuleSet>, RulesError> {
        self.current
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| RulesError::Poisoned)
    }

    /// The error of the last failed reload, cleared by a successful one.
    pub fn last_error(&self) -> Option<RulesError> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }

    /// Reloads when the mtime or length of the file or of its knowledge table changed since the
    /// last attempt. `Ok(true)`: new
    /// rules active; `Ok(false)`: unchanged; `Err`: the new file is bad and the old rules stay.
    pub fn reload_if_changed(&self) -> Result<bool, RulesError> {
        let mut state = self.state.lock().map_err(|_| RulesError::Poisoned)?;
        state.last_check = Some(Instant::now());
        let current = self.current()?;
        let now = stamp(&self.path, &current);
        if now.0.is_some() && now == state.seen {
            return Ok(false);
        }
        state.seen = now;
        match RuleSet::load(&self.path) {
            Ok(rules) => {
                // A new file may name another table: remember that one's stamp.
                state.seen = stamp(&self.path, &rules);
                *self.current.write().map_err(|_| RulesError::Poisoned)? = Arc::new(rules);
                state.last_error = None;
                Ok(true)
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Runs [`Self::reload_if_changed`] when the last check is older than `check_every`. A failed
    /// reload does not fail scoring: the error is kept in [`Self::last_error`].
    fn maybe_reload(&self) {
        let due = self
            .state
            .lock()
            .map(|s| s.last_check.is_none_or(|t| t.elapsed() >= self.check_every))
            .unwrap_or(false);
        if due {
            let _ = self.reload_if_changed();
        }
    }
}

fn stamp(path: &Path, rules: &RuleSet) -> Stamp {
    (
        file_stamp(path),
        rules.knowledge_path().and_then(file_stamp),
    )
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Scores with a fixed rule set (no reloading), e.g. [`RuleSet::builtin`].
#[derive(Debug)]
pub struct StaticRules(pub RuleSet);

impl Scorer for RulesHandle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        self.maybe_reload();
        Ok(outcome_score(self.current()?.evaluate(msg)))
    }
}

impl Scorer for StaticRules {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(outcome_score(self.0.evaluate(msg)))
    }
}

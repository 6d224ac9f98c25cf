//! [`CloudScorer`]: owns the scorers and the fusion model, and turns one message into a
//! [`FusedVerdict`]: normalise once, fingerprint once, run every scorer, fuse.

use std::path::{Path, PathBuf};
use std::time::Duration;

use smsguard_core::{Label, Market};

use crate::fusion::{EdgeInput, FusedVerdict, FusionError, FusionModel, ScorerOutcome};
use crate::lexical::{LexicalError, LexicalModel};
use crate::multiclass::{MulticlassError, MulticlassModel};
use crate::rules::{RuleSet, RulesError, RulesHandle, StaticRules};
use crate::similarity::{SimilarityError, SimilarityStore};
use crate::{MessageContext, PreparedMessage, Scorer, SenderReputation, VariantScorer};

/// The cloud's scorer line-up, the one the fusion is fitted on: the served cloud and the
/// trainer (its refit and its leave-one-corpus-out folds) build it here, with their own models.
pub fn lineup(
    multiclass: MulticlassModel,
    lexical: LexicalModel,
    similarity: SimilarityStore,
    rules: Box<dyn Scorer>,
) -> Vec<Box<dyn Scorer>> {
    vec![
        Box::new(multiclass),
        Box::new(lexical),
        Box::new(similarity),
        Box::new(VariantScorer::default()),
        rules,
        Box::new(SenderReputation::default()),
    ]
}

/// Runs every scorer on one message; a failure becomes an outcome carrying the error's text
/// (which never quotes the message).
pub fn outcomes_of(scorers: &[Box<dyn Scorer>], msg: &MessageContext<'_>) -> Vec<ScorerOutcome> {
    scorers
        .iter()
        .map(|scorer| ScorerOutcome {
            model: scorer.name().to_owned(),
            result: scorer.score(msg).map_err(|e| e.to_string()),
        })
        .collect()
}

/// Errors of building a [`CloudScorer`]. None quotes message text.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Multiclass(#[from] MulticlassError),
    #[error(transparent)]
    Lexical(#[from] LexicalError),
    #[error(transparent)]
    Fusion(#[from] FusionError),
    #[error(transparent)]
    Similarity(#[from] SimilarityError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Corpus(#[from] smsguard_corpus::CorpusError),
    #[error(transparent)]
    Lineup(#[from] LineupError),
}

/// A scorer line-up other than the one the fusion model was fitted on: fusion weighs scorers by
/// name, so a missing, extra or renamed scorer would otherwise change verdicts silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the scorer line-up {served:?} is not the one the fusion model was fitted on {fitted:?}: \
     refit the fusion (smsguard-train train-cloud) or fix the line-up"
)]
pub struct LineupError {
    /// The scorers `fusion.json` was fitted on, in its order.
    pub fitted: Vec<String>,
    /// The weighed scorers offered, then those the caller supplies outcomes for.
    pub served: Vec<String>,
}

/// Checks that `served` names each scorer of `fusion`'s fit exactly once. Order does not
/// matter: fusion finds each input's outcome by name.
fn check_lineup(fusion: &FusionModel, served: Vec<&str>) -> Result<(), LineupError> {
    let fitted = fusion.scorer_names();
    let (mut want, mut have) = (fitted.clone(), served.clone());
    want.sort_unstable();
    have.sort_unstable();
    if want == have {
        return Ok(());
    }
    let owned = |names: Vec<&str>| names.into_iter().map(str::to_owned).collect();
    Err(LineupError {
        fitted: owned(fitted),
        served: owned(served),
    })
}

/// How [`CloudScorer::embedded_with`] builds its scorers.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Seed an empty similarity store from the spam of every corpus `train.tsv` (when the
    /// datasets folder is found). Takes a few seconds once; the store persists in `data_dir`.
    pub seed_from_corpora: bool,
    /// Where the corpora are (default: `smsguard_corpus::datasets_dir()`).
    pub datasets_dir: Option<PathBuf>,
    /// A rules file to load and hot-reload instead of the built-in rules.
    pub rules_path: Option<PathBuf>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            seed_from_corpora: true,
            datasets_dir: None,
            rules_path: None,
        }
    }
}

/// The fused cloud scorer. Safe to share across request threads.
pub struct CloudScorer {
    scorers: Vec<Box<dyn Scorer>>,
    fusion: FusionModel,
}

impl std::fmt::Debug for CloudScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.scorers.iter().map(|s| s.name()).collect();
        f.debug_struct("CloudScorer")
            .field("scorers", &names)
            .finish_non_exhaustive()
    }
}

impl CloudScorer {
    /// The scorers and the fusion fitted on them: refused unless the weighed scorers
    /// ([`Scorer::weighed`]) are exactly those of the fit ([`LineupError`]). Also warms
    /// normalisation and every scorer up (see [`Scorer::warm_up`]), so that the first request
    /// after start-up is as fast as the others.
    pub fn new(scorers: Vec<Box<dyn Scorer>>, fusion: FusionModel) -> Result<Self, LineupError> {
        Self::with_supplied(scorers, &[], fusion)
    }

    /// As [`Self::new`], for a caller that supplies the outcomes of the scorers named in
    /// `supplied` itself (from a state shared between replicas) to [`Self::fuse_outcomes`].
    pub fn with_supplied(
        scorers: Vec<Box<dyn Scorer>>,
        supplied: &[&str],
        fusion: FusionModel,
    ) -> Result<Self, LineupError> {
        let weighed = scorers.iter().filter(|s| s.weighed()).map(|s| s.name());
        check_lineup(&fusion, weighed.chain(supplied.iter().copied()).collect())?;
        smsguard_core::normalize::warm_up();
        for scorer in &scorers {
            scorer.warm_up();
        }
        Ok(CloudScorer { scorers, fusion })
    }

    /// The shipped models and default rules, the similarity store in `data_dir/similarity`
    /// (seeded from the training corpora when empty and the corpora are present).
    pub fn embedded(data_dir: &Path) -> Result<Self, CloudError> {
        Self::embedded_with(data_dir, &EmbeddedOptions::default())
    }

    pub fn embedded_with(data_dir: &Path, options: &EmbeddedOptions) -> Result<Self, CloudError> {
        let similarity = SimilarityStore::open(data_dir.join("similarity"))?;
        if options.seed_from_corpora && similarity.is_empty() {
            let dir = match &options.datasets_dir {
                Some(dir) => Some(dir.clone()),
                None => smsguard_corpus::datasets_dir().ok(),
            };
            if let Some(dir) = dir.filter(|d| d.is_dir()) {
                seed_similarity(&similarity, &dir)?;
            }
        }
        let rules: Box<dyn Scorer> = match &options.rules_path {
            Some(path) => Box::new(RulesHandle::open(path, Duration::from_secs(5))?),
            None => Box::new(StaticRules(RuleSet::builtin()?)),
        };
        let scorers = lineup(
            MulticlassModel::embedded()?,
            LexicalModel::embedded()?,
            similarity,
            rules,
        );
        Ok(CloudScorer::new(scorers, FusionModel::embedded()?)?)
    }

    pub fn fusion(&self) -> &FusionModel {
        &self.fusion
    }

    pub fn scorer_names(&self) -> Vec<&'static str> {
        self.scorers.iter().map(|s| s.name()).collect()
    }

    /// Runs every scorer; a failure becomes an outcome carrying the error's text (which never
    /// quotes the message).
    pub fn outcomes(&self, msg: &MessageContext<'_>) -> Vec<ScorerOutcome> {
        outcomes_of(&self.scorers, msg)
    }

    /// The verdict on an already prepared message, judged at the thresholds of its dominant
    /// script's market.
    pub fn score(&self, msg: &MessageContext<'_>, edge: Option<EdgeInput>) -> FusedVerdict {
        self.score_in(msg, edge, None)
    }

    /// The verdict judged at `market`'s thresholds (the device's configured market), else at
    /// those of the message's dominant script ([`Market::of_text`], as the edge decides):
    /// fusion decides by score, then the category policy ([`crate::policy`]) adjusts the action
    /// (a promotion is tagged, not quarantined; a known fraud type is raised).
    pub fn score_in(
        &self,
        msg: &MessageContext<'_>,
        edge: Option<EdgeInput>,
        market: Option<Market>,
    ) -> FusedVerdict {
        self.fuse_outcomes(msg, &self.outcomes(msg), edge, market)
    }

    /// What [`Self::score_in`] does once the scorers' outcomes are in (also for outcomes a
    /// caller completed itself, e.g. from a state shared between replicas): fusion at the market,
    /// then the category policy.
    pub fn fuse_outcomes(
        &self,
        msg: &MessageContext<'_>,
        outcomes: &[ScorerOutcome],
        edge: Option<EdgeInput>,
        market: Option<Market>,
    ) -> FusedVerdict {
        let market = market.unwrap_or_else(|| Market::of_text(&msg.normalized.text));
        let verdict = self.fusion.fuse(outcomes, edge, market);
        crate::policy::apply(verdict, outcomes, &self.fusion)
    }

    /// Normalises and fingerprints `body` once, then scores it.
    pub fn score_text(
        &self,
        sender: &str,
        body: &str,
        received_at_ms: i64,
        device_id: &str,
        edge: Option<EdgeInput>,
    ) -> FusedVerdict {
        let prepared = PreparedMessage::new(sender, body, received_at_ms, device_id);
        self.score(&prepared.context(), edge)
    }
}

/// Remembers the spam of every `train.tsv` under `datasets_dir` in `store` (dev and test texts
/// are never seeded). Returns the number of fingerprints added.
pub fn seed_similarity(store: &SimilarityStore, datasets_dir: &Path) -> Result<usize, CloudError> {
    seed_similarity_files(store, &smsguard_corpus::split_files(datasets_dir, "train")?)
}

/// Remembers the spam (any non-ham label) of the given corpus files in `store`.
pub fn seed_similarity_files(
    store: &SimilarityStore,
    files: &[PathBuf],
) -> Result<usize, CloudError> {
    let mut added = 0;
    for file in files {
        let corpus = smsguard_corpus::read_tsv(file)?;
        let spam = corpus
            .records
            .iter()
            .filter(|r| r.label != Label::Ham)
            .map(|r| r.text.as_str());
        added += store.seed_from_corpus_spam(spam)?;
    }
    Ok(added)
}

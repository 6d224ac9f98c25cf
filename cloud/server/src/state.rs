//! The service's shared state and its request logic, independent of tonic's plumbing:
//! validation, scoring (CPU-bound, called from `spawn_blocking`), reports, sync pages and the
//! hot reload of rules and of the similarity memory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use smsguard_core::knowledge::TableText;
use smsguard_core::{Fingerprint, Label};
use smsguard_proto::v1;
use smsguard_scoring::fusion::ScorerOutcome;
use smsguard_scoring::rules::{StaticRules, DEFAULT_RULES_TOML};
use smsguard_scoring::similarity::{consensus_of, score_candidates, Consensus, Entry, UserReport};
use smsguard_scoring::{
    CloudScorer, EdgeInput, ForcedAction, FusedVerdict, FusionModel, LexicalModel, MessageContext,
    ModelScore, MulticlassModel, PreparedMessage, RuleSet, RulesHandle, Scorer, ScoringError,
    SenderConfig, SenderReputation, SimilarityConfig, SimilarityStore, VariantScorer,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::KeyId;
use crate::config::ServerConfig;
use crate::error::{RequestError, ServerError};
use crate::metrics::Metrics;
use crate::operator_list::{Listing, OperatorList, OperatorListScorer};
use crate::package::{self, ModelPackage};
use crate::report_budget::ReportBudgets;
use crate::state_backend::embedded::EmbeddedState;
use crate::state_backend::redis::RedisState;
use crate::state_backend::{
    PrefetchRequest, Prefetched, RateLimit, SharedInputs, StateBackend, StateError,
};
use crate::sync::{Change, SyncLog};

/// Limits on one `SmsMessage` besides the body.
const MAX_SENDER_BYTES: usize = 256;
const MAX_ID_BYTES: usize = 128;
/// `SyncCache` page size when the client asks for 0, and the most it may ask for.
const DEFAULT_SYNC_ENTRIES: usize = 1000;
const MAX_SYNC_ENTRIES: usize = 10_000;

mod reload;
mod reports;
mod scoring;
mod validate;

pub use reload::sender_rules;
pub(crate) use validate::parse_fingerprint_id;
use validate::*;

/// The scorers whose outcomes a shared state (Redis) supplies per message, prefetched, instead
/// of scorers in process; both come out degraded when the state fails.
pub(crate) const SHARED_STATE_SCORERS: [&str; 2] = ["similarity", "sender"];

/// A scorer shared with the service (the report path writes to the same instance).
struct Shared<T>(Arc<T>);

impl<T: Scorer> Scorer for Shared<T> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        self.0.score(msg)
    }

    fn warm_up(&self) {
        self.0.warm_up()
    }
}

/// The rules scorer, counting each rule that fires (`smsguard_rule_hits_total`, the console's
/// Rules page).
struct CountingRules {
    inner: Box<dyn Scorer>,
    metrics: Arc<Metrics>,
}

impl Scorer for CountingRules {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        let score = self.inner.score(msg)?;
        for hit in &score.hits {
            self.metrics.record_rule_hit(&hit.id);
        }
        Ok(score)
    }

    fn warm_up(&self) {
        self.inner.warm_up();
    }
}

/// A recently classified fingerprint, and whether an operator rule allowed its message.
#[derive(Debug, Clone)]
struct RecentFingerprint {
    fingerprint: Fingerprint,
    operator_allowed: bool,
}

/// Fingerprints of recently classified messages, kept so a `Report` carrying only the
/// fingerprint id can be resolved: two generations of `id -> fingerprint` of `generation` each;
/// the older one is dropped when the newer fills up (`ServerConfig::recent_fingerprints`).
#[derive(Debug, Default)]
struct RecentFingerprints {
    generation: usize,
    current: HashMap<u64, RecentFingerprint>,
    previous: HashMap<u64, RecentFingerprint>,
}

impl RecentFingerprints {
    fn remember(&mut self, fp: &Fingerprint, operator_allowed: bool) {
        if self.current.len() >= self.generation {
            self.previous = std::mem::take(&mut self.current);
        }
        let recent = RecentFingerprint {
            fingerprint: fp.clone(),
            operator_allowed,
        };
        self.current.insert(fp.id(), recent);
    }

    fn get(&self, id: u64) -> Option<&RecentFingerprint> {
        self.current.get(&id).or_else(|| self.previous.get(&id))
    }
}

/// A validated message, ready to score.
#[derive(Debug, Clone)]
pub struct ValidMessage {
    pub sender: String,
    pub body: String,
    pub received_at_ms: i64,
    pub device_id: String,
    pub client_message_id: String,
    pub edge: Option<EdgeInput>,
    /// The device's configured market; `None`: the message's dominant script decides.
    pub market: Option<smsguard_core::Market>,
}

/// What a reload pass changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub rules_reloaded: bool,
    pub sender_rule_changes: usize,
    pub feed_fingerprints_added: usize,
}

#[derive(Debug)]
pub struct AppState {
    pub config: ServerConfig,
    scorer: CloudScorer,
    similarity_config: SimilarityConfig,
    /// The sender scorer: in process (embedded state), or the hashing and scoring of the
    /// windows read from the shared state.
    sender: Arc<SenderReputation>,
    /// The similarity memory, sync log and sender windows: this process's or shared.
    state: Box<dyn StateBackend>,
    rules: Option<Arc<RulesHandle>>,
    /// The sled store of `data_dir/sync`: the change log of the embedded state, and the
    /// console's audit log whatever the state.
    pub sync: SyncLog,
    pub package: ModelPackage,
    /// The private-mode model (`PrivateClassify`).
    pub private: crate::private::PrivateMode,
    pub metrics: Arc<Metrics>,
    /// The console's whitelist and blacklist in force (see [`crate::operator_list`]).
    pub operator_list: Arc<OperatorList>,
    in_flight: Arc<Semaphore>,
    recent: Mutex<RecentFingerprints>,
    /// Held from reading a fingerprint's consensus to logging its change, so concurrent
    /// reports on one fingerprint cannot miss or reorder a consensus change in the sync log.
    reporting: Mutex<()>,
    report_budgets: ReportBudgets,
    feed_stamp: Mutex<Option<(SystemTime, u64)>>,
    /// When the last "shared state unavailable" warning was logged (ms), to log one per 10 s.
    last_state_warning_ms: std::sync::atomic::AtomicI64,
}

impl AppState {
    /// Opens the stores, loads the models and signs the edge package. Slow (loads the models):
    /// call it off the async runtime.
    pub fn open(config: ServerConfig, metrics: Arc<Metrics>) -> Result<Self, ServerError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| ServerError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let similarity_config = SimilarityConfig {
            report_quorum: config.report_quorum,
            cache_capacity_bytes: config.similarity_cache_bytes as u64,
            ..SimilarityConfig::default()
        };
        let sender = Arc::new(SenderReputation::new(SenderConfig {
            report_quorum: config.report_quorum,
            max_senders: config.max_senders,
            ..SenderConfig::default()
        }));
        let sync =
            SyncLog::open_with_cache(&data_dir.join("sync"), config.sync_cache_bytes as u64)?;
        let (state, stateful_scorers) =
            open_state(&config, &similarity_config, &sender, &sync, &data_dir)?;
        if config.seed_from_corpora && state.similarity_len() == 0 {
            seed(
                state.as_ref(),
                &similarity_config,
                config.datasets_dir.as_deref(),
            )?;
        }
        let rules = match &config.rules_path {
            Some(path) => Some(Arc::new(
                RulesHandle::open(path, Duration::from_secs(config.reload_interval_seconds))
                    .map_err(smsguard_scoring::CloudError::from)?,
            )),
            None => None,
        };
        let rules_scorer: Box<dyn Scorer> = match &rules {
            Some(handle) => Box::new(Shared(Arc::clone(handle))),
            None => Box::new(StaticRules(
                RuleSet::builtin().map_err(smsguard_scoring::CloudError::from)?,
            )),
        };
        let mut scorers: Vec<Box<dyn Scorer>> = vec![
            Box::new(MulticlassModel::embedded().map_err(smsguard_scoring::CloudError::from)?),
            Box::new(LexicalModel::embedded().map_err(smsguard_scoring::CloudError::from)?),
            Box::new(VariantScorer::default()),
            Box::new(CountingRules {
                inner: rules_scorer,
                metrics: Arc::clone(&metrics),
            }),
        ];
        scorers.extend(stateful_scorers);
        let operator_list = Arc::new(OperatorList::new(similarity_config.report_min_jaccard));
        operator_list.replace(state.operator_listings()?);
        scorers.push(Box::new(OperatorListScorer(Arc::clone(&operator_list))));
        let fusion = FusionModel::embedded().map_err(smsguard_scoring::CloudError::from)?;
        // A shared state supplies these scorers' outcomes per message instead of scorers here.
        let supplied: &[&str] = if state.shared() {
            &SHARED_STATE_SCORERS
        } else {
            &[]
        };
        let signing_key =
            package::load_or_create_signing_key(config.signing_key_path.as_deref(), &data_dir)?;
        let package = ModelPackage::load(config.edge_model_dir.as_deref(), &signing_key)?;
        let private = crate::private::PrivateMode::embedded()?.signed_by(&signing_key);
        let state = AppState {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            scorer: CloudScorer::with_supplied(scorers, supplied, fusion)
                .map_err(smsguard_scoring::CloudError::from)?,
            similarity_config,
            sender,
            state,
            rules,
            sync,
            package,
            private,
            metrics,
            operator_list,
            recent: Mutex::new(RecentFingerprints {
                generation: config.recent_fingerprints,
                ..RecentFingerprints::default()
            }),
            reporting: Mutex::new(()),
            report_budgets: ReportBudgets::new(config.report_budget_per_minute),
            feed_stamp: Mutex::new(None),
            last_state_warning_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            config,
        };
        state.log_sender_rules()?;
        state.import_spam_feed_if_changed()?;
        state.refresh_gauges();
        Ok(state)
    }

    /// A scoring slot, or RESOURCE_EXHAUSTED when `max_in_flight` requests are being scored.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, RequestError> {
        Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                self.metrics.record_rejection("overloaded");
                RequestError::Overloaded {
                    limit: self.config.max_in_flight,
                }
            })
    }

    /// Changes since `since` (blocking sled reads: call from `spawn_blocking`).
    pub fn sync_page(
        &self,
        req: &v1::SyncCacheRequest,
    ) -> Result<v1::SyncCacheResponse, RequestError> {
        check_len("device_id", &req.device_id, MAX_ID_BYTES)?;
        check_len("knowledge_revision", &req.knowledge_revision, MAX_ID_BYTES)?;
        let max = match req.max_entries as usize {
            0 => DEFAULT_SYNC_ENTRIES,
            n => n.min(MAX_SYNC_ENTRIES),
        };
        let page = self.state.sync_since(req.since_version, max)?;
        Ok(v1::SyncCacheResponse {
            version: page.version,
            fingerprints: page.fingerprints,
            sender_rules: page.sender_rules,
            has_more: page.has_more,
            knowledge: self.knowledge_for(&req.knowledge_revision),
        })
    }

    /// The knowledge table phones run, unless the asking one already has it. The table of the
    /// rules file in force (hot-reloaded with it), else the built-in one; a rules file whose
    /// reload failed keeps serving the table that was in force.
    fn knowledge_for(&self, edge_revision: &str) -> Option<v1::KnowledgeTable> {
        // Compared by reference: the text (43 KB built in) is copied only when it is sent.
        let unless_known = |table: &TableText| {
            (table.id() != edge_revision).then(|| v1::KnowledgeTable {
                revision: table.id().to_owned(),
                toml: table.text().to_owned(),
            })
        };
        match &self.rules {
            Some(handle) => unless_known(handle.current().ok()?.phone_table()?),
            None => unless_known(TableText::builtin()),
        }
    }

    pub fn get_model(
        &self,
        req: &v1::GetModelRequest,
    ) -> Result<v1::GetModelResponse, RequestError> {
        check_len("current_version", &req.current_version, MAX_ID_BYTES)?;
        check_len("device_id", &req.device_id, MAX_ID_BYTES)?;
        let answer = self.package.answer(&req.current_version);
        if req.device_public_key.is_empty() {
            return Ok(answer);
        }
        self.package
            .seal_to_requesting_device(answer, &req.device_public_key)
    }

    pub fn refresh_gauges(&self) {
        self.metrics
            .store_entries
            .set(self.state.similarity_len() as i64);
        if let Ok(version) = self.state.sync_version() {
            self.metrics.sync_version.set(version as i64);
        }
    }

    /// Writes every pending change of both stores to disk.
    pub fn flush(&self) -> Result<(), ServerError> {
        self.state
            .flush()
            .map_err(|e| ServerError::Flush(e.to_string()))?;
        self.sync
            .flush()
            .map_err(|e| ServerError::Flush(e.to_string()))
    }

    /// The state backend (the console reads and lists through it; blocking).
    /// One private similarity lookup (blocking: reads the similarity memory).
    pub fn private_similarity(
        &self,
        request: &smsguard_proto::v1::PrivateSimilarityRequest,
    ) -> Result<smsguard_proto::v1::PrivateSimilarityResponse, RequestError> {
        crate::private_similarity::answer(
            self.state.as_ref(),
            &self.similarity_config,
            self.config.private_min_bucket_entries,
            request,
        )
    }

    /// `PrivateParams` (blocking: reads the memory's size on Redis).
    pub fn private_params(&self) -> smsguard_proto::v1::PrivateParamsResponse {
        let mut params = self.private.params();
        crate::private_similarity::fill_params(
            self.state.as_ref(),
            self.config.private_min_bucket_entries,
            &mut params,
        );
        params
    }

    pub fn state_backend(&self) -> &dyn StateBackend {
        self.state.as_ref()
    }

    pub fn similarity_config(&self) -> &SimilarityConfig {
        &self.similarity_config
    }

    pub fn similarity_len(&self) -> usize {
        self.state.similarity_len()
    }

    /// `embedded` or `redis`.
    pub fn state_kind(&self) -> &'static str {
        self.state.kind()
    }
}

/// A state backend and the scorers that read it in process.
type OpenedState = (Box<dyn StateBackend>, Vec<Box<dyn Scorer>>);

/// The state backend the config names, and the scorers that hold state in process (the
/// embedded similarity memory and sender windows; none with a shared state, whose inputs are
/// prefetched per message).
fn open_state(
    config: &ServerConfig,
    similarity_config: &SimilarityConfig,
    sender: &Arc<SenderReputation>,
    sync: &SyncLog,
    data_dir: &Path,
) -> Result<OpenedState, ServerError> {
    if let Some(url) = &config.state {
        let timeout = Duration::from_millis(config.state_timeout_ms);
        let state = RedisState::open(url, timeout, config.report_quorum)?;
        tracing::info!(state = ?state, "shared state in Redis");
        return Ok((Box::new(state), Vec::new()));
    }
    let similarity = Arc::new(
        SimilarityStore::open_with(data_dir.join("similarity"), similarity_config.clone())
            .map_err(smsguard_scoring::CloudError::from)?,
    );
    let scorers: Vec<Box<dyn Scorer>> = vec![
        Box::new(Shared(Arc::clone(&similarity))),
        Box::new(Shared(Arc::clone(sender))),
    ];
    let state = EmbeddedState {
        similarity,
        sender: Arc::clone(sender),
        sync: sync.clone(),
    };
    Ok((Box::new(state), scorers))
}

/// The fingerprint of `text` as seeding remembers it, or `None` when its normalised form is
/// shorter than `min_seed_chars` (too short to match usefully).
fn seed_fingerprint(config: &SimilarityConfig, text: &str) -> Option<Fingerprint> {
    let normalized = smsguard_core::normalize(text);
    (normalized.text.chars().count() >= config.min_seed_chars)
        .then(|| smsguard_core::MinHasher::new().fingerprint(&normalized.text))
}

/// Remembers the spam of every corpus `train.tsv` (dev and test texts are never seeded).
fn seed(
    state: &dyn StateBackend,
    config: &SimilarityConfig,
    datasets_dir: Option<&Path>,
) -> Result<(), ServerError> {
    let dir: Option<PathBuf> = match datasets_dir {
        Some(dir) => Some(dir.to_path_buf()),
        None => smsguard_corpus::datasets_dir().ok(),
    };
    let Some(dir) = dir.filter(|d| d.is_dir()) else {
        tracing::warn!("no datasets folder found: the similarity memory starts empty");
        return Ok(());
    };
    let files =
        smsguard_corpus::split_files(&dir, "train").map_err(smsguard_scoring::CloudError::from)?;
    let mut added = 0;
    for file in &files {
        let corpus = smsguard_corpus::read_tsv(file).map_err(smsguard_scoring::CloudError::from)?;
        for record in corpus.records.iter().filter(|r| r.label != Label::Ham) {
            if let Some(fp) = seed_fingerprint(config, &record.text) {
                state.add_spam(&fp, Label::Spam)?;
                added += 1;
            }
        }
    }
    state.flush()?;
    tracing::info!(added, dir = %dir.display(), "seeded the similarity memory");
    Ok(())
}

/// How far a client's `received_at_ms` may lie from the server's clock (either way) before it
/// is clamped: a phone that queued messages offline is late by minutes, not by a year.
pub const MAX_CLIENT_CLOCK_SKEW_MS: i64 = 10 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_publish_their_forced_sender_rules() {
        let rules = sender_rules(DEFAULT_RULES_TOML);
        assert_eq!(
            rules.get("^(10086|10010|10000)$"),
            Some(&(v1::SenderRuleKind::Allow as i32))
        );
    }

    #[test]
    fn client_times_are_clamped_to_the_server_clock() {
        let now = 1_765_000_000_000;
        assert_eq!(trusted_time_ms(0, now), now - MAX_CLIENT_CLOCK_SKEW_MS);
        assert_eq!(
            trusted_time_ms(i64::MAX, now),
            now + MAX_CLIENT_CLOCK_SKEW_MS
        );
        assert_eq!(trusted_time_ms(now - 1000, now), now - 1000);
    }

    #[test]
    fn fingerprint_ids_must_be_sixteen_hex_digits() {
        assert_eq!(parse_fingerprint_id("00000000000000ff").unwrap(), 255);
        assert!(parse_fingerprint_id("xyz").is_err());
        assert!(parse_fingerprint_id("").is_err());
    }

    #[test]
    fn an_edge_verdict_with_an_unknown_enum_is_invalid() {
        let local = v1::LocalVerdict {
            label: 42,
            ..v1::LocalVerdict::default()
        };
        let err = edge_input(Some(&local)).unwrap_err();
        assert!(matches!(err, RequestError::InvalidEnum { value: 42, .. }));
    }
}

//! The service's shared state and its request logic, independent of tonic's plumbing:
//! validation, scoring (CPU-bound, called from `spawn_blocking`), reports, sync pages and the
//! hot reload of rules and of the similarity memory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
        let signing_key =
            package::load_or_create_signing_key(config.signing_key_path.as_deref(), &data_dir)?;
        let package = ModelPackage::load(config.edge_model_dir.as_deref(), &signing_key)?;
        let private = crate::private::PrivateMode::embedded()?;
        let state = AppState {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            scorer: CloudScorer::new(scorers, fusion),
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

    pub fn validate(&self, msg: Option<&v1::SmsMessage>) -> Result<ValidMessage, RequestError> {
        let msg = msg.ok_or(RequestError::Missing { field: "message" })?;
        if msg.body.is_empty() {
            return Err(RequestError::Empty {
                field: "message.body",
            });
        }
        check_len("message.body", &msg.body, self.config.max_body_bytes)?;
        check_len("message.sender", &msg.sender, MAX_SENDER_BYTES)?;
        check_len("message.device_id", &msg.device_id, MAX_ID_BYTES)?;
        check_len(
            "message.client_message_id",
            &msg.client_message_id,
            MAX_ID_BYTES,
        )?;
        check_len(
            "message.edge_model_version",
            &msg.edge_model_version,
            MAX_ID_BYTES,
        )?;
        Ok(ValidMessage {
            sender: msg.sender.clone(),
            body: msg.body.clone(),
            received_at_ms: msg.received_at_ms,
            device_id: msg.device_id.clone(),
            client_message_id: msg.client_message_id.clone(),
            edge: edge_input(msg.local_verdict.as_ref())?,
        })
    }

    /// Scores one message (CPU-bound: call from `spawn_blocking`). The scorers see the
    /// client's `received_at_ms` only within [`MAX_CLIENT_CLOCK_SKEW_MS`] of the server's
    /// clock: the sender reputation's windows and a sender's age must not be the client's to
    /// choose (a `received_at_ms` of 0 made any sender look a year old).
    pub fn score(&self, msg: &ValidMessage) -> v1::Verdict {
        let prepared = self.prepare(msg);
        let fetched = self.prefetch(&prepared, None);
        self.verdict(msg, &prepared, fetched)
    }

    /// [`Self::score`] for a caller whose key `limit` is shared across replicas: with a
    /// shared state the message takes one token of it, in the same round trip as the rest
    /// (RESOURCE_EXHAUSTED when empty). Without one the API-key check already limited it.
    pub fn score_as(
        &self,
        msg: &ValidMessage,
        limit: Option<RateLimit<'_>>,
    ) -> Result<v1::Verdict, RequestError> {
        let mut scored = self.score_many(std::slice::from_ref(msg), limit);
        scored
            .pop()
            .unwrap_or_else(|| Err(RequestError::Internal("no verdict".into())))
    }

    /// [`Self::score_as`] for several messages (a `ClassifyStream` frame): their shared inputs
    /// come in one round trip for all of them.
    pub fn score_many(
        &self,
        msgs: &[ValidMessage],
        limit: Option<RateLimit<'_>>,
    ) -> Vec<Result<v1::Verdict, RequestError>> {
        let prepared: Vec<PreparedMessage> = msgs.iter().map(|m| self.prepare(m)).collect();
        let limit = limit.filter(|_| self.state.shared());
        let fetched: Vec<Result<Prefetched, StateError>> = if self.state.shared() {
            let requests: Vec<PrefetchRequest<'_>> = prepared
                .iter()
                .map(|p| self.prefetch_request(p, limit))
                .collect();
            match self.state.prefetch_many(&requests) {
                Ok(all) => all.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error); msgs.len()],
            }
        } else {
            // The scorers hold the state in process: no hashing, no call.
            vec![Ok(Prefetched::InProcess); msgs.len()]
        };
        msgs.iter()
            .zip(&prepared)
            .zip(fetched)
            .map(|((msg, prepared), fetched)| {
                if let (Some(limit), Ok(Prefetched::Shared(inputs))) = (limit, &fetched) {
                    if !inputs.rate_allowed {
                        self.metrics.record_rejection("rate_limited");
                        return Err(RequestError::RateLimited {
                            key_id: limit.key_id.to_owned(),
                        });
                    }
                }
                Ok(self.verdict(msg, prepared, fetched))
            })
            .collect()
    }

    fn prepare(&self, msg: &ValidMessage) -> PreparedMessage {
        let at_ms = trusted_time_ms(msg.received_at_ms, server_now_ms());
        PreparedMessage::new(&msg.sender, &msg.body, at_ms, &msg.device_id)
    }

    /// The shared inputs one message asks for.
    fn prefetch_request<'a>(
        &self,
        prepared: &'a PreparedMessage,
        rate: Option<RateLimit<'a>>,
    ) -> PrefetchRequest<'a> {
        PrefetchRequest {
            fingerprint: &prepared.fingerprint,
            sender_key: self.sender.sender_key(&prepared.sender),
            device_key: self.sender.id_key(&prepared.device_id),
            at_ms: prepared.received_at_ms,
            rate,
        }
    }

    /// The shared inputs of a message (one round trip at most; nothing when embedded).
    fn prefetch(
        &self,
        prepared: &PreparedMessage,
        rate: Option<RateLimit<'_>>,
    ) -> Result<Prefetched, StateError> {
        if !self.state.shared() {
            return Ok(Prefetched::InProcess);
        }
        self.state.prefetch(&self.prefetch_request(prepared, rate))
    }

    fn verdict(
        &self,
        msg: &ValidMessage,
        prepared: &PreparedMessage,
        fetched: Result<Prefetched, StateError>,
    ) -> v1::Verdict {
        let context = prepared.context();
        let verdict = match fetched {
            Ok(Prefetched::InProcess) => self.scorer.score(&context, msg.edge),
            Ok(Prefetched::Shared(inputs)) => {
                let mut outcomes = self.scorer.outcomes(&context);
                outcomes.extend(self.shared_outcomes(prepared, &inputs));
                self.fuse(&context, &outcomes, msg.edge)
            }
            Err(error) => {
                self.note_state_failure(&error);
                let mut outcomes = self.scorer.outcomes(&context);
                outcomes.extend(["similarity", "sender"].map(|model| ScorerOutcome {
                    model: model.to_owned(),
                    result: Err(error.to_string()),
                }));
                self.fuse(&context, &outcomes, msg.edge)
            }
        };
        if let Ok(mut recent) = self.recent.lock() {
            // Only an operator rule forces Allow (reports force at most Quarantine).
            let operator_allowed = verdict.forced_action == Some(ForcedAction::Allow);
            recent.remember(&prepared.fingerprint, operator_allowed);
        }
        self.record_verdict(&verdict);
        self.to_proto(&verdict, prepared.fingerprint.to_hex())
    }

    /// What `CloudScorer::score` does with its own outcomes, for outcomes completed from the
    /// shared state: fusion at the message's market, then the category policy.
    fn fuse(
        &self,
        context: &MessageContext<'_>,
        outcomes: &[ScorerOutcome],
        edge: Option<EdgeInput>,
    ) -> FusedVerdict {
        let market = smsguard_core::Market::of_text(&context.normalized.text);
        let fusion = self.scorer.fusion();
        smsguard_scoring::policy::apply(fusion.fuse(outcomes, edge, market), outcomes, fusion)
    }

    /// The similarity and sender scores of a message from the shared state's inputs.
    fn shared_outcomes(
        &self,
        prepared: &PreparedMessage,
        inputs: &SharedInputs,
    ) -> [ScorerOutcome; 2] {
        let similarity = score_candidates(
            &self.similarity_config,
            &prepared.fingerprint,
            &inputs.candidates,
        );
        let (score, reason) = self.sender.assess(&inputs.sender);
        [
            ScorerOutcome {
                model: similarity.model.to_owned(),
                result: Ok(similarity),
            },
            ScorerOutcome {
                model: self.sender.name().to_owned(),
                result: Ok(ModelScore::new(self.sender.name(), score, reason)),
            },
        ]
    }

    /// Counts a verdict given without the shared state, and logs it at most every 10 s.
    fn note_state_failure(&self, error: &StateError) {
        use std::sync::atomic::Ordering;
        self.metrics.shared_state_degraded.inc();
        let now = server_now_ms();
        let last = self.last_state_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_state_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %error, "verdicts degraded: no shared state");
        }
    }

    fn record_verdict(&self, verdict: &FusedVerdict) {
        self.metrics
            .record_verdict(verdict.label.as_str(), verdict.action.as_str());
        for contribution in verdict.contributions.iter().filter(|c| c.degraded) {
            self.metrics.record_model_error(&contribution.model);
        }
    }

    fn to_proto(&self, verdict: &FusedVerdict, fingerprint: String) -> v1::Verdict {
        let contributions = verdict
            .contributions
            .iter()
            .map(|c| v1::Contribution {
                model: c.model.clone(),
                score: c.score,
                weight: c.weight,
                reason: c.reason.clone(),
                degraded: c.degraded,
            })
            .collect();
        let source = if verdict.forced_action.is_some() {
            v1::VerdictSource::Rule
        } else {
            v1::VerdictSource::Cloud
        };
        let cache_ttl_seconds = match self.config.cache_ttl_seconds {
            0 => verdict.cache_ttl_seconds,
            ttl => ttl,
        };
        v1::Verdict {
            label: v1::Label::from(verdict.label) as i32,
            category: if verdict.label == Label::Ham {
                String::new()
            } else {
                verdict.label.as_str().to_owned()
            },
            spam_score: verdict.spam_score,
            action: v1::Action::from(verdict.action) as i32,
            contributions,
            cache_ttl_seconds,
            fingerprint,
            model_versions: vec![
                v1::ModelVersion {
                    model: "edge".into(),
                    version: self.package.version.clone(),
                },
                v1::ModelVersion {
                    model: "cloud".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            ],
            source: source as i32,
            degraded: verdict.degraded,
        }
    }

    /// Records user feedback in the similarity memory, the sender reputation and the sync log;
    /// durable (flushed) before it returns. Blocking I/O: call from `spawn_blocking`. `caller`
    /// is the API key that authenticated the request, and the reporter is that key alone: the
    /// device id is chosen by the client, so one key inventing device ids would otherwise be as
    /// many reporters as it likes. Without API keys (anonymous mode) every report comes from
    /// one anonymous reporter. A report reaches other users' verdicts and the sync log only once
    /// a quorum of keys agrees (see `smsguard_scoring::similarity`).
    pub fn report(
        &self,
        req: &v1::ReportRequest,
        caller: Option<&KeyId>,
    ) -> Result<v1::ReportResponse, RequestError> {
        let reporter = caller.map(|key| key.0.as_str()).unwrap_or_default();
        if !self.report_budget_allows(reporter) {
            self.metrics.record_rejection("report_budget");
            return Err(RequestError::RateLimited {
                key_id: format!("{reporter} (report budget)"),
            });
        }
        let spam = match v1::Feedback::try_from(req.feedback) {
            Ok(v1::Feedback::Spam) => true,
            Ok(v1::Feedback::NotSpam) => false,
            Ok(v1::Feedback::Unspecified) => {
                return Err(RequestError::Missing { field: "feedback" })
            }
            Err(_) => {
                return Err(RequestError::InvalidEnum {
                    field: "feedback",
                    value: req.feedback,
                })
            }
        };
        let category =
            v1::Label::try_from(req.category).map_err(|_| RequestError::InvalidEnum {
                field: "category",
                value: req.category,
            })?;
        check_len("sender", &req.sender, MAX_SENDER_BYTES)?;
        check_len("device_id", &req.device_id, MAX_ID_BYTES)?;
        let id = parse_fingerprint_id(&req.fingerprint)?;
        let Some(fp) = self.resolve_fingerprint(id, &req.minhash)? else {
            return Ok(v1::ReportResponse {
                report_count: 0,
                accepted: false,
            });
        };
        // A user report is a human label, kept apart from seeded spam; one vote per key.
        // A panic elsewhere while holding it leaves nothing half-done that this path reads.
        let _serialised = self.reporting.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = self.state.record_report(
            &fp,
            &UserReport {
                reporter,
                device: &req.device_id,
                at_ms: server_now_ms(),
                spam,
                class: smsguard_proto::core_label(category),
            },
        )?;
        let entry = recorded.after;
        if !req.sender.is_empty() {
            // Sender votes are a hint beside the fingerprint's: one lost (a poisoned lock, a
            // shared state that just failed) is logged, not worth failing the report for.
            let key = self.sender.sender_key(&req.sender);
            if let Err(error) = self.state.record_sender_report(key, reporter, spam) {
                tracing::warn!(error = %error, "a sender vote was not recorded");
            }
        }
        self.publish_consensus_change(&req.fingerprint, &fp, recorded.before.as_ref(), &entry)?;
        Ok(v1::ReportResponse {
            report_count: entry
                .user_spam_reports
                .saturating_add(entry.not_spam_reports),
            accepted: true,
        })
    }

    /// Tells every phone (the sync log) when the reports on `fp` reached, changed or lost a
    /// quorum; a report that moves no consensus is pushed to nobody.
    fn publish_consensus_change(
        &self,
        fingerprint: &str,
        fp: &Fingerprint,
        before: Option<&Entry>,
        after: &Entry,
    ) -> Result<(), RequestError> {
        let was = before.map_or(Consensus::None, |e| {
            consensus_of(&self.similarity_config, e)
        });
        let now = consensus_of(&self.similarity_config, after);
        if was == now {
            return Ok(());
        }
        let whitelisted = self.operator_list.of(fp.id()) == Some(Listing::Whitelist);
        if now == Consensus::Spam && (whitelisted || self.operator_allowed(fp.id())) {
            // The phones would match it before asking the cloud, where the operator's rule
            // wins: keep it off them. (A near-duplicate never classified here is not caught.)
            tracing::info!(
                fingerprint = %fp.to_hex(),
                "spam consensus on an operator-allowed message: not pushed to the phones"
            );
            return Ok(());
        }
        let evidence = after.counted_spam_evidence(self.similarity_config.report_quorum);
        self.state.sync_append(&[Change::Fingerprint {
            fingerprint: fingerprint.to_ascii_lowercase(),
            minhash: fp.minhash.to_vec(),
            label: v1::Label::from(after.label) as i32,
            report_count: evidence,
            // Whitelisted, or a quorum lost with no seeded evidence left: off the phones.
            removed: now == Consensus::NotSpam || evidence == 0,
        }])?;
        // Also sets the sync version gauge (read back from the log).
        self.refresh_gauges();
        Ok(())
    }

    /// True when the message of fingerprint `id`, classified recently, was allowed by an operator
    /// rule.
    fn operator_allowed(&self, id: u64) -> bool {
        let recent = self.recent.lock().ok();
        recent
            .as_ref()
            .and_then(|recent| recent.get(id))
            .is_some_and(|found| found.operator_allowed)
    }

    /// The fingerprint of a recently classified message with this id (exact), else the one of
    /// the reported MinHash slots (the id depends on the slots only, so it is the edge's id
    /// when the slots are the edge's).
    fn resolve_fingerprint(
        &self,
        id: u64,
        minhash: &[u32],
    ) -> Result<Option<Fingerprint>, RequestError> {
        let recent = self.recent.lock().ok();
        if let Some(found) = recent.as_ref().and_then(|recent| recent.get(id)) {
            return Ok(Some(found.fingerprint.clone()));
        }
        match minhash.len() {
            0 => Ok(None),
            smsguard_core::fingerprint::NUM_HASHES => {
                let mut slots = [0u32; smsguard_core::fingerprint::NUM_HASHES];
                slots.copy_from_slice(minhash);
                Ok(Some(Fingerprint { minhash: slots }))
            }
            n => Err(RequestError::Invalid {
                field: "minhash",
                reason: format!(
                    "{n} slots; send none or all {}",
                    smsguard_core::fingerprint::NUM_HASHES
                ),
            }),
        }
    }

    /// Changes since `since` (blocking sled reads: call from `spawn_blocking`).
    pub fn sync_page(
        &self,
        req: &v1::SyncCacheRequest,
    ) -> Result<v1::SyncCacheResponse, RequestError> {
        check_len("device_id", &req.device_id, MAX_ID_BYTES)?;
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
        })
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

    /// Re-reads the rules file and the spam feed when they changed (blocking I/O). Errors of a
    /// bad new rules file keep the old rules and are returned.
    pub fn reload(&self) -> Result<ReloadSummary, ServerError> {
        let mut summary = ReloadSummary::default();
        if let Some(rules) = &self.rules {
            match rules.reload_if_changed() {
                Ok(changed) => summary.rules_reloaded = changed,
                Err(e) => tracing::warn!(error = %e, "rules reload failed; the old rules stay"),
            }
        }
        summary.sender_rule_changes = self.log_sender_rules()?;
        summary.feed_fingerprints_added = self.import_spam_feed_if_changed()?;
        // Listings another replica made (shared state) come into force here.
        match self.state.operator_listings() {
            Ok(listings) => self.operator_list.replace(listings),
            Err(e) => tracing::warn!(error = %e, "operator listings not re-read; the old stay"),
        }
        if summary.rules_reloaded || summary.feed_fingerprints_added > 0 {
            self.metrics.reloads.inc();
        }
        self.refresh_gauges();
        Ok(summary)
    }

    /// Logs sender rule changes of the rules now in force into the sync log.
    fn log_sender_rules(&self) -> Result<usize, ServerError> {
        let text = match &self.config.rules_path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the rules file");
                    return Ok(0);
                }
            },
            None => DEFAULT_RULES_TOML.to_owned(),
        };
        // Publish only rules the scorer would also accept: a file that does not validate keeps
        // the old rules in force (RulesHandle), so the edges keep the old sender rules too
        // instead of being told that every rule was removed.
        if let Some(path) = &self.config.rules_path {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let read_host_file =
                |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string());
            let source_name = path.display().to_string();
            if let Err(e) = RuleSet::parse(&text, &source_name, read_host_file) {
                tracing::warn!(error = %e, "rules file invalid: sender rules not republished");
                return Ok(0);
            }
        }
        Ok(self.state.sync_sender_rules(&sender_rules(&text))?)
    }

    /// Imports the spam of the feed file into the similarity memory when the file changed
    /// since the last import; new fingerprints are logged for `SyncCache`.
    fn import_spam_feed_if_changed(&self) -> Result<usize, ServerError> {
        let Some(path) = &self.config.spam_feed_path else {
            return Ok(0);
        };
        let stamp = file_stamp(path);
        {
            let mut seen = self
                .feed_stamp
                .lock()
                .map_err(|_| ServerError::Task("feed state poisoned".into()))?;
            if stamp.is_none() || *seen == stamp {
                return Ok(0);
            }
            *seen = stamp;
        }
        let corpus = match smsguard_corpus::read_tsv(path) {
            Ok(corpus) => corpus,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the spam feed");
                return Ok(0);
            }
        };
        let mut changes = Vec::new();
        for record in corpus.records.iter().filter(|r| r.label.is_spam()) {
            // Too-short texts are skipped, as in seeding.
            let Some(fp) = seed_fingerprint(&self.similarity_config, &record.text) else {
                continue;
            };
            if self.state.entry(fp.id()).ok().flatten().is_some() {
                continue;
            }
            let entry = self.state.add_spam(&fp, record.label)?;
            changes.push(Change::Fingerprint {
                fingerprint: fp.to_hex(),
                minhash: fp.minhash.to_vec(),
                label: v1::Label::from(entry.label) as i32,
                report_count: entry.spam_evidence(),
                removed: false,
            });
        }
        self.state.flush()?;
        if !changes.is_empty() {
            self.state.sync_append(&changes)?;
        }
        tracing::info!(
            added = changes.len(),
            "spam feed imported into the similarity memory"
        );
        Ok(changes.len())
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

    /// Takes one report from `reporter`'s budget: this process's buckets, or the shared ones
    /// so that a budget holds across replicas (open when the shared state fails: the report
    /// itself then fails anyway).
    fn report_budget_allows(&self, reporter: &str) -> bool {
        if !self.state.shared() {
            return self.report_budgets.try_take(reporter, Instant::now());
        }
        let per_minute = self.config.report_budget_per_minute;
        if per_minute == 0 {
            return true;
        }
        let key_id = format!("report-budget:{reporter}");
        self.state
            .take_token(&RateLimit {
                key_id: &key_id,
                rate_per_second: f64::from(per_minute) / 60.0,
                burst: per_minute,
            })
            .unwrap_or(true)
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

fn server_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The client's time clamped to within [`MAX_CLIENT_CLOCK_SKEW_MS`] of `now_ms`.
fn trusted_time_ms(client_ms: i64, now_ms: i64) -> i64 {
    client_ms.clamp(
        now_ms.saturating_sub(MAX_CLIENT_CLOCK_SKEW_MS),
        now_ms.saturating_add(MAX_CLIENT_CLOCK_SKEW_MS),
    )
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), RequestError> {
    if value.len() > max {
        return Err(RequestError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn edge_input(local: Option<&v1::LocalVerdict>) -> Result<Option<EdgeInput>, RequestError> {
    let Some(local) = local else {
        return Ok(None);
    };
    let label = v1::Label::try_from(local.label).map_err(|_| RequestError::InvalidEnum {
        field: "message.local_verdict.label",
        value: local.label,
    })?;
    v1::Action::try_from(local.action).map_err(|_| RequestError::InvalidEnum {
        field: "message.local_verdict.action",
        value: local.action,
    })?;
    v1::VerdictSource::try_from(local.source).map_err(|_| RequestError::InvalidEnum {
        field: "message.local_verdict.source",
        value: local.source,
    })?;
    let Some(label) = smsguard_proto::core_label(label) else {
        return Ok(None);
    };
    if !(local.spam_score.is_finite() && (0.0..=1.0).contains(&local.spam_score)) {
        return Err(RequestError::Invalid {
            field: "message.local_verdict.spam_score",
            reason: "must be within 0..=1".into(),
        });
    }
    Ok(Some(EdgeInput {
        spam_score: local.spam_score,
        label,
    }))
}

fn parse_fingerprint_id(text: &str) -> Result<u64, RequestError> {
    if text.is_empty() {
        return Err(RequestError::Missing {
            field: "fingerprint",
        });
    }
    if text.len() != 16 {
        return Err(RequestError::Invalid {
            field: "fingerprint",
            reason: format!("{} characters; expected 16 hex digits", text.len()),
        });
    }
    u64::from_str_radix(text, 16).map_err(|_| RequestError::Invalid {
        field: "fingerprint",
        reason: "expected 16 hex digits".into(),
    })
}

/// The sender rules of a rules file with a forced action, as `pattern -> SenderRuleKind`
/// (allow -> ALLOW, quarantine/block -> DENY). Weight-only rules stay server-side.
pub fn sender_rules(rules_toml: &str) -> BTreeMap<String, i32> {
    let Ok(value) = rules_toml.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    let rules = value.get("sender").and_then(toml::Value::as_array);
    rules
        .into_iter()
        .flatten()
        .filter_map(|rule| {
            let pattern = rule.get("pattern")?.as_str()?;
            let kind = match rule.get("action")?.as_str()? {
                "allow" => v1::SenderRuleKind::Allow,
                "quarantine" | "block" => v1::SenderRuleKind::Deny,
                _ => return None,
            };
            Some((pattern.to_owned(), kind as i32))
        })
        .collect()
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

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

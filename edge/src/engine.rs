//! The edge engine: one SMS in, one decision out. Owner: edge-engine.
//!
//! Flow of [`Engine::classify`]: normalise once; sender rules (user allow list, user deny list,
//! synced rules); cache (exact fingerprint verdicts, then near-duplicates of hot spam
//! fingerprints); then the local model and, when a cloud is configured, the cloud `Classify`
//! call concurrently under the deadline. The cloud's verdict wins when in time (and is cached
//! for its TTL); otherwise the local verdict stands and the message is queued for re-check.
//! Every decision is logged before `classify` returns (see [`Durability`]: by default it
//! survives the death of the process without an fsync) and reaches sled off the hot path.
//! Nothing here fails a classification: without model, store or cloud the message is delivered
//! and the failure counted.
//!
//! The API is synchronous: the engine owns a one-worker tokio runtime for the cloud link.

mod admin;
mod classify;
mod device_key;
mod hot;
mod knowledge;
mod link;
mod private;
mod private_params;
mod private_recheck;
mod private_similarity;
mod recheck;
mod retention;
mod senders;
mod sync;
mod verdict;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smsguard_core::{Label, Market, MinHasher};
use smsguard_model::{Action, EdgeModel};
use smsguard_signing::VerifyingKey;

use crate::cloud_link::{CloudClient, CloudConfig, CloudLinkError, DEFAULT_DEADLINE};
use crate::store::{Store, StoreError, StoreOptions};

pub use crate::store::{
    Durability, EngineEvent, LogRecovery, MessageState, Pruned, Source, StoreKey,
    EVENTS_PRUNED_COUNTER, RECORDS_PRUNED_COUNTER,
};
pub use classify::CLOUD_REFUSED_COUNTER;
pub use device_key::DeviceKey;
pub use hot::{HotIndex, HotMatch};
pub use link::{CloudFuture, CloudLink, BULK_WAIT};
pub use private::{fuse_private, PrivateScores};
pub use private_similarity::{bucket_entries, raise_by_similarity};
pub use senders::{canonical_sender, SenderRules};
pub use verdict::{cloud_verdict, local_verdict};

use link::Remote;

/// Where the local model comes from (an updated model in the store takes precedence).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// The int8 model compiled into the library.
    #[default]
    Embedded,
    /// An ONNX file and its vocabulary JSON.
    Files { model: PathBuf, vocab: PathBuf },
}

/// What the cloud may see of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// `Classify`: the cloud reads the text, the sender and the device id, and fuses its
    /// scorers into the verdict.
    #[default]
    Standard,
    /// `PrivateClassify` only: the cloud gets a BFV ciphertext of the features and returns
    /// encrypted class scores; no text, sender or fingerprint leaves the phone (see
    /// `engine::private`).
    Private,
}

/// Engine settings. `Default` is offline with the embedded model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// The cloud service; `None` runs offline (nothing is queued for re-check).
    pub cloud: Option<CloudConfig>,
    /// Hex Ed25519 public key that model updates must be signed with; without it
    /// `update_model` refuses every package.
    pub pinned_model_key: Option<String>,
    /// Most verdicts kept in the cache; the oldest insertions are evicted first.
    pub cache_capacity: usize,
    /// Days a message record is kept once nothing needs it (delivered, released, flagged or
    /// deleted, and no re-check or report pending); then it is pruned. Quarantined messages are
    /// never pruned. 0 prunes such records at the next pass.
    pub retention_days: u32,
    /// Most message records kept; beyond it the oldest that nothing needs are pruned first
    /// (quarantined and pending ones are kept whatever the count).
    pub max_message_records: usize,
    /// Most pending events (released / flagged) kept for the app; the oldest are dropped first.
    pub max_events: usize,
    /// Decisions between two background retention passes (0: only when the engine opens and on
    /// `Engine::prune`).
    pub prune_every_decisions: u32,
    /// What a returned decision survives: `process` (default: the death of the process, no
    /// fsync), `power` (an fsync per message) or `none` (sled's own 500 ms flushes). Also read
    /// from the former `durable_writes` boolean (`true` = `power`, `false` = `none`).
    #[serde(alias = "durable_writes")]
    pub durability: Durability,
    pub model: ModelSource,
    /// Lowest MinHash Jaccard estimate at which a message counts as a copy of a hot spam
    /// fingerprint.
    pub near_duplicate_jaccard: f32,
    /// How long a user report overrides verdicts for its fingerprint.
    pub report_ttl_seconds: u32,
    /// Queue entries sent per `ClassifyStream` call while draining.
    pub recheck_batch: usize,
    /// Most re-checks kept waiting; beyond it new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// `max_entries` of one `SyncCache` page.
    pub sync_page_entries: u32,
    /// Bound of sled's page cache, bytes (writes slow down sharply once the store outgrows it).
    pub store_cache_bytes: u64,
    /// The ONNX Runtime library to load. On Android the default search (`ORT_DYLIB_PATH`, then
    /// beside the executable, which is `app_process` there) cannot find the app's copy, so the
    /// app passes its native library directory's `libonnxruntime.so` here.
    pub onnxruntime_library: Option<PathBuf>,
    /// The device's market profile (`"zh"` or `"en"`): the local model judges every message at
    /// that market's thresholds. `None` (default): each message's dominant script picks them.
    pub market: Option<Market>,
    /// Key (64 hex digits in JSON) that seals message senders and bodies in the store (see
    /// [`StoreKey`]). The host supplies it: on Android a secret kept by the Android Keystore, on
    /// the CLI a key file. A store once opened with a key does not open without it. Never
    /// serialised back out.
    #[serde(skip_serializing)]
    pub store_key: Option<StoreKey>,
    /// The device's X25519 private key (64 hex digits in JSON; see [`DeviceKey`]): model
    /// packages are requested sealed to it and installed models stored sealed under a key derived
    /// from it. The host supplies it like `store_key`. Never serialised back out.
    #[serde(skip_serializing)]
    pub device_key: Option<DeviceKey>,
    /// `"private"`: ask the cloud only through `PrivateClassify` (nothing it can read leaves
    /// the phone); `"standard"` (default): `Classify`.
    pub privacy: Privacy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cloud: None,
            pinned_model_key: None,
            cache_capacity: 10_000,
            // A month lets the user look back at what was filtered and report it late; older
            // records only hold senders and fingerprints of messages the inbox already has.
            retention_days: 30,
            // A record is about 1 KB (the MinHash signature dominates), so about 10 MB at most:
            // three months of a heavy user's 100 messages a day, so the age limit normally
            // governs and the cap only bites under a flood.
            max_message_records: 10_000,
            // Events are polled by the app; an app that stops polling must not grow the store.
            max_events: 1_000,
            // A pass costs a walk over a bounded number of records off the classify thread;
            // every 256 decisions keeps the store within a few percent of its caps.
            prune_every_decisions: 256,
            durability: Durability::Process,
            model: ModelSource::Embedded,
            near_duplicate_jaccard: 0.8,
            report_ttl_seconds: 30 * 24 * 3600,
            recheck_batch: 256,
            queue_capacity: 10_000,
            sync_page_entries: 1_000,
            store_cache_bytes: 16 * 1024 * 1024,
            onnxruntime_library: None,
            market: None,
            store_key: None,
            device_key: None,
            privacy: Privacy::Standard,
        }
    }
}

/// Microseconds spent in each step of `classify` (0 for steps not taken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub normalize: u64,
    pub rules: u64,
    pub cache: u64,
    pub local: u64,
    /// Time spent waiting for the cloud after the local model finished.
    pub cloud_wait: u64,
    pub store: u64,
    pub total: u64,
}

/// The engine's answer for one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Id of the stored record; 0 when the store could not record the decision (then a
    /// quarantine or block verdict is delivered tagged instead, see `FailureCounts`).
    pub message_id: u64,
    /// Agrees with `action`: `ham` exactly when the message is allowed.
    pub label: Label,
    pub spam_score: f32,
    pub action: Action,
    pub source: Source,
    /// Where the message went: delivered (allow/tag) or quarantined (quarantine/block).
    pub state: MessageState,
    /// Hex id of the message's MinHash fingerprint.
    pub fingerprint: String,
    /// True when a component failed or the cloud did not answer in time.
    pub degraded: bool,
    /// True when the message waits for a cloud re-check.
    pub queued: bool,
    pub timings_us: Timings,
    /// Why, in words; never quotes the message or the sender.
    pub reason: String,
    /// Private mode: the decrypted class scores of `PrivateClassify` that took part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateScores>,
}

/// A message held in the quarantine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedMessage {
    pub message_id: u64,
    pub sender: String,
    pub body: String,
    pub received_at_ms: i64,
    pub decided_at_ms: i64,
    pub label: Label,
    pub spam_score: f32,
    pub action: Action,
    pub source: Source,
    pub fingerprint: String,
}

/// What became of a user report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReportOutcome {
    /// The cloud accepted it; `report_count` reports now back the fingerprint.
    Sent { report_count: u32 },
    /// Offline or the cloud was unreachable: it waits in the queue.
    Queued,
    /// Private mode: applied on the phone only (sending it would show the cloud the
    /// message's fingerprint).
    KeptOnPhone,
}

/// Result of one `drain_queue`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainSummary {
    /// Messages the cloud answered for.
    pub rechecked: usize,
    pub released: usize,
    pub flagged: usize,
    pub reports_sent: usize,
    /// Entries dropped because the cloud refused them for good (or their record is gone).
    pub dropped: usize,
    /// Entries still waiting (the cloud became unreachable, or per-message retryable errors).
    pub remaining: usize,
}

/// Result of one `sync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub from_version: u64,
    pub to_version: u64,
    pub fingerprints_added: usize,
    pub fingerprints_removed: usize,
    pub rules_added: usize,
    pub rules_removed: usize,
    /// Entries ignored as malformed (bad signature length, unusable pattern).
    pub skipped: usize,
    /// The cloud's knowledge table was installed (it differed from the one in force).
    #[serde(default)]
    pub knowledge_installed: bool,
    /// The cloud sent a knowledge table that failed its checks; the one in force stayed.
    #[serde(default)]
    pub knowledge_rejected: bool,
}

/// Result of one `update_model`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ModelUpdate {
    UpToDate { version: String },
    Updated { previous: String, version: String },
}

/// Failures since the engine was opened (the store keeps lifetime totals in `counters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounts {
    pub model: u64,
    pub store: u64,
    pub cloud: u64,
    /// Messages delivered only because nothing could judge them.
    pub fail_open: u64,
    /// Decisions the store could not record (their `message_id` is 0).
    #[serde(default)]
    pub unrecorded: u64,
    /// Of those, quarantine or block verdicts delivered tagged instead: a quarantine the
    /// store cannot hold would hide the SMS in nowhere.
    #[serde(default)]
    pub delivered_unrecorded: u64,
}

/// A snapshot of the engine for `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    pub model_version: Option<String>,
    pub model_error: Option<String>,
    /// Why the model update installed in the store did not open (another device key, a
    /// library built since, a damaged record), so that the configured model serves instead.
    #[serde(default)]
    pub installed_model_error: Option<String>,
    pub store_error: Option<String>,
    pub cloud_configured: bool,
    /// Lifetime counters from the store (classified, source.*, state.*, ...).
    pub counters: std::collections::BTreeMap<String, u64>,
    pub quarantined: usize,
    /// Message records in the store (any state; retention bounds it).
    #[serde(default)]
    pub stored_messages: usize,
    pub queue_length: usize,
    pub cache_entries: usize,
    pub hot_fingerprints: usize,
    pub sender_rules: usize,
    pub sync_version: u64,
    /// The id (`revision+digest`) of the fraud knowledge table in force.
    #[serde(default)]
    pub knowledge_revision: String,
    pub failures: FailureCounts,
}

/// Errors of the engine's management calls (`classify` itself never fails).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("the store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no message with id {message_id}")]
    NotFound { message_id: u64 },
    #[error("message {message_id} is {} and not in the quarantine", state.as_str())]
    NotQuarantined {
        message_id: u64,
        state: MessageState,
    },
    #[error("no cloud is configured")]
    Offline,
    #[error(transparent)]
    Cloud(#[from] CloudLinkError),
    #[error("no model signing key is pinned: model updates are refused")]
    NoPinnedKey,
    #[error("model package rejected, the current model stays: {0}")]
    ModelRejected(String),
    #[error("knowledge table rejected, the current one stays: {0}")]
    KnowledgeRejected(String),
}

/// The loaded local model with what the engine needs beside it.
#[derive(Debug)]
struct LocalModel {
    model: EdgeModel,
    labels: Vec<Label>,
    version: String,
}

/// Failure tallies of this session.
#[derive(Debug, Default)]
struct Failures {
    model: AtomicU64,
    store: AtomicU64,
    cloud: AtomicU64,
    fail_open: AtomicU64,
    unrecorded: AtomicU64,
    delivered_unrecorded: AtomicU64,
}

/// The on-device engine. `Send + Sync`: share one per process (ONNX Runtime allows one
/// environment, sled one opener per directory).
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: Option<Store>,
    store_error: Option<String>,
    model: RwLock<Option<Arc<LocalModel>>>,
    model_error: RwLock<Option<String>>,
    installed_model_error: RwLock<Option<String>>,
    remote: Option<Remote>,
    /// Private mode's secret key (only with a cloud and `privacy = "private"`).
    private: Option<private::PrivateMode>,
    pinned_key: Option<VerifyingKey>,
    hasher: MinHasher,
    hot: RwLock<HotIndex>,
    rules: RwLock<SenderRules>,
    /// The fraud knowledge table tagged with offline (built in, or synced from the cloud).
    knowledge: RwLock<knowledge::ActiveKnowledge>,
    failures: Failures,
    /// Background retention passes (absent without a store).
    janitor: Option<retention::Janitor>,
}

impl Engine {
    /// Opens the engine on the store in `dir`, connecting to `config.cloud` lazily. Fails only on
    /// an invalid configuration: an unusable store or model leaves the engine running degraded
    /// (see [`Engine::stats`]).
    pub fn open(dir: &Path, config: EngineConfig) -> Result<Engine, EngineError> {
        let link = match &config.cloud {
            Some(cloud) => {
                let cloud = CloudConfig {
                    device_public_key: config
                        .device_key
                        .as_ref()
                        .map(|k| *k.public_key().as_bytes()),
                    ..cloud.clone()
                };
                let client =
                    CloudClient::new(&cloud).map_err(|e| EngineError::Config(e.to_string()))?;
                Some(Arc::new(client) as Arc<dyn CloudLink>)
            }
            None => None,
        };
        Engine::open_with_link(dir, config, link)
    }

    /// [`Engine::open`] with a given cloud link instead of a [`CloudClient`] built from
    /// `config.cloud` (whose `deadline` still applies; 300 ms when absent). For tests and hosts
    /// with their own transport.
    pub fn open_with_link(
        dir: &Path,
        config: EngineConfig,
        link: Option<Arc<dyn CloudLink>>,
    ) -> Result<Engine, EngineError> {
        let pinned_key = config
            .pinned_model_key
            .as_deref()
            .map(VerifyingKey::from_hex)
            .transpose()
            .map_err(|e| EngineError::Config(format!("pinned_model_key: {e}")))?;
        let deadline = config
            .cloud
            .as_ref()
            .map_or(DEFAULT_DEADLINE, |cloud| cloud.deadline);
        let remote = link
            .map(|link| Remote::new(link, deadline))
            .transpose()
            .map_err(|e| EngineError::Config(format!("cannot start the cloud runtime: {e}")))?;
        let options = StoreOptions {
            key: config.store_key,
            ..StoreOptions::new(config.store_cache_bytes, config.durability)
        };
        let (store, store_error) = match Store::open_with(dir, options) {
            Ok(store) => (Some(store), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let private = match (&remote, config.privacy) {
            (Some(remote), Privacy::Private) => {
                Some(private::PrivateMode::new(remote, pinned_key.clone())?)
            }
            _ => None,
        };
        let janitor = store
            .as_ref()
            .and_then(|store| retention::Janitor::start(store, &config));
        let engine = Engine {
            janitor,
            store,
            store_error,
            model: RwLock::new(None),
            model_error: RwLock::new(None),
            installed_model_error: RwLock::new(None),
            remote,
            private,
            pinned_key,
            hasher: MinHasher::default(),
            hot: RwLock::new(HotIndex::default()),
            rules: RwLock::new(SenderRules::default()),
            knowledge: RwLock::new(knowledge::ActiveKnowledge::default()),
            failures: Failures::default(),
            config,
        };
        if engine.store.is_none() {
            engine.count_store_failure();
        }
        engine.prune_on_open();
        // Before the model, whose warm-up compiles the built-in table only if it is in force.
        engine.load_stored_knowledge();
        engine.load_model();
        engine.reload_synced_state();
        Ok(engine)
    }

    /// Why the local model is unavailable, if it is.
    pub fn model_error(&self) -> Option<String> {
        read(&self.model_error).clone()
    }

    /// Why the store is unavailable, if it is.
    pub fn store_error(&self) -> Option<&str> {
        self.store_error.as_deref()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Flushes the store and shuts the cloud runtime down.
    pub fn close(self) -> Result<(), EngineError> {
        if let Some(store) = &self.store {
            store.flush()?;
        }
        Ok(())
    }

    /// With the embedded model configured, an updated model from the store if it loads;
    /// otherwise the configured model (explicit files always win).
    fn load_model(&self) {
        if let Some(library) = &self.config.onnxruntime_library {
            // Without the runtime no model loads: the engine runs degraded (fail open).
            if let Err(e) = smsguard_model::init_runtime_from(library) {
                self.count_model_failure();
                *write(&self.model_error) = Some(e.to_string());
                return;
            }
        }
        if self.install_stored_update() {
            return;
        }
        match load_configured_model(&self.config.model) {
            Ok((model, version)) => self.install_model(model, version),
            Err(reason) => {
                self.count_model_failure();
                *write(&self.model_error) = Some(reason);
            }
        }
    }

    /// Makes the model update kept in the store the local model; false (the configured model
    /// serves) when there is none, when explicit model files are configured, or when it does not
    /// open: then the reason is kept for `stats` and the failure counted. A stored update that
    /// does not open stays in the store, so the right key opens it again.
    fn install_stored_update(&self) -> bool {
        let (ModelSource::Embedded, Some(store)) = (&self.config.model, &self.store) else {
            return false;
        };
        let opened = match store.load_model() {
            Ok(None) => return false,
            Ok(Some(stored)) => {
                let key = device_key::model_storage_key(self.config.device_key.as_ref());
                EdgeModel::from_container(&stored.sealed_model, &key, &stored.vocabulary)
                    .map(|model| (model, stored.version.clone()))
                    .map_err(|e| {
                        format!(
                            "the installed model update {} did not open ({e})",
                            stored.version
                        )
                    })
            }
            Err(e) => Err(format!(
                "the installed model update could not be read ({e})"
            )),
        };
        match opened {
            Ok((model, version)) => {
                self.install_model(model, version);
                true
            }
            Err(reason) => {
                self.count_model_failure();
                *write(&self.installed_model_error) =
                    Some(format!("{reason}; the configured model serves"));
                false
            }
        }
    }

    fn install_model(&self, model: EdgeModel, version: String) {
        model.warm_up();
        // The built-in knowledge base compiles on first use; pay it here, not on a message (a
        // synced table in force was compiled when it was installed or loaded).
        read(&self.knowledge).warm_up();
        // Labels were validated when the model loaded; an unknown one cannot remain here.
        let labels = model
            .metadata()
            .labels
            .iter()
            .map(|name| name.parse().unwrap_or(Label::Spam))
            .collect();
        *write(&self.model) = Some(Arc::new(LocalModel {
            model,
            labels,
            version,
        }));
        *write(&self.model_error) = None;
    }

    fn local_model(&self) -> Option<Arc<LocalModel>> {
        read(&self.model).clone()
    }

    fn store(&self) -> Result<&Store, EngineError> {
        self.store.as_ref().ok_or_else(|| {
            EngineError::StoreUnavailable(self.store_error.clone().unwrap_or_default())
        })
    }

    fn remote(&self) -> Result<&Remote, EngineError> {
        self.remote.as_ref().ok_or(EngineError::Offline)
    }

    fn count_model_failure(&self) {
        self.failures.model.fetch_add(1, Ordering::Relaxed);
        self.bump_persisted("failure.model");
    }

    fn count_store_failure(&self) {
        self.failures.store.fetch_add(1, Ordering::Relaxed);
    }

    fn count_cloud_failure(&self) {
        self.failures.cloud.fetch_add(1, Ordering::Relaxed);
        self.bump_persisted("failure.cloud");
    }

    /// Adds to a store counter; a failing store is itself counted.
    fn bump_persisted(&self, name: &str) {
        if let Some(store) = &self.store {
            if store.bump(name, 1).is_err() {
                self.count_store_failure();
            }
        }
    }
}

/// Loads the configured model; its version is named by [`model_version_of`].
fn load_configured_model(source: &ModelSource) -> Result<(EdgeModel, String), String> {
    match source {
        ModelSource::Embedded => {
            let model = EdgeModel::embedded().map_err(|e| e.to_string())?;
            Ok((model, embedded_model_version()))
        }
        ModelSource::Files { model, vocab } => {
            let bytes = std::fs::read(model)
                .map_err(|e| format!("cannot read {}: {e}", model.display()))?;
            let vocab_json = std::fs::read_to_string(vocab)
                .map_err(|e| format!("cannot read {}: {e}", vocab.display()))?;
            let loaded = EdgeModel::from_bytes(&bytes, &vocab_json)
                .map_err(|e| format!("cannot load {}: {e}", model.display()))?;
            Ok((loaded, model_version_of(&bytes)))
        }
    }
}

/// The version name of a model file: the first 16 hex digits of its SHA-256, as the cloud
/// names the package it serves (so `GetModel` answers `up_to_date` for the same bytes).
pub fn model_version_of(onnx: &[u8]) -> String {
    smsguard_signing::sha256_hex(onnx)[..16].to_string()
}

/// Version of the embedded model ("none" without one).
pub fn embedded_model_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            EdgeModel::embedded_sha256()
                .map_or_else(|| "none".to_string(), |sha| sha[..16].to_string())
        })
        .clone()
}

/// Current wall-clock time in ms since the epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros().min(u128::from(u64::MAX)) as u64
}

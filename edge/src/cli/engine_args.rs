//! Options shared by every subcommand that opens the engine, and opening it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use smsguard_core::Market;
use smsguard_edge::cloud_link::CloudConfig;
use smsguard_edge::engine::{Durability, Engine, EngineConfig, ModelSource, Privacy};

use super::key_file;

/// Environment variable naming the store directory.
pub const DATA_DIR_ENV: &str = "SMSGUARD_DATA_DIR";

#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Store directory [default: $SMSGUARD_DATA_DIR, else $HOME/.local/share/smsguard].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Cloud service URL (http://host:port or https://host:port); without it the engine is offline.
    #[arg(long, global = true)]
    pub cloud: Option<String>,
    /// API key for the cloud service.
    #[arg(long, global = true, requires = "cloud")]
    pub api_key: Option<String>,
    /// PEM file of the CA that signed the cloud's certificate (https URLs).
    #[arg(long, global = true, requires = "cloud")]
    pub ca_cert: Option<PathBuf>,
    /// Deadline of one interactive cloud call, in milliseconds.
    #[arg(long, global = true, default_value_t = 300)]
    pub deadline_ms: u64,
    /// Ignore --cloud: classify with the local model only.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Hex Ed25519 public key that model updates must be signed with.
    #[arg(long, global = true)]
    pub pinned_key: Option<String>,
    /// What a returned decision survives: process (the death of the process; no fsync), power
    /// (power loss; an fsync per message) or none (a crash may lose the last decisions).
    #[arg(long, global = true, default_value = "process")]
    pub durability: Durability,
    /// Same as `--durability none` (kept for older scripts).
    #[arg(long, global = true, hide = true)]
    pub no_durable: bool,
    /// Days a message record is kept once nothing needs it (quarantined messages are never
    /// pruned) [default: 30].
    #[arg(long, global = true)]
    pub retention_days: Option<u32>,
    /// Most message records kept; the oldest that nothing needs are pruned first
    /// [default: 10000].
    #[arg(long, global = true)]
    pub max_records: Option<usize>,
    /// Most pending events kept for the app; the oldest are dropped first [default: 1000].
    #[arg(long, global = true)]
    pub max_events: Option<usize>,
    /// The device's market profile, `zh` or `en`: the local model judges every message at that
    /// market's thresholds [default: each message's dominant script picks them].
    #[arg(long, global = true)]
    pub market: Option<Market>,
    /// File of the key that encrypts message senders and bodies in the store (64 hex digits;
    /// created 0600 with a fresh key when missing) [default: DATA_DIR/store.key].
    #[arg(long, global = true)]
    pub key_file: Option<PathBuf>,
    /// Private mode: ask the cloud only through PrivateClassify (a homomorphically encrypted
    /// feature vector); no text, sender or fingerprint leaves the machine, reports stay local.
    #[arg(long, global = true)]
    pub private: bool,
}

impl EngineArgs {
    pub fn data_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .context("no --data-dir, $SMSGUARD_DATA_DIR or $HOME to put the store in")?;
        Ok(PathBuf::from(home).join(".local/share/smsguard"))
    }

    fn cloud_config(&self, data_dir: &Path) -> Result<Option<CloudConfig>> {
        let Some(url) = self.cloud.as_ref().filter(|_| !self.offline) else {
            return Ok(None);
        };
        let ca_cert_pem = self
            .ca_cert
            .as_ref()
            .map(|path| {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
            })
            .transpose()?;
        Ok(Some(CloudConfig {
            url: url.clone(),
            api_key: self.api_key.clone(),
            deadline: Duration::from_millis(self.deadline_ms.max(1)),
            ca_cert_pem,
            device_id: device_id(data_dir),
            // Set by the engine from its device key.
            device_public_key: None,
        }))
    }

    pub fn engine_config(&self, model: ModelSource) -> Result<(PathBuf, EngineConfig)> {
        let data_dir = self.data_dir()?;
        let config = EngineConfig {
            cloud: self.cloud_config(&data_dir)?,
            pinned_model_key: self.pinned_key.clone(),
            durability: if self.no_durable {
                Durability::None
            } else {
                self.durability
            },
            model,
            market: self.market,
            privacy: if self.private {
                Privacy::Private
            } else {
                Privacy::Standard
            },
            store_key: Some(key_file::load_or_create(&self.key_file(&data_dir))?),
            device_key: Some(key_file::load_or_create_device_key(
                &data_dir.join(key_file::DEVICE_KEY_FILE),
            )?),
            ..EngineConfig::default()
        };
        Ok((data_dir, self.with_retention(config)))
    }

    fn key_file(&self, data_dir: &Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| data_dir.join(key_file::DEFAULT_KEY_FILE))
    }

    /// `config` with the retention flags given on the command line.
    fn with_retention(&self, mut config: EngineConfig) -> EngineConfig {
        if let Some(days) = self.retention_days {
            config.retention_days = days;
        }
        if let Some(records) = self.max_records {
            config.max_message_records = records;
        }
        if let Some(events) = self.max_events {
            config.max_events = events;
        }
        config
    }

    /// Opens the engine. The store may be held by another `smsguard` process for a moment: it
    /// is waited for briefly. A store that still does not open (held by another process, a
    /// read-only directory, a full disk) or a model that does not load is an error here: on the
    /// command line failing loudly beats verdicts that are recorded nowhere.
    pub fn open(&self, model: ModelSource) -> Result<Engine> {
        let engine = self.open_store_with(model)?;
        if let Some(reason) = engine.model_error() {
            bail!("{reason}");
        }
        Ok(engine)
    }

    /// Opens the engine for commands that need the store (and not necessarily a model).
    pub fn open_store(&self) -> Result<Engine> {
        self.open_store_with(ModelSource::Embedded)
    }

    fn open_store_with(&self, model: ModelSource) -> Result<Engine> {
        let engine = self.open_waiting(model)?;
        if let Some(reason) = engine.store_error() {
            bail!(
                "the store in {} is unavailable: {reason}",
                self.data_dir()?.display()
            );
        }
        Ok(engine)
    }

    /// Opens the engine; the store itself waits briefly for a lock another process holds.
    fn open_waiting(&self, model: ModelSource) -> Result<Engine> {
        let data_dir = self.data_dir()?;
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let (data_dir, config) = self.engine_config(model)?;
        Ok(Engine::open(&data_dir, config)?)
    }
}

/// A stable, opaque device id for this store: a hash of its path (never a phone number).
fn device_id(data_dir: &Path) -> String {
    let digest = smsguard_signing::sha256_hex(data_dir.to_string_lossy().as_bytes());
    format!("cli-{}", &digest[..16])
}

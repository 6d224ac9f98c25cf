//! `Engine::sync` (hot spam fingerprints, sender rules and the knowledge table) and `Engine::update_model` (signed
//! model packages).

use smsguard_container::device::open_as_device;
use smsguard_container::seal;
use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::Label;
use smsguard_model::EdgeModel;
use smsguard_proto::v1::{self, GetModelResponse, SenderRuleKind, SyncCacheResponse};

use zeroize::Zeroize;

use super::device_key::{model_storage_key, DeviceKey};
use super::senders::is_valid_rule;
use super::{write, Engine, EngineError, HotIndex, ModelUpdate, SenderRules, SyncSummary};
use crate::cloud_link::verify_model_package;
use crate::store::{HotFingerprint, SenderRuleEntry, StoredModel, SYNC_VERSION_KEY};

/// Most `SyncCache` pages pulled by one `sync` (a server that always says `has_more` cannot
/// keep the engine looping).
const MAX_SYNC_PAGES: usize = 100;

impl Engine {
    /// Pulls hot spam fingerprints and sender rules changed since the last synced version and
    /// stores them with the new version.
    pub fn sync(&self) -> Result<SyncSummary, EngineError> {
        let store = self.store()?;
        let remote = self.remote()?;
        let from_version = store.meta_u64(SYNC_VERSION_KEY)?.unwrap_or(0);
        let mut summary = SyncSummary {
            from_version,
            to_version: from_version,
            ..SyncSummary::default()
        };
        for _ in 0..MAX_SYNC_PAGES {
            let page = remote
                .call(remote.link.sync_cache(
                    summary.to_version,
                    self.config.sync_page_entries,
                    self.knowledge_revision(),
                ))
                .inspect_err(|_| self.count_cloud_failure())?;
            self.apply_sync_page(&page, &mut summary)?;
            if let Some(table) = &page.knowledge {
                self.apply_knowledge(table, &mut summary);
            }
            let advanced = page.version > summary.to_version;
            summary.to_version = summary.to_version.max(page.version);
            store.set_meta_u64(SYNC_VERSION_KEY, summary.to_version)?;
            if !page.has_more || !advanced {
                break;
            }
        }
        store.flush()?;
        self.reload_synced_state();
        Ok(summary)
    }

    fn apply_sync_page(
        &self,
        page: &SyncCacheResponse,
        summary: &mut SyncSummary,
    ) -> Result<(), EngineError> {
        let store = self.store()?;
        for entry in &page.fingerprints {
            if entry.removed {
                summary.fingerprints_removed += usize::from(store.remove_hot(&entry.fingerprint)?);
                continue;
            }
            if entry.minhash.len() != NUM_HASHES || entry.fingerprint.is_empty() {
                summary.skipped += 1;
                continue;
            }
            let label = v1::Label::try_from(entry.label)
                .ok()
                .and_then(smsguard_proto::core_label)
                .filter(|label| label.is_spam())
                .unwrap_or(Label::Spam);
            store.put_hot(&HotFingerprint {
                fingerprint: entry.fingerprint.clone(),
                minhash: entry.minhash.clone(),
                label,
            })?;
            summary.fingerprints_added += 1;
        }
        for rule in &page.sender_rules {
            if rule.removed {
                summary.rules_removed += usize::from(store.remove_rule(&rule.pattern)?);
                continue;
            }
            let allow = match SenderRuleKind::try_from(rule.kind) {
                Ok(SenderRuleKind::Allow) => true,
                Ok(SenderRuleKind::Deny) => false,
                _ => {
                    summary.skipped += 1;
                    continue;
                }
            };
            if !is_valid_rule(&rule.pattern) {
                summary.skipped += 1;
                continue;
            }
            store.put_rule(&SenderRuleEntry {
                pattern: rule.pattern.clone(),
                allow,
            })?;
            summary.rules_added += 1;
        }
        Ok(())
    }

    /// Installs the cloud's knowledge table, or counts its refusal (the one in force stays;
    /// the next sync offers it again).
    fn apply_knowledge(&self, table: &v1::KnowledgeTable, summary: &mut SyncSummary) {
        match self.install_knowledge(table) {
            Ok(()) => {
                summary.knowledge_installed = true;
                self.bump_persisted("knowledge.installed");
            }
            Err(_) => {
                summary.knowledge_rejected = true;
                self.bump_persisted("knowledge.rejected");
            }
        }
    }

    /// Rebuilds the in-memory hot index and sender rules from the store.
    pub(super) fn reload_synced_state(&self) {
        let Some(store) = &self.store else { return };
        match store.hot_fingerprints() {
            Ok(entries) => *write(&self.hot) = HotIndex::build(entries),
            Err(_) => self.count_store_failure(),
        }
        match store.sender_rules() {
            Ok(entries) => *write(&self.rules) = SenderRules::compile(&entries).0,
            Err(_) => self.count_store_failure(),
        }
    }

    /// Fetches the current model package and installs it only when its signature verifies
    /// against the pinned key, its manifest matches its bytes and the model loads; it is then
    /// persisted in the store and used from the next message on. Any failure keeps the current
    /// model.
    pub fn update_model(&self) -> Result<ModelUpdate, EngineError> {
        let pinned = self.pinned_key.as_ref().ok_or(EngineError::NoPinnedKey)?;
        let remote = self.remote()?;
        let current = self
            .local_model()
            .map(|m| m.version.clone())
            .unwrap_or_default();
        let package = remote
            .call(remote.link.get_model(&current))
            .inspect_err(|_| self.count_cloud_failure())?;
        if package.up_to_date {
            return Ok(ModelUpdate::UpToDate { version: current });
        }
        let device_key = self.config.device_key.as_ref();
        let (model, stored) = verified_model(package, pinned, device_key).inspect_err(|_| {
            self.bump_persisted("model_update.rejected");
        })?;
        if let Some(store) = &self.store {
            store.save_model(&stored)?;
            store.flush()?;
        }
        let version = stored.version.clone();
        self.install_model(model, version.clone());
        self.bump_persisted("model_update.installed");
        Ok(ModelUpdate::Updated {
            previous: current,
            version,
        })
    }
}

/// Opens a package sealed to this device (a plain one passes as it is), then checks it
/// completely (signature, digest, size, vocabulary, loadable model) before anything is replaced.
/// The model is kept sealed under the device's storage key for the store; the plaintext copy is
/// zeroised before returning.
fn verified_model(
    package: GetModelResponse,
    pinned: &smsguard_signing::VerifyingKey,
    device_key: Option<&DeviceKey>,
) -> Result<(EdgeModel, StoredModel), EngineError> {
    let mut package = opened_package(package, device_key)?;
    let checked = check_and_seal(&package, pinned, device_key);
    package.model.zeroize();
    checked
}

/// The package with its model in the clear: `sealed_model` opened with the device key.
fn opened_package(
    mut package: GetModelResponse,
    device_key: Option<&DeviceKey>,
) -> Result<GetModelResponse, EngineError> {
    if package.sealed_model.is_empty() {
        return Ok(package);
    }
    let key = device_key.ok_or_else(|| {
        EngineError::ModelRejected(
            "the package is sealed to a device and no device_key is set".into(),
        )
    })?;
    let opened = open_as_device(key.secret(), &package.sealed_model)
        .map_err(|e| EngineError::ModelRejected(e.to_string()))?;
    package.model = opened.to_vec();
    package.sealed_model = Vec::new();
    Ok(package)
}

fn check_and_seal(
    package: &GetModelResponse,
    pinned: &smsguard_signing::VerifyingKey,
    device_key: Option<&DeviceKey>,
) -> Result<(EdgeModel, StoredModel), EngineError> {
    verify_model_package(package, pinned).map_err(|e| EngineError::ModelRejected(e.to_string()))?;
    let manifest = package
        .manifest
        .as_ref()
        .ok_or_else(|| EngineError::ModelRejected("no manifest".into()))?;
    let vocabulary = std::str::from_utf8(&package.vocabulary)
        .map_err(|_| EngineError::ModelRejected("vocabulary is not UTF-8".into()))?;
    let model = EdgeModel::from_bytes(&package.model, vocabulary)
        .map_err(|e| EngineError::ModelRejected(e.to_string()))?;
    let version = if manifest.version.is_empty() {
        manifest.sha256.clone()
    } else {
        manifest.version.clone()
    };
    let sealed_model = seal(&model_storage_key(device_key), &package.model)
        .map_err(|e| EngineError::ModelRejected(e.to_string()))?;
    let stored = StoredModel {
        version,
        sha256: manifest.sha256.clone(),
        sealed_model,
        vocabulary: vocabulary.to_string(),
        manifest_json: manifest.manifest_json.clone(),
    };
    Ok((model, stored))
}

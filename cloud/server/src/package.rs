//! The edge model package served by `GetModel`: the committed int8 model, its vocabulary and
//! manifest (compiled in, or read from a folder), signed once at start with the server's
//! Ed25519 key, and the key file handling of `smsguard-cloud keygen`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smsguard_container::device::{seal_to_device, DevicePublicKey};
use smsguard_proto::v1;
use smsguard_signing::{sha256_hex, PackageParts, SigningKey, VerifyingKey};

use crate::error::{RequestError, ServerError};
use crate::watermark::{device_mark, SafeBuckets, Watermarker, PLAN_FILE};

const EMBEDDED_MODEL: &[u8] = include_bytes!("../../../edge/models/edge-int8.onnx");
const EMBEDDED_VOCAB: &[u8] = include_bytes!("../../../edge/models/vocab.json");
const EMBEDDED_MANIFEST: &[u8] = include_bytes!("../../../edge/models/manifest.json");
const EMBEDDED_PLAN: &[u8] = include_bytes!("../../../edge/models/watermark.json");

/// File names of a model folder (and of the compiled-in copy).
pub const MODEL_FILE: &str = "edge-int8.onnx";
pub const VOCAB_FILE: &str = "vocab.json";
pub const MANIFEST_FILE: &str = "manifest.json";
/// File names written by `keygen`.
pub const SECRET_KEY_FILE: &str = "signing.key";
pub const PUBLIC_KEY_FILE: &str = "signing.pub";

/// A signed package, ready to clone into answers.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    /// The package version: the first 16 hex digits of the model's SHA-256 (content-addressed,
    /// so a changed model always has a new version).
    pub version: String,
    pub public_key: VerifyingKey,
    response: v1::GetModelResponse,
    /// Re-signs the per-device copies (each carries its own watermark).
    signing_key: Arc<SigningKey>,
    /// Where each device's mark goes; `None` for a model without int8 weights to mark.
    watermarker: Option<Watermarker>,
}

impl ModelPackage {
    /// Signs the model of `dir` (or the compiled-in one) with `key`.
    pub fn load(dir: Option<&Path>, key: &SigningKey) -> Result<Self, ServerError> {
        let (model, vocabulary, manifest) = match dir {
            Some(dir) => (
                read(dir, MODEL_FILE)?,
                read(dir, VOCAB_FILE)?,
                read(dir, MANIFEST_FILE)?,
            ),
            None => (
                EMBEDDED_MODEL.to_vec(),
                EMBEDDED_VOCAB.to_vec(),
                EMBEDDED_MANIFEST.to_vec(),
            ),
        };
        let manifest_json = String::from_utf8(manifest)
            .map_err(|_| ServerError::ModelPackage("manifest.json is not UTF-8".into()))?;
        let pipeline_version = pipeline_version(&manifest_json)?;
        let sha256 = sha256_hex(&model);
        let signature = key.sign(PackageParts {
            manifest_json: manifest_json.as_bytes(),
            model: &model,
            vocabulary: &vocabulary,
        });
        let public_key = key.verifying_key();
        let version = sha256[..16].to_owned();
        let response = v1::GetModelResponse {
            up_to_date: false,
            manifest: Some(v1::ModelManifest {
                version: version.clone(),
                sha256,
                size_bytes: model.len() as u64,
                pipeline_version,
                manifest_json,
            }),
            model,
            vocabulary,
            signature,
            key_id: public_key.key_id(),
            // Filled per request, for the device that asks (`seal_to_requesting_device`).
            sealed_model: Vec::new(),
        };
        let plan = match dir {
            Some(dir) => read_plan(dir)?,
            None => embedded_plan(),
        };
        let watermarker = plan.and_then(|plan| Watermarker::new(&response.model, key, &plan));
        let signing_key = SigningKey::from_hex(&key.to_hex())
            .map(Arc::new)
            .map_err(|e| ServerError::ModelPackage(format!("signing key: {e}")))?;
        Ok(ModelPackage {
            version,
            public_key,
            response,
            signing_key,
            watermarker,
        })
    }

    /// The answer to an edge that has `current_version`: only the manifest when it is current.
    pub fn answer(&self, current_version: &str) -> v1::GetModelResponse {
        if current_version == self.version {
            let manifest = self.response.manifest.as_ref().map(|m| v1::ModelManifest {
                manifest_json: String::new(),
                ..m.clone()
            });
            return v1::GetModelResponse {
                up_to_date: true,
                manifest,
                key_id: self.response.key_id.clone(),
                ..v1::GetModelResponse::default()
            };
        }
        self.response.clone()
    }
}

impl ModelPackage {
    /// The answer for the device that asked: its model carries the device's watermark (see
    /// [`crate::watermark`]; the manifest's digest and the signature are redone for that copy,
    /// the version stays the package's) and moves into `sealed_model`, sealed to the device, so
    /// a package captured or copied elsewhere does not open on another device.
    pub fn seal_to_requesting_device(
        &self,
        mut answer: v1::GetModelResponse,
        device_public_key: &[u8],
    ) -> Result<v1::GetModelResponse, RequestError> {
        let invalid = |e: smsguard_container::ContainerError| RequestError::Invalid {
            field: "device_public_key",
            reason: e.to_string(),
        };
        let device = DevicePublicKey::from_slice(device_public_key).map_err(invalid)?;
        if answer.model.is_empty() {
            return Ok(answer);
        }
        if let Some(marker) = &self.watermarker {
            self.mark_for(&mut answer, marker, device_mark(&device.key_id()));
        }
        answer.sealed_model = seal_to_device(&device, &answer.model).map_err(invalid)?;
        answer.model = Vec::new();
        Ok(answer)
    }

    fn mark_for(&self, answer: &mut v1::GetModelResponse, marker: &Watermarker, mark: u64) {
        answer.model = marker.mark(&answer.model, mark);
        let Some(manifest) = answer.manifest.as_mut() else {
            return;
        };
        manifest.sha256 = sha256_hex(&answer.model);
        answer.signature = self.signing_key.sign(PackageParts {
            manifest_json: manifest.manifest_json.as_bytes(),
            model: &answer.model,
            vocabulary: &answer.vocabulary,
        });
    }

    /// The unmarked model this package serves (the reference a leaked copy is compared with).
    pub fn model(&self) -> &[u8] {
        &self.response.model
    }

    /// The watermark planner of this package's model (for the operator's tracing tool).
    pub fn watermarker(&self) -> Option<&Watermarker> {
        self.watermarker.as_ref()
    }
}

/// The watermark plan of a model folder; `None` without one (its model is served unmarked).
fn read_plan(dir: &Path) -> Result<Option<SafeBuckets>, ServerError> {
    let path = dir.join(PLAN_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    serde_json::from_slice(&read(dir, PLAN_FILE)?)
        .map(Some)
        .map_err(|e| ServerError::ModelPackage(format!("{}: {e}", path.display())))
}

/// The plan compiled in beside the compiled-in model (`Watermarker::new` ignores it once the
/// model is retrained without a new plan).
fn embedded_plan() -> Option<SafeBuckets> {
    serde_json::from_slice(EMBEDDED_PLAN).ok()
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, ServerError> {
    let path = dir.join(name);
    std::fs::read(&path)
        .map_err(|e| ServerError::ModelPackage(format!("cannot read {}: {e}", path.display())))
}

fn pipeline_version(manifest_json: &str) -> Result<u32, ServerError> {
    let manifest: serde_json::Value = serde_json::from_str(manifest_json)
        .map_err(|e| ServerError::ModelPackage(format!("manifest.json: {e}")))?;
    let version = manifest
        .get("pipeline_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| ServerError::ModelPackage("manifest.json has no pipeline_version".into()))?;
    match u32::try_from(version) {
        Ok(version) if smsguard_core::reads_pipeline(version) => Ok(version),
        _ => Err(ServerError::ModelPackage(format!(
            "the edge model is for pipeline version {version}, this build reads {}",
            smsguard_core::PIPELINE_VERSION
        ))),
    }
}

/// Reads a hex secret key file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, ServerError> {
    let key_error = |message: String| ServerError::SigningKey {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?;
    SigningKey::from_hex(&text).map_err(|e| key_error(e.to_string()))
}

/// The configured key, else `data_dir/signing.key`, created (0600) on first start.
pub fn load_or_create_signing_key(
    configured: Option<&Path>,
    data_dir: &Path,
) -> Result<SigningKey, ServerError> {
    if let Some(path) = configured {
        return read_signing_key(path);
    }
    let path = data_dir.join(SECRET_KEY_FILE);
    if path.is_file() {
        return read_signing_key(&path);
    }
    let key = write_key_pair(data_dir, false)?;
    tracing::warn!(
        path = %path.display(),
        key_id = %key.verifying_key().key_id(),
        "no signing key configured: generated one; pin its public key ({}) on the edge",
        data_dir.join(PUBLIC_KEY_FILE).display()
    );
    Ok(key)
}

/// Generates a key pair into `dir`: `signing.key` (hex secret, mode 0600) and `signing.pub`
/// (hex public key). Refuses to overwrite an existing secret unless `force`.
pub fn write_key_pair(dir: &Path, force: bool) -> Result<SigningKey, ServerError> {
    let secret_path = dir.join(SECRET_KEY_FILE);
    let key_error = |path: &PathBuf, message: String| ServerError::SigningKey {
        path: path.clone(),
        message,
    };
    if secret_path.exists() && !force {
        return Err(key_error(
            &secret_path,
            "exists; pass --force to replace it (edges pinned to the old key will refuse new models)".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| key_error(&dir.to_path_buf(), e.to_string()))?;
    let key = SigningKey::generate().map_err(|e| key_error(&secret_path, e.to_string()))?;
    write_secret(&secret_path, &(key.to_hex() + "\n"))
        .map_err(|e| key_error(&secret_path, e.to_string()))?;
    let public_path = dir.join(PUBLIC_KEY_FILE);
    std::fs::write(&public_path, key.verifying_key().to_hex() + "\n")
        .map_err(|e| key_error(&public_path, e.to_string()))?;
    Ok(key)
}

/// Writes `text` to a file only its owner can read (created with mode 0600, not chmod-ed later).
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_package_verifies_and_is_up_to_date_at_its_version() {
        let key = SigningKey::generate().unwrap();
        let package = ModelPackage::load(None, &key).unwrap();
        let full = package.answer("old");
        let manifest = full.manifest.as_ref().unwrap();
        package
            .public_key
            .verify_package(
                PackageParts {
                    manifest_json: manifest.manifest_json.as_bytes(),
                    model: &full.model,
                    vocabulary: &full.vocabulary,
                },
                &manifest.sha256,
                &full.signature,
            )
            .unwrap();
        let current = package.answer(&manifest.version);
        assert!(current.up_to_date);
        assert!(current.model.is_empty());
    }

    #[test]
    fn a_package_for_a_device_carries_its_model_sealed_to_that_device_only() {
        use smsguard_container::device::{open_as_device, DeviceSecret};
        let package = ModelPackage::load(None, &SigningKey::generate().unwrap()).unwrap();
        let device = DeviceSecret::generate();
        let plain = package.answer("old");
        let sealed = package
            .seal_to_requesting_device(plain.clone(), device.public_key().as_bytes())
            .unwrap();
        assert!(sealed.model.is_empty());
        let opened = open_as_device(&device, &sealed.sealed_model).unwrap();
        let marker = package.watermarker().expect("the int8 model is marked");
        assert_eq!(
            marker.read(&plain.model, &opened),
            Some(device_mark(&device.public_key().key_id())),
            "the copy carries this device's mark"
        );
        let manifest = sealed.manifest.as_ref().unwrap();
        package
            .public_key
            .verify_package(
                PackageParts {
                    manifest_json: manifest.manifest_json.as_bytes(),
                    model: &opened,
                    vocabulary: &sealed.vocabulary,
                },
                &manifest.sha256,
                &sealed.signature,
            )
            .unwrap();
        assert_eq!(
            manifest.version, package.version,
            "one version for every copy"
        );
        assert!(open_as_device(&DeviceSecret::generate(), &sealed.sealed_model).is_err());
        // An up-to-date answer has no model to seal; a malformed key is the client's error.
        let current = package.answer(&package.version);
        let current = package
            .seal_to_requesting_device(current, device.public_key().as_bytes())
            .unwrap();
        assert!(current.sealed_model.is_empty());
        for bad in [&[1u8; 31][..], &[0u8; 32][..]] {
            assert!(matches!(
                package.seal_to_requesting_device(plain.clone(), bad),
                Err(RequestError::Invalid {
                    field: "device_public_key",
                    ..
                })
            ));
        }
    }

    #[test]
    fn keygen_writes_a_private_secret_and_refuses_to_overwrite_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = write_key_pair(dir.path(), false).unwrap();
        let public = std::fs::read_to_string(dir.path().join(PUBLIC_KEY_FILE)).unwrap();
        assert_eq!(public.trim(), key.verifying_key().to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write_key_pair(dir.path(), false).is_err());
        let again = read_signing_key(&dir.path().join(SECRET_KEY_FILE)).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
    }
}

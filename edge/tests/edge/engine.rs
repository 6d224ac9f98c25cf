//! The engine offline and against a scripted cloud (the real server is exercised by the
//! top-level tests/ crate): sender rules, cache, local model, deadline, queue drain, reports,
//! sync, signed model updates, fail open, and a kill -9 in the middle of a burst.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsguard_core::{normalize, Label, MinHasher};
use smsguard_edge::cloud_link::{CloudConfig, CloudLinkError};
use smsguard_edge::engine::{
    CloudFuture, CloudLink, Decision, Durability, Engine, EngineConfig, EngineError, EngineEvent,
    MessageState, ModelSource, ModelUpdate, ReportOutcome, Source, CLOUD_REFUSED_COUNTER,
};
use smsguard_edge::model::Action;
use smsguard_edge::store::{Store, StoreKey, StoreOptions};
use smsguard_proto::v1::{
    self, classify_result, ClassifyResult, GetModelResponse, ModelManifest, ReportRequest,
    ReportResponse, SenderRule, SenderRuleKind, SmsMessage, SpamFingerprint, SyncCacheResponse,
    Verdict,
};
use smsguard_signing::{sha256_hex, PackageParts, SigningKey};

use crate::fixtures::{int8_model, vocab_json, OBVIOUS_HAM, OBVIOUS_SPAM};

mod crash_safety;
mod device_bound;
mod knowledge_tables;
mod offline_decisions;
mod scripted_cloud;

const FRIEND: &str = "+44 7700 900123";
const STRANGER: &str = "+15550100";

fn offline(dir: &Path) -> Engine {
    Engine::open(dir, EngineConfig::default()).unwrap()
}

// ---------------------------------------------------------------- scripted cloud

#[derive(Debug, Clone)]
enum Behaviour {
    /// Answer with this label and action (and cache TTL), after a delay.
    Answer {
        label: v1::Label,
        action: v1::Action,
        ttl: u32,
        delay: Duration,
    },
    Fail(CloudLinkError),
}

#[derive(Debug, Default)]
struct CloudState {
    classify: Option<Behaviour>,
    /// Batch answers: ham for messages whose body contains "lunch", else fraud.
    batch_down: bool,
    /// Per-message errors: "parcel" bodies get UNAVAILABLE, "iPhone" bodies INVALID_ARGUMENT.
    batch_errors: bool,
    batches: usize,
    /// The `market` field of every message the cloud was asked about, in order.
    markets: Vec<String>,
    reports: Vec<ReportRequest>,
    sync_pages: VecDeque<SyncCacheResponse>,
    sync_requests: Vec<u64>,
    model: Option<GetModelResponse>,
}

#[derive(Debug, Clone)]
struct FakeCloud(Arc<Mutex<CloudState>>);

impl FakeCloud {
    fn new(classify: Behaviour) -> FakeCloud {
        FakeCloud(Arc::new(Mutex::new(CloudState {
            classify: Some(classify),
            ..CloudState::default()
        })))
    }

    fn link(&self) -> Arc<dyn CloudLink> {
        Arc::new(self.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CloudState> {
        self.0.lock().unwrap()
    }
}

fn verdict(label: v1::Label, action: v1::Action, ttl: u32) -> Verdict {
    Verdict {
        label: label as i32,
        action: action as i32,
        spam_score: if label == v1::Label::Ham { 0.05 } else { 0.97 },
        cache_ttl_seconds: ttl,
        source: v1::VerdictSource::Cloud as i32,
        ..Verdict::default()
    }
}

impl CloudLink for FakeCloud {
    fn classify(&self, msg: SmsMessage) -> CloudFuture<Verdict> {
        let behaviour = {
            let mut state = self.state();
            state.markets.push(msg.market);
            state.classify.clone()
        };
        Box::pin(async move {
            match behaviour {
                Some(Behaviour::Answer {
                    label,
                    action,
                    ttl,
                    delay,
                }) => {
                    tokio::time::sleep(delay).await;
                    Ok(verdict(label, action, ttl))
                }
                Some(Behaviour::Fail(e)) => Err(e),
                None => Err(CloudLinkError::Unavailable {
                    reason: "unset".into(),
                }),
            }
        })
    }

    fn classify_batch(&self, msgs: Vec<SmsMessage>) -> CloudFuture<Vec<ClassifyResult>> {
        let mut state = self.state();
        state.batches += 1;
        state.markets.extend(msgs.iter().map(|m| m.market.clone()));
        let down = state.batch_down;
        let errors = state.batch_errors;
        Box::pin(async move {
            if down {
                return Err(CloudLinkError::Unavailable {
                    reason: "down".into(),
                });
            }
            Ok(msgs
                .into_iter()
                .map(|m| {
                    let code = match (errors, m.body.contains("parcel"), m.body.contains("iPhone"))
                    {
                        (true, true, _) => Some(tonic::Code::Unavailable),
                        (true, _, true) => Some(tonic::Code::InvalidArgument),
                        _ => None,
                    };
                    if let Some(code) = code {
                        let error = v1::MessageError {
                            code: code as i32,
                            reason: "scripted".into(),
                        };
                        return ClassifyResult {
                            client_message_id: m.client_message_id,
                            outcome: Some(classify_result::Outcome::Error(error)),
                        };
                    }
                    let (label, action) = if m.body.contains("lunch") {
                        (v1::Label::Ham, v1::Action::Allow)
                    } else {
                        (v1::Label::Fraud, v1::Action::Block)
                    };
                    ClassifyResult {
                        client_message_id: m.client_message_id,
                        outcome: Some(classify_result::Outcome::Verdict(verdict(label, action, 0))),
                    }
                })
                .collect())
        })
    }

    fn report(&self, req: ReportRequest) -> CloudFuture<ReportResponse> {
        let mut state = self.state();
        let down = state.batch_down;
        if !down {
            state.reports.push(req);
        }
        let count = state.reports.len() as u32;
        Box::pin(async move {
            if down {
                return Err(CloudLinkError::Unavailable {
                    reason: "down".into(),
                });
            }
            Ok(ReportResponse {
                report_count: count,
                accepted: true,
            })
        })
    }

    fn sync_cache(
        &self,
        since_version: u64,
        _max: u32,
        _known: String,
    ) -> CloudFuture<SyncCacheResponse> {
        let mut state = self.state();
        state.sync_requests.push(since_version);
        let page = state.sync_pages.pop_front().unwrap_or(SyncCacheResponse {
            version: since_version,
            ..SyncCacheResponse::default()
        });
        Box::pin(async move { Ok(page) })
    }

    fn get_model(&self, _current_version: &str) -> CloudFuture<GetModelResponse> {
        let model = self.state().model.clone();
        Box::pin(async move {
            model.ok_or(CloudLinkError::Unavailable {
                reason: "no model".into(),
            })
        })
    }
}

fn cloud_config(deadline: Duration) -> CloudConfig {
    CloudConfig {
        url: "http://127.0.0.1:9".into(),
        deadline,
        device_id: "test-device".into(),
        ..CloudConfig::default()
    }
}

fn with_cloud(dir: &Path, cloud: &FakeCloud, deadline: Duration) -> Engine {
    let config = EngineConfig {
        cloud: Some(cloud_config(deadline)),
        ..EngineConfig::default()
    };
    Engine::open_with_link(dir, config, Some(cloud.link())).unwrap()
}

fn answer(label: v1::Label, action: v1::Action, ttl: u32, delay_ms: u64) -> Behaviour {
    Behaviour::Answer {
        label,
        action,
        ttl,
        delay: Duration::from_millis(delay_ms),
    }
}

fn model_package(key: &SigningKey, version: &str, tamper: bool) -> GetModelResponse {
    let model = int8_model();
    let vocabulary = vocab_json().into_bytes();
    let manifest_json = format!("{{\"version\":\"{version}\"}}");
    let signature = key.sign(PackageParts {
        manifest_json: manifest_json.as_bytes(),
        model: &model,
        vocabulary: &vocabulary,
    });
    let mut package = GetModelResponse {
        up_to_date: false,
        manifest: Some(ModelManifest {
            version: version.into(),
            sha256: sha256_hex(&model),
            size_bytes: model.len() as u64,
            pipeline_version: smsguard_core::PIPELINE_VERSION,
            manifest_json,
        }),
        model,
        vocabulary,
        signature,
        key_id: key.verifying_key().key_id(),
        sealed_model: Vec::new(),
    };
    if tamper {
        let middle = package.model.len() / 2;
        package.model[middle] ^= 0x01;
    }
    package
}

//! The on-device engine of smsguard: the edge model (`smsguard-model`, re-exported here) in front
//! of the sled store (`store`), the cloud link (`cloud`) and the engine that decides one SMS
//! (`engine`).
//!
//! This crate does not talk to ONNX Runtime itself; errors never carry message text.

pub mod cloud_link;
pub mod engine;
pub mod store;

pub use smsguard_model::{init_runtime, init_runtime_from};
/// The model modules, re-exported so `smsguard_edge::model::Action` and friends keep their paths.
pub use smsguard_model::{metadata, model, runtime};
pub use smsguard_model::{
    Action, EdgeModel, Judged, ModelError, ModelInfo, ModelInput, Prediction,
};

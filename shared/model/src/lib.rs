//! The edge model of smsguard: loads ONNX Runtime (`runtime`), checks a model file's metadata
//! against this build's pipeline (`metadata`), runs the int8 char-CNN on normalised text and
//! turns its spam score into a local action (`model`).
//!
//! The one crate of the workspace that links `ort`, so that the phone's engine (`smsguard-edge`)
//! and the cloud's evaluation and training (`smsguard-server`, `smsguard-train`) share the model
//! without depending on each other. Errors never carry message text.
//!
//! The shipped model is compiled in sealed (`smsguard-container`), never as plain ONNX, and
//! sealed models (the embedded one, installed updates) open only into memory.

mod embedded;
pub mod error;
pub mod metadata;
pub mod model;
pub mod runtime;

pub use error::ModelError;
pub use metadata::{Judged, ModelInfo};
pub use model::{Action, EdgeModel, ModelInput, Prediction};
pub use runtime::{init_runtime, init_runtime_from};
pub use smsguard_container::{ContainerError, ContainerKey};

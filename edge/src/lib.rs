//! The on-device engine of smsguard: loads ONNX Runtime (`runtime`), runs the int8 char-CNN on
//! normalised text (`model`) and turns its spam score into a local action.
//!
//! Nothing else in the workspace talks to ONNX Runtime. Errors never carry message text.

pub mod cloud;
pub mod engine;
pub mod error;
pub mod metadata;
pub mod model;
pub mod perf;
pub mod runtime;
pub mod store;

pub use error::EdgeError;
pub use metadata::{Judged, ModelInfo};
pub use model::{Action, EdgeModel, ModelInput, Prediction};
pub use runtime::{init_runtime, init_runtime_from};

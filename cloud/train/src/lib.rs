//! smsguard-train: turns corpora into the edge char-CNN and the cloud models, exports ONNX
//! (fp32 and int8) and writes evaluation reports.

pub mod baseline;
pub mod baseline_cli;
pub mod calibration_fit;
pub mod cloud_models;
pub mod config;
pub mod data;
pub mod eval;
pub mod fusion_fit;
pub mod fusion_head;
pub mod lexical_fit;
pub mod loco;
pub mod loco_edge;
pub mod manifest;
pub mod market_thresholds;
pub mod model;
pub mod multiclass_fit;
pub mod ngram_fit;
pub mod onnx_export;
pub mod private_fit;
pub mod private_head_fit;
pub mod private_head_pick;
pub mod private_model;
pub mod quantize;
pub mod requantize;
pub mod trainer;
pub mod vocab;

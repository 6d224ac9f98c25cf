//! Evaluation of smsguard's classifiers, shared by the edge model's `smsguard-train eval`, the
//! fused cloud's `smsguard-cloud eval`, the trainer's threshold picking and the benchmarks.
//!
//! - `metrics`: pure functions over (truth, prediction, spam score) observations;
//! - `perf`: latency percentiles and peak memory, measured, never asserted;
//! - `run`: the one evaluation loop: labelled files in, every message through a [`Scorer`],
//!   observations, latencies and skipped lines out. The two eval commands are adapters that say
//!   how their classifier scores a message and what their report shows;
//! - `report` (feature `report`, on by default): where the report files go and how they are
//!   written (JSON, Markdown, PNG plots). The phone's engine uses this crate without it.
//!
//! Errors never carry message text.

pub mod metrics;
pub mod perf;
#[cfg(feature = "report")]
pub mod report;
pub mod run;

pub use metrics::{MetricsReport, Observation, ThresholdMetrics};
pub use run::{
    evaluate_files, AtDeployed, CorpusFigures, EvalError, Evaluation, Scored, Scorer, Skipped,
    Timing,
};

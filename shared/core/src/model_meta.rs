//! Keys of the ONNX `metadata_props` that the trainer writes and the edge reads: the contract
//! that ties a model file to the feature pipeline it was trained with.

pub const PIPELINE_VERSION: &str = "smsguard.pipeline_version";
pub const VOCAB_SHA256: &str = "smsguard.vocab_sha256";
/// JSON array of label names in output order.
pub const LABELS: &str = "smsguard.labels";
pub const SEQ_LEN: &str = "smsguard.seq_len";
/// Spam-score thresholds (spam score = 1 - p(ham)) picked on dev for ham FPR <= 0.5 % / 0.1 %.
pub const THRESHOLD_FPR_0_5: &str = "smsguard.threshold_fpr_0_5";
pub const THRESHOLD_FPR_0_1: &str = "smsguard.threshold_fpr_0_1";
/// JSON object from market name (`zh`, `en`) to its `OperatingPoint` (`tag`, `quarantine`),
/// each picked on that market's dev ham like the two pooled thresholds above. Optional: a model
/// without it judges every market at the pooled thresholds.
pub const MARKET_THRESHOLDS: &str = "smsguard.market_thresholds";
pub const TRAINING_COMMAND: &str = "smsguard.training_command";
/// JSON object of dev metrics.
pub const DEV_METRICS: &str = "smsguard.dev_metrics";
/// "fp32" or "int8".
pub const PRECISION: &str = "smsguard.precision";
/// JSON of the `smsguard_core::ngrams::NgramConfig` of the model's n-gram input.
pub const NGRAM_CONFIG: &str = "smsguard.ngram_config";

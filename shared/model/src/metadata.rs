//! The model's `metadata_props` (keys in `smsguard_core::model_meta`), parsed and checked
//! against the pipeline this build runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smsguard_core::ngrams::NgramConfig;
use smsguard_core::{model_meta as key, ActionThresholds, Label, Market};

use crate::error::ModelError;

/// Everything the edge needs to know about a model file besides its graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Label names in output order; `labels[0] == "ham"`.
    pub labels: Vec<String>,
    pub seq_len: usize,
    /// The hashed n-gram input the model was trained with.
    pub ngram: NgramConfig,
    pub pipeline_version: u32,
    pub vocab_sha256: String,
    /// Lowest spam score whose ham false-positive rate on dev was <= 0.5 %.
    pub threshold_fpr_0_5: f32,
    /// Lowest spam score whose ham false-positive rate on dev was <= 0.1 %.
    pub threshold_fpr_0_1: f32,
    /// The same two thresholds picked on each market's own dev ham; a market missing here (or
    /// a model from before market profiles) is judged at the pooled ones above.
    #[serde(default)]
    pub market_thresholds: BTreeMap<Market, ActionThresholds>,
    /// "fp32" or "int8" (empty if the model does not say).
    pub precision: String,
    pub training_command: Option<String>,
    pub dev_metrics: Option<serde_json::Value>,
}

/// The thresholds one message was judged at, and whose they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// The device's configured market, else the message's dominant script's.
    pub market: Market,
    pub point: ActionThresholds,
    /// `false` when the model has no thresholds of its own for `market` (pooled ones used).
    pub market_specific: bool,
}

impl Judged {
    /// How a reason names the thresholds: `zh` or `pooled`.
    pub fn profile_name(&self) -> &'static str {
        if self.market_specific {
            self.market.as_str()
        } else {
            "pooled"
        }
    }
}

impl ModelInfo {
    /// Reads the metadata through `lookup` (key -> value) and validates it.
    pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ModelError> {
        let required = |name: &'static str| {
            lookup(name).ok_or(ModelError::Metadata {
                key: name,
                problem: "missing".to_string(),
            })
        };
        let info = ModelInfo {
            labels: parse_json(key::LABELS, &required(key::LABELS)?)?,
            seq_len: parse_number(key::SEQ_LEN, &required(key::SEQ_LEN)?)?,
            ngram: parse_json(key::NGRAM_CONFIG, &required(key::NGRAM_CONFIG)?)?,
            pipeline_version: parse_number(
                key::PIPELINE_VERSION,
                &required(key::PIPELINE_VERSION)?,
            )?,
            vocab_sha256: required(key::VOCAB_SHA256)?.trim().to_ascii_lowercase(),
            threshold_fpr_0_5: parse_number(
                key::THRESHOLD_FPR_0_5,
                &required(key::THRESHOLD_FPR_0_5)?,
            )?,
            threshold_fpr_0_1: parse_number(
                key::THRESHOLD_FPR_0_1,
                &required(key::THRESHOLD_FPR_0_1)?,
            )?,
            market_thresholds: match lookup(key::MARKET_THRESHOLDS) {
                Some(raw) => parse_json(key::MARKET_THRESHOLDS, &raw)?,
                None => BTreeMap::new(),
            },
            precision: lookup(key::PRECISION).unwrap_or_default(),
            training_command: lookup(key::TRAINING_COMMAND),
            dev_metrics: lookup(key::DEV_METRICS).and_then(|raw| serde_json::from_str(&raw).ok()),
        };
        info.validate()?;
        Ok(info)
    }

    fn validate(&self) -> Result<(), ModelError> {
        let invalid = |key: &'static str, problem: &str| ModelError::Metadata {
            key,
            problem: problem.to_string(),
        };
        if self.labels.len() < 2 || self.labels[0] != "ham" {
            return Err(invalid(
                key::LABELS,
                "not a list of at least two labels starting with \"ham\"",
            ));
        }
        if let Some(unknown) = self.labels.iter().find(|l| l.parse::<Label>().is_err()) {
            return Err(ModelError::UnknownLabel(unknown.clone()));
        }
        if self.seq_len == 0 {
            return Err(invalid(key::SEQ_LEN, "zero"));
        }
        if let Err(problem) = self.ngram.validate() {
            return Err(invalid(key::NGRAM_CONFIG, &problem.to_string()));
        }
        if !smsguard_core::reads_pipeline(self.pipeline_version) {
            return Err(ModelError::PipelineVersion {
                model: self.pipeline_version,
                expected: smsguard_core::PIPELINE_VERSION,
            });
        }
        let in_unit = |t: f32| (0.0..=1.0 + f32::EPSILON).contains(&t);
        if !in_unit(self.threshold_fpr_0_5) {
            return Err(invalid(key::THRESHOLD_FPR_0_5, "outside [0, 1]"));
        }
        // A stricter false-positive budget can only need an equal or higher threshold.
        if !in_unit(self.threshold_fpr_0_1) || self.threshold_fpr_0_1 < self.threshold_fpr_0_5 {
            return Err(invalid(
                key::THRESHOLD_FPR_0_1,
                "outside [threshold_fpr_0_5, 1]",
            ));
        }
        let bad_market = self.market_thresholds.values().any(|point| {
            !in_unit(point.tag) || !in_unit(point.quarantine) || point.quarantine < point.tag
        });
        if bad_market {
            return Err(invalid(
                key::MARKET_THRESHOLDS,
                "a market's thresholds are outside [0, 1] or quarantine < tag",
            ));
        }
        Ok(())
    }

    /// The pooled operating point (every market's ham together).
    pub fn pooled_point(&self) -> ActionThresholds {
        ActionThresholds {
            tag: self.threshold_fpr_0_5,
            quarantine: self.threshold_fpr_0_1,
        }
    }

    /// The operating point a message of `market` is judged at: the market's own when the model
    /// has one, else the pooled one.
    pub fn operating_point(&self, market: Market) -> Judged {
        match self.market_thresholds.get(&market) {
            Some(&point) => Judged {
                market,
                point,
                market_specific: true,
            },
            None => Judged {
                market,
                point: self.pooled_point(),
                market_specific: false,
            },
        }
    }

    /// Checks that `vocab_sha256` (of the vocabulary JSON given to the edge) is the model's.
    pub fn check_vocab(&self, vocab_sha256: &str) -> Result<(), ModelError> {
        if self.vocab_sha256 != vocab_sha256.to_ascii_lowercase() {
            return Err(ModelError::VocabMismatch {
                model: self.vocab_sha256.clone(),
                vocab: vocab_sha256.to_string(),
            });
        }
        Ok(())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    key: &'static str,
    raw: &str,
) -> Result<T, ModelError> {
    serde_json::from_str(raw).map_err(|e| ModelError::Metadata {
        key,
        problem: format!("not valid JSON ({e})"),
    })
}

fn parse_number<T: std::str::FromStr>(key: &'static str, raw: &str) -> Result<T, ModelError> {
    raw.trim().parse().map_err(|_| ModelError::Metadata {
        key,
        problem: format!("not a number ({} bytes)", raw.len()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(crate) fn sample_props() -> HashMap<&'static str, String> {
        HashMap::from([
            (key::LABELS, r#"["ham","spam"]"#.to_string()),
            (key::SEQ_LEN, "160".to_string()),
            (
                key::NGRAM_CONFIG,
                r#"{"buckets":1024,"max_n":4,"max_chars":200}"#.to_string(),
            ),
            (
                key::PIPELINE_VERSION,
                smsguard_core::PIPELINE_VERSION.to_string(),
            ),
            (key::VOCAB_SHA256, "AB".repeat(32)),
            (key::THRESHOLD_FPR_0_5, "0.6".to_string()),
            (key::THRESHOLD_FPR_0_1, "0.9".to_string()),
            (key::PRECISION, "int8".to_string()),
            (key::DEV_METRICS, r#"{"accuracy":0.97}"#.to_string()),
        ])
    }

    fn parse(props: &HashMap<&'static str, String>) -> Result<ModelInfo, ModelError> {
        ModelInfo::parse(|k| props.get(k).cloned())
    }

    #[test]
    fn parses_complete_metadata() {
        let info = parse(&sample_props()).unwrap();
        assert_eq!(info.labels, vec!["ham", "spam"]);
        assert_eq!(info.seq_len, 160);
        assert_eq!(info.ngram.buckets, 1024);
        assert_eq!(info.vocab_sha256, "ab".repeat(32));
        assert_eq!(info.threshold_fpr_0_1, 0.9);
        assert_eq!(info.dev_metrics.unwrap()["accuracy"], 0.97);
        assert!(info.training_command.is_none());
    }

    #[test]
    fn market_thresholds_are_optional_and_fall_back_to_the_pooled_ones() {
        let info = parse(&sample_props()).unwrap();
        let judged = info.operating_point(Market::Zh);
        assert_eq!((judged.point.tag, judged.point.quarantine), (0.6, 0.9));
        assert_eq!(judged.profile_name(), "pooled");

        let mut props = sample_props();
        props.insert(
            key::MARKET_THRESHOLDS,
            r#"{"zh":{"tag":0.3,"quarantine":0.8}}"#.to_string(),
        );
        let info = parse(&props).unwrap();
        let zh = info.operating_point(Market::Zh);
        assert_eq!((zh.point.tag, zh.point.quarantine), (0.3, 0.8));
        assert_eq!(zh.profile_name(), "zh");
        assert_eq!(info.operating_point(Market::En).point, info.pooled_point());

        for bad in [
            r#"{"zh":{"tag":0.9,"quarantine":0.3}}"#,
            r#"{"zh":{"tag":1.5,"quarantine":1.6}}"#,
            r#"{"fr":{"tag":0.3,"quarantine":0.8}}"#,
            r#"not json"#,
        ] {
            props.insert(key::MARKET_THRESHOLDS, bad.to_string());
            let err = parse(&props).unwrap_err();
            assert!(
                err.to_string().contains(key::MARKET_THRESHOLDS),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn reads_models_of_pipeline_version_1() {
        let mut props = sample_props();
        props.insert(key::PIPELINE_VERSION, "1".to_string());
        assert_eq!(parse(&props).unwrap().pipeline_version, 1);
    }

    #[test]
    fn rejects_other_pipeline_version() {
        let mut props = sample_props();
        props.insert(
            key::PIPELINE_VERSION,
            (smsguard_core::PIPELINE_VERSION + 1).to_string(),
        );
        assert!(matches!(
            parse(&props),
            Err(ModelError::PipelineVersion { .. })
        ));
    }

    #[test]
    fn rejects_missing_and_malformed_keys() {
        let mut props = sample_props();
        props.remove(key::SEQ_LEN);
        let err = parse(&props).unwrap_err();
        assert!(err.to_string().contains(key::SEQ_LEN), "{err}");
        let mut props = sample_props();
        props.insert(key::LABELS, r#"["spam","ham"]"#.to_string());
        assert!(matches!(
            parse(&props),
            Err(ModelError::Metadata {
                key: key::LABELS,
                ..
            })
        ));
        let mut props = sample_props();
        props.insert(
            key::NGRAM_CONFIG,
            r#"{"buckets":1,"max_n":4,"max_chars":200}"#.to_string(),
        );
        let err = parse(&props).unwrap_err();
        assert!(err.to_string().contains("buckets"), "{err}");
        let mut props = sample_props();
        props.insert(key::THRESHOLD_FPR_0_1, "0.1".to_string());
        assert!(matches!(
            parse(&props),
            Err(ModelError::Metadata {
                key: key::THRESHOLD_FPR_0_1,
                ..
            })
        ));
    }

    #[test]
    fn vocab_check_compares_hashes_case_insensitively() {
        let info = parse(&sample_props()).unwrap();
        assert!(info.check_vocab(&"AB".repeat(32)).is_ok());
        assert!(matches!(
            info.check_vocab(&"cd".repeat(32)),
            Err(ModelError::VocabMismatch { .. })
        ));
    }
}

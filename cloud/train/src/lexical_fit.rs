//! Trains the cloud's lexical scorer ([`smsguard_scoring::lexical`]): TF-IDF character
//! n-grams of the raw text (by default; the normalised view can be added), the squared-hinge linear SVM of
//! [`crate::baseline`] on every training file pooled (ham vs any spam label; corpora above a cap
//! weighed down to it, classes balanced), quantised, then Platt-calibrated on the margins the
//! quantised model gives messages it did not train on (the dev splits).

use std::time::Instant;

use smsguard_scoring::lexical::{
    apply_idf, term_frequencies, LexicalModel, Platt, SparseRow, Views,
};

use crate::baseline::{balanced_weights, train_svm_in, SvmConfig};
use crate::calibration_fit::fit_platt;
use crate::data::Dataset;

/// Settings of [`train_lexical`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LexicalConfig {
    pub bucket_bits: u32,
    pub views: Views,
    /// The SVM's C.
    pub c: f64,
    /// Corpora with more training examples weigh as if they had this many.
    pub corpus_cap: usize,
    /// Most passes of the SVM solver.
    pub max_passes: usize,
}

impl Default for LexicalConfig {
    fn default() -> Self {
        LexicalConfig {
            bucket_bits: smsguard_scoring::lexical::DEFAULT_BUCKET_BITS,
            views: Views::RAW,
            c: 1.0,
            corpus_cap: 8000,
            max_passes: SvmConfig::default().max_passes,
        }
    }
}

/// One message to calibrate on: normalised text, original, spam or not.
#[derive(Debug)]
pub struct Calibration<'a> {
    pub normalized: &'a str,
    pub original: &'a str,
    pub spam: bool,
}

/// Trains the model on `train` and calibrates it on `calibration` (messages not in `train`).
pub fn train_lexical(
    train: &Dataset,
    calibration: &[Calibration<'_>],
    config: &LexicalConfig,
) -> LexicalModel {
    let started = Instant::now();
    let bits = config.bucket_bits;
    let mut rows: Vec<SparseRow> = train
        .examples
        .iter()
        .map(|e| term_frequencies(&e.text, &e.original, config.views, bits))
        .collect();
    let idf = fit_idf(&rows, bits);
    for row in &mut rows {
        apply_idf(row, |id| idf[id as usize]);
    }
    let spam: Vec<bool> = train.examples.iter().map(|e| e.label != 0).collect();
    let sources: Vec<usize> = train.examples.iter().map(|e| e.source).collect();
    let weights = balanced_weights(&spam, &sources, config.corpus_cap);
    let svm_config = SvmConfig {
        c: config.c,
        max_passes: config.max_passes,
        ..SvmConfig::default()
    };
    let svm = train_svm_in(1 << bits, &rows, &spam, &weights, &svm_config);
    let placeholder = Platt { a: 1.0, b: 0.0 };
    let model = LexicalModel::quantize(
        bits,
        config.views,
        &idf,
        svm.weights(),
        svm.bias(),
        placeholder,
    );
    let margins: Vec<f32> = calibration
        .iter()
        .map(|m| model.margin(m.normalized, m.original))
        .collect();
    let positive: Vec<bool> = calibration.iter().map(|m| m.spam).collect();
    let platt = fit_platt(&margins, &positive);
    eprintln!(
        "lexical: {} rows, 2^{bits} buckets, C {}, {} passes, Platt a {:.3} b {:.3}, {:.1} s",
        rows.len(),
        config.c,
        svm.passes,
        platt.a,
        platt.b,
        started.elapsed().as_secs_f64()
    );
    model.with_platt(platt)
}

/// Smoothed idf `ln((1 + n) / (1 + df)) + 1` of every bucket, from the tf rows of the
/// training texts.
pub fn fit_idf<'a>(rows: impl IntoIterator<Item = &'a SparseRow>, bits: u32) -> Vec<f32> {
    let mut document_frequency = vec![0u32; 1 << bits];
    let mut documents = 0u32;
    for row in rows {
        documents += 1;
        for &id in &row.ids {
            document_frequency[id as usize] += 1;
        }
    }
    let n = f64::from(documents);
    document_frequency
        .iter()
        .map(|&df| (((1.0 + n) / (1.0 + f64::from(df))).ln() + 1.0) as f32)
        .collect()
}

//! The reference baseline the models are compared with: TF-IDF over character 1–5-grams and a
//! linear SVM, binary (ham vs any spam label), as in `../shared/datasets/BASELINES.md`.
//!
//! * Features: the character n-grams of [`smsguard_core::ngrams`] (grams inside space-padded
//!   words, like scikit-learn's `char_wb` analyzer) hashed into 2^22 buckets (collisions are
//!   rare at that size), sublinear tf `1 + ln(count)`, smoothed idf `ln((1 + n) / (1 + df)) + 1`
//!   learned on the training texts, rows scaled to unit L2 norm.
//! * Text: the normalised text (what our models see), or with [`TextView::Raw`] the lower-cased
//!   raw text (what the published baseline saw, corpus masking styles included).
//! * Classifier: L2-regularised squared-hinge linear SVM with a regularised bias column,
//!   balanced class weights and `C` from a candidate list, solved by dual coordinate descent
//!   (Hsieh et al., ICML 2008; the solver behind LIBLINEAR and scikit-learn's `LinearSVC`).
//!
//! Two ways to train, to separate what one model for all traffic costs from what the features
//! cost: one model per corpus (its `train.tsv`, `C` picked on its own `dev.tsv`, as the
//! published figures) or one pooled model over every training file (one `C` picked on all dev
//! files together, corpora above a cap weighed down to it, as our models are trained).

use smsguard_core::ngrams::{hash_ngrams, NgramConfig};
use smsguard_core::normalize;

use crate::model::SplitMix64;

/// Buckets of the hashed n-grams (plus the padding bucket 0, never produced).
const BUCKETS: usize = 1 << 22;
/// Characters of a message that are read (all of any SMS; long inputs are cut, not refused).
const MAX_CHARS: usize = 4096;

/// Which text the features are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextView {
    /// `normalize(..).text`, the input of our models.
    Normalized,
    /// The message as written, lower-cased.
    Raw,
}

impl TextView {
    fn view(self, text: &str) -> String {
        match self {
            TextView::Normalized => normalize(text).text,
            TextView::Raw => text.to_lowercase(),
        }
    }
}

/// One TF-IDF row: bucket ids in increasing order and their weights (unit L2 norm); the
/// lexical scorer's row type, so the cloud scorer is trained by this solver.
pub use smsguard_scoring::lexical::SparseRow;

fn dot(row: &SparseRow, weights: &[f64]) -> f64 {
    row.ids
        .iter()
        .zip(&row.values)
        .map(|(&id, &v)| weights[id as usize] * f64::from(v))
        .sum()
}

/// Document frequencies turned into idf weights, fitted on training texts.
#[derive(Debug, Clone)]
pub struct TfidfVectorizer {
    view: TextView,
    config: NgramConfig,
    idf: Vec<f32>,
}

impl TfidfVectorizer {
    /// Learns the idf of every bucket from `texts` (raw messages).
    pub fn fit<'a>(view: TextView, texts: impl IntoIterator<Item = &'a str>) -> Self {
        let config = NgramConfig {
            buckets: BUCKETS,
            max_n: 5,
            max_chars: MAX_CHARS,
        };
        let mut document_frequency = vec![0u32; BUCKETS];
        let mut documents = 0u32;
        for text in texts {
            documents += 1;
            for &id in &hash_ngrams(&view.view(text), &config).ids {
                document_frequency[id as usize] += 1;
            }
        }
        let n = f64::from(documents);
        let idf = document_frequency
            .iter()
            .map(|&df| (((1.0 + n) / (1.0 + f64::from(df))).ln() + 1.0) as f32)
            .collect();
        TfidfVectorizer { view, config, idf }
    }

    /// The TF-IDF row of one raw message.
    pub fn transform(&self, text: &str) -> SparseRow {
        // `hash_ngrams` gives unit-norm sublinear tf; scaling by idf and renormalising gives
        // unit-norm tf-idf, because the first normalisation is one factor for the whole row.
        let tf = hash_ngrams(&self.view.view(text), &self.config);
        let mut row = SparseRow {
            ids: tf.ids.iter().map(|&id| id as u32).collect(),
            values: tf
                .ids
                .iter()
                .zip(&tf.weights)
                .map(|(&id, &w)| w * self.idf[id as usize])
                .collect(),
        };
        let norm = row.squared_norm().sqrt() as f32;
        if norm > 0.0 {
            row.values.iter_mut().for_each(|v| *v /= norm);
        }
        row
    }
}

/// Settings of [`train_svm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvmConfig {
    pub c: f64,
    /// Most passes over the data.
    pub max_passes: usize,
    /// Stop when no projected gradient exceeds this.
    pub tolerance: f64,
    pub seed: u64,
}

impl Default for SvmConfig {
    fn default() -> Self {
        SvmConfig {
            c: 1.0,
            max_passes: 200,
            tolerance: 1e-3,
            seed: 20240617,
        }
    }
}

/// A trained linear SVM: `score = w · x + bias`, spam when the score is at least 0.
#[derive(Debug, Clone)]
pub struct LinearSvm {
    weights: Vec<f64>,
    bias: f64,
    /// Passes the solver ran.
    pub passes: usize,
}

impl LinearSvm {
    pub fn score(&self, row: &SparseRow) -> f64 {
        dot(row, &self.weights) + self.bias
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn bias(&self) -> f64 {
        self.bias
    }
}

/// Trains the squared-hinge SVM by dual coordinate descent. `example_weights` scale `C` per
/// example (class balance, corpus caps). The bias is the weight of a constant feature 1, so it
/// is regularised like the others (as LIBLINEAR does).
pub fn train_svm(
    rows: &[SparseRow],
    spam: &[bool],
    example_weights: &[f64],
    config: &SvmConfig,
) -> LinearSvm {
    train_svm_in(BUCKETS, rows, spam, example_weights, config)
}

/// [`train_svm`] over rows whose ids are below `dimensions`.
pub fn train_svm_in(
    dimensions: usize,
    rows: &[SparseRow],
    spam: &[bool],
    example_weights: &[f64],
    config: &SvmConfig,
) -> LinearSvm {
    let mut weights = vec![0.0f64; dimensions];
    let mut bias = 0.0f64;
    let mut alpha = vec![0.0f64; rows.len()];
    // Squared hinge: the dual has a diagonal term 1 / (2 C_i) and no upper bound on alpha.
    let diagonal: Vec<f64> = example_weights
        .iter()
        .map(|w| 1.0 / (2.0 * config.c * w))
        .collect();
    let curvature: Vec<f64> = rows
        .iter()
        .zip(&diagonal)
        .map(|(row, d)| row.squared_norm() + 1.0 + d)
        .collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut rng = SplitMix64::new(config.seed);
    let mut passes = 0;
    while passes < config.max_passes {
        passes += 1;
        rng.shuffle(&mut order);
        let mut largest_step = 0.0f64;
        for &i in &order {
            let sign = if spam[i] { 1.0 } else { -1.0 };
            let margin = sign * (dot(&rows[i], &weights) + bias);
            let gradient = margin - 1.0 + diagonal[i] * alpha[i];
            let projected = if alpha[i] == 0.0 {
                gradient.min(0.0)
            } else {
                gradient
            };
            if projected.abs() <= 1e-12 {
                continue;
            }
            largest_step = largest_step.max(projected.abs());
            let updated = (alpha[i] - gradient / curvature[i]).max(0.0);
            let delta = (updated - alpha[i]) * sign;
            alpha[i] = updated;
            for (&id, &v) in rows[i].ids.iter().zip(&rows[i].values) {
                weights[id as usize] += delta * f64::from(v);
            }
            bias += delta;
        }
        if largest_step < config.tolerance {
            break;
        }
    }
    LinearSvm {
        weights,
        bias,
        passes,
    }
}

/// Per-example weights: corpora above `corpus_cap` examples weigh as if they had that many, then
/// ham and spam get equal total weight (scikit-learn's `class_weight="balanced"`).
pub fn balanced_weights(spam: &[bool], sources: &[usize], corpus_cap: usize) -> Vec<f64> {
    let sources_len = sources.iter().max().map_or(0, |m| m + 1);
    let mut per_source = vec![0usize; sources_len];
    for &s in sources {
        per_source[s] += 1;
    }
    let base: Vec<f64> = sources
        .iter()
        .map(|&s| (corpus_cap as f64 / per_source[s] as f64).min(1.0))
        .collect();
    let total: f64 = base.iter().sum();
    let class_total = |class: bool| -> f64 {
        base.iter()
            .zip(spam)
            .filter(|(_, &s)| s == class)
            .map(|(w, _)| w)
            .sum()
    };
    let (spam_total, ham_total) = (class_total(true), class_total(false));
    base.iter()
        .zip(spam)
        .map(|(w, &s)| {
            let class = if s { spam_total } else { ham_total };
            w * total / (2.0 * class.max(1e-12))
        })
        .collect()
}

/// Binary figures of an SVM on labelled rows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BinaryFigures {
    pub n: usize,
    pub accuracy: f64,
    pub spam_recall: Option<f64>,
    pub ham_fpr: Option<f64>,
}

pub fn binary_figures(svm: &LinearSvm, rows: &[SparseRow], spam: &[bool]) -> BinaryFigures {
    let mut counts = [[0usize; 2]; 2];
    for (row, &truth) in rows.iter().zip(spam) {
        let predicted = svm.score(row) >= 0.0;
        counts[usize::from(truth)][usize::from(predicted)] += 1;
    }
    let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
    let correct = counts[0][0] + counts[1][1];
    BinaryFigures {
        n: rows.len(),
        accuracy: ratio(correct, rows.len()).unwrap_or(0.0),
        spam_recall: ratio(counts[1][1], counts[1][0] + counts[1][1]),
        ham_fpr: ratio(counts[0][1], counts[0][0] + counts[0][1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<&'static str>, Vec<bool>) {
        let texts = vec![
            "win a free prize now call",
            "free entry claim your prize",
            "urgent claim cash prize today",
            "see you at lunch tomorrow",
            "can you pick up the kids",
            "running late see you soon",
        ];
        (texts, vec![true, true, true, false, false, false])
    }

    #[test]
    fn rows_have_unit_norm_and_rarer_grams_weigh_more() {
        let (texts, _) = toy();
        let vectorizer = TfidfVectorizer::fit(TextView::Normalized, texts.iter().copied());
        let row = vectorizer.transform("free prize");
        assert!((row.squared_norm() - 1.0).abs() < 1e-5);
        assert!(row.ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(vectorizer.transform("").ids.len(), 0);
        // "q" never occurs in the training texts, "e" in most: in a row holding both words, the
        // grams of "q" carry more of the weight.
        let mixed = vectorizer.transform("e q");
        let mass_of = |word: &str| -> f32 {
            let ids = vectorizer.transform(word).ids;
            mixed
                .ids
                .iter()
                .zip(&mixed.values)
                .filter(|(id, _)| ids.contains(id))
                .map(|(_, v)| v * v)
                .sum()
        };
        assert!(mass_of("q") > mass_of("e"));
    }

    #[test]
    fn svm_separates_the_toy_set_and_scores_new_text_by_its_words() {
        let (texts, spam) = toy();
        let vectorizer = TfidfVectorizer::fit(TextView::Normalized, texts.iter().copied());
        let rows: Vec<SparseRow> = texts.iter().map(|t| vectorizer.transform(t)).collect();
        let weights = balanced_weights(&spam, &vec![0; spam.len()], 1000);
        let svm = train_svm(&rows, &spam, &weights, &SvmConfig::default());
        let figures = binary_figures(&svm, &rows, &spam);
        assert_eq!(figures.accuracy, 1.0);
        assert!(svm.score(&vectorizer.transform("claim your free prize")) > 0.0);
        assert!(svm.score(&vectorizer.transform("see you tomorrow at lunch")) < 0.0);
        assert!(svm.passes < SvmConfig::default().max_passes, "converged");
    }

    #[test]
    fn balanced_weights_give_each_class_half_and_cap_large_corpora() {
        let spam = [true, false, false, false, true, false];
        let sources = [0, 0, 0, 0, 1, 1];
        let weights = balanced_weights(&spam, &sources, 2);
        let total: f64 = weights.iter().sum();
        let spam_total: f64 = weights
            .iter()
            .zip(spam)
            .filter(|(_, s)| *s)
            .map(|(w, _)| w)
            .sum();
        assert!((spam_total - total / 2.0).abs() < 1e-9);
        // Corpus 0 has 4 examples capped to 2: each of its ham weighs half a corpus-1 ham.
        assert!((weights[1] * 2.0 - weights[5]).abs() < 1e-9);
    }
}

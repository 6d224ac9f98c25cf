//! Fitting the cloud's multiclass model (`multiclass_fit`) on the scoring crate's toy split: it
//! learns the split, generalises to close variants, and a seed gives the same model every time.

use smsguard_core::{normalize, Label};
use smsguard_scoring::multiclass::{self, MulticlassModel};
use smsguard_train::multiclass_fit::{self, Example, TrainConfig};

#[path = "../../../scoring/tests/scoring/toy.rs"]
mod toy;

use toy::{label_index, TOY};

fn fitted(bits: u32, seed: u64) -> MulticlassModel {
    let examples: Vec<Example> = TOY
        .iter()
        .map(|(label, text)| Example {
            features: multiclass::features(&normalize(text).text, bits, None),
            label: label_index(*label),
            weight: 1.0,
        })
        .collect();
    let config = TrainConfig {
        bucket_bits: bits,
        epochs: 40,
        learning_rate: 0.5,
        l2: 1e-6,
        seed,
    };
    multiclass_fit::train(&examples, &config).quantize()
}

fn predicted(model: &MulticlassModel, text: &str) -> Label {
    let probs = model.probabilities(&normalize(text).text);
    Label::ALL[multiclass::arg_max_among(&probs, 0..5)]
}

#[test]
fn learns_the_toy_split_and_generalises_to_close_variants() {
    let model = fitted(12, 7);
    for (label, text) in TOY {
        assert_eq!(
            predicted(&model, text),
            *label,
            "training example of {label}"
        );
    }
    assert_eq!(
        predicted(&model, "see you at lunch tomorrow then"),
        Label::Ham
    );
    assert_eq!(
        predicted(&model, "您的银行卡异常请点击链接验证"),
        Label::Fraud
    );
    assert_eq!(
        predicted(&model, "you have won a prize call now"),
        Label::Spam
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    assert_eq!(fitted(10, 3).to_bytes(), fitted(10, 3).to_bytes());
    assert_ne!(fitted(10, 3).to_bytes(), fitted(10, 4).to_bytes());
}

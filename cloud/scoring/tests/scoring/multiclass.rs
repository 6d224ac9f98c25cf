//! The multiclass model: features, training on a toy split, the model file.

use smsguard_core::{normalize, Label};
use smsguard_scoring::multiclass::{self, Example, MulticlassError, MulticlassModel, TrainConfig};
use smsguard_scoring::Scorer;

use crate::msg;

/// A hand-written toy split: (label, text).
pub const TOY: &[(Label, &str)] = &[
    (Label::Ham, "are we still meeting for lunch tomorrow"),
    (Label::Ham, "mum says dinner is at seven tonight"),
    (Label::Ham, "thanks for the help today see you monday"),
    (Label::Ham, "明天下午开会记得带报告"),
    (Label::Ham, "妈妈说晚上回家吃饭"),
    (Label::Ham, "can you pick up the kids after school"),
    (Label::Ad, "双十一大促全场五折起回复退订"),
    (Label::Ad, "新店开业全场五折欢迎光临回复退订"),
    (
        Label::Ad,
        "big summer sale 50% off all shoes this weekend reply stop",
    ),
    (
        Label::Ad,
        "weekend sale 50% off jackets reply stop to opt out",
    ),
    (
        Label::Fraud,
        "您的银行卡已被冻结请点击链接 http://bank-verify.example.cn 解冻",
    ),
    (
        Label::Fraud,
        "您的账户异常请点击链接 http://secure.example.cn 验证",
    ),
    (
        Label::Fraud,
        "your bank account is suspended verify now at http://login.example.top",
    ),
    (
        Label::Fraud,
        "your parcel is held pay the fee at http://parcel.example.xyz",
    ),
    (Label::Illegal, "线上赌场注册就送888元"),
    (Label::Illegal, "澳门赌场上线注册送彩金"),
    (Label::Illegal, "代开发票各类证件办理"),
    (
        Label::Spam,
        "congratulations you have won a prize call now to claim",
    ),
    (
        Label::Spam,
        "you have won a free holiday call now to claim your prize",
    ),
    (Label::Spam, "free ringtones text win to claim now"),
];

pub fn label_index(label: Label) -> usize {
    Label::ALL.iter().position(|l| *l == label).unwrap()
}

pub fn toy_model(bits: u32, seed: u64) -> MulticlassModel {
    let examples: Vec<Example> = TOY
        .iter()
        .map(|(label, text)| Example {
            features: multiclass::features(&normalize(text).text, bits),
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
    multiclass::train(&examples, &config).quantize()
}

fn predicted(model: &MulticlassModel, text: &str) -> Label {
    let probs = model.probabilities(&normalize(text).text);
    Label::ALL[multiclass::arg_max_among(&probs, 0..5)]
}

#[test]
fn learns_the_toy_split_and_generalises_to_close_variants() {
    let model = toy_model(12, 7);
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
fn scorer_reports_one_minus_ham_probability_and_the_top_class() {
    let model = toy_model(12, 7);
    let spam = msg("congratulations you have won a prize call now to claim");
    let score = model.score(&spam.context()).unwrap();
    let probs = score.probabilities.expect("multiclass gives probabilities");
    assert!((score.score - (1.0 - probs[0])).abs() < 1e-6);
    assert_eq!(score.label, Some(Label::Spam));
    assert!(score.reason.contains("spam"), "reason names the top class");
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
}

#[test]
fn training_is_deterministic_for_a_seed() {
    assert_eq!(toy_model(10, 3).to_bytes(), toy_model(10, 3).to_bytes());
    assert_ne!(toy_model(10, 3).to_bytes(), toy_model(10, 4).to_bytes());
}

#[test]
fn model_file_round_trips_and_bad_files_are_refused() {
    let model = toy_model(10, 1);
    let bytes = model.to_bytes();
    assert_eq!(bytes.len(), 4 + 16 + 40 + (1 << 10) * 5);
    assert_eq!(MulticlassModel::from_bytes(&bytes).unwrap(), model);
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'X';
    assert!(matches!(
        MulticlassModel::from_bytes(&bad_magic),
        Err(MulticlassError::BadFile(_))
    ));
    let truncated = &bytes[..bytes.len() - 1];
    assert!(MulticlassModel::from_bytes(truncated).is_err());
    let mut other_pipeline = bytes.clone();
    other_pipeline[8] = other_pipeline[8].wrapping_add(1);
    assert!(matches!(
        MulticlassModel::from_bytes(&other_pipeline),
        Err(MulticlassError::PipelineVersion { .. })
    ));
}

#[test]
fn words_cut_han_runs_and_keep_placeholders_whole() {
    let text = normalize("加微信领取免费礼品 visit http://spam.example.top now!").text;
    let words = multiclass::words(&text);
    assert!(words.contains(&"<url>"), "{} words", words.len());
    assert!(words.contains(&"visit") && words.contains(&"now"));
    assert!(words.contains(&"领取") && words.contains(&"免费") && words.contains(&"礼品"));
    assert!(!words.iter().any(|w| w.contains('!') || w.contains(' ')));
}

#[test]
fn features_are_stable_bounded_and_unit_norm() {
    let text = normalize("Win a FREE prize: call 09061701461").text;
    let a = multiclass::features(&text, 14);
    assert_eq!(a, multiclass::features(&text, 14));
    assert!(a.buckets.iter().all(|&b| b < 1 << 14));
    assert!(
        a.buckets.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    let norm = (a.buckets.len() as f32 * a.value * a.value).sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    // The hash is part of the model format: pin one bucket (FNV-1a of "wprize", SplitMix64,
    // top 18 bits; computed independently).
    assert_eq!(multiclass::feature_bucket(b'w', &["prize"], 18), 28297);
    assert_ne!(
        multiclass::feature_bucket(b'w', &["prize"], 18),
        multiclass::feature_bucket(b'c', &["prize"], 18)
    );
}

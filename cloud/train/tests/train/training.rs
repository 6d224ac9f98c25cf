//! The training loop on the tiny fixture: it learns, it is deterministic, and its weights
//! survive the named-weights round trip used by the exporter.

use smsguard_train::model::CharCnn;
use smsguard_train::ngram_fit::{self, NgramFitConfig};
use smsguard_train::trainer::{self, TrainConfig};

use crate::fixture;

fn quick_config(seed: u64, steps: usize) -> TrainConfig {
    TrainConfig {
        epochs: steps,
        batch_size: 4,
        learning_rate: 1e-2,
        weight_decay: 0.0,
        patience: usize::MAX,
        seed,
        max_per_source: None,
        max_minutes: None,
        max_steps: Some(steps),
        progress: false,
    }
}

#[test]
fn a_few_steps_lower_the_loss() {
    let (_, _, arch, set) = fixture::prepared();
    let weights = vec![1.0; arch.num_labels()];
    let cfg = quick_config(11, 30);
    let before =
        trainer::mean_loss(&CharCnn::new(&arch, cfg.seed).unwrap(), &set, &weights).unwrap();
    let outcome = trainer::train(&arch, &set, &set, &weights, &cfg, None).unwrap();
    let after_model = CharCnn::from_weights(&arch, &outcome.weights).unwrap();
    let after = trainer::mean_loss(&after_model, &set, &weights).unwrap();
    assert!(after < 0.7 * before, "loss {before} -> {after}");
    assert_eq!(outcome.total_steps, 30);
}

#[test]
fn same_seed_gives_the_same_weights_and_another_seed_does_not() {
    let (_, _, arch, set) = fixture::prepared();
    let weights = vec![1.0; arch.num_labels()];
    let run = |seed| {
        trainer::train(&arch, &set, &set, &weights, &quick_config(seed, 6), None)
            .unwrap()
            .weights
    };
    let first = run(5);
    assert_eq!(first, run(5));
    assert_ne!(first, run(6));
}

#[test]
fn trained_model_separates_the_fixture() {
    let (_, _, arch, set) = fixture::prepared();
    let weights = vec![1.0; arch.num_labels()];
    let outcome = trainer::train(&arch, &set, &set, &weights, &quick_config(3, 60), None).unwrap();
    let model = CharCnn::from_weights(&arch, &outcome.weights).unwrap();
    let observations = trainer::predict(&model, &set).unwrap();
    let correct = observations
        .iter()
        .filter(|o| o.is_spam() == (o.spam_score >= 0.5))
        .count();
    assert!(correct >= 11, "only {correct}/12 right after training");
}

#[test]
fn weighted_loss_counts_heavier_classes_more() {
    use candle_core::{Device, Tensor};
    let logits = Tensor::new(&[[2.0f32, 0.0], [2.0, 0.0]], &Device::Cpu).unwrap();
    let targets = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
    let loss = |w: [f32; 2]| {
        let w = Tensor::new(&w, &Device::Cpu).unwrap();
        trainer::weighted_cross_entropy(&logits, &targets, &w)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    // The second example is the badly classified one: weighting it up raises the loss.
    assert!(loss([1.0, 3.0]) > loss([1.0, 1.0]));
    assert!(loss([3.0, 1.0]) < loss([1.0, 1.0]));
}

#[test]
fn thresholds_respect_the_target_false_positive_rates() {
    use smsguard_eval::metrics::Observation;
    let mut observations: Vec<Observation> = (0..1000)
        .map(|i| Observation {
            truth: 0,
            predicted: 0,
            spam_score: i as f32 / 1000.0,
        })
        .collect();
    observations.extend((0..50).map(|i| Observation {
        truth: 4,
        predicted: 4,
        spam_score: 0.99 - i as f32 / 100.0,
    }));
    let t = trainer::pick_thresholds(&observations);
    assert!(t.fpr_0_5.ham_fpr <= 0.005);
    assert!(t.fpr_0_1.ham_fpr <= 0.001);
    assert!(t.fpr_0_1.threshold >= t.fpr_0_5.threshold);
}

#[test]
fn learning_rate_warms_up_then_decays_to_the_floor() {
    assert!((trainer::lr_factor(0.0) - 0.1).abs() < 1e-9);
    let peak = (0..=100)
        .map(|i| trainer::lr_factor(i as f64 / 100.0))
        .fold(0.0, f64::max);
    assert!((peak - 1.0).abs() < 0.01, "peak factor {peak}");
    let after_warmup: Vec<f64> = (5..=100)
        .map(|i| trainer::lr_factor(i as f64 / 100.0))
        .collect();
    assert!(after_warmup.windows(2).all(|w| w[1] <= w[0]));
    assert!((trainer::lr_factor(1.0) - 0.02).abs() < 1e-9);
    // Progress past the budget (the last batch may overrun it) stays at the floor.
    assert_eq!(trainer::lr_factor(1.5), trainer::lr_factor(1.0));
}

#[test]
fn keeps_the_weights_of_the_lowest_pooled_dev_loss() {
    let (_, _, arch, set) = fixture::prepared();
    let weights = vec![1.0; arch.num_labels()];
    let cfg = TrainConfig {
        epochs: 6,
        max_steps: None,
        learning_rate: 5e-2,
        ..quick_config(7, 0)
    };
    let outcome = trainer::train(&arch, &set, &set, &weights, &cfg, None).unwrap();
    assert_eq!(outcome.history.len(), 6);
    let best = outcome
        .history
        .iter()
        .min_by(|a, b| a.dev_loss.total_cmp(&b.dev_loss))
        .unwrap();
    assert_eq!(outcome.best_epoch, best.epoch);
    let kept = CharCnn::from_weights(&arch, &outcome.weights).unwrap();
    let kept_loss = trainer::mean_loss(&kept, &set, &weights).unwrap();
    assert!(
        (kept_loss - best.dev_loss).abs() < 1e-5,
        "kept weights give {kept_loss}, best epoch had {}",
        best.dev_loss
    );
}

#[test]
fn fitted_ngram_branch_separates_the_fixture_and_stays_frozen() {
    let (_, _, arch, set) = fixture::prepared();
    let weights = vec![1.0; arch.num_labels()];
    let fit = ngram_fit::fit(
        &set,
        &set,
        &weights,
        arch.ngram.buckets,
        &NgramFitConfig {
            epochs: 20,
            ..NgramFitConfig::default()
        },
    );
    assert_eq!(
        fit.candidates.len(),
        NgramFitConfig::default().l2_candidates.len()
    );
    let best = fit.candidates.iter().map(|c| c.1).fold(f64::MAX, f64::min);
    assert!(fit.candidates.iter().any(|c| c.0 == fit.l2 && c.1 == best));
    assert!(
        fit.candidates.iter().all(|c| c.2 >= 11.0 / 12.0),
        "{:?}",
        fit.candidates
    );
    assert_eq!(fit.weights[0], 0.0, "the padding bucket never learns");
    let outcome = trainer::train(
        &arch,
        &set,
        &set,
        &weights,
        &quick_config(3, 10),
        Some(&fit),
    )
    .unwrap();
    let (_, _, kept) = outcome
        .weights
        .iter()
        .find(|w| w.0 == "ngram.weight")
        .unwrap();
    assert_eq!(
        kept, &fit.weights,
        "the CNN phase must not move the fitted branch"
    );
}

#[test]
fn balanced_ngram_fit_reports_accuracy_per_corpus() {
    let (_, _, arch, set) = fixture::prepared();
    let weights = vec![1.0; arch.num_labels()];
    let config = NgramFitConfig {
        epochs: 20,
        balanced: true,
        l2_candidates: vec![1e-6],
        ..NgramFitConfig::default()
    };
    let fit = ngram_fit::fit(&set, &set, &weights, arch.ngram.buckets, &config);
    let by_corpus = ngram_fit::accuracy_by_corpus(&set, &fit);
    assert_eq!(by_corpus.len(), set.source_names.len());
    assert!(
        by_corpus.iter().all(|(_, a)| *a >= 11.0 / 12.0),
        "{by_corpus:?}"
    );
    // A branch that knows nothing gets the fixture's ham right and its spam wrong.
    let blank = ngram_fit::NgramFit {
        weights: vec![0.0; arch.ngram.buckets],
        bias: -1.0,
        l2: 0.0,
        candidates: Vec::new(),
    };
    let blank_accuracy: f64 = ngram_fit::accuracy_by_corpus(&set, &blank)
        .iter()
        .map(|(_, a)| a)
        .sum::<f64>();
    assert!(blank_accuracy < by_corpus.iter().map(|(_, a)| a).sum::<f64>());
}

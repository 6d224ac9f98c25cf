//! `train-private`: the private-mode linear model (K classes over D hashed n-gram buckets,
//! integer weights) trained on the pooled train splits, its dev accuracy beside the float model
//! it was quantised from, and an exactness check of the encrypted scoring on a dev sample.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::private_fit::{self as train, argmax, TrainConfig, TrainExample};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use smsguard_private::round_trip::timed_round_trip;
use smsguard_private::{PrivateClient, PrivateModel, PrivateScorer, PrivateShape};

use crate::data::{self, Dataset, Split, EDGE_LABELS};

#[derive(Debug, Args)]
pub struct PrivateTrainArgs {
    /// Corpus folders, folders of corpora or .tsv files (default: every corpus of the datasets
    /// folder); train splits train, dev splits evaluate.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Where the integer model is written (JSON).
    #[arg(long, default_value = "cloud/models/private.json")]
    out: PathBuf,
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    /// Dev messages (spread over the whole dev set) scored under encryption and compared with
    /// the plaintext integer scores; 0 skips the check.
    #[arg(long, default_value_t = 200)]
    check_encrypted: usize,
}

#[derive(Debug, Serialize)]
struct CorpusAccuracy {
    corpus: String,
    messages: usize,
    /// Five-class arg-max accuracy of the float model and of the integer (private) model.
    float_accuracy: f64,
    integer_accuracy: f64,
    /// Ham versus everything else, from the same arg-max.
    float_binary_accuracy: f64,
    integer_binary_accuracy: f64,
}

#[derive(Debug, Serialize)]
struct EncryptedCheck {
    messages: usize,
    exact_matches: usize,
    query_bytes: usize,
    answer_bytes: usize,
    mean_encrypt_ms: f64,
    mean_score_ms: f64,
    mean_decrypt_ms: f64,
    build_profile: &'static str,
}

#[derive(Debug, Serialize)]
struct Summary {
    shape: PrivateShape,
    train_examples: usize,
    dev: Vec<CorpusAccuracy>,
    encrypted: Option<EncryptedCheck>,
}

pub fn run(args: PrivateTrainArgs) -> Result<()> {
    let train_set = data::load(&data::split_files(&args.data, Split::Train)?, true)?;
    let dev_set = data::load(&data::split_files(&args.data, Split::Dev)?, false)?;
    let shape = PrivateShape::for_classes(EDGE_LABELS.len());
    eprintln!(
        "private model {} classes x {} buckets; train {} examples, dev {}",
        shape.classes,
        shape.buckets,
        train_set.examples.len(),
        dev_set.examples.len()
    );
    let examples = featurise(&shape, &train_set);
    let config = TrainConfig {
        epochs: args.epochs,
        learning_rate: args.lr,
        ..TrainConfig::default()
    };
    let float = train::train(shape, &examples, &config);
    let labels = EDGE_LABELS.iter().map(|l| l.to_string()).collect();
    let model = float.quantise(labels)?;
    let dev = featurise(&shape, &dev_set);
    let summary = Summary {
        shape,
        train_examples: examples.len(),
        dev: accuracy_by_corpus(&dev_set, &dev, &float, &model)?,
        encrypted: check_encrypted(&model, &dev_set, args.check_encrypted)?,
    };
    let json = serde_json::to_string(&model)?;
    std::fs::write(&args.out, json).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if let Some(check) = &summary.encrypted {
        if check.exact_matches != check.messages {
            bail!(
                "{} of {} encrypted scores differ from the plaintext",
                check.messages - check.exact_matches,
                check.messages
            );
        }
    }
    Ok(())
}

fn featurise(shape: &PrivateShape, set: &Dataset) -> Vec<TrainExample> {
    let class_weights = data::class_weights(set);
    set.examples
        .iter()
        .map(|e| {
            TrainExample::from_dense(&shape.features(&e.text), e.label, class_weights[e.label])
        })
        .collect()
}

fn dense(shape: &PrivateShape, example: &TrainExample) -> Vec<i64> {
    let mut features = vec![0; shape.buckets];
    for &(i, v) in &example.features {
        features[i] = v;
    }
    features
}

fn accuracy_by_corpus(
    set: &Dataset,
    dev: &[TrainExample],
    float: &train::FloatModel,
    model: &PrivateModel,
) -> Result<Vec<CorpusAccuracy>> {
    // per corpus: [messages, float right, int right, float binary right, int binary right]
    let mut tallies: BTreeMap<usize, [usize; 5]> = BTreeMap::new();
    for (raw, example) in set.examples.iter().zip(dev) {
        let float_class = argmax(&float.scores(&example.features));
        let int_class = argmax(&model.plain_scores(&dense(&model.shape, example))?);
        let tally = tallies.entry(raw.source).or_default();
        tally[0] += 1;
        tally[1] += usize::from(float_class == example.class);
        tally[2] += usize::from(int_class == example.class);
        tally[3] += usize::from((float_class == 0) == (example.class == 0));
        tally[4] += usize::from((int_class == 0) == (example.class == 0));
    }
    Ok(tallies
        .into_iter()
        .map(|(source, t)| {
            let rate = |right: usize| right as f64 / t[0].max(1) as f64;
            CorpusAccuracy {
                corpus: set.sources[source].clone(),
                messages: t[0],
                float_accuracy: rate(t[1]),
                integer_accuracy: rate(t[2]),
                float_binary_accuracy: rate(t[3]),
                integer_binary_accuracy: rate(t[4]),
            }
        })
        .collect())
}

fn check_encrypted(
    model: &PrivateModel,
    set: &Dataset,
    sample: usize,
) -> Result<Option<EncryptedCheck>> {
    if sample == 0 || set.examples.is_empty() {
        return Ok(None);
    }
    let client = PrivateClient::new(model.shape)?;
    let scorer = PrivateScorer::new(model)?;
    let stride = (set.examples.len() / sample).max(1);
    let (mut encrypt, mut score, mut decrypt) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut messages, mut exact, mut query_bytes, mut answer_bytes) = (0, 0, 0, 0);
    for example in set.examples.iter().step_by(stride).take(sample) {
        let features = model.shape.features(&example.text);
        let trip = timed_round_trip(&client, &scorer, &features)?;
        decrypt += trip.decrypt;
        score += trip.score;
        encrypt += trip.encrypt;
        messages += 1;
        exact += usize::from(trip.scores == model.plain_scores(&features)?);
        query_bytes = query_bytes.max(trip.query_bytes);
        answer_bytes = answer_bytes.max(trip.answer_bytes);
    }
    let mean_ms = |total: Duration| total.as_secs_f64() * 1e3 / messages as f64;
    Ok(Some(EncryptedCheck {
        messages,
        exact_matches: exact,
        query_bytes,
        answer_bytes,
        mean_encrypt_ms: mean_ms(encrypt),
        mean_score_ms: mean_ms(score),
        mean_decrypt_ms: mean_ms(decrypt),
        build_profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    }))
}

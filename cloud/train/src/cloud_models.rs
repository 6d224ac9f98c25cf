//! `smsguard-train train-cloud`: trains a WordPiece subword vocabulary (`tokenizers`) and the
//! cloud's multiclass model on every `train.tsv`, then fits the fusion on the dev outputs of all
//! cloud scorers, and writes `subword.json`, `multiclass.bin`, `fusion.json` and
//! `manifest.json` into the output folder (default `cloud/models`).
//!
//! The subword vocabulary is trained with `tokenizers`' WordPiece trainer on the non-Han words
//! of the normalised training texts of all corpora (placeholders left out; Han text has jieba
//! words), each text one sequence of those words split on spaces.
//!
//! Sample weights: corpora larger than `--corpus-cap` are weighed down to that size (so the 20k
//! SpamHunter texts do not drown the rest); then ham gets half of the total weight and the spam
//! classes share the other half in proportion to the square root of their weight (rare classes
//! count more, without letting a few examples dominate). The spam-only corpora thereby get their
//! ham from the binary ones.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::fusion_head::FitConfig;
use anyhow::{Context, Result};
use serde::Serialize;
use smsguard_core::Market;
use smsguard_core::{Label, PIPELINE_VERSION};
use smsguard_eval::metrics::{self, Observation};
use smsguard_model::EdgeModel;
use smsguard_scoring::cloud_scorer::{lineup, outcomes_of, seed_similarity_files};
use smsguard_scoring::fusion::{default_inputs, EdgeInput, FusionModel, ScorerOutcome, EDGE_INPUT};
use smsguard_scoring::lexical::{self, LexicalModel};
use smsguard_scoring::multiclass::subword::SUBWORD_FILE;
use smsguard_scoring::multiclass::{self, MulticlassModel, SubwordVocab, CLASSES};
use smsguard_scoring::rules::{RuleSet, StaticRules};
use smsguard_scoring::{PreparedMessage, SimilarityStore};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::{AddedToken, Tokenizer};

use crate::data::{self, Split};
use crate::fusion_fit::{fit_fusion, label_index, out_of_fold_verdicts, DevRows};
use crate::lexical_fit::{train_lexical, Calibration, LexicalConfig};
use crate::manifest::FileEntry;
use crate::multiclass_fit::{self, Example, TrainConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct CloudTrainArgs {
    /// Corpus folders, folders of corpora or .tsv files (default: every corpus of the datasets
    /// folder); train.tsv trains the multiclass model, dev.tsv fits the fusion.
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
    /// Output folder of the model files.
    #[arg(long, default_value = "cloud/models")]
    pub out: PathBuf,
    /// log2 of the number of hash buckets.
    #[arg(long, default_value_t = multiclass::DEFAULT_BUCKET_BITS)]
    pub bucket_bits: u32,
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// AdaGrad step size.
    #[arg(long, default_value_t = 0.2)]
    pub lr: f32,
    #[arg(long, default_value_t = 1e-6)]
    pub l2: f32,
    #[arg(long, default_value_t = 20240617)]
    pub seed: u64,
    /// Corpora with more training examples weigh as if they had this many.
    #[arg(long, default_value_t = 8000)]
    pub corpus_cap: usize,
    /// Fit the fusion without the edge model's verdicts.
    #[arg(long)]
    pub no_edge: bool,
    /// Size of the WordPiece subword vocabulary; 0 trains the multiclass model without subword
    /// features (and writes no subword.json).
    #[arg(long, default_value_t = DEFAULT_SUBWORD_VOCAB)]
    pub subword_vocab: usize,
    /// Fewest occurrences of a merged subword in the training words.
    #[arg(long, default_value_t = 2)]
    pub subword_min_frequency: u64,
    /// log2 of the lexical model's hash buckets (its file is 3 bytes a bucket).
    #[arg(long, default_value_t = lexical::DEFAULT_BUCKET_BITS)]
    pub lexical_bits: u32,
    /// The lexical SVM's C.
    #[arg(long, default_value_t = 1.0)]
    pub lexical_c: f64,
    /// Read the lexical model's n-grams from the normalised text as well as the raw text (on
    /// dev the raw view alone caught more spam at every market's TAG threshold).
    #[arg(long)]
    pub lexical_both_views: bool,
    /// Folds of the fusion's out-of-fold fit (thresholds and reported dev figures).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Also write the fusion's dev inputs as TSV (corpus, line, label, one column per input with
    /// the edge's, the multiclass class probabilities; no text) for offline analysis.
    #[arg(long)]
    pub dump_rows: Option<PathBuf>,
    /// Hand-written rows for the multiclass and lexical models' training.
    #[command(flatten)]
    pub handwritten: data::HandwrittenArgs,
}

/// Default size of the subword vocabulary (see README: measured against 4k and 8k).
pub const DEFAULT_SUBWORD_VOCAB: usize = 8000;
/// Most distinct characters of the subword alphabet (rarer characters make a word unknown).
const SUBWORD_ALPHABET: usize = 400;

/// Dev figures of one corpus (or `all`).
#[derive(Debug, Clone, Serialize)]
pub struct CorpusFigures {
    pub corpus: String,
    pub n: usize,
    pub accuracy: f64,
    /// Ham-vs-spam accuracy (every non-ham label counts as spam).
    pub binary_accuracy: f64,
    pub macro_f1: f64,
    pub spam_precision: f64,
    pub spam_recall: f64,
    pub ham_fpr: f64,
    pub roc_auc: Option<f64>,
}

#[derive(Debug, Serialize)]
struct CloudManifest {
    pipeline_version: u32,
    files: Vec<FileEntry>,
    multiclass: MulticlassSummary,
    lexical: LexicalSummary,
    fusion: FusionSummary,
    command_line: String,
    wall_seconds: f64,
}

#[derive(Debug, Serialize)]
struct MulticlassSummary {
    config: TrainConfig,
    /// Entries of subword.json (0: no subword features).
    subword_vocab: usize,
    corpus_cap: usize,
    train_examples: BTreeMap<String, usize>,
    duplicates_removed: usize,
    /// Arg-max metrics of the quantised model on each dev split.
    dev_metrics: Vec<CorpusFigures>,
}

#[derive(Debug, Serialize)]
struct LexicalSummary {
    config: LexicalConfig,
    bytes: usize,
    /// The calibrated probability's figures on each dev split (label spam at p >= 0.5).
    dev_metrics: Vec<CorpusFigures>,
}

#[derive(Debug, Serialize)]
struct FusionSummary {
    edge_available: bool,
    similarity_seeded: usize,
    folds: usize,
    /// Fused verdicts on dev (label from the action, at each message's market thresholds),
    /// without / with the edge verdict; every verdict from weights fitted on the other folds.
    dev_metrics_without_edge: Vec<CorpusFigures>,
    dev_metrics_with_edge: Option<Vec<CorpusFigures>>,
}

/// One raw dev message.
pub(crate) struct DevMessage {
    pub text: String,
    pub label: usize,
    pub corpus: usize,
}

/// `train-cloud`: the multiclass and lexical models on train, their dev figures, every scorer's
/// dev outcomes, the fusion fitted on them, then the model files and the manifest.
pub fn run(args: CloudTrainArgs) -> Result<()> {
    let started = Instant::now();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let train_files = data::split_files(&args.data, Split::Train)?;
    let dev_files = data::split_files(&args.data, Split::Dev)?;
    let mut train = data::load(&train_files, true)?;
    args.handwritten.add_to(&mut train)?;
    let (dev, dev_names) = load_raw(&dev_files)?;
    eprintln!(
        "train: {} examples ({} duplicates removed); dev: {} messages",
        train.examples.len(),
        train.duplicates_removed,
        dev.len()
    );
    let (multiclass, multiclass_model) = fit_multiclass_step(&args, &train)?;
    let prepared: Vec<PreparedMessage> = dev
        .iter()
        .enumerate()
        .map(|(i, m)| PreparedMessage::new(&format!("dev-sender-{i}"), &m.text, 0, "dev-device"))
        .collect();
    let dev_set = DevSet {
        messages: &dev,
        names: &dev_names,
        prepared: &prepared,
    };
    let (lexical, lexical_model) = fit_lexical_step(&args, &train, &dev_set)?;
    let multiclass_metrics = multiclass_dev_figures(&multiclass_model, &dev_set)?;

    let store_dir =
        std::env::temp_dir().join(format!("smsguard-train-similarity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = SimilarityStore::open(&store_dir)?;
    let seeded = seed_similarity_files(&store, &train_files)?;
    eprintln!("similarity store seeded with {seeded} training spam fingerprints");
    let rules = Box::new(StaticRules(RuleSet::builtin()?));
    let scorers = lineup(multiclass_model, lexical_model, store, rules);
    let outcomes: Vec<Vec<ScorerOutcome>> = prepared
        .iter()
        .map(|p| outcomes_of(&scorers, &p.context()))
        .collect();
    drop(scorers);
    let _ = std::fs::remove_dir_all(&store_dir);
    let edge = if args.no_edge {
        None
    } else {
        edge_inputs(&prepared)
    };
    if let Some(path) = &args.dump_rows {
        dump_rows(path, &outcomes, edge.as_deref(), &dev, &dev_names)?;
    }
    let fused = fit_fusion_step(&args, &outcomes, edge.as_deref(), &dev_set)?;

    let files = write_model_files(&args.out, &multiclass, &lexical, &fused.fusion)?;
    let manifest = CloudManifest {
        pipeline_version: PIPELINE_VERSION,
        files,
        multiclass: MulticlassSummary {
            config: multiclass.config,
            subword_vocab: multiclass.subword_entries,
            corpus_cap: args.corpus_cap,
            train_examples: train
                .sources
                .iter()
                .cloned()
                .zip(train.source_sizes())
                .collect(),
            duplicates_removed: train.duplicates_removed,
            dev_metrics: multiclass_metrics,
        },
        lexical: LexicalSummary {
            config: lexical.config,
            bytes: lexical.bytes.len(),
            dev_metrics: lexical.dev_metrics,
        },
        fusion: FusionSummary {
            edge_available: edge.is_some(),
            similarity_seeded: seeded,
            folds: args.folds,
            dev_metrics_without_edge: fused.without_edge,
            dev_metrics_with_edge: fused.with_edge,
        },
        command_line,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let path = args.out.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {} (multiclass {} B) in {:.0} s",
        args.out.display(),
        multiclass.bytes.len(),
        manifest.wall_seconds
    );
    Ok(())
}

/// The dev messages, their corpus names and their prepared (normalised, fingerprinted) forms.
struct DevSet<'a> {
    messages: &'a [DevMessage],
    names: &'a [String],
    prepared: &'a [PreparedMessage],
}

/// The fitted multiclass model's file and subword vocabulary.
struct MulticlassFit {
    config: TrainConfig,
    subword_json: Option<String>,
    subword_entries: usize,
    bytes: Vec<u8>,
}

/// Fits the multiclass model (and its subword vocabulary) on train; also returns the model
/// loaded back from its file, as it will be served.
fn fit_multiclass_step(
    args: &CloudTrainArgs,
    train: &data::Dataset,
) -> Result<(MulticlassFit, MulticlassModel)> {
    let config = TrainConfig {
        bucket_bits: args.bucket_bits,
        epochs: args.epochs,
        learning_rate: args.lr,
        l2: args.l2,
        seed: args.seed,
    };
    let subword_json = match args.subword_vocab {
        0 => None,
        size => Some(train_subwords(train, size, args.subword_min_frequency)?),
    };
    let subwords = subword_json
        .as_deref()
        .map(|json| SubwordVocab::from_json(json.as_bytes()))
        .transpose()?;
    let subword_entries = subwords.as_ref().map_or(0, SubwordVocab::len);
    let bytes = train_multiclass(train, &config, args.corpus_cap, subwords).to_bytes();
    let model = MulticlassModel::from_parts(&bytes, subword_json.as_deref().map(str::as_bytes))?;
    let fit = MulticlassFit {
        config,
        subword_json,
        subword_entries,
        bytes,
    };
    Ok((fit, model))
}

/// The fitted lexical model's file and calibrated dev figures.
struct LexicalFit {
    config: LexicalConfig,
    bytes: Vec<u8>,
    dev_metrics: Vec<CorpusFigures>,
}

/// Fits the lexical model on train, calibrated on dev, and prints its dev figures.
fn fit_lexical_step(
    args: &CloudTrainArgs,
    train: &data::Dataset,
    dev: &DevSet<'_>,
) -> Result<(LexicalFit, LexicalModel)> {
    let config = LexicalConfig {
        bucket_bits: args.lexical_bits,
        c: args.lexical_c,
        corpus_cap: args.corpus_cap,
        views: lexical::Views {
            normalized: args.lexical_both_views,
            raw: true,
        },
        ..LexicalConfig::default()
    };
    let calibration: Vec<Calibration<'_>> = dev
        .prepared
        .iter()
        .zip(dev.messages)
        .map(|(p, m)| Calibration {
            normalized: &p.normalized.text,
            original: &p.normalized.original,
            spam: m.label != 0,
        })
        .collect();
    let model = train_lexical(train, &calibration, &config);
    let bytes = model.to_bytes();
    let observations: Vec<Observation> = calibration
        .iter()
        .zip(dev.messages)
        .map(|(c, m)| {
            let p = model.probability(c.normalized, c.original);
            observation(m.label, if p >= 0.5 { 4 } else { 0 }, p)
        })
        .collect();
    let dev_metrics = figures_by_corpus(&observations, dev.messages, dev.names)?;
    print_figures("lexical (calibrated, p >= 0.5) dev", &dev_metrics);
    let fit = LexicalFit {
        config,
        bytes,
        dev_metrics,
    };
    Ok((fit, model))
}

/// The multiclass model's arg-max figures on dev, printed.
fn multiclass_dev_figures(model: &MulticlassModel, dev: &DevSet<'_>) -> Result<Vec<CorpusFigures>> {
    let observations: Vec<Observation> = dev
        .prepared
        .iter()
        .zip(dev.messages)
        .map(|(p, m)| {
            let probs = model.probabilities(&p.normalized.text);
            observation(
                m.label,
                multiclass::arg_max_among(&probs, 0..CLASSES),
                1.0 - probs[0],
            )
        })
        .collect();
    let figures = figures_by_corpus(&observations, dev.messages, dev.names)?;
    print_figures("multiclass (int8) dev", &figures);
    Ok(figures)
}

/// The fusion and its out-of-fold dev figures, without and (when the edge ran) with the edge.
struct FusionFit {
    fusion: FusionModel,
    without_edge: Vec<CorpusFigures>,
    with_edge: Option<Vec<CorpusFigures>>,
}

/// Fits the fusion on the scorers' dev outcomes and prints its out-of-fold figures.
fn fit_fusion_step(
    args: &CloudTrainArgs,
    outcomes: &[Vec<ScorerOutcome>],
    edge: Option<&[Option<EdgeInput>]>,
    dev: &DevSet<'_>,
) -> Result<FusionFit> {
    let spam: Vec<bool> = dev.messages.iter().map(|m| m.label != 0).collect();
    let sources: Vec<usize> = dev.messages.iter().map(|m| m.corpus).collect();
    let markets: Vec<Market> = dev
        .prepared
        .iter()
        .map(|p| Market::of_text(&p.normalized.text))
        .collect();
    let rows = DevRows {
        outcomes,
        edge,
        spam: &spam,
        sources: &sources,
        markets: &markets,
    };
    let fit_config = FitConfig {
        folds: args.folds,
        ..FitConfig::default()
    };
    let fusion = fit_fusion(&rows, &fit_config);
    let without_edge = fused_figures(
        &out_of_fold_verdicts(&fusion, &rows, false, &fit_config),
        dev.messages,
        dev.names,
    )?;
    print_figures("fused (no edge, out of fold) dev", &without_edge);
    let with_edge = match edge {
        Some(_) => {
            let verdicts = out_of_fold_verdicts(&fusion, &rows, true, &fit_config);
            let figures = fused_figures(&verdicts, dev.messages, dev.names)?;
            print_figures("fused (with edge, out of fold) dev", &figures);
            Some(figures)
        }
        None => None,
    };
    eprintln!("fusion: {}", fusion.to_json());
    Ok(FusionFit {
        fusion,
        without_edge,
        with_edge,
    })
}

/// Writes the model files into `out` (a stale subword.json removed when there is none) and
/// returns their manifest entries.
fn write_model_files(
    out: &std::path::Path,
    multiclass: &MulticlassFit,
    lexical: &LexicalFit,
    fusion: &FusionModel,
) -> Result<Vec<FileEntry>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let fusion_json = fusion.to_json();
    let mut files = vec![
        ("multiclass.bin", multiclass.bytes.as_slice()),
        (lexical::FILE_NAME, lexical.bytes.as_slice()),
    ];
    match &multiclass.subword_json {
        Some(json) => files.push((SUBWORD_FILE, json.as_bytes())),
        None => remove_stale(&out.join(SUBWORD_FILE))?,
    }
    files.push(("fusion.json", fusion_json.as_bytes()));
    for &(name, bytes) in &files {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.iter().map(|(n, b)| FileEntry::of(n, b)).collect())
}

pub(crate) fn load_raw(files: &[PathBuf]) -> Result<(Vec<DevMessage>, Vec<String>)> {
    let mut messages = Vec::new();
    let mut names = Vec::new();
    for file in files {
        let corpus = smsguard_corpus::read_tsv(file)?;
        let index = names.len();
        names.push(corpus.name());
        for record in corpus.records {
            messages.push(DevMessage {
                label: data::edge_label(record.label)?,
                text: record.text,
                corpus: index,
            });
        }
    }
    Ok((messages, names))
}

/// Per-example weights (see the module docs), mean 1.
pub fn sample_weights(labels: &[usize], sources: &[usize], corpus_cap: usize) -> Vec<f32> {
    let mut per_source: BTreeMap<usize, usize> = BTreeMap::new();
    for &s in sources {
        *per_source.entry(s).or_default() += 1;
    }
    let source_factor = |s: usize| (corpus_cap as f32 / per_source[&s] as f32).min(1.0);
    let base: Vec<f32> = sources.iter().map(|&s| source_factor(s)).collect();
    let mut class_sum = [0f32; CLASSES];
    for (&label, &w) in labels.iter().zip(&base) {
        class_sum[label] += w;
    }
    let total: f32 = class_sum.iter().sum();
    let spam_root: f32 = class_sum[1..].iter().map(|s| s.sqrt()).sum();
    let target: [f32; CLASSES] = std::array::from_fn(|c| match c {
        _ if class_sum[c] == 0.0 => 0.0,
        0 => total / 2.0,
        _ if spam_root > 0.0 => total / 2.0 * class_sum[c].sqrt() / spam_root,
        _ => 0.0,
    });
    let weights: Vec<f32> = labels
        .iter()
        .zip(&base)
        .map(|(&label, &w)| w * target[label] / class_sum[label].max(1e-9))
        .collect();
    let mean = weights.iter().sum::<f32>() / weights.len().max(1) as f32;
    weights.iter().map(|w| w / mean.max(1e-9)).collect()
}

/// A vocabulary file of an earlier run would not match a model trained without one.
fn remove_stale(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Trains the WordPiece vocabulary (see the module docs) and returns its `tokenizers` JSON.
pub fn train_subwords(
    train: &data::Dataset,
    vocab_size: usize,
    min_frequency: u64,
) -> Result<String> {
    let started = Instant::now();
    let sequences: Vec<String> = train
        .examples
        .iter()
        .map(|e| multiclass::subword_words(&e.text).join(" "))
        .collect();
    let alphabet = subword_alphabet(&sequences);
    let trainer = WordPieceTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .initial_alphabet(alphabet.iter().copied().collect())
        .limit_alphabet(alphabet.len())
        .special_tokens(fixed_tokens(&alphabet))
        .show_progress(false)
        .build();
    let mut tokenizer = Tokenizer::new(WordPiece::default());
    tokenizer.with_pre_tokenizer(Some(WhitespaceSplit));
    let mut trainer: tokenizers::models::TrainerWrapper = trainer.into();
    tokenizer
        .train(&mut trainer, sequences.into_iter())
        .map_err(|e| anyhow::anyhow!("training the subword vocabulary: {e}"))?;
    let json = tokenizer
        .to_string(false)
        .map_err(|e| anyhow::anyhow!("serialising the subword vocabulary: {e}"))?;
    eprintln!(
        "subword vocabulary: {} entries ({} B) in {:.1} s",
        tokenizer.get_vocab_size(true),
        json.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(json)
}

/// The [`SUBWORD_ALPHABET`] most frequent characters (ties by code point), chosen here because
/// `tokenizers` breaks count ties in hash-map order, which differs from run to run.
fn subword_alphabet(sequences: &[String]) -> Vec<char> {
    let mut counts: BTreeMap<char, u64> = BTreeMap::new();
    for c in sequences
        .iter()
        .flat_map(|s| s.chars())
        .filter(|c| *c != ' ')
    {
        *counts.entry(c).or_default() += 1;
    }
    let mut by_count: Vec<(char, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut alphabet: Vec<char> = by_count
        .into_iter()
        .take(SUBWORD_ALPHABET)
        .map(|(c, _)| c)
        .collect();
    alphabet.sort_unstable();
    alphabet
}

/// `[UNK]` and the continuing piece `##c` of every alphabet character, registered up front so
/// that their ids (and with them the trainer's tie-breaking between equally frequent merges) do
/// not depend on hash-map order: the same corpora give the same vocabulary.
fn fixed_tokens(alphabet: &[char]) -> Vec<AddedToken> {
    std::iter::once("[UNK]".to_owned())
        .chain(alphabet.iter().map(|c| format!("##{c}")))
        .map(|t| AddedToken::from(t, true))
        .collect()
}

pub(crate) fn train_multiclass(
    train: &data::Dataset,
    config: &TrainConfig,
    corpus_cap: usize,
    subwords: Option<SubwordVocab>,
) -> MulticlassModel {
    let labels: Vec<usize> = train.examples.iter().map(|e| e.label).collect();
    let sources: Vec<usize> = train.examples.iter().map(|e| e.source).collect();
    let weights = sample_weights(&labels, &sources, corpus_cap);
    let started = Instant::now();
    let examples: Vec<Example> = train
        .examples
        .iter()
        .zip(&weights)
        .map(|(e, &weight)| Example {
            features: multiclass::features(&e.text, config.bucket_bits, subwords.as_ref()),
            label: e.label,
            weight,
        })
        .collect();
    eprintln!(
        "features of {} examples in {:.1} s",
        examples.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let model = multiclass_fit::train(&examples, config).quantize();
    let model = match subwords {
        Some(vocab) => model.with_subwords(vocab),
        None => model,
    };
    eprintln!(
        "trained {} epochs in {:.1} s",
        config.epochs,
        started.elapsed().as_secs_f64()
    );
    model
}

pub(crate) fn observation(truth: usize, predicted: usize, spam_score: f32) -> Observation {
    Observation {
        truth,
        predicted,
        spam_score,
    }
}

/// The edge model's verdicts on the prepared dev messages, if the shipped model loads.
pub(crate) fn edge_inputs(prepared: &[PreparedMessage]) -> Option<Vec<Option<EdgeInput>>> {
    let model = match EdgeModel::embedded() {
        Ok(model) => model,
        Err(e) => {
            eprintln!("edge model unavailable ({e}); fitting the fusion without it");
            return None;
        }
    };
    let inputs = prepared
        .iter()
        .map(|p| {
            model
                .classify_normalized(&p.normalized)
                .ok()
                .map(|pred| EdgeInput {
                    spam_score: pred.spam_score,
                    label: pred.label,
                })
        })
        .collect();
    Some(inputs)
}

fn dump_rows(
    path: &std::path::Path,
    outcomes: &[Vec<ScorerOutcome>],
    edge: Option<&[Option<EdgeInput>]>,
    dev: &[DevMessage],
    names: &[String],
) -> Result<()> {
    use std::fmt::Write as _;
    let inputs = default_inputs();
    let mut out = String::from("corpus\tline\tlabel");
    for input in &inputs {
        let _ = write!(out, "\t{}", input.model);
    }
    for label in Label::ALL {
        let _ = write!(out, "\tp_{label}");
    }
    out.push('\n');
    let mut line_in_corpus = vec![0usize; names.len()];
    for (i, (o, m)) in outcomes.iter().zip(dev).enumerate() {
        line_in_corpus[m.corpus] += 1;
        let _ = write!(
            out,
            "{}\t{}\t{}",
            names[m.corpus], line_in_corpus[m.corpus], m.label
        );
        for input in &inputs {
            let score = if input.model == EDGE_INPUT {
                edge.and_then(|e| e[i]).map(|e| e.spam_score)
            } else {
                o.iter()
                    .find(|s| s.model == input.model)
                    .and_then(|s| s.result.as_ref().ok())
                    .map(|s| s.score)
            };
            let _ = write!(out, "\t{}", score.map_or("".to_owned(), |s| s.to_string()));
        }
        let probs = o
            .iter()
            .filter_map(|s| s.result.as_ref().ok()?.probabilities)
            .next()
            .unwrap_or_default();
        for p in probs {
            let _ = write!(out, "\t{p}");
        }
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

fn fused_figures(
    verdicts: &[smsguard_scoring::FusedVerdict],
    dev: &[DevMessage],
    names: &[String],
) -> Result<Vec<CorpusFigures>> {
    let observations: Vec<Observation> = verdicts
        .iter()
        .zip(dev)
        .map(|(v, m)| observation(m.label, label_index(v.label), v.spam_score))
        .collect();
    figures_by_corpus(&observations, dev, names)
}

fn figures_by_corpus(
    observations: &[Observation],
    dev: &[DevMessage],
    names: &[String],
) -> Result<Vec<CorpusFigures>> {
    let labels: Vec<String> = Label::ALL.iter().map(|l| l.to_string()).collect();
    let mut out = vec![figures("all", &labels, observations)?];
    for (index, name) in names.iter().enumerate() {
        let slice: Vec<Observation> = observations
            .iter()
            .zip(dev)
            .filter(|(_, m)| m.corpus == index)
            .map(|(o, _)| *o)
            .collect();
        out.push(figures(name, &labels, &slice)?);
    }
    Ok(out)
}

fn figures(name: &str, labels: &[String], observations: &[Observation]) -> Result<CorpusFigures> {
    let m = metrics::evaluate(labels, observations)?;
    Ok(CorpusFigures {
        corpus: name.to_owned(),
        n: m.n,
        accuracy: m.accuracy,
        binary_accuracy: metrics::binary_accuracy(&m.confusion),
        macro_f1: m.macro_f1,
        spam_precision: m.spam_precision,
        spam_recall: m.spam_recall,
        ham_fpr: m.ham_fpr,
        roc_auc: m.roc_auc,
    })
}

fn print_figures(title: &str, figures: &[CorpusFigures]) {
    eprintln!("{title}:");
    for f in figures {
        eprintln!(
            "  {:<32} n {:>5}  acc {:.4}  binary {:.4}  macro-F1 {:.4}  spam P {:.4} R {:.4}  ham FPR {:.4}  AUC {}",
            f.corpus,
            f.n,
            f.accuracy,
            f.binary_accuracy,
            f.macro_f1,
            f.spam_precision,
            f.spam_recall,
            f.ham_fpr,
            f.roc_auc.map_or("n/a".to_owned(), |a| format!("{a:.4}"))
        );
    }
}

//! `smsguard-train loco`: leave one corpus out. For each held-out corpus (by default every
//! corpus whose dev split has both ham and spam), every cloud model is fitted on the other
//! corpora only (subword vocabulary, multiclass, lexical, similarity memory from their train
//! splits; the fusion and every threshold from their dev splits, out of fold) and the held-out
//! corpus's dev split is scored. Training texts whose normalised form occurs in the held-out
//! dev split are dropped first (the UCI messages inside Mendeley and Super SMS, for one).
//!
//! Beside the cloud: the pooled raw-text TF-IDF + linear SVM of `baseline --raw` under the same
//! protocol (trained on the other corpora, thresholds on their dev ham), and the edge. By
//! default the edge is the model as shipped: NOT retrained per fold (it was trained on every
//! corpus's train split), so its figures, and the fusion's edge input, are an upper bound. With
//! `--fold-edge-steps N` an edge is trained in each fold by the shipped recipe, its CNN capped
//! at N steps ([`crate::loco_edge`]), and that edge feeds both the fusion and the edge column:
//! then no model of the fold has read the held-out corpus. Edge thresholds are picked per fold
//! like the others.
//!
//! Figures per held-out corpus and model: binary accuracy at the model's own balanced decision
//! (cloud: fused score >= 0.5, the fusion being fitted with ham and spam weighed equally; SVM:
//! margin >= 0, trained with balanced class weights; edge: arg-max label), and spam recall and
//! ham FPR at the message's market threshold for <= 0.5 % ham FPR on the other corpora's dev
//! ham (cloud: fusion's action is not Allow, its TAG threshold being exactly that). A second
//! cloud reading, `cloud_policy`, is what a user gets: the action after the category policy (as
//! `CloudScorer::score` applies it), which also tags some messages fusion allows; its accuracy
//! is that of the action (flagged or not), its FPR what the policy costs on top of the threshold.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::fusion_head::{pick_thresholds, FitConfig};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use smsguard_core::{Label, Market};
use smsguard_scoring::cloud_scorer::{lineup, outcomes_of};
use smsguard_scoring::fusion::{EdgeInput, ScorerOutcome};
use smsguard_scoring::multiclass::SubwordVocab;

use crate::multiclass_fit::TrainConfig;
use smsguard_scoring::rules::{RuleSet, StaticRules};
use smsguard_scoring::{policy, Action, PreparedMessage, SimilarityStore};

use crate::baseline::{balanced_weights, train_svm, SvmConfig, TextView, TfidfVectorizer};
use crate::cloud_models::{
    edge_inputs, load_raw, train_multiclass, train_subwords, DevMessage, DEFAULT_SUBWORD_VOCAB,
};
use crate::data::{self, Dataset, Split};
use crate::fusion_fit::{fit_fusion, out_of_fold_verdicts, DevRows};
use crate::lexical_fit::{train_lexical, Calibration, LexicalConfig};
use crate::loco_edge::{train_and_score, DevRow, FoldEdgeRecipe};

#[derive(Debug, Clone, clap::Args)]
pub struct LocoArgs {
    /// Corpus folders, folders of corpora or `train.tsv` / `dev.tsv` files at any path (default:
    /// every corpus of the datasets folder); a corpus is the folder of its train.tsv and dev.tsv.
    #[arg(long = "data")]
    pub data: Vec<PathBuf>,
    /// Corpora to hold out, by name (default: every corpus whose dev has ham and spam).
    #[arg(long = "hold-out")]
    pub hold_out: Vec<String>,
    /// Use at most this many training messages per fold (an even sample; 0: all).
    #[arg(long, default_value_t = 0)]
    pub max_train: usize,
    /// Skip the raw-text SVM reference.
    #[arg(long)]
    pub no_svm: bool,
    /// Leave the edge model out (its column and the fusion's edge input).
    #[arg(long)]
    pub no_edge: bool,
    /// Train an edge in each fold (the shipped recipe, the CNN capped at this many steps)
    /// instead of using the shipped edge, which has read every corpus (0: the shipped edge).
    #[arg(long, default_value_t = 0)]
    pub fold_edge_steps: usize,
    /// Instead of holding corpora out, train on every corpus and score every dev split (the
    /// in-corpus table): the cloud's verdicts out of fold, every threshold on all dev ham.
    #[arg(long)]
    pub in_corpus: bool,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Figures of one model on one held-out corpus.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FoldFigures {
    pub accuracy: f64,
    /// Spam recall and ham FPR at the market's <= 0.5 % threshold (picked on the other corpora).
    pub spam_recall: Option<f64>,
    pub ham_fpr: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct FoldRow {
    pub held_out: String,
    pub n: usize,
    pub train_messages: usize,
    pub cloud: FoldFigures,
    /// The cloud's action after the category policy (see the module docs).
    pub cloud_policy: FoldFigures,
    pub svm: Option<FoldFigures>,
    pub edge: Option<FoldFigures>,
    /// `shipped` (trained on every corpus) or `fold-trained, N CNN steps at most`.
    pub edge_source: String,
    pub seconds: f64,
}

/// One message of a fold's evaluation: truth, flagged at the threshold, decided spam.
fn figures(items: &[(bool, bool, bool)]) -> FoldFigures {
    let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
    let count = |f: &dyn Fn(&(bool, bool, bool)) -> bool| items.iter().filter(|i| f(i)).count();
    let spam = count(&|i| i.0);
    let ham = items.len() - spam;
    FoldFigures {
        accuracy: ratio(count(&|i| i.0 == i.2), items.len()).unwrap_or(0.0),
        spam_recall: ratio(count(&|i| i.0 && i.1), spam),
        ham_fpr: ratio(count(&|i| !i.0 && i.1), ham),
    }
}

/// Per-market tag thresholds (<= 0.5 % ham FPR) of `scores` on labelled rows.
fn market_thresholds(scores: &[f32], spam: &[bool], markets: &[Market]) -> BTreeMap<Market, f32> {
    let config = FitConfig {
        min_market_ham: 1,
        ..FitConfig::default()
    };
    let (pooled, by_market) = pick_thresholds(scores, spam, markets, &config);
    Market::ALL
        .iter()
        .map(|m| (*m, by_market.get(m).map_or(pooled.tag, |t| t.tag)))
        .collect()
}

/// Dev messages of the corpora, their names, prepared messages and markets.
struct DevSet {
    messages: Vec<DevMessage>,
    names: Vec<String>,
    prepared: Vec<PreparedMessage>,
    markets: Vec<Market>,
    edge: Option<Vec<Option<EdgeInput>>>,
}

/// The train and dev files of the inputs: a folder gives its own (or its corpora's) splits; a
/// `.tsv` file counts as train or dev by its name (`train.tsv`, `dev.tsv`), so no file is ever
/// both trained on and scored.
fn split_inputs(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (files, folders): (Vec<PathBuf>, Vec<PathBuf>) =
        inputs.iter().cloned().partition(|p| p.is_file());
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    if !folders.is_empty() || files.is_empty() {
        train = data::split_files(&folders, Split::Train)?;
        dev = data::split_files(&folders, Split::Dev)?;
    }
    for file in files {
        match file.file_name().and_then(|n| n.to_str()) {
            Some(n) if n == Split::Train.file_name() => train.push(file),
            Some(n) if n == Split::Dev.file_name() => dev.push(file),
            _ => bail!(
                "{}: loco needs to know a file's split; name it train.tsv or dev.tsv inside its corpus folder",
                file.display()
            ),
        }
    }
    Ok((train, dev))
}

pub fn run(args: LocoArgs) -> Result<()> {
    let (train_files, dev_files) = split_inputs(&args.data)?;
    let (messages, names) = load_raw(&dev_files)?;
    let prepared: Vec<PreparedMessage> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| PreparedMessage::new(&format!("dev-sender-{i}"), &m.text, 0, "dev-device"))
        .collect();
    let markets = prepared
        .iter()
        .map(|p| Market::of_text(&p.normalized.text))
        .collect();
    // A fold-trained edge replaces the shipped one, which need not even load.
    let edge = if args.no_edge || args.fold_edge_steps > 0 {
        None
    } else {
        edge_inputs(&prepared)
    };
    let dev = DevSet {
        messages,
        names,
        prepared,
        markets,
        edge,
    };
    let held_out: Vec<usize> = (0..dev.names.len())
        .filter(|&c| {
            let labels: HashSet<bool> = dev
                .messages
                .iter()
                .filter(|m| m.corpus == c)
                .map(|m| m.label != 0)
                .collect();
            match args.hold_out.is_empty() {
                true => labels.len() == 2,
                false => args.hold_out.contains(&dev.names[c]),
            }
        })
        .collect();
    if held_out.is_empty() {
        bail!("no corpus to hold out (none named, or no dev split with both ham and spam)");
    }
    let mut rows = Vec::new();
    if args.in_corpus {
        rows = fold(&args, &train_files, &dev, None, &held_out)?;
        rows.iter().for_each(print_row);
    }
    for &corpus in held_out.iter().filter(|_| !args.in_corpus) {
        let row = fold(&args, &train_files, &dev, Some(corpus), &held_out)?;
        row.iter().for_each(print_row);
        rows.extend(row);
    }
    print_table(&rows, args.in_corpus);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Corpus name of a split file (the folder of `train.tsv` / `dev.tsv`).
fn corpus_name(path: &std::path::Path) -> Result<String> {
    Ok(smsguard_corpus::read_tsv(path)?.name())
}

/// One fold: `held_out` scored by models fitted without it, or with `None` every dev split
/// scored by models fitted on everything (the fusion out of fold). One row per corpus of
/// `report` among the scored ones.
fn fold(
    args: &LocoArgs,
    train_files: &[PathBuf],
    dev: &DevSet,
    held_out: Option<usize>,
    report: &[usize],
) -> Result<Vec<FoldRow>> {
    let started = Instant::now();
    let split = split_fold(args, train_files, dev, held_out)?;
    let (others, held) = (&split.others, &split.held);
    let (other_outcomes, held_outcomes) = fold_outcomes(&split, dev, held_out)?;
    let fold_edge = edge_of_fold(args, &split, dev)?;
    let other = Picked::of(dev, others, fold_edge.as_deref());
    let held_picked = Picked::of(dev, held, fold_edge.as_deref());
    let rows = DevRows {
        outcomes: &other_outcomes,
        edge: other.edge.as_deref(),
        spam: &other.spam,
        sources: &other.sources,
        markets: &other.markets,
    };
    let config = FitConfig::default();
    let fusion = fit_fusion(&rows, &config);
    let verdicts = match held_out {
        Some(_) => (0..held.len())
            .map(|k| {
                let edge = held_picked.edge.as_ref().and_then(|e| e[k]);
                fusion.fuse(&held_outcomes[k], edge, held_picked.markets[k])
            })
            .collect(),
        // Here `held` and `others` are the same rows: out of fold, never in sample.
        None => out_of_fold_verdicts(&fusion, &rows, rows.edge.is_some(), &config),
    };
    let cloud: Vec<(bool, bool, bool)> = verdicts
        .iter()
        .zip(&held_picked.spam)
        .map(|(v, &spam)| (spam, v.action != Action::Allow, v.spam_score >= 0.5))
        .collect();
    // The category policy after fusion, as `CloudScorer::score` applies it: what a user gets.
    let acted: Vec<(bool, bool, bool)> = verdicts
        .into_iter()
        .zip(&held_outcomes)
        .map(|(verdict, outcomes)| policy::apply(verdict, outcomes, &fusion))
        .zip(&held_picked.spam)
        .map(|(v, &spam)| (spam, v.action != Action::Allow, v.action != Action::Allow))
        .collect();
    let edge = edge_figures(&other, &held_picked);
    let svm = if args.no_svm {
        None
    } else {
        Some(svm_fold(
            &split.train,
            dev,
            others,
            held,
            &other.spam,
            &other.markets,
        ))
    };
    let seconds = started.elapsed().as_secs_f64();
    let of_corpus = |items: &[(bool, bool, bool)], corpus: usize| -> FoldFigures {
        let mine: Vec<(bool, bool, bool)> = held
            .iter()
            .zip(items)
            .filter(|(&i, _)| dev.messages[i].corpus == corpus)
            .map(|(_, item)| *item)
            .collect();
        figures(&mine)
    };
    Ok(report
        .iter()
        .filter(|&&c| held_out.is_none_or(|h| h == c))
        .map(|&c| FoldRow {
            held_out: dev.names[c].clone(),
            n: held
                .iter()
                .filter(|&&i| dev.messages[i].corpus == c)
                .count(),
            train_messages: split.train.examples.len(),
            cloud: of_corpus(&cloud, c),
            cloud_policy: of_corpus(&acted, c),
            svm: svm.as_ref().map(|items| of_corpus(items, c)),
            edge: edge.as_ref().map(|items| of_corpus(items, c)),
            edge_source: edge_source(args),
            seconds,
        })
        .collect())
}

/// What one fold trains on and scores: dev rows by index, and the training set.
struct FoldSplit {
    /// The held-out dev rows (every row without a held-out corpus).
    held: Vec<usize>,
    /// Other corpora's dev rows, minus any text of the held-out dev split.
    others: Vec<usize>,
    /// Every other corpus's training split, minus any held-out dev text, subsampled.
    train: Dataset,
}

fn split_fold(
    args: &LocoArgs,
    train_files: &[PathBuf],
    dev: &DevSet,
    held_out: Option<usize>,
) -> Result<FoldSplit> {
    let name = held_out.map_or("every corpus", |c| dev.names[c].as_str());
    let held: Vec<usize> = (0..dev.messages.len())
        .filter(|&i| held_out.is_none_or(|c| dev.messages[i].corpus == c))
        .collect();
    let exclude: HashSet<String> = match held_out {
        Some(_) => held
            .iter()
            .map(|&i| dev.prepared[i].normalized.text.clone())
            .collect(),
        None => HashSet::new(),
    };
    let others: Vec<usize> = (0..dev.messages.len())
        .filter(|&i| held_out.is_none_or(|c| dev.messages[i].corpus != c))
        .filter(|&i| !exclude.contains(&dev.prepared[i].normalized.text))
        .collect();
    let mut other_train = Vec::new();
    for file in train_files {
        if held_out.is_none() || corpus_name(file)? != name {
            other_train.push(file.clone());
        }
    }
    let mut train = data::load_excluding(&other_train, true, exclude)?;
    subsample(&mut train, args.max_train);
    eprintln!(
        "[{name}] {} training messages, {} other dev, {} held-out dev",
        train.examples.len(),
        others.len(),
        held.len()
    );
    Ok(FoldSplit {
        held,
        others,
        train,
    })
}

/// Every scorer's outcome on each of a set of dev rows.
type Outcomes = Vec<Vec<ScorerOutcome>>;

/// The fold's scorers (multiclass and lexical fitted on its training set, lexical calibrated on
/// the other dev rows, the similarity memory seeded with its training spam) run on the other
/// and the held-out dev rows.
fn fold_outcomes(
    split: &FoldSplit,
    dev: &DevSet,
    held_out: Option<usize>,
) -> Result<(Outcomes, Outcomes)> {
    let train = &split.train;
    let subwords_json = train_subwords(train, DEFAULT_SUBWORD_VOCAB, 2)?;
    let subwords = SubwordVocab::from_json(subwords_json.as_bytes())?;
    let multiclass = train_multiclass(train, &TrainConfig::default(), 8000, Some(subwords));
    let calibration: Vec<Calibration<'_>> = split
        .others
        .iter()
        .map(|&i| Calibration {
            normalized: &dev.prepared[i].normalized.text,
            original: &dev.prepared[i].normalized.original,
            spam: dev.messages[i].label != 0,
        })
        .collect();
    let lexical = train_lexical(train, &calibration, &LexicalConfig::default());
    let store_dir = std::env::temp_dir().join(format!(
        "smsguard-loco-similarity-{}-{}",
        std::process::id(),
        held_out.map_or("all".to_owned(), |c| c.to_string())
    ));
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = SimilarityStore::open(&store_dir)?;
    store.seed_from_corpus_spam(
        train
            .examples
            .iter()
            .filter(|e| e.label != 0)
            .map(|e| e.original.as_str()),
    )?;
    let rules = Box::new(StaticRules(RuleSet::builtin()?));
    let scorers = lineup(multiclass, lexical, store, rules);
    let outcomes_in = |set: &[usize]| -> Outcomes {
        set.iter()
            .map(|&i| outcomes_of(&scorers, &dev.prepared[i].context()))
            .collect()
    };
    let outcomes = (outcomes_in(&split.others), outcomes_in(&split.held));
    drop(scorers);
    let _ = std::fs::remove_dir_all(&store_dir);
    Ok(outcomes)
}

/// Labels, corpora, markets and edge verdicts of a set of dev rows.
struct Picked {
    spam: Vec<bool>,
    sources: Vec<usize>,
    markets: Vec<Market>,
    edge: Option<Vec<Option<EdgeInput>>>,
}

impl Picked {
    /// The rows `set` of the dev set, with `edge` verdicts (one per dev row) when there are.
    fn of(dev: &DevSet, set: &[usize], edge: Option<&[Option<EdgeInput>]>) -> Picked {
        Picked {
            spam: set.iter().map(|&i| dev.messages[i].label != 0).collect(),
            sources: set.iter().map(|&i| dev.messages[i].corpus).collect(),
            markets: set.iter().map(|&i| dev.markets[i]).collect(),
            edge: edge.map(|e| set.iter().map(|&i| e[i]).collect()),
        }
    }
}

/// The edge verdicts of the fold on every dev row: the shipped edge's, or (with
/// `--fold-edge-steps`) those of an edge trained on the fold's training set, stopped early on
/// the other corpora's dev rows; `None` with `--no-edge`.
fn edge_of_fold(
    args: &LocoArgs,
    split: &FoldSplit,
    dev: &DevSet,
) -> Result<Option<Vec<Option<EdgeInput>>>> {
    if args.no_edge || args.fold_edge_steps == 0 {
        return Ok(dev.edge.clone());
    }
    let row = |i: usize| DevRow {
        normalized: &dev.prepared[i].normalized.text,
        label: dev.messages[i].label,
        corpus: dev.messages[i].corpus,
    };
    let stop_rows: Vec<DevRow<'_>> = split.others.iter().map(|&i| row(i)).collect();
    let all_rows: Vec<DevRow<'_>> = (0..dev.messages.len()).map(row).collect();
    let recipe = FoldEdgeRecipe {
        max_steps: args.fold_edge_steps,
        seed: 20240617,
    };
    let verdicts = train_and_score(&recipe, &split.train, &dev.names, &stop_rows, &all_rows)?;
    Ok(Some(verdicts))
}

fn edge_source(args: &LocoArgs) -> String {
    match args.fold_edge_steps {
        0 => "shipped".to_owned(),
        n => format!("fold-trained, {n} CNN steps at most"),
    }
}

/// The fold's edge on the held-out rows: (spam, flagged at per-market thresholds picked on the
/// other rows, decided spam by its arg-max); `None` without edge verdicts.
fn edge_figures(other: &Picked, held: &Picked) -> Option<Vec<(bool, bool, bool)>> {
    let (Some(other_edge), Some(held_edge)) = (&other.edge, &held.edge) else {
        return None;
    };
    let score = |e: &Option<EdgeInput>| e.map_or(0.0, |e| e.spam_score);
    let other_scores: Vec<f32> = other_edge.iter().map(score).collect();
    let thresholds = market_thresholds(&other_scores, &other.spam, &other.markets);
    let items = (0..held.spam.len())
        .map(|k| {
            let flagged = score(&held_edge[k]) >= thresholds[&held.markets[k]];
            let decided = held_edge[k].is_some_and(|e| e.label != Label::Ham);
            (held.spam[k], flagged, decided)
        })
        .collect();
    Some(items)
}

/// The pooled raw-text SVM of `baseline --raw` (C 1, no C search) on one fold.
fn svm_fold(
    train: &Dataset,
    dev: &DevSet,
    others: &[usize],
    held: &[usize],
    other_spam: &[bool],
    other_markets: &[Market],
) -> Vec<(bool, bool, bool)> {
    let vectorizer = TfidfVectorizer::fit(
        TextView::Raw,
        train.examples.iter().map(|e| e.original.as_str()),
    );
    let rows: Vec<_> = train
        .examples
        .iter()
        .map(|e| vectorizer.transform(&e.original))
        .collect();
    let spam: Vec<bool> = train.examples.iter().map(|e| e.label != 0).collect();
    let sources: Vec<usize> = train.examples.iter().map(|e| e.source).collect();
    let svm = train_svm(
        &rows,
        &spam,
        &balanced_weights(&spam, &sources, 8000),
        &SvmConfig::default(),
    );
    let margin = |i: usize| svm.score(&vectorizer.transform(&dev.messages[i].text)) as f32;
    let other_scores: Vec<f32> = others.iter().map(|&i| margin(i)).collect();
    let thresholds = market_thresholds(&other_scores, other_spam, other_markets);
    held.iter()
        .map(|&i| {
            let m = margin(i);
            let spam = dev.messages[i].label != 0;
            (spam, m >= thresholds[&dev.markets[i]], m >= 0.0)
        })
        .collect()
}

/// Keeps an even sample of at most `max` examples (every k-th), when `max` > 0.
fn subsample(train: &mut Dataset, max: usize) {
    let n = train.examples.len();
    if max == 0 || n <= max {
        return;
    }
    let examples = std::mem::take(&mut train.examples);
    train.examples = examples
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i * max / n != (i + 1) * max / n)
        .map(|(_, e)| e)
        .collect();
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |x| format!("{:.2}", 100.0 * x))
}

/// Recall and FPR only (the accuracy of an action is not the balanced decision's).
fn recall_cells(f: &FoldFigures) -> String {
    format!("{} | {}", pct(f.spam_recall), pct(f.ham_fpr))
}

fn cells(f: Option<&FoldFigures>) -> String {
    match f {
        Some(f) => format!(
            "{} | {} | {}",
            pct(Some(f.accuracy)),
            pct(f.spam_recall),
            pct(f.ham_fpr)
        ),
        None => "– | – | –".to_owned(),
    }
}

fn print_row(row: &FoldRow) {
    eprintln!(
        "[{}] {:.0} s: cloud {} | with policy {} | svm {} | edge {}",
        row.held_out,
        row.seconds,
        cells(Some(&row.cloud)),
        recall_cells(&row.cloud_policy),
        cells(row.svm.as_ref()),
        cells(row.edge.as_ref())
    );
}

fn print_table(rows: &[FoldRow], in_corpus: bool) {
    if in_corpus {
        println!("Every corpus trained on, every dev split scored (cloud out of fold): accuracy %, spam recall % and ham FPR % at the market's <= 0.5 % threshold (picked on all dev ham)");
    } else {
        println!("Leave one corpus out: accuracy %, spam recall % and ham FPR % at the market's <= 0.5 % threshold (picked on the other corpora's dev ham)");
    }
    println!("| held out | dev n | train n | cloud acc | cloud recall | cloud FPR | + policy recall | + policy FPR | SVM acc | SVM recall | SVM FPR | edge acc | edge recall | edge FPR |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.held_out,
            r.n,
            r.train_messages,
            cells(Some(&r.cloud)),
            recall_cells(&r.cloud_policy),
            cells(r.svm.as_ref()),
            cells(r.edge.as_ref())
        );
    }
    match rows.first().map(|r| r.edge_source.as_str()) {
        Some("shipped") => println!("edge: as shipped, trained on every corpus, the held-out one included; not retrained per fold."),
        Some(source) => println!("edge: {source}, on the fold's training set; it feeds the fold's fusion too."),
        None => {}
    }
    println!("+ policy: the cloud's action after its category policy (what a user gets), which also tags some messages fusion allows.");
}

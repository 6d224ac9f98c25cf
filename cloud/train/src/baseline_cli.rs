//! `smsguard-train baseline`: trains the TF-IDF + linear SVM reference ([`crate::baseline`]) per
//! corpus or pooled, picks `C` on dev and prints binary dev figures (Markdown, optional JSON).
//! `--score` scores any further labelled TSV files with the pooled model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use smsguard_core::Label;

use crate::baseline::{
    balanced_weights, binary_figures, train_svm, BinaryFigures, LinearSvm, SparseRow, SvmConfig,
    TextView, TfidfVectorizer,
};
use crate::data::{self, Split};

#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// Corpus folders or folders of corpora (default: every corpus of the datasets folder):
    /// each corpus's train.tsv trains, the dev.tsv beside it picks C and is scored.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Further labelled `label<TAB>text` files (any path) scored with the pooled model.
    #[arg(long = "score")]
    score: Vec<PathBuf>,
    /// Train one model per corpus (C picked on that corpus's dev.tsv) instead of one pooled
    /// model for all corpora (one C picked on all dev files together).
    #[arg(long)]
    per_corpus: bool,
    /// Compute features from the lower-cased raw text instead of the normalised text.
    #[arg(long)]
    raw: bool,
    /// Candidate values of the SVM's C.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.3, 1.0, 3.0])]
    c: Vec<f64>,
    /// Pooled model: corpora with more training examples weigh as if they had this many.
    #[arg(long, default_value_t = 8000)]
    corpus_cap: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Labelled rows of one file.
struct LabelledFile {
    name: String,
    texts: Vec<String>,
    spam: Vec<bool>,
}

fn read_labelled(path: &Path) -> Result<LabelledFile> {
    let corpus = smsguard_corpus::read_tsv(path)?;
    if !corpus.problems.is_empty() {
        eprintln!(
            "{}: {} malformed lines skipped (see `smsguard-train eval` for their line numbers)",
            path.display(),
            corpus.problems.len()
        );
    }
    let (texts, spam) = corpus
        .records
        .iter()
        .map(|r| (r.text.clone(), r.label != Label::Ham))
        .unzip();
    Ok(LabelledFile {
        name: corpus.name(),
        texts,
        spam,
    })
}

/// The corpora: (train file, dev file) pairs.
fn corpus_pairs(inputs: &[PathBuf]) -> Result<Vec<(LabelledFile, LabelledFile)>> {
    let mut pairs = Vec::new();
    for train in data::split_files(inputs, Split::Train)? {
        let dev = train.with_file_name(Split::Dev.file_name());
        if !dev.is_file() || dev == train {
            bail!(
                "no {} beside {}: give corpus folders",
                Split::Dev.file_name(),
                train.display()
            );
        }
        pairs.push((read_labelled(&train)?, read_labelled(&dev)?));
    }
    Ok(pairs)
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct FigureRow {
    corpus: String,
    model: &'static str,
    c: f64,
    #[serde(flatten)]
    figures: BinaryFigures,
}

pub fn run(args: BaselineArgs) -> Result<()> {
    if args.c.is_empty() || args.c.iter().any(|&c| c.is_nan() || c <= 0.0) {
        bail!("--c needs positive values");
    }
    let view = if args.raw {
        TextView::Raw
    } else {
        TextView::Normalized
    };
    let pairs = corpus_pairs(&args.data)?;
    let rows = if args.per_corpus {
        if !args.score.is_empty() {
            bail!("--score scores with the pooled model; drop --per-corpus");
        }
        per_corpus(&pairs, view, &args.c)
    } else {
        pooled(&pairs, &args, view)?
    };
    print_table(&rows, view);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn per_corpus(
    pairs: &[(LabelledFile, LabelledFile)],
    view: TextView,
    cs: &[f64],
) -> Vec<FigureRow> {
    let mut rows = Vec::new();
    for (train, dev) in pairs {
        let vectorizer = TfidfVectorizer::fit(view, train.texts.iter().map(String::as_str));
        let train_rows = vectorize(&vectorizer, &train.texts);
        let dev_rows = vectorize(&vectorizer, &dev.texts);
        let weights = balanced_weights(&train.spam, &vec![0; train.spam.len()], usize::MAX);
        let (c, svm) = best_c(cs, &train_rows, &train.spam, &weights, |svm| {
            binary_figures(svm, &dev_rows, &dev.spam).accuracy
        });
        rows.push(FigureRow {
            corpus: dev.name.clone(),
            model: "per corpus",
            c,
            figures: binary_figures(&svm, &dev_rows, &dev.spam),
        });
    }
    rows
}

fn pooled(
    pairs: &[(LabelledFile, LabelledFile)],
    args: &BaselineArgs,
    view: TextView,
) -> Result<Vec<FigureRow>> {
    let started = Instant::now();
    let train_texts = pairs
        .iter()
        .flat_map(|(t, _)| t.texts.iter().map(String::as_str));
    let vectorizer = TfidfVectorizer::fit(view, train_texts);
    let mut train_rows = Vec::new();
    let (mut spam, mut sources) = (Vec::new(), Vec::new());
    for (source, (train, _)) in pairs.iter().enumerate() {
        train_rows.extend(vectorize(&vectorizer, &train.texts));
        spam.extend(&train.spam);
        sources.extend(std::iter::repeat_n(source, train.spam.len()));
    }
    let weights = balanced_weights(&spam, &sources, args.corpus_cap);
    let dev: Vec<(&LabelledFile, Vec<SparseRow>)> = pairs
        .iter()
        .map(|(_, d)| (d, vectorize(&vectorizer, &d.texts)))
        .collect();
    let (c, svm) = best_c(&args.c, &train_rows, &spam, &weights, |svm| {
        pooled_accuracy(svm, &dev)
    });
    eprintln!(
        "pooled model on {} training messages, C {c}, {} passes, {:.1} s",
        train_rows.len(),
        svm.passes,
        started.elapsed().as_secs_f64()
    );
    let mut rows: Vec<FigureRow> = dev
        .iter()
        .map(|(file, dev_rows)| FigureRow {
            corpus: file.name.clone(),
            model: "pooled",
            c,
            figures: binary_figures(&svm, dev_rows, &file.spam),
        })
        .collect();
    for path in &args.score {
        let file = read_labelled(path)?;
        rows.push(FigureRow {
            corpus: path.display().to_string(),
            model: "pooled",
            c,
            figures: binary_figures(&svm, &vectorize(&vectorizer, &file.texts), &file.spam),
        });
    }
    Ok(rows)
}

/// Accuracy over all dev files together (correct answers summed over the files).
fn pooled_accuracy(svm: &LinearSvm, dev: &[(&LabelledFile, Vec<SparseRow>)]) -> f64 {
    let (correct, n) = dev
        .iter()
        .fold((0.0, 0usize), |(correct, n), (file, rows)| {
            let figures = binary_figures(svm, rows, &file.spam);
            (
                correct + (figures.accuracy * figures.n as f64).round(),
                n + figures.n,
            )
        });
    if n == 0 {
        0.0
    } else {
        correct / n as f64
    }
}

fn vectorize(vectorizer: &TfidfVectorizer, texts: &[String]) -> Vec<SparseRow> {
    texts.iter().map(|t| vectorizer.transform(t)).collect()
}

/// Trains one SVM per candidate C and keeps the one `dev_accuracy` likes best (the first on a
/// tie, so the smaller C when candidates are ascending).
fn best_c(
    cs: &[f64],
    rows: &[SparseRow],
    spam: &[bool],
    weights: &[f64],
    dev_accuracy: impl Fn(&LinearSvm) -> f64,
) -> (f64, LinearSvm) {
    let mut best: Option<(f64, f64, LinearSvm)> = None;
    for &c in cs {
        let config = SvmConfig {
            c,
            ..SvmConfig::default()
        };
        let svm = train_svm(rows, spam, weights, &config);
        let accuracy = dev_accuracy(&svm);
        if best.as_ref().is_none_or(|(_, a, _)| accuracy > *a) {
            best = Some((c, accuracy, svm));
        }
    }
    let (c, _, svm) = best.expect("at least one C (checked by the caller)");
    (c, svm)
}

fn print_table(rows: &[FigureRow], view: TextView) {
    let pct = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{:.2} %", 100.0 * x));
    println!("TF-IDF char 1-5-grams + linear SVM, features from the {view:?} text");
    println!("| corpus | model | C | dev n | accuracy | spam recall | ham FPR |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.corpus,
            r.model,
            r.c,
            r.figures.n,
            pct(Some(r.figures.accuracy)),
            pct(r.figures.spam_recall),
            pct(r.figures.ham_fpr)
        );
    }
}

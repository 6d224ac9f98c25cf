//! Loading the corpora for the edge model: finds `train.tsv` / `dev.tsv` files (never a test
//! file), normalises every text with the shared pipeline, maps labels onto the edge label set and
//! removes duplicate training texts across corpora.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use smsguard_core::Label;
use smsguard_corpus::CorpusError;

/// Output labels of the edge model, in logit order (`ham` first).
pub const EDGE_LABELS: [&str; 5] = ["ham", "ad", "fraud", "illegal", "spam"];

/// Which split of every corpus to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Dev,
}

impl Split {
    pub fn file_name(self) -> &'static str {
        match self {
            Split::Train => "train.tsv",
            Split::Dev => "dev.tsv",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("{0} is neither a corpus folder, a folder of corpora nor a .tsv file")]
    NotACorpus(PathBuf),
    #[error("refusing to read a test split: {0}")]
    TestSplit(PathBuf),
    #[error("label {0:?} has no edge label")]
    UnmappedLabel(String),
    #[error("no {0} files found")]
    NoFiles(&'static str),
    #[error("reading {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// One normalised, labelled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Output of `smsguard_core::normalize(..).text`.
    pub text: String,
    /// The message as written (the lexical model's raw view reads it).
    pub original: String,
    /// Index into [`EDGE_LABELS`].
    pub label: usize,
    /// Index into [`Dataset::sources`].
    pub source: usize,
}

/// Examples of one split, with the corpus each came from.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub sources: Vec<String>,
    pub examples: Vec<Example>,
    /// Lines the corpus reader could not use (counted, never quoted).
    pub skipped_lines: usize,
    /// Training texts dropped because an earlier corpus already had the same normalised text.
    pub duplicates_removed: usize,
}

impl Dataset {
    /// Number of examples per source, in `sources` order.
    pub fn source_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.sources.len()];
        for e in &self.examples {
            sizes[e.source] += 1;
        }
        sizes
    }

    /// Number of examples per edge label.
    pub fn label_counts(&self) -> [usize; EDGE_LABELS.len()] {
        let mut counts = [0; EDGE_LABELS.len()];
        for e in &self.examples {
            counts[e.label] += 1;
        }
        counts
    }
}

/// The edge label index of a taxonomy label.
pub fn edge_label(label: Label) -> Result<usize, DataError> {
    let name = label.to_string();
    EDGE_LABELS
        .iter()
        .position(|l| *l == name)
        .ok_or(DataError::UnmappedLabel(name))
}

/// The `split` files named by `inputs`: each is a `.tsv` file, a corpus folder (holding
/// `train.tsv`) or a folder of corpora. With no inputs, every corpus of the datasets folder.
pub fn split_files(inputs: &[PathBuf], split: Split) -> Result<Vec<PathBuf>, DataError> {
    let default;
    let inputs = if inputs.is_empty() {
        default = vec![smsguard_corpus::datasets_dir()?];
        &default
    } else {
        inputs
    };
    let mut files = Vec::new();
    for input in inputs {
        files.extend(files_of(input, split)?);
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(DataError::NoFiles(split.file_name()));
    }
    Ok(files)
}

fn files_of(input: &Path, split: Split) -> Result<Vec<PathBuf>, DataError> {
    if input.is_file() {
        return match input.file_name().and_then(|n| n.to_str()) {
            Some(n) if n.contains("test") => Err(DataError::TestSplit(input.to_path_buf())),
            _ => Ok(vec![input.to_path_buf()]),
        };
    }
    let own = input.join(split.file_name());
    if own.is_file() {
        return Ok(vec![own]);
    }
    if input.is_dir() {
        let stem = split.file_name().trim_end_matches(".tsv");
        return Ok(smsguard_corpus::split_files(input, stem)?);
    }
    Err(DataError::NotACorpus(input.to_path_buf()))
}

/// Reads and normalises the files. With `dedupe`, a normalised text seen before (in any file) is
/// dropped, so overlapping corpora do not count a message twice.
pub fn load(files: &[PathBuf], dedupe: bool) -> Result<Dataset, DataError> {
    load_excluding(files, dedupe, HashSet::new())
}

/// [`load`], also dropping every message whose normalised text is in `exclude` (a held-out
/// corpus's texts that overlapping corpora also hold).
pub fn load_excluding(
    files: &[PathBuf],
    dedupe: bool,
    exclude: HashSet<String>,
) -> Result<Dataset, DataError> {
    let mut data = Dataset::default();
    let excluded = exclude.len();
    let mut seen = exclude;
    for file in files {
        let corpus = smsguard_corpus::read_tsv(file)?;
        let source = data.sources.len();
        data.sources.push(corpus.name());
        data.skipped_lines += corpus.problems.len();
        for record in corpus.records {
            let text = smsguard_core::normalize(&record.text).text;
            if excluded > 0 && seen.contains(&text) {
                data.duplicates_removed += 1;
                continue;
            }
            if dedupe && !seen.insert(text.clone()) {
                data.duplicates_removed += 1;
                continue;
            }
            data.examples.push(Example {
                text,
                original: record.text,
                label: edge_label(record.label)?,
                source,
            });
        }
    }
    Ok(data)
}

/// The name of the training source that [`add_handwritten`] adds.
pub const HANDWRITTEN: &str = "handwritten";

/// The command-line options of [`add_handwritten`], shared by `train` and `train-cloud`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HandwrittenArgs {
    /// Hand-written labelled `.tsv` files, or folders of them, added to training as one more
    /// source (`datasets/fixtures/typology` etc.; never a corpus, never the sealed blind set).
    #[arg(long)]
    pub handwritten: Vec<PathBuf>,
    /// Times every hand-written row is repeated in training.
    #[arg(long, default_value_t = 10)]
    pub handwritten_repeat: usize,
}

impl HandwrittenArgs {
    /// [`add_handwritten`] with these options, saying on stderr what it added.
    pub fn add_to(&self, train: &mut Dataset) -> Result<(), DataError> {
        let added = add_handwritten(train, &self.handwritten, self.handwritten_repeat)?;
        if added > 0 {
            eprintln!(
                "hand-written: {added} rows, each {} times",
                self.handwritten_repeat
            );
        }
        Ok(())
    }
}

/// Adds hand-written labelled sets (our fixtures: the fraud typology, the challenge sets, the
/// obfuscations; never a corpus, never the sealed blind set) to `train` as one more source, every
/// row `repeat` times, so that about 600 rows weigh like a corpus among 66,000. Why: the corpora
/// hold almost no conversational telecom fraud, and a few hundred messages written from the
/// types' descriptions teach its vocabulary (README, "Hand-written rows in training").
/// `paths` are `.tsv` files or folders whose `.tsv` files are read (not their subfolders).
/// Returns the number of distinct rows added.
pub fn add_handwritten(
    train: &mut Dataset,
    paths: &[PathBuf],
    repeat: usize,
) -> Result<usize, DataError> {
    if paths.is_empty() || repeat == 0 {
        return Ok(0);
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut tsvs: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| DataError::Io(path.clone(), e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
                .collect();
            tsvs.sort();
            files.extend(tsvs);
        } else {
            files.push(path.clone());
        }
    }
    let rows = load(&files, true)?;
    let source = train.sources.len();
    train.sources.push(HANDWRITTEN.to_owned());
    train.skipped_lines += rows.skipped_lines;
    for _ in 0..repeat {
        train.examples.extend(rows.examples.iter().map(|e| Example {
            source,
            ..e.clone()
        }));
    }
    Ok(rows.examples.len())
}

/// Per-example training weights: a sqrt-inverse-frequency class weight, so rare classes (and the
/// ham/spam balance) count without letting a few examples dominate; mean weight is 1.
pub fn class_weights(data: &Dataset) -> [f32; EDGE_LABELS.len()] {
    let counts = data.label_counts();
    let total: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&n| n > 0).count().max(1);
    let mut weights = [0f32; EDGE_LABELS.len()];
    for (w, &n) in weights.iter_mut().zip(&counts) {
        if n > 0 {
            *w = (total as f32 / (present as f32 * n as f32)).sqrt();
        }
    }
    let mean: f32 = counts
        .iter()
        .zip(&weights)
        .map(|(&n, &w)| n as f32 * w)
        .sum::<f32>()
        / total.max(1) as f32;
    weights.map(|w| if mean > 0.0 { w / mean } else { w })
}

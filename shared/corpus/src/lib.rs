//! Reader for the `label<TAB>text` corpora and the locator of the datasets folder.
//!
//! Nothing is skipped silently: every line that cannot become a [`Record`] is kept as a
//! [`Problem`] naming `file:line` and the reason, so a caller can print or count them. Problems
//! never quote the message text (privacy): they give its length.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use smsguard_core::Label;

/// Environment variable that overrides where the corpora are looked for.
pub const DATASETS_ENV: &str = "SMSGUARD_DATASETS";

/// Where the corpora live relative to the workspace root when no override is given.
pub const DEFAULT_DATASETS_DIR: &str = "../shared/datasets";

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read corpus {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "datasets folder not found: looked at ${DATASETS_ENV} ({env}) and {default}; \
         set {DATASETS_ENV} to the folder holding <name>/train.tsv"
    )]
    DatasetsNotFound { env: String, default: PathBuf },
}

/// One usable line of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in the file.
    pub line: usize,
    /// The label as written in the file (e.g. `fraud:phishing_bank`).
    pub fine_label: String,
    /// The fine label mapped onto the taxonomy.
    pub label: Label,
    pub text: String,
}

/// Why a line was not turned into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    InvalidUtf8,
    MissingTab,
    EmptyText,
    UnknownLabel(String),
}

/// A line that was not turned into a record, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub kind: ProblemKind,
    /// Byte length of the offending line (never its content).
    pub len: usize,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, line, len) = (self.path.display(), self.line, self.len);
        match &self.kind {
            ProblemKind::InvalidUtf8 => write!(f, "{path}:{line}: invalid UTF-8 ({len} bytes)"),
            ProblemKind::MissingTab => write!(
                f,
                "{path}:{line}: no TAB between label and text ({len} bytes)"
            ),
            ProblemKind::EmptyText => write!(f, "{path}:{line}: empty message text"),
            ProblemKind::UnknownLabel(label) => {
                write!(
                    f,
                    "{path}:{line}: unknown label {label:?} (not in datasets/label-map.tsv)"
                )
            }
        }
    }
}

/// A parsed corpus file.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub path: PathBuf,
    pub records: Vec<Record>,
    pub problems: Vec<Problem>,
}

impl Corpus {
    /// Short name of the corpus: the folder holding the file (`en_uci_sms_spam_collection`), or
    /// the file stem for a file outside the datasets layout.
    pub fn name(&self) -> String {
        let parent = self.path.parent().and_then(|p| p.file_name());
        let stem = self.path.file_stem();
        match (parent, stem) {
            (Some(dir), Some(stem)) if stem == "train" || stem == "dev" || stem == "test" => {
                dir.to_string_lossy().into_owned()
            }
            (_, Some(stem)) => stem.to_string_lossy().into_owned(),
            _ => self.path.display().to_string(),
        }
    }
}

/// Reads a `label<TAB>text` file. I/O failure is an error; bad lines become [`Problem`]s.
pub fn read_tsv(path: impl AsRef<Path>) -> Result<Corpus, CorpusError> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|source| CorpusError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_tsv(path, &bytes))
}

/// Parses the bytes of a `label<TAB>text` file; `path` is only used to name problems.
pub fn parse_tsv(path: &Path, bytes: &[u8]) -> Corpus {
    let mut corpus = Corpus {
        path: path.to_path_buf(),
        records: Vec::new(),
        problems: Vec::new(),
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return corpus;
    }
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match parse_line(raw) {
            Ok((fine_label, label, text)) => corpus.records.push(Record {
                line: index + 1,
                fine_label,
                label,
                text,
            }),
            Err(kind) => corpus.problems.push(Problem {
                path: path.to_path_buf(),
                line: index + 1,
                kind,
                len: raw.len(),
            }),
        }
    }
    corpus
}

fn parse_line(raw: &[u8]) -> Result<(String, Label, String), ProblemKind> {
    let line = std::str::from_utf8(raw).map_err(|_| ProblemKind::InvalidUtf8)?;
    let (fine_label, text) = line.split_once('\t').ok_or(ProblemKind::MissingTab)?;
    let fine_label = fine_label.trim();
    let label = Label::from_fine(fine_label)
        .ok_or_else(|| ProblemKind::UnknownLabel(fine_label.to_string()))?;
    if text.trim().is_empty() {
        return Err(ProblemKind::EmptyText);
    }
    Ok((fine_label.to_string(), label, text.to_string()))
}

/// Finds the datasets folder: `$SMSGUARD_DATASETS` if set, else `../shared/datasets` relative to
/// the workspace root. The error names both places.
pub fn datasets_dir() -> Result<PathBuf, CorpusError> {
    let workspace_default = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(DEFAULT_DATASETS_DIR);
    let env = std::env::var(DATASETS_ENV).ok();
    locate_datasets(env.as_deref(), &workspace_default)
}

fn locate_datasets(env: Option<&str>, default: &Path) -> Result<PathBuf, CorpusError> {
    let candidate = match env {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => default.to_path_buf(),
    };
    if candidate.is_dir() {
        return Ok(candidate.canonicalize().unwrap_or(candidate));
    }
    Err(CorpusError::DatasetsNotFound {
        env: env.unwrap_or("unset").to_string(),
        default: default.to_path_buf(),
    })
}

/// The `<split>.tsv` files of every corpus in `dir` (e.g. all `train.tsv`), sorted by name.
pub fn split_files(dir: &Path, split: &str) -> Result<Vec<PathBuf>, CorpusError> {
    let entries = fs::read_dir(dir).map_err(|source| CorpusError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(format!("{split}.tsv")))
        .filter(|file| file.is_file())
        .collect();
    files.sort();
    Ok(files)
}

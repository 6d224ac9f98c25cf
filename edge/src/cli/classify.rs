//! `smsguard classify`: offline verdicts from the local model.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use smsguard_core::Label;
use smsguard_edge::{EdgeModel, Prediction};

use super::lines::{self, Line};

/// Where a verdict came from; only the local model for now (cache and cloud come later).
const SOURCE_LOCAL: &str = "local";

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// One message to classify. Without it, messages are read one per line from --file or stdin.
    pub text: Option<String>,
    /// Read messages from this file instead of stdin.
    #[arg(long, conflicts_with = "text")]
    pub file: Option<PathBuf>,
    /// Input lines are `label<TAB>text`; prints the accuracy at the end (on stderr with --json).
    #[arg(long, conflicts_with = "text")]
    pub tsv: bool,
    /// Write one JSON object per message: line, label, score, action, source (and truth with --tsv).
    #[arg(long)]
    pub json: bool,
    /// ONNX model file to use instead of the embedded int8 model (needs --vocab).
    #[arg(long, requires = "vocab")]
    pub model: Option<PathBuf>,
    /// Vocabulary JSON of --model.
    #[arg(long, requires = "model")]
    pub vocab: Option<PathBuf>,
}

/// One verdict line of the output; never contains the message.
#[derive(Debug, Serialize)]
struct Verdict<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    label: &'a str,
    score: f32,
    action: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    truth: Option<&'a str>,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let model = load_model(args.model.as_deref(), args.vocab.as_deref())?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let printer = Printer {
        model: &model,
        json: args.json,
    };
    if let Some(text) = &args.text {
        let prediction = model
            .classify(text)
            .context("cannot classify the message")?;
        printer.print(&mut out, None, &prediction, None)?;
    } else if args.tsv {
        classify_tsv(&printer, &mut out, args.file.as_deref())?;
    } else {
        classify_lines(&printer, &mut out, lines::open(args.file.as_deref())?)?;
    }
    out.flush()?;
    Ok(())
}

/// The embedded model, or the given model + vocabulary files.
pub fn load_model(model: Option<&Path>, vocab: Option<&Path>) -> Result<EdgeModel> {
    match (model, vocab) {
        (Some(model), Some(vocab)) => {
            let bytes =
                std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
            let vocab_json = std::fs::read_to_string(vocab)
                .with_context(|| format!("cannot read {}", vocab.display()))?;
            EdgeModel::from_bytes(&bytes, &vocab_json)
                .with_context(|| format!("cannot load {}", model.display()))
        }
        _ => EdgeModel::embedded().context("cannot load the embedded model"),
    }
}

struct Printer<'m> {
    model: &'m EdgeModel,
    json: bool,
}

impl Printer<'_> {
    fn print(
        &self,
        out: &mut impl Write,
        line: Option<usize>,
        p: &Prediction,
        truth: Option<Label>,
    ) -> Result<()> {
        let verdict = Verdict {
            line,
            label: p.label.as_str(),
            score: p.spam_score,
            action: p.action.as_str(),
            source: SOURCE_LOCAL,
            truth: truth.map(Label::as_str),
        };
        if self.json {
            serde_json::to_writer(&mut *out, &verdict)?;
            writeln!(out)?;
        } else {
            let prefix = line.map(|n| format!("line {n}: ")).unwrap_or_default();
            let truth = verdict
                .truth
                .map(|t| format!(" (truth {t})"))
                .unwrap_or_default();
            writeln!(
                out,
                "{prefix}{} score={:.4} action={} source={}{truth}",
                verdict.label, verdict.score, verdict.action, verdict.source
            )?;
        }
        Ok(())
    }
}

fn classify_lines(printer: &Printer, out: &mut impl Write, reader: impl BufRead) -> Result<()> {
    let mut skipped = 0;
    lines::for_each_line(reader, |Line { number, text }| {
        let result = text
            .map_err(|e| e.describe())
            .and_then(|text| printer.model.classify(&text).map_err(|e| e.to_string()));
        match result {
            Ok(prediction) => printer.print(out, Some(number), &prediction, None),
            Err(reason) => {
                skipped += 1;
                report_skipped(out, printer.json, number, &reason)
            }
        }
    })?;
    report_skip_count(skipped);
    Ok(())
}

fn classify_tsv(printer: &Printer, out: &mut impl Write, file: Option<&Path>) -> Result<()> {
    let bytes = lines::read_all(file)?;
    let name = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("<stdin>"));
    let corpus = smsguard_corpus::parse_tsv(&name, &bytes);
    for problem in &corpus.problems {
        eprintln!("skipped {problem}");
    }
    let mut tally = Tally::default();
    for record in &corpus.records {
        match printer.model.classify(&record.text) {
            Ok(prediction) => {
                tally.add(record.label, prediction.label);
                printer.print(out, Some(record.line), &prediction, Some(record.label))?;
            }
            Err(e) => report_skipped(out, printer.json, record.line, &e.to_string())?,
        }
    }
    let summary = tally.summary(corpus.problems.len());
    if printer.json {
        eprintln!("{summary}");
    } else {
        writeln!(out, "{summary}")?;
    }
    Ok(())
}

/// Accuracy over the labelled lines: exact label and spam-vs-ham.
#[derive(Debug, Default)]
struct Tally {
    n: usize,
    exact: usize,
    binary: usize,
}

impl Tally {
    fn add(&mut self, truth: Label, predicted: Label) {
        self.n += 1;
        self.exact += usize::from(truth == predicted);
        self.binary += usize::from((truth == Label::Ham) == (predicted == Label::Ham));
    }

    fn summary(&self, problems: usize) -> String {
        let ratio = |k: usize| {
            if self.n == 0 {
                0.0
            } else {
                k as f64 / self.n as f64
            }
        };
        format!(
            "accuracy {:.4} (spam-vs-ham {:.4}) over {} messages; {problems} lines skipped",
            ratio(self.exact),
            ratio(self.binary),
            self.n
        )
    }
}

/// An unusable line: a message on stderr (number and reason only) and, with --json, an error
/// object on stdout so output lines still match input lines.
fn report_skipped(out: &mut impl Write, json: bool, line: usize, reason: &str) -> Result<()> {
    eprintln!("line {line}: skipped: {reason}");
    if json {
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({ "line": line, "error": reason }),
        )?;
        writeln!(out)?;
    }
    Ok(())
}

fn report_skip_count(skipped: usize) {
    if skipped > 0 {
        eprintln!("{skipped} lines skipped");
    }
}

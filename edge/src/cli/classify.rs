//! `smsguard classify`: verdicts from the engine (rules, cache, local model and, with --cloud,
//! the fused cloud verdict), each recorded in the store.

use std::cell::Cell;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;
use smsguard_core::Label;
use smsguard_edge::engine::{now_ms, Decision, Engine, ModelSource};

use super::engine_args::EngineArgs;
use super::lines::{self, Line};

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
    /// Write one JSON object per message: line, id, label, score, action, source, state,
    /// degraded, queued (when queued), truth (with --tsv) and reason.
    #[arg(long)]
    pub json: bool,
    /// Sender address of the messages (phone number, short code or name).
    #[arg(long, default_value = "")]
    pub sender: String,
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
    /// Message id in the store (0 when it was not recorded).
    id: u64,
    label: &'a str,
    score: f32,
    action: &'a str,
    source: &'a str,
    state: &'a str,
    degraded: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    queued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    truth: Option<&'a str>,
    /// Why, in words (thresholds, cache, rules, cloud); never quotes the message or the sender.
    reason: &'a str,
}

pub fn run(args: ClassifyArgs, engine_args: &EngineArgs) -> Result<()> {
    let engine = engine_args.open(model_source(args.model.as_deref(), args.vocab.as_deref()))?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let printer = Printer {
        engine: &engine,
        sender: &args.sender,
        json: args.json,
        unrecorded: Unrecorded::default(),
    };
    if let Some(text) = &args.text {
        let decision = printer.classify(text);
        printer.print(&mut out, None, &decision, None)?;
    } else if args.tsv {
        classify_tsv(&printer, &mut out, args.file.as_deref())?;
    } else {
        classify_lines(&printer, &mut out, lines::open(args.file.as_deref())?)?;
    }
    out.flush()?;
    printer.unrecorded.check()
}

/// Decisions the store could not record (their id is 0): each was delivered, and the run
/// fails at the end so that a script sees the store's trouble.
#[derive(Debug, Default)]
struct Unrecorded {
    classified: Cell<usize>,
    unrecorded: Cell<usize>,
}

impl Unrecorded {
    fn note(&self, decision: &Decision) {
        self.classified.set(self.classified.get() + 1);
        if decision.message_id == 0 {
            self.unrecorded.set(self.unrecorded.get() + 1);
        }
    }

    fn check(&self) -> Result<()> {
        let (unrecorded, classified) = (self.unrecorded.get(), self.classified.get());
        if unrecorded > 0 {
            bail!(
                "the store could not record {unrecorded} of {classified} messages (see their \
                 reasons); they were delivered, tagged where the verdict was quarantine or block"
            );
        }
        Ok(())
    }
}

/// The embedded model, or the given model + vocabulary files.
fn model_source(model: Option<&Path>, vocab: Option<&Path>) -> ModelSource {
    match (model, vocab) {
        (Some(model), Some(vocab)) => ModelSource::Files {
            model: model.to_path_buf(),
            vocab: vocab.to_path_buf(),
        },
        _ => ModelSource::Embedded,
    }
}

struct Printer<'e> {
    engine: &'e Engine,
    sender: &'e str,
    json: bool,
    unrecorded: Unrecorded,
}

impl Printer<'_> {
    fn classify(&self, text: &str) -> Decision {
        let decision = self.engine.classify(self.sender, text, now_ms());
        self.unrecorded.note(&decision);
        decision
    }

    fn print(
        &self,
        out: &mut impl Write,
        line: Option<usize>,
        d: &Decision,
        truth: Option<Label>,
    ) -> Result<()> {
        let verdict = Verdict {
            line,
            id: d.message_id,
            label: d.label.as_str(),
            score: d.spam_score,
            action: d.action.as_str(),
            source: d.source.as_str(),
            state: d.state.as_str(),
            degraded: d.degraded,
            queued: d.queued,
            truth: truth.map(Label::as_str),
            reason: &d.reason,
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
            let flags = match (verdict.degraded, verdict.queued) {
                (_, true) => " (degraded, queued for re-check)",
                (true, false) => " (degraded)",
                _ => "",
            };
            writeln!(
                out,
                "{prefix}{} score={:.4} action={} source={} id={}{flags}{truth}: {}",
                verdict.label,
                verdict.score,
                verdict.action,
                verdict.source,
                verdict.id,
                verdict.reason
            )?;
        }
        Ok(())
    }
}

fn classify_lines(printer: &Printer, out: &mut impl Write, reader: impl BufRead) -> Result<()> {
    let mut skipped = 0;
    lines::for_each_line(reader, |Line { number, text }| {
        match text.map_err(|e| e.describe()) {
            Ok(text) => printer.print(out, Some(number), &printer.classify(&text), None),
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
        let decision = printer.classify(&record.text);
        tally.add(record.label, decision.label);
        printer.print(out, Some(record.line), &decision, Some(record.label))?;
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

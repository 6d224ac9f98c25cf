//! `smsguard normalize`: the shared normalisation pipeline on the command line, one JSON object
//! per input line.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use smsguard_core::{normalize, MinHasher, Normalized};

use super::lines::{self, Line};

#[derive(Debug, clap::Args)]
pub struct NormalizeArgs {
    /// Read messages from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// The JSON object written for one message.
#[derive(Debug, Serialize)]
struct NormalizedLine<'a> {
    line: usize,
    normalized: &'a str,
    /// Transform name -> how many times it fired.
    transforms: BTreeMap<String, u32>,
    /// Hex id of the MinHash fingerprint of the normalised text.
    fingerprint: String,
    masked: serde_json::Value,
}

pub fn run(args: NormalizeArgs) -> Result<()> {
    let hasher = MinHasher::default();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut skipped = 0;
    lines::for_each_line(
        lines::open(args.file.as_deref())?,
        |Line { number, text }| match text {
            Ok(text) => write_line(&mut out, number, &normalize(&text), &hasher),
            Err(error) => {
                skipped += 1;
                let reason = error.describe();
                eprintln!("line {number}: skipped: {reason}");
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({ "line": number, "error": reason }),
                )?;
                writeln!(out)?;
                Ok(())
            }
        },
    )?;
    out.flush()?;
    if skipped > 0 {
        eprintln!("{skipped} lines skipped");
    }
    Ok(())
}

fn write_line(
    out: &mut impl Write,
    number: usize,
    normalized: &Normalized,
    hasher: &MinHasher,
) -> Result<()> {
    let record = NormalizedLine {
        line: number,
        normalized: &normalized.text,
        transforms: normalized
            .transforms
            .iter()
            .map(|(t, &count)| (t.as_str().to_string(), count))
            .collect(),
        fingerprint: hasher.fingerprint(&normalized.text).to_hex(),
        masked: serde_json::to_value(&normalized.masked)?,
    };
    serde_json::to_writer(&mut *out, &record)?;
    writeln!(out)?;
    Ok(())
}

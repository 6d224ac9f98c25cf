//! Private mode's accuracy beside the edge alone (issue 18): every message of the given TSV
//! files is judged offline by the shipped edge model (alone: without the knowledge base, which
//! tags the same way in both modes), then by the private-mode rule
//! ([`fuse_private`]) with the class scores of the private model (`cloud/models/private.json`)
//! computed in plaintext. Under encryption the phone decrypts exactly these integers (the
//! exactness tests), so the figures are private mode's, without the cost of BFV per message.
//!
//! `cargo run --release -p smsguard-edge --example private_accuracy -- ../shared/datasets/*/dev.tsv`

use smsguard_core::{normalize, Label};
use smsguard_edge::engine::{fuse_private, PrivateScores};
use smsguard_edge::model::{Action, EdgeModel};
use smsguard_edge::store::{Source, StoredVerdict};
use smsguard_private::PrivateModel;

const PRIVATE_MODEL: &str = include_str!("../../cloud/models/private.json");

/// Binary outcome counts: a message is flagged when it is not allowed.
#[derive(Default)]
struct Counts {
    ham: u32,
    ham_flagged: u32,
    spam: u32,
    spam_flagged: u32,
}

impl Counts {
    fn add(&mut self, spam: bool, flagged: bool) {
        if spam {
            self.spam += 1;
            self.spam_flagged += u32::from(flagged);
        } else {
            self.ham += 1;
            self.ham_flagged += u32::from(flagged);
        }
    }

    fn row(&self) -> String {
        let n = f64::from(self.ham + self.spam).max(1.0);
        let correct = f64::from(self.spam_flagged + self.ham - self.ham_flagged);
        let pct = |a: u32, b: u32| 100.0 * f64::from(a) / f64::from(b.max(1));
        format!(
            "{:.2} | {:.2} | {:.2}",
            100.0 * correct / n,
            pct(self.spam_flagged, self.spam),
            pct(self.ham_flagged, self.ham)
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = EdgeModel::embedded()?;
    let private: PrivateModel = serde_json::from_str(PRIVATE_MODEL)?;
    private.validate()?;
    let labels = private
        .labels
        .iter()
        .map(|l| l.parse::<Label>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "private.json names an unknown label")?;
    println!("| corpus | n | edge acc | edge recall | edge FPR | private acc | private recall | private FPR |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for path in std::env::args().skip(1) {
        let corpus = smsguard_corpus::read_tsv(&path)?;
        let (mut edge, mut fused) = (Counts::default(), Counts::default());
        for record in &corpus.records {
            let normalized = normalize(&record.text);
            let prediction = model.classify_in_market(&normalized, None)?;
            let local = StoredVerdict {
                label: prediction.label,
                spam_score: prediction.spam_score,
                action: prediction.action,
                source: Source::Local,
            };
            let scores = PrivateScores {
                model_version: String::new(),
                labels: labels.clone(),
                scores: private.plain_scores(&private.shape.features(&normalized.text))?,
            };
            let verdict = fuse_private(local, &scores);
            let spam = record.label != Label::Ham;
            edge.add(spam, local.action != Action::Allow);
            fused.add(spam, verdict.action != Action::Allow);
        }
        println!(
            "| {} | {} | {} | {} |",
            corpus.name(),
            corpus.records.len(),
            edge.row(),
            fused.row()
        );
    }
    Ok(())
}

//! Private mode's accuracy beside the edge alone (issue 18): every message of the given TSV
//! files is judged offline by the shipped edge model (alone: without the knowledge base, which
//! tags the same way in both modes), then by the private-mode fusion ([`fuse_private`]) with
//! the class scores of the private model (`cloud/models/private.json`) computed in plaintext
//! and the head the cloud publishes with it (`cloud/models/private_head.json`). Under encryption the phone decrypts exactly these integers (the
//! exactness tests), so the figures are private mode's, without the cost of BFV per message.
//!
//! `cargo run --release -p smsguard-edge --example private_accuracy -- ../shared/datasets/*/dev.tsv`
//! (a `.txt` argument instead explains each of its lines: local action, private arg-max, head
//! probability, private-mode action).

use smsguard_core::{normalize, Label, Market};
use smsguard_edge::engine::{fuse_private, PrivateScores};
use smsguard_edge::model::{Action, EdgeModel};
use smsguard_edge::store::{Source, StoredVerdict};
use smsguard_private::{PrivateHead, PrivateModel};

const PRIVATE_MODEL: &str = include_str!("../../cloud/models/private.json");
const PRIVATE_HEAD: &str = include_str!("../../cloud/models/private_head.json");

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

/// The models one message is judged by.
struct Judges {
    edge: EdgeModel,
    private: PrivateModel,
    labels: Vec<Label>,
    head: PrivateHead,
}

/// One message's local verdict, its private-mode verdict and the scores between.
struct Judged {
    local: StoredVerdict,
    fused: StoredVerdict,
    scores: PrivateScores,
    probability: f64,
}

impl Judges {
    fn judge(&self, text: &str) -> Result<Judged, Box<dyn std::error::Error>> {
        let normalized = normalize(text);
        let prediction = self.edge.classify_in_market(&normalized, None)?;
        let local = StoredVerdict {
            label: prediction.label,
            spam_score: prediction.spam_score,
            action: prediction.action,
            source: Source::Local,
        };
        let scores = PrivateScores {
            model_version: self.head.model_version.clone(),
            head_version: self.head.version.clone(),
            labels: self.labels.clone(),
            scores: self
                .private
                .plain_scores(&self.private.shape.features(&normalized.text))?,
        };
        let market = Market::of_text(&normalized.text);
        let (fused, decision) = fuse_private(local, &scores, &self.head, market);
        Ok(Judged {
            local,
            fused,
            scores,
            probability: decision.map_or(0.0, |d| d.probability),
        })
    }
}

fn judges() -> Result<Judges, Box<dyn std::error::Error>> {
    let private: PrivateModel = serde_json::from_str(PRIVATE_MODEL)?;
    private.validate()?;
    let head: PrivateHead = serde_json::from_str(PRIVATE_HEAD)?;
    head.validate()?;
    let labels = private
        .labels
        .iter()
        .map(|l| l.parse::<Label>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "private.json names an unknown label")?;
    Ok(Judges {
        edge: EdgeModel::embedded()?,
        private,
        labels,
        head,
    })
}

/// A `.txt` file of hand-written messages, one a line: each line's number, local action,
/// private arg-max, head probability and private-mode action (no text is printed).
fn explain(judges: &Judges, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    for (i, line) in std::fs::read_to_string(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let j = judges.judge(line)?;
        println!(
            "{path}:{}: local {} | private arg-max {} | p {:.4} | private mode {}",
            i + 1,
            j.local.action.as_str(),
            j.scores.label().as_str(),
            j.probability,
            j.fused.action.as_str()
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let judges = judges()?;
    println!(
        "private model {}, head {}",
        judges.head.model_version, judges.head.version
    );
    println!("| corpus | n | edge acc | edge recall | edge FPR | private acc | private recall | private FPR |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for path in std::env::args().skip(1) {
        if path.ends_with(".txt") {
            explain(&judges, &path)?;
            continue;
        }
        let corpus = smsguard_corpus::read_tsv(&path)?;
        let (mut edge, mut fused) = (Counts::default(), Counts::default());
        for record in &corpus.records {
            let j = judges.judge(&record.text)?;
            let spam = record.label != Label::Ham;
            edge.add(spam, j.local.action != Action::Allow);
            fused.add(spam, j.fused.action != Action::Allow);
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

//! Ordinary transactional messages (OTPs, bank and delivery notices, carrier messages) are not
//! quarantined by the fused cloud scorer before anyone reports anything, while the fixture's
//! spam written in the same styles stays caught (tagged or worse). Before the allow-listed
//! templates in `rules/default.toml`, a Google code, a card notice and a data-allowance notice
//! were quarantined or blocked (multiclass 0.94-0.998).

use smsguard_core::Label;
use smsguard_scoring::{Action, CloudScorer, EmbeddedOptions};

/// `label<TAB>sender<TAB>text` rows of `datasets/fixtures/transactional.tsv`.
fn fixtures() -> Vec<(Label, String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/fixtures/transactional.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let label = fields.next().unwrap().parse().unwrap();
            let sender = fields.next().unwrap().to_owned();
            (label, sender, fields.next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn transactional_messages_are_not_quarantined_and_lookalike_spam_is() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = embedded_cloud(dir.path());
    let rows = fixtures();
    let (mut wrong, mut missed) = (Vec::new(), Vec::new());
    for (i, (label, sender, text)) in rows.iter().enumerate() {
        let v = cloud.score_text(sender, text, 1_700_000_000_000, "d", None);
        eprintln!("{i:2} {label} {:?} {:.3}", v.action, v.spam_score);
        let line = format!("row {i} ({label}): {:?} {:.3}", v.action, v.spam_score);
        if *label == Label::Ham && v.action >= Action::Quarantine {
            wrong.push(line);
        } else if *label != Label::Ham && v.action < Action::Tag {
            missed.push(line);
        }
    }
    // Since TAG sits at 0.5 % of the market's dev ham, the English bank-lock smishing row scores
    // under the en TAG on the models alone; the knowledge base's account-lock type (fraud) lifts
    // it to a tag through the category policy.
    assert!(missed.is_empty(), "{missed:#?}");
    let ham = rows.iter().filter(|r| r.0 == Label::Ham).count();
    assert!(
        ham >= 20 && rows.len() - ham >= 5,
        "{ham} ham of {}",
        rows.len()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A messaging app's bare login code ("Telegram code 89610") was tagged `fraud` by fusion
/// (0.956); the operator's `allow-service-code` template lets it through.
#[test]
fn a_service_s_bare_code_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = embedded_cloud(dir.path());
    let code = cloud.score_text(
        "Telegram",
        "Telegram code 89610",
        1_700_000_000_000,
        "d",
        None,
    );
    assert_eq!(code.action, Action::Allow, "{:.3}", code.spam_score);
    let reasons: Vec<&str> = code
        .contributions
        .iter()
        .map(|c| c.reason.as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("allow-service-code")),
        "{reasons:?}"
    );
}

/// The shipped cloud models in `dir`, without the similarity memory's corpus seed.
fn embedded_cloud(dir: &std::path::Path) -> CloudScorer {
    let options = EmbeddedOptions {
        seed_from_corpora: false,
        ..Default::default()
    };
    CloudScorer::embedded_with(dir, &options).unwrap()
}

//! How many messages of labelled corpus files a forced-allow rule of the built-in rules lets
//! through, per label: the price of the allow-listed templates in `rules/default.toml`.
//! `cargo run -p smsguard-scoring --example allow_rule_hits -- datasets/*/dev.tsv`
//! (`SHOW_SPAM=1` also prints the normalised text of each allowed non-ham message).

use std::collections::BTreeMap;

use smsguard_core::Label;
use smsguard_scoring::{ForcedAction, PreparedMessage, RuleSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = RuleSet::builtin()?;
    let show_spam = std::env::var_os("SHOW_SPAM").is_some();
    for path in std::env::args().skip(1) {
        let corpus = smsguard_corpus::read_tsv(std::path::Path::new(&path))?;
        // (is ham) -> (messages, allowed)
        let mut counts: BTreeMap<bool, (usize, usize)> = BTreeMap::new();
        let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
        for record in &corpus.records {
            let message = PreparedMessage::new("+10000000000", &record.text, 0, "d");
            let outcome = rules.evaluate(&message.context());
            let allowed = outcome.forced_action == Some(ForcedAction::Allow);
            let ham = record.label == Label::Ham;
            let count = counts.entry(ham).or_default();
            count.0 += 1;
            if !allowed {
                continue;
            }
            count.1 += 1;
            for id in outcome.matched.iter().filter(|id| id.starts_with("allow-")) {
                *by_rule
                    .entry(format!("{id} ({})", record.label))
                    .or_default() += 1;
            }
            if show_spam && !ham {
                println!("  allowed {}: {}", record.label, message.normalized.text);
            }
        }
        let (ham, spam) = (counts.get(&true), counts.get(&false));
        let show =
            |c: Option<&(usize, usize)>| c.map_or("0/0".into(), |c| format!("{}/{}", c.1, c.0));
        println!(
            "{path}: ham allowed {}, spam allowed {} {by_rule:?}",
            show(ham),
            show(spam)
        );
    }
    Ok(())
}

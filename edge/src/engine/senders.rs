//! Sender identity for the allow/deny lists and the synced sender rules.

use regex::{Regex, RegexBuilder};
pub use smsguard_core::sender::canonical_sender;

use crate::store::SenderRuleEntry;

/// Compiled size bound of one synced pattern (they come from the network).
const RULE_SIZE_LIMIT: usize = 64 * 1024;

/// Synced sender rules, compiled. Deny rules are checked after allow rules: an allow rule wins.
#[derive(Debug, Default)]
pub struct SenderRules {
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

impl SenderRules {
    /// Compiles `entries` (anchored); returns the rules and how many patterns were unusable.
    pub fn compile(entries: &[SenderRuleEntry]) -> (SenderRules, usize) {
        let mut rules = SenderRules::default();
        let mut unusable = 0;
        for entry in entries {
            match compile_anchored(&entry.pattern) {
                Some(regex) if entry.allow => rules.allow.push(regex),
                Some(regex) => rules.deny.push(regex),
                None => unusable += 1,
            }
        }
        (rules, unusable)
    }

    /// `Some(true)` for an allowed sender, `Some(false)` for a denied one. Patterns see the
    /// core's canonical sender, as the cloud's sender rules do.
    pub fn verdict(&self, sender: &str) -> Option<bool> {
        let sender = &canonical_sender(sender);
        if self.allow.iter().any(|r| r.is_match(sender)) {
            return Some(true);
        }
        self.deny
            .iter()
            .any(|r| r.is_match(sender))
            .then_some(false)
    }

    pub fn len(&self) -> usize {
        self.allow.len() + self.deny.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// True when `pattern` compiles as an anchored sender rule.
pub fn is_valid_rule(pattern: &str) -> bool {
    compile_anchored(pattern).is_some()
}

fn compile_anchored(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(RULE_SIZE_LIMIT)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_anchored_and_allow_wins() {
        let entries = [
            SenderRuleEntry {
                pattern: "70.*".into(),
                allow: false,
            },
            SenderRuleEntry {
                pattern: "7000".into(),
                allow: true,
            },
            SenderRuleEntry {
                pattern: "(".into(),
                allow: false,
            },
        ];
        let (rules, unusable) = SenderRules::compile(&entries);
        assert_eq!((rules.len(), unusable), (2, 1));
        assert_eq!(rules.verdict("7012"), Some(false));
        assert_eq!(rules.verdict("7000"), Some(true));
        // Anchored: a match inside a longer sender does not count.
        assert_eq!(rules.verdict("x7012"), None);
    }

    #[test]
    fn synced_rules_see_the_senders_canonical_form_as_the_cloud_does() {
        // The cloud's rules match "PayPal" as "paypal" and a phone number by its national
        // number; a rule it syncs must match the same senders here (it matched on trim() only).
        let entries = [
            SenderRuleEntry {
                pattern: "paypal".into(),
                allow: false,
            },
            SenderRuleEntry {
                pattern: "7700900123".into(),
                allow: true,
            },
        ];
        let (rules, _) = SenderRules::compile(&entries);
        for sender in ["PayPal", " PAYPAL ", "Pay-Pal"] {
            assert_eq!(rules.verdict(sender), Some(false), "{sender:?}");
        }
        for sender in ["+44 7700 900123", "07700-900-123"] {
            assert_eq!(rules.verdict(sender), Some(true), "{sender:?}");
        }
    }
}

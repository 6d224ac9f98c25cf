//! Sender identity for the allow/deny lists and the synced sender rules.

use regex::{Regex, RegexBuilder};

use crate::store::SenderRuleEntry;

/// Digits kept of a phone number: the national significant number, so "+44 7700 900123" and
/// "07700 900123" are the same sender.
const PHONE_DIGITS: usize = 10;
/// Compiled size bound of one synced pattern (they come from the network).
const RULE_SIZE_LIMIT: usize = 64 * 1024;

/// The list key of a sender: for phone numbers the last 10 digits (`PHONE_DIGITS`); for short
/// codes and alphanumeric ids the lower-cased text without white space.
pub fn canonical_sender(sender: &str) -> String {
    let trimmed = sender.trim();
    let phone_like = trimmed.chars().any(|c| c.is_ascii_digit())
        && trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
    if phone_like {
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let skip = digits.len().saturating_sub(PHONE_DIGITS);
        return digits[skip..].to_string();
    }
    trimmed
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

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

    /// `Some(true)` for an allowed sender, `Some(false)` for a denied one.
    pub fn verdict(&self, sender: &str) -> Option<bool> {
        let sender = sender.trim();
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
    fn phone_numbers_compare_by_national_number() {
        let table = [
            ("+44 7700 900123", "7700900123"),
            ("07700900123", "7700900123"),
            ("(0)7700-900-123", "7700900123"),
            ("80088", "80088"),
            (" BankUK ", "bankuk"),
            ("Bank UK", "bankuk"),
            ("", ""),
        ];
        for (sender, expected) in table {
            assert_eq!(canonical_sender(sender), expected, "{sender:?}");
        }
    }

    #[test]
    fn rules_are_anchored_and_allow_wins() {
        let entries = [
            SenderRuleEntry {
                pattern: "\\+4470.*".into(),
                allow: false,
            },
            SenderRuleEntry {
                pattern: "\\+447000".into(),
                allow: true,
            },
            SenderRuleEntry {
                pattern: "(".into(),
                allow: false,
            },
        ];
        let (rules, unusable) = SenderRules::compile(&entries);
        assert_eq!((rules.len(), unusable), (2, 1));
        assert_eq!(rules.verdict("+447012"), Some(false));
        assert_eq!(rules.verdict("+447000"), Some(true));
        // Anchored: a match inside a longer sender does not count.
        assert_eq!(rules.verdict("x+447012"), None);
    }
}

//! Fraud knowledge that runs offline: each rule is the script of one fraud type (an impersonated
//! police officer plus "money laundering", a "new number" plus a transfer, ...) as cue sets that
//! must all appear in the normalised message. The models learned the corpora; these rules carry
//! fraud types the corpora barely show. The built-in table is `data/fraud-kb.tsv`.
//!
//! One Aho-Corasick pass over the message finds every cue; a rule fires when each of its cue sets
//! had a hit.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::normalize::normalize;
use crate::taxonomy::Label;

const BUILTIN: &str = include_str!("../data/fraud-kb.tsv");
/// Cue sets of one rule are tracked as bits of a `u32`.
const MAX_CUE_SETS: usize = 32;

/// A rule that fired on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnowledgeHit<'kb> {
    /// The rule's name (a fraud type), e.g. `impersonated_authority`.
    pub rule: &'kb str,
    pub label: Label,
}

/// A rule table that does not parse; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fraud knowledge line {line}: {problem}")]
pub struct KnowledgeError {
    pub line: usize,
    pub problem: String,
}

#[derive(Debug)]
struct Rule {
    name: String,
    label: Label,
    /// Bits of every cue set: a rule fires when its hits equal this mask.
    all_sets: u32,
}

/// A compiled fraud knowledge base.
#[derive(Debug)]
pub struct FraudKnowledge {
    rules: Vec<Rule>,
    automaton: AhoCorasick,
    /// For pattern `i`: the rule and the bit of the cue set it belongs to.
    pattern_owner: Vec<(usize, u32)>,
}

impl FraudKnowledge {
    /// The compiled-in table (built once; the table is tested, so it always parses).
    pub fn builtin() -> &'static FraudKnowledge {
        static KB: OnceLock<FraudKnowledge> = OnceLock::new();
        KB.get_or_init(|| Self::parse(BUILTIN).expect("the built-in fraud knowledge parses"))
    }

    /// Parses a table: `#` comments, then `name<TAB>label<TAB>cue set<TAB>...`, each cue set
    /// `term|term|...`. Terms are normalised like messages.
    pub fn parse(table: &str) -> Result<Self, KnowledgeError> {
        let mut rules = Vec::new();
        let (mut patterns, mut pattern_owner) = (Vec::new(), Vec::new());
        for (index, line) in table.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |problem: &str| KnowledgeError {
                line: line_no,
                problem: problem.to_string(),
            };
            let mut fields = line.split('\t');
            let name = fields.next().filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| error("no rule name"))?;
            let label: Label = fields
                .next()
                .and_then(|l| l.parse().ok())
                .filter(|l: &Label| l.is_spam())
                .ok_or_else(|| error("the label must be a spam label (fraud, ad, ...)"))?;
            let cue_sets: Vec<&str> = fields.collect();
            if cue_sets.is_empty() || cue_sets.len() > MAX_CUE_SETS {
                return Err(error("a rule needs 1 to 32 cue sets"));
            }
            let rule_index = rules.len();
            for (set, terms) in cue_sets.iter().enumerate() {
                let bit = 1u32 << set;
                let before = patterns.len();
                for term in terms
                    .split('|')
                    .map(normalize_term)
                    .filter(|t| !t.is_empty())
                {
                    patterns.push(term);
                    pattern_owner.push((rule_index, bit));
                }
                if patterns.len() == before {
                    return Err(error("an empty cue set"));
                }
            }
            rules.push(Rule {
                name: name.to_string(),
                label,
                all_sets: u32::MAX >> (MAX_CUE_SETS - cue_sets.len()),
            });
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| KnowledgeError {
                line: 0,
                problem: e.to_string(),
            })?;
        Ok(Self {
            rules,
            automaton,
            pattern_owner,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Heap bytes of the compiled matcher (the table's size cost on the phone, with the text).
    pub fn memory_usage(&self) -> usize {
        self.automaton.memory_usage()
            + self.pattern_owner.len() * std::mem::size_of::<(usize, u32)>()
    }

    /// Bytes of the built-in table's text compiled into the library.
    pub fn builtin_table_bytes() -> usize {
        BUILTIN.len()
    }

    /// The first rule (in table order) whose every cue set occurs in `normalized_text`.
    pub fn first_hit(&self, normalized_text: &str) -> Option<KnowledgeHit<'_>> {
        let mut hits = vec![0u32; self.rules.len()];
        for found in self.automaton.find_overlapping_iter(normalized_text) {
            let (rule, bit) = self.pattern_owner[found.pattern().as_usize()];
            hits[rule] |= bit;
        }
        self.rules
            .iter()
            .zip(&hits)
            .find(|(rule, &hit)| hit == rule.all_sets)
            .map(|(rule, _)| KnowledgeHit {
                rule: &rule.name,
                label: rule.label,
            })
    }
}

/// A term as it appears in a normalised message. Placeholders such as `<num>` are kept as
/// written (normalising them would mask them again).
fn normalize_term(term: &str) -> String {
    let term = term.trim();
    if term.starts_with('<') && term.ends_with('>') {
        return term.to_string();
    }
    normalize(term).text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str) -> Option<&'static str> {
        FraudKnowledge::builtin()
            .first_hit(&normalize(text).text)
            .map(|h| h.rule)
    }

    #[test]
    fn builtin_table_parses() {
        assert!(FraudKnowledge::builtin().rule_count() >= 20);
    }

    #[test]
    fn every_cue_set_must_match() {
        let kb = FraudKnowledge::parse("r\tfraud\t甲|乙\t丙\n").unwrap();
        assert_eq!(kb.first_hit("甲丙").map(|h| h.rule), Some("r"));
        assert_eq!(
            kb.first_hit("乙。。丙").map(|h| h.label),
            Some(Label::Fraud)
        );
        assert_eq!(kb.first_hit("甲乙"), None);
        assert_eq!(kb.first_hit(""), None);
    }

    #[test]
    fn fraud_scripts_fire_and_everyday_messages_do_not() {
        // Hand-written, in the style of the public anti-fraud typology (not from any corpus).
        let fraud = [
            (
                "我是公安局民警，你的银行卡涉嫌洗钱，请配合调查",
                "impersonated_authority",
            ),
            ("请将资金转入安全账户", "safe_account"),
            (
                "我换了新号码，急用钱，先转五千到这个账户",
                "new_number_acquaintance",
            ),
            (
                "客服为您办理双倍退款，请添加QQ 123456",
                "refund_by_customer_service",
            ),
            ("您的學生貸賬戶未註銷，請儘快註銷", "student_loan_cancel"),
        ];
        for (text, rule) in fraud {
            assert_eq!(hit(text), Some(rule), "{text}");
        }
        let everyday = [
            "【招商银行】您的验证码为482913，切勿告知他人",
            "张总，明天上午十点的会议改到三楼会议室",
            "妈，我到学校了，周末再给你打电话",
            "【顺丰速运】您的快件已由前台代收",
            "Your package has been delivered.",
        ];
        for text in everyday {
            assert_eq!(hit(text), None, "{text}");
        }
    }

    #[test]
    fn malformed_tables_name_the_line() {
        for (table, line) in [
            ("# c\nname\tham\t甲\n", 2),
            ("name\tfraud\n", 1),
            ("name\tfraud\t甲\t|\n", 1),
            ("\tfraud\t甲\n", 1),
        ] {
            let err = FraudKnowledge::parse(table).unwrap_err();
            assert_eq!(err.line, line, "{table:?}: {err}");
        }
    }
}

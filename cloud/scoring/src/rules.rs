//! The `rules` scorer: the knowledge base of `smsguard-core` (the fraud and spam typology the
//! edge also carries), plus the operator's own entries, URL-host deny lists and sender
//! allow/deny patterns, some with forced actions; hot-reloaded from a TOML file.
//!
//! # File format (see `rules/default.toml`, compiled in as [`DEFAULT_RULES_TOML`])
//! ```toml
//! version = 2
//! knowledge = "knowledge.toml"   # optional: a knowledge table beside this file instead of the
//!                                # built-in one ("builtin", the default, or "none")
//! [hosts]
//! deny_file = "spam-hosts.txt"   # one host per line, relative to the rules file
//! deny = ["evil.example"]        # more denied hosts
//! allow = ["bank.example"]       # never denied (allow beats deny)
//! deny_weight = 0.7
//! shorteners = ["bit.ly"]        # hosts that hide the target: weak evidence
//! shortener_weight = 0.2
//! [[entry]]                      # the operator's own knowledge entries, in the knowledge
//! id = "allow-otp-template"      # base's format (`smsguard_core::knowledge`): cues, pattern,
//! type = "transactional"         # hosts, examples and counter-examples (checked on load)
//! label = "ham"
//! weight = 0.0
//! action = "allow"               # optional: allow | quarantine | block
//! description = "..."
//! pattern = '...'
//! examples = ["..."]
//! [[sender]]                     # regex over the canonical sender (smsguard_core::sender)
//! id = "cn-service-short-code"
//! pattern = '^95\d{3}$'
//! action = "allow"
//! ```
//! Version 1 files (`[[keyword]]`, `[[regex]]`) are refused with a message saying so: their
//! rules are knowledge entries now.
//!
//! # Score and explanation
//! Per type, the heaviest entry that fired; across types, noisy-or: `1 - Π(1 - w)` (two
//! entries of one type are one piece of evidence). The label is that of the heaviest labelled
//! hit; forced actions combine by [`ForcedAction::most_restrictive`]. A text template's allow
//! (an entry with `action = "allow"`) holds only when no harmful entry and no fraud signal fires
//! on the same text: a scam wearing a card notice's words ("your card ending 4471 is blocked")
//! that spells its call-back number out must not be let through by the template. A sender's
//! allow rule is the operator's word about the sender and stands. The reason names every
//! entry and every type that fired (`rules matched: ...; types: impersonate_authority (fraud)
//! 0.60, ...`), and [`ModelScore::hits`] carries them for the cloud's policy.
//!
//! # Hot reload
//! [`RulesHandle`] swaps the whole [`RuleSet`] when the rules file or its knowledge table
//! changes; a file that fails to load (syntax, validation, or an entry that disagrees with its
//! own examples) leaves the old rules active and the error is returned and kept.

mod compile;
mod reload;

use std::collections::HashSet;
use std::fmt::Write as _;

use regex::RegexSet;
use smsguard_core::knowledge::KnowledgeBase;
use smsguard_core::Label;

use crate::{ForcedAction, MessageContext, ModelScore, RuleHit};

pub use reload::{RulesHandle, RulesScorer, StaticRules};

const NAME: &str = "rules";

/// The shipped default rules.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules/default.toml");
/// The shipped host deny list, named `spam-hosts.txt` by the default rules.
pub const DEFAULT_SPAM_HOSTS: &str = include_str!("../rules/spam-hosts.txt");
const DEFAULT_SPAM_HOSTS_NAME: &str = "spam-hosts.txt";

/// Errors of loading rules. Every message names the source and line; none quotes message text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {message}")]
    Read {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{source_name}:{line}: {message}")]
    Syntax {
        source_name: String,
        line: usize,
        message: String,
    },
    #[error("{source_name}:{line}: rule `{id}`: {message}")]
    Invalid {
        source_name: String,
        line: usize,
        id: String,
        message: String,
    },
    /// A knowledge entry (of the table or of the rules file) that does not load or disagrees
    /// with its own examples.
    #[error(transparent)]
    Knowledge(#[from] smsguard_core::knowledge::KnowledgeError),
    #[error("{source_name}: cannot read {what} {file}: {message}")]
    File {
        source_name: String,
        what: &'static str,
        file: String,
        message: String,
    },
    #[error("the rules are unavailable (a writer panicked)")]
    Poisoned,
}

/// What a matching host or sender rule contributes.
#[derive(Debug, Clone, PartialEq)]
struct Effect {
    id: String,
    kind: &'static str,
    weight: f32,
    label: Option<Label>,
    action: Option<ForcedAction>,
}

/// A compiled, validated rule set. Immutable; [`RulesHandle`] swaps whole sets.
#[derive(Debug)]
pub struct RuleSet {
    source_name: String,
    knowledge: KnowledgeBase,
    /// The knowledge table's file, when it is one beside the rules file (watched for reload).
    knowledge_path: Option<std::path::PathBuf>,
    /// The knowledge table alone, as `SyncCache` sends it to phones (none with `knowledge =
    /// "none"`).
    phone_table: Option<smsguard_core::knowledge::TableText>,
    sender_set: RegexSet,
    sender_effects: Vec<Effect>,
    deny_hosts: HashSet<String>,
    allow_hosts: HashSet<String>,
    shorteners: HashSet<String>,
    host_deny: Effect,
    shortener: Effect,
}

/// The outcome of evaluating a rule set on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesOutcome {
    pub score: f32,
    pub label: Option<Label>,
    pub forced_action: Option<ForcedAction>,
    /// Ids of the matching entries and rules (`host-deny` and `url-shortener` for the host
    /// lists).
    pub matched: Vec<String>,
    /// Every hit with its type, in match order.
    pub hits: Vec<RuleHit>,
}

impl RuleSet {
    /// The compiled-in default rules, host list and knowledge base (whose examples the tests
    /// check, so they are not checked again here).
    pub fn builtin() -> Result<Self, RulesError> {
        compile::compile(
            DEFAULT_RULES_TOML,
            "default.toml",
            None,
            false,
            |file| match file {
                DEFAULT_SPAM_HOSTS_NAME => Ok(DEFAULT_SPAM_HOSTS.to_owned()),
                _ => Err(
                    "only the built-in spam-hosts.txt is available to the built-in rules"
                        .to_owned(),
                ),
            },
        )
    }

    /// Loads a rules file; `deny_file` and `knowledge` are resolved relative to its directory.
    pub fn load(path: &std::path::Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let dir = path.parent().map(std::path::Path::to_path_buf);
        let dir = dir.unwrap_or_default();
        compile::compile(
            &text,
            &path.display().to_string(),
            Some(&dir),
            true,
            |file| std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string()),
        )
    }

    /// Parses and validates rules from `text` (checking every knowledge entry against its
    /// examples); `source_name` names it in errors and `read_file` provides the files it names
    /// (`deny_file`, `knowledge`).
    pub fn parse(
        text: &str,
        source_name: &str,
        read_file: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Self, RulesError> {
        compile::compile(text, source_name, None, true, read_file)
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The knowledge base in force (the table's entries, then the rules file's own).
    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.knowledge
    }

    /// The knowledge table phones receive through `SyncCache`: the table the rules file names
    /// (the built-in one by default), without the rules file's own entries.
    pub fn phone_table(&self) -> Option<&smsguard_core::knowledge::TableText> {
        self.phone_table.as_ref()
    }

    pub(crate) fn knowledge_path(&self) -> Option<&std::path::Path> {
        self.knowledge_path.as_deref()
    }

    /// Number of knowledge entries and sender rules.
    pub fn rule_count(&self) -> usize {
        self.knowledge.entries().len() + self.sender_effects.len()
    }

    /// Evaluates every rule on one message.
    pub fn evaluate(&self, msg: &MessageContext<'_>) -> RulesOutcome {
        let mut hits: Vec<(RuleHit, Option<ForcedAction>)> = self
            .knowledge
            .hits(msg.normalized)
            .into_iter()
            .map(|entry| {
                let hit = RuleHit {
                    id: entry.id.clone(),
                    kind: entry.kind.clone(),
                    label: entry.label,
                    weight: entry.weight,
                    harmful: entry.is_harmful(),
                };
                (hit, entry.action.and_then(forced_action))
            })
            .collect();
        withdraw_template_allows_beside_fraud_evidence(&mut hits);
        let sender = normalize_sender(msg.sender);
        let mut effects: Vec<&Effect> = self
            .sender_set
            .matches(&sender)
            .into_iter()
            .map(|i| &self.sender_effects[i])
            .collect();
        let hosts: Vec<&str> = msg
            .normalized
            .link_hosts()
            .filter(|host| !in_domain_set(host, &self.allow_hosts))
            .collect();
        if hosts.iter().any(|h| in_domain_set(h, &self.deny_hosts)) {
            effects.push(&self.host_deny);
        }
        if hosts.iter().any(|h| in_domain_set(h, &self.shorteners)) {
            effects.push(&self.shortener);
        }
        hits.extend(effects.into_iter().map(|effect| {
            let hit = RuleHit {
                id: effect.id.clone(),
                kind: effect.kind.to_owned(),
                label: effect.label,
                weight: effect.weight,
                harmful: matches!(effect.label, Some(Label::Fraud | Label::Illegal))
                    && effect.action != Some(ForcedAction::Allow),
            };
            (hit, effect.action)
        }));
        combine(hits)
    }
}

/// Drops the forced allow of the text templates that fired when a harmful entry or a fraud
/// signal fired beside them (see the module's "Score and explanation").
fn withdraw_template_allows_beside_fraud_evidence(hits: &mut [(RuleHit, Option<ForcedAction>)]) {
    let fraud_evidence = hits.iter().any(|(hit, _)| {
        hit.harmful || smsguard_core::knowledge::is_signal(hit.label, hit.weight, &hit.kind)
    });
    if fraud_evidence {
        for (_, action) in hits.iter_mut() {
            if *action == Some(ForcedAction::Allow) {
                *action = None;
            }
        }
    }
}

/// A knowledge entry's action as the cloud forces it (`tag` is refused when the table loads).
fn forced_action(action: smsguard_core::Action) -> Option<ForcedAction> {
    match action {
        smsguard_core::Action::Allow => Some(ForcedAction::Allow),
        smsguard_core::Action::Quarantine => Some(ForcedAction::Quarantine),
        smsguard_core::Action::Block => Some(ForcedAction::Block),
        smsguard_core::Action::Tag => None,
    }
}

fn combine(hits: Vec<(RuleHit, Option<ForcedAction>)>) -> RulesOutcome {
    // The heaviest hit per type, then noisy-or across types.
    let mut per_type: Vec<(&str, f32)> = Vec::new();
    for (hit, _) in &hits {
        match per_type.iter_mut().find(|(kind, _)| *kind == hit.kind) {
            Some((_, weight)) => *weight = weight.max(hit.weight),
            None => per_type.push((&hit.kind, hit.weight)),
        }
    }
    let keep = per_type.iter().map(|(_, w)| 1.0 - w).product::<f32>();
    let label = hits
        .iter()
        .filter(|(h, _)| h.label.is_some())
        .max_by(|(a, _), (b, _)| a.weight.total_cmp(&b.weight))
        .and_then(|(h, _)| h.label);
    let forced_action = hits.iter().fold(None, |acc, (_, action)| {
        ForcedAction::most_restrictive(acc, *action)
    });
    RulesOutcome {
        score: crate::clamp_unit(1.0 - keep),
        label,
        forced_action,
        matched: hits.iter().map(|(h, _)| h.id.clone()).collect(),
        hits: hits.into_iter().map(|(h, _)| h).collect(),
    }
}

/// The scorer's explanation: the ids that matched, then each type with its label and weight.
fn reason(outcome: &RulesOutcome) -> String {
    if outcome.matched.is_empty() {
        return "no rule matched".to_owned();
    }
    let mut reason = format!("rules matched: {}; types:", outcome.matched.join(", "));
    let mut seen: Vec<&str> = Vec::new();
    for hit in &outcome.hits {
        if seen.contains(&hit.kind.as_str()) {
            continue;
        }
        seen.push(&hit.kind);
        let weight = outcome
            .hits
            .iter()
            .filter(|h| h.kind == hit.kind)
            .map(|h| h.weight)
            .fold(0.0, f32::max);
        let sep = if seen.len() == 1 { " " } else { ", " };
        let _ = match hit.label {
            Some(label) => write!(reason, "{sep}{} ({label}) {weight:.2}", hit.kind),
            None => write!(reason, "{sep}{} {weight:.2}", hit.kind),
        };
    }
    reason
}

pub(crate) fn outcome_score(outcome: RulesOutcome) -> ModelScore {
    let reason = reason(&outcome);
    ModelScore::new(NAME, outcome.score, reason)
        .with_label(outcome.label)
        .with_forced_action(outcome.forced_action)
        .with_hits(outcome.hits)
}

/// True when `host` or one of its parent domains is in `set`.
fn in_domain_set(host: &str, set: &HashSet<String>) -> bool {
    let mut rest = host;
    loop {
        if set.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

/// Sender as rules see it: the core's one canonical form (phone numbers by their national
/// number; other ids lower-cased without spaces, dashes, dots and brackets), as on the phone.
pub fn normalize_sender(sender: &str) -> String {
    smsguard_core::sender::canonical_sender(sender)
}

/// Hosts of a host-list file: one a line, `#` comments, blank lines ignored.
pub fn parse_host_list(list: &str) -> impl Iterator<Item = String> + '_ {
    list.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(compile::clean_host)
}

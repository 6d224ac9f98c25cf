//! Weighted rules from a TOML file: regexes and keywords over the normalised text, URL-host deny
//! lists and sender allow/deny patterns, some with forced actions.
//!
//! # File format (see `rules/default.toml`, compiled in as [`DEFAULT_RULES_TOML`])
//! ```toml
//! version = 1
//! [hosts]
//! deny_file = "spam-hosts.txt"   # one host per line, relative to the rules file
//! deny = ["evil.example"]        # more denied hosts
//! allow = ["bank.example"]       # never denied (allow beats deny)
//! deny_weight = 0.7
//! shorteners = ["bit.ly"]        # hosts that hide the target: weak evidence
//! shortener_weight = 0.2
//! [[regex]]                      # pattern over the normalised text
//! id = "prize-claim"
//! pattern = 'claim.{0,20}prize'
//! weight = 0.5
//! label = "fraud"                # optional
//! action = "quarantine"          # optional: allow | quarantine | block
//! [[keyword]]                    # any of the words, on the normalised text (Aho-Corasick)
//! id = "zh-add-wechat"
//! words = ["加微信"]
//! weight = 0.4
//! [[sender]]                     # regex over the canonical sender (smsguard_core::sender)
//! id = "cn-service-short-code"
//! pattern = '^95\d{3}$'
//! action = "allow"
//! ```
//! Patterns and keywords see the normalised text: lower case, Simplified Chinese, half-width,
//! `<url>` `<email>` `<phone>` `<num>` placeholders. Keywords are normalised when loaded, so they
//! may be written in any form; an ASCII keyword matches only at ASCII word boundaries.
//!
//! # Score
//! Noisy-or of the matching rules' weights: `1 - Π(1 - w)`; the label is that of the heaviest
//! matching rule with a label; forced actions combine by [`ForcedAction::most_restrictive`].
//!
//! # Hot reload
//! [`RulesHandle`] owns the current [`RuleSet`] behind an `Arc` that is swapped atomically when the
//! file's modification time or length changes; a file that fails to load leaves the old rules
//! active and the error is returned (and kept in [`RulesHandle::last_error`]).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use aho_corasick::AhoCorasick;
use regex::RegexSet;
use serde::Deserialize;
use smsguard_core::{Label, MaskKind};
use toml::Spanned;

use crate::{ForcedAction, MessageContext, ModelScore, Scorer, ScoringError};

const NAME: &str = "rules";

/// The shipped default rules.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules/default.toml");
/// The shipped host deny list, named `spam-hosts.txt` by the default rules.
pub const DEFAULT_SPAM_HOSTS: &str = include_str!("../rules/spam-hosts.txt");
const DEFAULT_SPAM_HOSTS_NAME: &str = "spam-hosts.txt";
/// Largest compiled size of one regex, to keep hostile rule files from eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Errors of loading rules. Every message names the source and line; none quotes message text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {message}")]
    Read { path: PathBuf, message: String },
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
    #[error("{source_name}: cannot read host list {file}: {message}")]
    HostList {
        source_name: String,
        file: String,
        message: String,
    },
    #[error("the rules are unavailable (a writer panicked)")]
    Poisoned,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    version: Spanned<u32>,
    #[serde(default)]
    hosts: HostsSection,
    #[serde(default)]
    regex: Vec<RegexRuleDef>,
    #[serde(default)]
    keyword: Vec<KeywordRuleDef>,
    #[serde(default)]
    sender: Vec<SenderRuleDef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsSection {
    deny_file: Option<Spanned<String>>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
    deny_weight: Option<Spanned<f32>>,
    deny_label: Option<Label>,
    deny_action: Option<ForcedAction>,
    #[serde(default)]
    shorteners: Vec<String>,
    shortener_weight: Option<Spanned<f32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegexRuleDef {
    id: Spanned<String>,
    pattern: String,
    #[serde(default)]
    weight: f32,
    label: Option<Label>,
    action: Option<ForcedAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeywordRuleDef {
    id: Spanned<String>,
    words: Vec<String>,
    #[serde(default)]
    weight: f32,
    label: Option<Label>,
    action: Option<ForcedAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SenderRuleDef {
    id: Spanned<String>,
    pattern: String,
    #[serde(default)]
    weight: f32,
    label: Option<Label>,
    action: Option<ForcedAction>,
}

/// What a matching rule contributes.
#[derive(Debug, Clone, PartialEq)]
struct Effect {
    id: String,
    weight: f32,
    label: Option<Label>,
    action: Option<ForcedAction>,
}

/// A compiled, validated rule set. Immutable; [`RulesHandle`] swaps whole sets.
#[derive(Debug)]
pub struct RuleSet {
    source_name: String,
    regex_set: RegexSet,
    regex_effects: Vec<Effect>,
    keywords: Option<AhoCorasick>,
    /// Per Aho-Corasick pattern: index into `keyword_effects` and whether it needs ASCII word
    /// boundaries.
    keyword_patterns: Vec<(usize, bool)>,
    keyword_effects: Vec<Effect>,
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
    /// Ids of the matching rules (`host-deny` and `url-shortener` for the host lists).
    pub matched: Vec<String>,
}

impl RuleSet {
    /// The compiled-in default rules and host list.
    pub fn builtin() -> Result<Self, RulesError> {
        Self::parse(DEFAULT_RULES_TOML, "default.toml", |file| {
            if file == DEFAULT_SPAM_HOSTS_NAME {
                Ok(DEFAULT_SPAM_HOSTS.to_owned())
            } else {
                Err(
                    "only the built-in spam-hosts.txt is available to the built-in rules"
                        .to_owned(),
                )
            }
        })
    }

    /// Loads a rules file; `deny_file` is resolved relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), |file| {
            std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string())
        })
    }

    /// Parses and validates rules from `text`; `source_name` names it in errors and
    /// `read_host_file` provides the contents of `deny_file`.
    pub fn parse(
        text: &str,
        source_name: &str,
        read_host_file: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Syntax {
            source_name: source_name.to_owned(),
            line: e.span().map_or(0, |span| line_of(text, span.start)),
            message: e.message().trim().to_owned(),
        })?;
        Compiler {
            text,
            source_name,
            ids: HashMap::new(),
        }
        .compile(file, read_host_file)
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Number of regex, keyword and sender rules.
    pub fn rule_count(&self) -> usize {
        self.regex_effects.len() + self.keyword_effects.len() + self.sender_effects.len()
    }

    /// Evaluates every rule on one message.
    pub fn evaluate(&self, msg: &MessageContext<'_>) -> RulesOutcome {
        let text = msg.normalized.text.as_str();
        let mut hits: Vec<&Effect> = self
            .regex_set
            .matches(text)
            .into_iter()
            .map(|i| &self.regex_effects[i])
            .collect();
        hits.extend(self.keyword_hits(text));
        let sender = normalize_sender(msg.sender);
        hits.extend(
            self.sender_set
                .matches(&sender)
                .into_iter()
                .map(|i| &self.sender_effects[i]),
        );
        let hosts: Vec<&str> = msg
            .normalized
            .masked
            .iter()
            .filter(|m| m.kind == MaskKind::Url)
            .map(|m| m.value.as_str())
            .filter(|host| !in_domain_set(host, &self.allow_hosts))
            .collect();
        if hosts
            .iter()
            .any(|host| in_domain_set(host, &self.deny_hosts))
        {
            hits.push(&self.host_deny);
        }
        if hosts
            .iter()
            .any(|host| in_domain_set(host, &self.shorteners))
        {
            hits.push(&self.shortener);
        }
        combine(&hits)
    }

    fn keyword_hits<'s>(&'s self, text: &str) -> Vec<&'s Effect> {
        let Some(automaton) = &self.keywords else {
            return Vec::new();
        };
        let mut rules: Vec<usize> = Vec::new();
        for found in automaton.find_overlapping_iter(text) {
            let (rule, needs_boundary) = self.keyword_patterns[found.pattern().as_usize()];
            if needs_boundary && !at_word_boundaries(text, found.range()) {
                continue;
            }
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
        rules
            .into_iter()
            .map(|i| &self.keyword_effects[i])
            .collect()
    }
}

fn combine(hits: &[&Effect]) -> RulesOutcome {
    let keep = hits.iter().map(|e| 1.0 - e.weight).product::<f32>();
    let label = hits
        .iter()
        .filter(|e| e.label.is_some())
        .max_by(|a, b| a.weight.total_cmp(&b.weight))
        .and_then(|e| e.label);
    let forced_action = hits
        .iter()
        .fold(None, |acc, e| ForcedAction::most_restrictive(acc, e.action));
    RulesOutcome {
        score: crate::clamp_unit(1.0 - keep),
        label,
        forced_action,
        matched: hits.iter().map(|e| e.id.clone()).collect(),
    }
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

fn at_word_boundaries(text: &str, range: Range<usize>) -> bool {
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !is_word(before) && !is_word(after)
}

/// Sender as rules see it: the core's one canonical form (phone numbers by their national
/// number; other ids lower-cased without spaces, dashes, dots and brackets), as on the phone.
pub fn normalize_sender(sender: &str) -> String {
    smsguard_core::sender::canonical_sender(sender)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Validation state while compiling one file.
struct Compiler<'t> {
    text: &'t str,
    source_name: &'t str,
    /// Rule id -> byte offset of its first definition.
    ids: HashMap<String, usize>,
}

impl Compiler<'_> {
    fn invalid(&self, id: &str, span: Range<usize>, message: impl Into<String>) -> RulesError {
        RulesError::Invalid {
            source_name: self.source_name.to_owned(),
            line: line_of(self.text, span.start),
            id: id.to_owned(),
            message: message.into(),
        }
    }

    /// Checks id uniqueness and the weight; returns the rule's effect.
    fn effect(
        &mut self,
        id: &Spanned<String>,
        weight: f32,
        label: Option<Label>,
        action: Option<ForcedAction>,
    ) -> Result<Effect, RulesError> {
        let name = id.get_ref();
        if name.trim().is_empty() {
            return Err(self.invalid(name, id.span(), "empty id"));
        }
        if let Some(&first) = self.ids.get(name) {
            // Name the later definition in file order, whichever kind of rule came first here.
            let later = first.max(id.span().start);
            return Err(self.invalid(name, later..later, "duplicate id"));
        }
        self.ids.insert(name.clone(), id.span().start);
        if !(0.0..=1.0).contains(&weight) {
            return Err(self.invalid(name, id.span(), format!("weight {weight} is outside 0..=1")));
        }
        if weight == 0.0 && action.is_none() {
            return Err(self.invalid(name, id.span(), "rule has neither a weight nor an action"));
        }
        Ok(Effect {
            id: name.clone(),
            weight,
            label,
            action,
        })
    }

    fn regex(&self, id: &Spanned<String>, pattern: &str) -> Result<(), RulesError> {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(drop)
            .map_err(|e| self.invalid(id.get_ref(), id.span(), format!("bad pattern: {e}")))
    }

    fn regex_set<'p>(
        &self,
        patterns: impl IntoIterator<Item = &'p str>,
    ) -> Result<RegexSet, RulesError> {
        regex::RegexSetBuilder::new(patterns)
            .size_limit(REGEX_SIZE_LIMIT * 8)
            .build()
            .map_err(|e| RulesError::Syntax {
                source_name: self.source_name.to_owned(),
                line: 0,
                message: format!("rule patterns too large together: {e}"),
            })
    }

    fn compile(
        mut self,
        file: RulesFile,
        read_host_file: impl Fn(&str) -> Result<String, String>,
    ) -> Result<RuleSet, RulesError> {
        if *file.version.get_ref() != 1 {
            return Err(RulesError::Syntax {
                source_name: self.source_name.to_owned(),
                line: line_of(self.text, file.version.span().start),
                message: format!(
                    "unsupported rules version {}, expected 1",
                    file.version.get_ref()
                ),
            });
        }
        let mut regex_effects = Vec::new();
        for rule in &file.regex {
            self.regex(&rule.id, &rule.pattern)?;
            regex_effects.push(self.effect(&rule.id, rule.weight, rule.label, rule.action)?);
        }
        let regex_set = self.regex_set(file.regex.iter().map(|r| r.pattern.as_str()))?;
        let mut sender_effects = Vec::new();
        for rule in &file.sender {
            self.regex(&rule.id, &rule.pattern)?;
            sender_effects.push(self.effect(&rule.id, rule.weight, rule.label, rule.action)?);
        }
        let sender_set = self.regex_set(file.sender.iter().map(|r| r.pattern.as_str()))?;
        let (keywords, keyword_patterns, keyword_effects) = self.keywords(&file.keyword)?;
        let hosts = self.hosts(file.hosts, read_host_file)?;
        Ok(RuleSet {
            source_name: self.source_name.to_owned(),
            regex_set,
            regex_effects,
            keywords,
            keyword_patterns,
            keyword_effects,
            sender_set,
            sender_effects,
            deny_hosts: hosts.deny,
            allow_hosts: hosts.allow,
            shorteners: hosts.shorteners,
            host_deny: hosts.deny_effect,
            shortener: hosts.shortener_effect,
        })
    }

    #[allow(clippy::type_complexity)]
    fn keywords(
        &mut self,
        rules: &[KeywordRuleDef],
    ) -> Result<(Option<AhoCorasick>, Vec<(usize, bool)>, Vec<Effect>), RulesError> {
        let mut patterns = Vec::new();
        let mut pattern_rules = Vec::new();
        let mut effects = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            effects.push(self.effect(&rule.id, rule.weight, rule.label, rule.action)?);
            if rule.words.is_empty() {
                return Err(self.invalid(rule.id.get_ref(), rule.id.span(), "no words"));
            }
            for word in &rule.words {
                let folded = smsguard_core::normalize(word).text;
                if folded.is_empty() {
                    return Err(self.invalid(
                        rule.id.get_ref(),
                        rule.id.span(),
                        "a word is empty after normalisation",
                    ));
                }
                let ascii_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                let needs_boundary =
                    ascii_edge(folded.chars().next()) || ascii_edge(folded.chars().next_back());
                patterns.push(folded);
                pattern_rules.push((index, needs_boundary));
            }
        }
        if patterns.is_empty() {
            return Ok((None, pattern_rules, effects));
        }
        let automaton = AhoCorasick::new(&patterns).map_err(|e| RulesError::Syntax {
            source_name: self.source_name.to_owned(),
            line: 0,
            message: format!("keyword automaton: {e}"),
        })?;
        Ok((Some(automaton), pattern_rules, effects))
    }

    fn hosts(
        &mut self,
        section: HostsSection,
        read_host_file: impl Fn(&str) -> Result<String, String>,
    ) -> Result<CompiledHosts, RulesError> {
        let weight =
            |w: &Option<Spanned<f32>>, default: f32, id: &str| -> Result<f32, RulesError> {
                match w {
                    Some(w) if !(0.0..=1.0).contains(w.get_ref()) => Err(self.invalid(
                        id,
                        w.span(),
                        format!("weight {} is outside 0..=1", w.get_ref()),
                    )),
                    Some(w) => Ok(*w.get_ref()),
                    None => Ok(default),
                }
            };
        let deny_weight = weight(&section.deny_weight, 0.7, "host-deny")?;
        let shortener_weight = weight(&section.shortener_weight, 0.2, "url-shortener")?;
        let mut deny: HashSet<String> = section.deny.iter().map(|h| clean_host(h)).collect();
        if let Some(file) = &section.deny_file {
            let list = read_host_file(file.get_ref()).map_err(|message| RulesError::HostList {
                source_name: self.source_name.to_owned(),
                file: file.get_ref().clone(),
                message,
            })?;
            deny.extend(parse_host_list(&list));
        }
        deny.retain(|h| !h.is_empty());
        Ok(CompiledHosts {
            deny,
            allow: section.allow.iter().map(|h| clean_host(h)).collect(),
            shorteners: section.shorteners.iter().map(|h| clean_host(h)).collect(),
            deny_effect: Effect {
                id: "host-deny".to_owned(),
                weight: deny_weight,
                label: section.deny_label,
                action: section.deny_action,
            },
            shortener_effect: Effect {
                id: "url-shortener".to_owned(),
                weight: shortener_weight,
                label: None,
                action: None,
            },
        })
    }
}

struct CompiledHosts {
    deny: HashSet<String>,
    allow: HashSet<String>,
    shorteners: HashSet<String>,
    deny_effect: Effect,
    shortener_effect: Effect,
}

fn clean_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_lowercase();
    host.strip_prefix("www.").map(str::to_owned).unwrap_or(host)
}

/// Hosts of a host-list file: one a line, `#` comments, blank lines ignored.
pub fn parse_host_list(list: &str) -> impl Iterator<Item = String> + '_ {
    list.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(clean_host)
}

#[derive(Debug)]
struct ReloadState {
    /// (mtime, length) of the file version last tried, successful or not.
    seen: Option<(SystemTime, u64)>,
    last_check: Option<Instant>,
    last_error: Option<RulesError>,
}

/// A rules file that reloads itself when it changes; the `rules` [`Scorer`].
#[derive(Debug)]
pub struct RulesHandle {
    path: PathBuf,
    check_every: Duration,
    current: RwLock<Arc<RuleSet>>,
    state: Mutex<ReloadState>,
}

/// Alias: the handle is the scorer.
pub type RulesScorer = RulesHandle;

impl RulesHandle {
    /// Loads `path` (which must be valid now); `score` checks for changes at most every
    /// `check_every`.
    pub fn open(path: impl Into<PathBuf>, check_every: Duration) -> Result<Self, RulesError> {
        let path = path.into();
        let seen = file_stamp(&path);
        let rules = RuleSet::load(&path)?;
        Ok(RulesHandle {
            path,
            check_every,
            current: RwLock::new(Arc::new(rules)),
            state: Mutex::new(ReloadState {
                seen,
                last_check: Some(Instant::now()),
                last_error: None,
            }),
        })
    }

    /// The rules now in force.
    pub fn current(&self) -> Result<Arc<RuleSet>, RulesError> {
        self.current
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| RulesError::Poisoned)
    }

    /// The error of the last failed reload, cleared by a successful one.
    pub fn last_error(&self) -> Option<RulesError> {
        self.state.lock().ok().and_then(|s| s.last_error.clone())
    }

    /// Reloads when the file's mtime or length changed since the last attempt. `Ok(true)`: new
    /// rules active; `Ok(false)`: unchanged; `Err`: the new file is bad and the old rules stay.
    pub fn reload_if_changed(&self) -> Result<bool, RulesError> {
        let mut state = self.state.lock().map_err(|_| RulesError::Poisoned)?;
        state.last_check = Some(Instant::now());
        let stamp = file_stamp(&self.path);
        if stamp.is_some() && stamp == state.seen {
            return Ok(false);
        }
        state.seen = stamp;
        match RuleSet::load(&self.path) {
            Ok(rules) => {
                *self.current.write().map_err(|_| RulesError::Poisoned)? = Arc::new(rules);
                state.last_error = None;
                Ok(true)
            }
            Err(e) => {
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Runs [`Self::reload_if_changed`] when the last check is older than `check_every`. A failed
    /// reload does not fail scoring: the error is kept in [`Self::last_error`].
    fn maybe_reload(&self) {
        let due = self
            .state
            .lock()
            .map(|s| s.last_check.is_none_or(|t| t.elapsed() >= self.check_every))
            .unwrap_or(false);
        if due {
            let _ = self.reload_if_changed();
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Scores with a fixed rule set (no reloading), e.g. [`RuleSet::builtin`].
#[derive(Debug)]
pub struct StaticRules(pub RuleSet);

fn outcome_score(outcome: RulesOutcome) -> ModelScore {
    let reason = if outcome.matched.is_empty() {
        "no rule matched".to_owned()
    } else {
        format!("rules matched: {}", outcome.matched.join(", "))
    };
    ModelScore::new(NAME, outcome.score, reason)
        .with_label(outcome.label)
        .with_forced_action(outcome.forced_action)
}

impl Scorer for RulesHandle {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        self.maybe_reload();
        Ok(outcome_score(self.current()?.evaluate(msg)))
    }
}

impl Scorer for StaticRules {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        Ok(outcome_score(self.0.evaluate(msg)))
    }
}

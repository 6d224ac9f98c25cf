//! Reading and validating a rules file: its version, the knowledge table it names (or the
//! built-in one) with its own `[[entry]]`s compiled into one knowledge base, its hosts and its
//! sender rules.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use regex::RegexSet;
use serde::Deserialize;
use smsguard_core::knowledge::{self, EntryDef, KnowledgeBase, KnowledgeFile, Source, TableText};
use smsguard_core::Label;
use toml::Spanned;

use super::{parse_host_list, Effect, RuleSet, RulesError};
use crate::ForcedAction;

/// Largest compiled size of one regex, to keep hostile rule files from eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const VERSION: u32 = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    /// Checked through [`VersionOnly`] first.
    #[serde(rename = "version")]
    _version: u32,
    knowledge: Option<Spanned<String>>,
    #[serde(default)]
    hosts: HostsSection,
    #[serde(default)]
    entry: Vec<EntryDef>,
    #[serde(default)]
    sender: Vec<SenderRuleDef>,
}

/// Only the version, read first so that an old file gets a message about its version rather
/// than about the fields it has.
#[derive(Debug, Deserialize)]
struct VersionOnly {
    version: Spanned<u32>,
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
struct SenderRuleDef {
    id: Spanned<String>,
    pattern: String,
    #[serde(default)]
    weight: f32,
    label: Option<Label>,
    action: Option<ForcedAction>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Compiles a rules file. `dir` is where its relative files live (for watching the knowledge
/// table); `check_examples` runs every knowledge entry against its examples.
pub(super) fn compile(
    text: &str,
    source_name: &str,
    dir: Option<&Path>,
    check_examples: bool,
    read_file: impl Fn(&str) -> Result<String, String>,
) -> Result<RuleSet, RulesError> {
    let syntax = |e: toml::de::Error| RulesError::Syntax {
        source_name: source_name.to_owned(),
        line: e.span().map_or(0, |span| line_of(text, span.start)),
        message: e.message().trim().to_owned(),
    };
    let version: VersionOnly = toml::from_str(text).map_err(syntax)?;
    if *version.version.get_ref() != VERSION {
        let hint = if *version.version.get_ref() == 1 {
            "; version 1's [[keyword]] and [[regex]] rules are [[entry]]s of the knowledge base \
             format now (see smsguard_core::knowledge)"
        } else {
            ""
        };
        return Err(RulesError::Syntax {
            source_name: source_name.to_owned(),
            line: line_of(text, version.version.span().start),
            message: format!(
                "unsupported rules version {}, expected {VERSION}{hint}",
                version.version.get_ref()
            ),
        });
    }
    let file: RulesFile = toml::from_str(text).map_err(syntax)?;
    let mut compiler = Compiler {
        text,
        source_name,
        ids: HashMap::new(),
    };
    let (knowledge, knowledge_path, phone_table) =
        compiler.knowledge(&file, dir, check_examples, &read_file)?;
    let mut sender_effects = Vec::new();
    for rule in &file.sender {
        compiler.regex(&rule.id, &rule.pattern)?;
        sender_effects.push(compiler.effect(&rule.id, rule.weight, rule.label, rule.action)?);
    }
    let sender_set = compiler.regex_set(file.sender.iter().map(|r| r.pattern.as_str()))?;
    let hosts = compiler.hosts(file.hosts, &read_file)?;
    Ok(RuleSet {
        source_name: source_name.to_owned(),
        knowledge,
        knowledge_path,
        phone_table,
        sender_set,
        sender_effects,
        deny_hosts: hosts.deny,
        allow_hosts: hosts.allow,
        shorteners: hosts.shorteners,
        host_deny: hosts.deny_effect,
        shortener: hosts.shortener_effect,
    })
}

/// Validation state while compiling one file.
struct Compiler<'t> {
    text: &'t str,
    source_name: &'t str,
    /// Sender rule id -> byte offset of its first definition.
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

    /// The knowledge table the file names (the built-in one by default, none with "none"),
    /// compiled together with the file's own entries; the table's path when it is a file; and
    /// the table alone as phones receive it (the file's own entries stay in the cloud).
    fn knowledge(
        &self,
        file: &RulesFile,
        dir: Option<&Path>,
        check_examples: bool,
        read_file: &impl Fn(&str) -> Result<String, String>,
    ) -> Result<(KnowledgeBase, Option<std::path::PathBuf>, Option<TableText>), RulesError> {
        let named = file.knowledge.as_ref().map(|k| k.get_ref().as_str());
        let (table_name, table_text, path) = match named {
            None | Some("builtin") => (
                knowledge::BUILTIN_NAME.to_owned(),
                Some(knowledge::BUILTIN_TOML.to_owned()),
                None,
            ),
            Some("none") => (String::new(), None, None),
            Some(name) => {
                let text = read_file(name).map_err(|message| RulesError::File {
                    source_name: self.source_name.to_owned(),
                    what: "knowledge table",
                    file: name.to_owned(),
                    message,
                })?;
                let shown =
                    dir.map_or_else(|| name.to_owned(), |d| d.join(name).display().to_string());
                (shown, Some(text), dir.map(|d| d.join(name)))
            }
        };
        let table = match &table_text {
            Some(text) => Some(KnowledgeFile::parse(text, &table_name)?),
            None => None,
        };
        let mut sources: Vec<Source<'_>> = Vec::new();
        if let (Some(table), Some(text)) = (&table, &table_text) {
            sources.push(table.source(text, &table_name));
        }
        sources.push(Source {
            name: self.source_name,
            text: self.text,
            revision: None,
            entries: &file.entry,
        });
        let base = KnowledgeBase::compile(&sources)?;
        if check_examples {
            base.check_examples()?;
        }
        let phone_table = match (named, table_text) {
            (None | Some("builtin"), _) => Some(TableText::builtin().clone()),
            (_, Some(text)) => Some(TableText::new(text, &table_name)?),
            (_, None) => None,
        };
        Ok((base, path, phone_table))
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
        if self.ids.contains_key(name) {
            return Err(self.invalid(name, id.span(), "duplicate id"));
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
            kind: "sender",
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

    fn hosts(
        &mut self,
        section: HostsSection,
        read_file: &impl Fn(&str) -> Result<String, String>,
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
            let list = read_file(file.get_ref()).map_err(|message| RulesError::File {
                source_name: self.source_name.to_owned(),
                what: "host list",
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
                kind: "host_deny",
                weight: deny_weight,
                label: section.deny_label,
                action: section.deny_action,
            },
            shortener_effect: Effect {
                id: "url-shortener".to_owned(),
                kind: "link_lure",
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

pub(super) fn clean_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_lowercase();
    host.strip_prefix("www.").map(str::to_owned).unwrap_or(host)
}

//! What the Rules page shows: the rules file on disk (or the built-in rules), whether it
//! validates exactly as the scorer would load it, and its rules. A file that does not validate
//! is shown with its error and is not loaded: the scorer keeps the last valid rules.

use std::path::Path;

use smsguard_scoring::rules::DEFAULT_RULES_TOML;
use smsguard_scoring::RuleSet;

/// One rule as the file states it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    /// `entry` or `sender` (the file's own), or `knowledge` (an entry of the knowledge table
    /// in force, shown once the file validates).
    pub kind: &'static str,
    pub id: String,
    pub label: String,
    /// The weight, or the forced action of a sender rule.
    pub effect: String,
}

/// The rules file as it is on disk now.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesView {
    /// The file, or "built-in rules".
    pub source: String,
    /// `Ok(rule count)` when the file validates, else the validation error.
    pub validation: Result<usize, String>,
    pub rules: Vec<RuleRow>,
}

/// Reads and validates the rules at `path` (the built-in rules when `None`). Blocking I/O.
pub fn read(path: Option<&Path>) -> RulesView {
    let Some(path) = path else {
        return view(
            "built-in rules (no rules_path)".into(),
            DEFAULT_RULES_TOML,
            RuleSet::builtin(),
        );
    };
    let source = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            return RulesView {
                validation: Err(format!("cannot read {source}: {e}")),
                source,
                rules: Vec::new(),
            }
        }
    };
    // The same check the scorer's reload applies (host lists and knowledge table beside it).
    let parsed = RuleSet::load(path);
    view(source, &text, parsed)
}

fn view(
    source: String,
    text: &str,
    parsed: Result<RuleSet, smsguard_scoring::rules::RulesError>,
) -> RulesView {
    let mut rules = rows(text);
    if let Ok(set) = &parsed {
        let table = set
            .knowledge()
            .entries()
            .iter()
            .filter(|e| e.source_name != set.source_name());
        rules.extend(table.map(|e| RuleRow {
            kind: "knowledge",
            id: e.id.clone(),
            label: e.label.map(|l| l.to_string()).unwrap_or_default(),
            effect: format!("weight {} ({})", e.weight, e.kind),
        }));
    }
    RulesView {
        source,
        validation: parsed.map(|r| r.rule_count()).map_err(|e| e.to_string()),
        rules,
    }
}

/// The rules of a file that is at least TOML (an invalid one still lists what it can).
fn rows(text: &str) -> Vec<RuleRow> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for kind in ["entry", "sender"] {
        let Some(entries) = table.get(kind).and_then(|v| v.as_array()) else {
            continue;
        };
        for entry in entries.iter().filter_map(|e| e.as_table()) {
            let text_of = |key: &str| entry.get(key).map(plain).unwrap_or_default();
            let effect = match entry.get("action") {
                Some(action) => format!("action {}", plain(action)),
                None => format!("weight {}", text_of("weight")),
            };
            rows.push(RuleRow {
                kind,
                id: text_of("id"),
                label: text_of("label"),
                effect,
            });
        }
    }
    rows
}

fn plain(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_rules_validate_and_list() {
        let view = read(None);
        let count = view.validation.expect("built-in rules are valid");
        assert_eq!(count, view.rules.len());
        assert!(view.rules.iter().any(|r| r.kind == "sender"));
    }

    #[test]
    fn an_invalid_file_shows_its_error_and_still_lists_its_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            "version = 2\n[[entry]]\nid = \"broken\"\ntype = \"t\"\npattern = \"(\"\nweight = 0.5\nlabel = \"fraud\"\ndescription = \"d\"\nexamples = [\"x\"]\n",
        )
        .unwrap();
        let view = read(Some(&path));
        let error = view.validation.unwrap_err();
        assert!(error.contains("broken"), "{error}");
        assert_eq!(view.rules[0].id, "broken");
    }
}

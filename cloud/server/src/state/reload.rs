//! The hot reload: rules and their sender rules into the sync log, the spam feed into the similarity memory, operator listings re-read.

use super::*;

impl AppState {
    /// Re-reads the rules file and the spam feed when they changed (blocking I/O). Errors of a
    /// bad new rules file keep the old rules and are returned.
    pub fn reload(&self) -> Result<ReloadSummary, ServerError> {
        let mut summary = ReloadSummary::default();
        if let Some(rules) = &self.rules {
            match rules.reload_if_changed() {
                Ok(changed) => summary.rules_reloaded = changed,
                Err(e) => tracing::warn!(error = %e, "rules reload failed; the old rules stay"),
            }
        }
        summary.sender_rule_changes = self.log_sender_rules()?;
        summary.feed_fingerprints_added = self.import_spam_feed_if_changed()?;
        // Listings another replica made (shared state) come into force here.
        match self.state.operator_listings() {
            Ok(listings) => self.operator_list.replace(listings),
            Err(e) => tracing::warn!(error = %e, "operator listings not re-read; the old stay"),
        }
        if summary.rules_reloaded || summary.feed_fingerprints_added > 0 {
            self.metrics.reloads.inc();
        }
        self.refresh_gauges();
        Ok(summary)
    }

    /// Logs sender rule changes of the rules now in force into the sync log.
    pub(super) fn log_sender_rules(&self) -> Result<usize, ServerError> {
        let text = match &self.config.rules_path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the rules file");
                    return Ok(0);
                }
            },
            None => DEFAULT_RULES_TOML.to_owned(),
        };
        // Publish only rules the scorer would also accept: a file that does not validate keeps
        // the old rules in force (RulesHandle), so the edges keep the old sender rules too
        // instead of being told that every rule was removed.
        if let Some(path) = &self.config.rules_path {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let read_host_file =
                |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string());
            let source_name = path.display().to_string();
            if let Err(e) = RuleSet::parse(&text, &source_name, read_host_file) {
                tracing::warn!(error = %e, "rules file invalid: sender rules not republished");
                return Ok(0);
            }
        }
        Ok(self.state.sync_sender_rules(&sender_rules(&text))?)
    }

    /// Imports the spam of the feed file into the similarity memory when the file changed
    /// since the last import; new fingerprints are logged for `SyncCache`.
    pub(super) fn import_spam_feed_if_changed(&self) -> Result<usize, ServerError> {
        let Some(path) = &self.config.spam_feed_path else {
            return Ok(0);
        };
        let stamp = file_stamp(path);
        {
            let mut seen = self
                .feed_stamp
                .lock()
                .map_err(|_| ServerError::Task("feed state poisoned".into()))?;
            if stamp.is_none() || *seen == stamp {
                return Ok(0);
            }
            *seen = stamp;
        }
        let corpus = match smsguard_corpus::read_tsv(path) {
            Ok(corpus) => corpus,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the spam feed");
                return Ok(0);
            }
        };
        let mut changes = Vec::new();
        for record in corpus.records.iter().filter(|r| r.label.is_spam()) {
            // Too-short texts are skipped, as in seeding.
            let Some(fp) = seed_fingerprint(&self.similarity_config, &record.text) else {
                continue;
            };
            if self.state.entry(fp.id()).ok().flatten().is_some() {
                continue;
            }
            let entry = self.state.add_spam(&fp, record.label)?;
            changes.push(Change::Fingerprint {
                fingerprint: fp.to_hex(),
                minhash: fp.minhash.to_vec(),
                label: v1::Label::from(entry.label) as i32,
                report_count: entry.spam_evidence(),
                removed: false,
            });
        }
        self.state.flush()?;
        if !changes.is_empty() {
            self.state.sync_append(&changes)?;
        }
        tracing::info!(
            added = changes.len(),
            "spam feed imported into the similarity memory"
        );
        Ok(changes.len())
    }
}

/// The sender rules of a rules file with a forced action, as `pattern -> SenderRuleKind`
/// (allow -> ALLOW, quarantine/block -> DENY). Weight-only rules stay server-side.
pub fn sender_rules(rules_toml: &str) -> BTreeMap<String, i32> {
    let Ok(value) = rules_toml.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    let rules = value.get("sender").and_then(toml::Value::as_array);
    rules
        .into_iter()
        .flatten()
        .filter_map(|rule| {
            let pattern = rule.get("pattern")?.as_str()?;
            let kind = match rule.get("action")?.as_str()? {
                "allow" => v1::SenderRuleKind::Allow,
                "quarantine" | "block" => v1::SenderRuleKind::Deny,
                _ => return None,
            };
            Some((pattern.to_owned(), kind as i32))
        })
        .collect()
}

pub(super) fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

//! User reports: the reporter's budget, the fingerprint resolved, the vote cast, and a consensus change published to the sync log.

use super::*;

impl AppState {
    /// Records user feedback in the similarity memory, the sender reputation and the sync log;
    /// durable (flushed) before it returns. Blocking I/O: call from `spawn_blocking`. `caller`
    /// is the API key that authenticated the request, and the reporter is that key alone: the
    /// device id is chosen by the client, so one key inventing device ids would otherwise be as
    /// many reporters as it likes. Without API keys (anonymous mode) every report comes from
    /// one anonymous reporter. A report reaches other users' verdicts and the sync log only once
    /// a quorum of keys agrees (see `smsguard_scoring::similarity`).
    pub fn report(
        &self,
        req: &v1::ReportRequest,
        caller: Option<&KeyId>,
    ) -> Result<v1::ReportResponse, RequestError> {
        let reporter = caller.map(|key| key.0.as_str()).unwrap_or_default();
        if !self.report_budget_allows(reporter) {
            self.metrics.record_rejection("report_budget");
            return Err(RequestError::RateLimited {
                key_id: format!("{reporter} (report budget)"),
            });
        }
        let spam = match v1::Feedback::try_from(req.feedback) {
            Ok(v1::Feedback::Spam) => true,
            Ok(v1::Feedback::NotSpam) => false,
            Ok(v1::Feedback::Unspecified) => {
                return Err(RequestError::Missing { field: "feedback" })
            }
            Err(_) => {
                return Err(RequestError::InvalidEnum {
                    field: "feedback",
                    value: req.feedback,
                })
            }
        };
        let category =
            v1::Label::try_from(req.category).map_err(|_| RequestError::InvalidEnum {
                field: "category",
                value: req.category,
            })?;
        check_len("sender", &req.sender, MAX_SENDER_BYTES)?;
        check_len("device_id", &req.device_id, MAX_ID_BYTES)?;
        let id = parse_fingerprint_id(&req.fingerprint)?;
        let Some(fp) = self.resolve_fingerprint(id, &req.minhash)? else {
            return Ok(v1::ReportResponse {
                report_count: 0,
                accepted: false,
            });
        };
        // A user report is a human label, kept apart from seeded spam; one vote per key.
        // A panic elsewhere while holding it leaves nothing half-done that this path reads.
        let _serialised = self.reporting.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = self.state.record_report(
            &fp,
            &UserReport {
                reporter,
                device: &req.device_id,
                at_ms: server_now_ms(),
                spam,
                class: smsguard_proto::core_label(category),
            },
        )?;
        let entry = recorded.after;
        if !req.sender.is_empty() {
            // Sender votes are a hint beside the fingerprint's: one lost (a poisoned lock, a
            // shared state that just failed) is logged, not worth failing the report for.
            let key = self.sender.sender_key(&req.sender);
            if let Err(error) = self.state.record_sender_report(key, reporter, spam) {
                tracing::warn!(error = %error, "a sender vote was not recorded");
            }
        }
        self.publish_consensus_change(&req.fingerprint, &fp, recorded.before.as_ref(), &entry)?;
        Ok(v1::ReportResponse {
            report_count: entry
                .user_spam_reports
                .saturating_add(entry.not_spam_reports),
            accepted: true,
        })
    }

    /// Tells every phone (the sync log) when the reports on `fp` reached, changed or lost a
    /// quorum; a report that moves no consensus is pushed to nobody.
    pub(super) fn publish_consensus_change(
        &self,
        fingerprint: &str,
        fp: &Fingerprint,
        before: Option<&Entry>,
        after: &Entry,
    ) -> Result<(), RequestError> {
        let was = before.map_or(Consensus::None, |e| {
            consensus_of(&self.similarity_config, e)
        });
        let now = consensus_of(&self.similarity_config, after);
        if was == now {
            return Ok(());
        }
        let whitelisted = self.operator_list.of(fp.id()) == Some(Listing::Whitelist);
        if now == Consensus::Spam && (whitelisted || self.operator_allowed(fp.id())) {
            // The phones would match it before asking the cloud, where the operator's rule
            // wins: keep it off them. (A near-duplicate never classified here is not caught.)
            tracing::info!(
                fingerprint = %fp.to_hex(),
                "spam consensus on an operator-allowed message: not pushed to the phones"
            );
            return Ok(());
        }
        let evidence = after.counted_spam_evidence(self.similarity_config.report_quorum);
        self.state.sync_append(&[Change::Fingerprint {
            fingerprint: fingerprint.to_ascii_lowercase(),
            minhash: fp.minhash.to_vec(),
            label: v1::Label::from(after.label) as i32,
            report_count: evidence,
            // Whitelisted, or a quorum lost with no seeded evidence left: off the phones.
            removed: now == Consensus::NotSpam || evidence == 0,
        }])?;
        // Also sets the sync version gauge (read back from the log).
        self.refresh_gauges();
        Ok(())
    }

    /// True when the message of fingerprint `id`, classified recently, was allowed by an operator
    /// rule.
    pub(super) fn operator_allowed(&self, id: u64) -> bool {
        let recent = self.recent.lock().ok();
        recent
            .as_ref()
            .and_then(|recent| recent.get(id))
            .is_some_and(|found| found.operator_allowed)
    }

    /// The fingerprint of a recently classified message with this id (exact), else the one of
    /// the reported MinHash slots (the id depends on the slots only, so it is the edge's id
    /// when the slots are the edge's).
    pub(super) fn resolve_fingerprint(
        &self,
        id: u64,
        minhash: &[u32],
    ) -> Result<Option<Fingerprint>, RequestError> {
        let recent = self.recent.lock().ok();
        if let Some(found) = recent.as_ref().and_then(|recent| recent.get(id)) {
            return Ok(Some(found.fingerprint.clone()));
        }
        match minhash.len() {
            0 => Ok(None),
            smsguard_core::fingerprint::NUM_HASHES => {
                let mut slots = [0u32; smsguard_core::fingerprint::NUM_HASHES];
                slots.copy_from_slice(minhash);
                Ok(Some(Fingerprint { minhash: slots }))
            }
            n => Err(RequestError::Invalid {
                field: "minhash",
                reason: format!(
                    "{n} slots; send none or all {}",
                    smsguard_core::fingerprint::NUM_HASHES
                ),
            }),
        }
    }

    /// Takes one report from `reporter`'s budget: this process's buckets, or the shared ones
    /// so that a budget holds across replicas (open when the shared state fails: the report
    /// itself then fails anyway).
    pub(super) fn report_budget_allows(&self, reporter: &str) -> bool {
        if !self.state.shared() {
            return self.report_budgets.try_take(reporter, Instant::now());
        }
        let per_minute = self.config.report_budget_per_minute;
        if per_minute == 0 {
            return true;
        }
        let key_id = format!("report-budget:{reporter}");
        self.state
            .take_token(&RateLimit {
                key_id: &key_id,
                rate_per_second: f64::from(per_minute) / 60.0,
                burst: per_minute,
            })
            .unwrap_or(true)
    }
}

//! Scoring a validated message: the shared state prefetched in one round trip, the scorers and fusion (CPU-bound, from `spawn_blocking`), the verdict mapped to the protocol.

use super::*;

impl AppState {
    /// Scores one message (CPU-bound: call from `spawn_blocking`). The scorers see the
    /// client's `received_at_ms` only within [`MAX_CLIENT_CLOCK_SKEW_MS`] of the server's
    /// clock: the sender reputation's windows and a sender's age must not be the client's to
    /// choose (a `received_at_ms` of 0 made any sender look a year old).
    pub fn score(&self, msg: &ValidMessage) -> v1::Verdict {
        let prepared = self.prepare(msg);
        let fetched = self.prefetch(&prepared, None);
        self.verdict(msg, &prepared, fetched)
    }

    /// [`Self::score`] for a caller whose key `limit` is shared across replicas: with a
    /// shared state the message takes one token of it, in the same round trip as the rest
    /// (RESOURCE_EXHAUSTED when empty). Without one the API-key check already limited it.
    pub fn score_as(
        &self,
        msg: &ValidMessage,
        limit: Option<RateLimit<'_>>,
    ) -> Result<v1::Verdict, RequestError> {
        let mut scored = self.score_many(std::slice::from_ref(msg), limit);
        scored
            .pop()
            .unwrap_or_else(|| Err(RequestError::Internal("no verdict".into())))
    }

    /// [`Self::score_as`] for several messages (a `ClassifyStream` frame): their shared inputs
    /// come in one round trip for all of them.
    pub fn score_many(
        &self,
        msgs: &[ValidMessage],
        limit: Option<RateLimit<'_>>,
    ) -> Vec<Result<v1::Verdict, RequestError>> {
        let prepared: Vec<PreparedMessage> = msgs.iter().map(|m| self.prepare(m)).collect();
        let limit = limit.filter(|_| self.state.shared());
        let fetched: Vec<Result<Prefetched, StateError>> = if self.state.shared() {
            let requests: Vec<PrefetchRequest<'_>> = prepared
                .iter()
                .map(|p| self.prefetch_request(p, limit))
                .collect();
            match self.state.prefetch_many(&requests) {
                Ok(all) => all.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error); msgs.len()],
            }
        } else {
            // The scorers hold the state in process: no hashing, no call.
            vec![Ok(Prefetched::InProcess); msgs.len()]
        };
        msgs.iter()
            .zip(&prepared)
            .zip(fetched)
            .map(|((msg, prepared), fetched)| {
                if let (Some(limit), Ok(Prefetched::Shared(inputs))) = (limit, &fetched) {
                    if !inputs.rate_allowed {
                        self.metrics.record_rejection("rate_limited");
                        return Err(RequestError::RateLimited {
                            key_id: limit.key_id.to_owned(),
                        });
                    }
                }
                Ok(self.verdict(msg, prepared, fetched))
            })
            .collect()
    }

    pub(super) fn prepare(&self, msg: &ValidMessage) -> PreparedMessage {
        let at_ms = trusted_time_ms(msg.received_at_ms, server_now_ms());
        PreparedMessage::new(&msg.sender, &msg.body, at_ms, &msg.device_id)
    }

    /// The shared inputs one message asks for.
    pub(super) fn prefetch_request<'a>(
        &self,
        prepared: &'a PreparedMessage,
        rate: Option<RateLimit<'a>>,
    ) -> PrefetchRequest<'a> {
        PrefetchRequest {
            fingerprint: &prepared.fingerprint,
            sender_key: self.sender.sender_key(&prepared.sender),
            device_key: self.sender.id_key(&prepared.device_id),
            at_ms: prepared.received_at_ms,
            rate,
        }
    }

    /// The shared inputs of a message (one round trip at most; nothing when embedded).
    pub(super) fn prefetch(
        &self,
        prepared: &PreparedMessage,
        rate: Option<RateLimit<'_>>,
    ) -> Result<Prefetched, StateError> {
        if !self.state.shared() {
            return Ok(Prefetched::InProcess);
        }
        self.state.prefetch(&self.prefetch_request(prepared, rate))
    }

    pub(super) fn verdict(
        &self,
        msg: &ValidMessage,
        prepared: &PreparedMessage,
        fetched: Result<Prefetched, StateError>,
    ) -> v1::Verdict {
        let context = prepared.context();
        let verdict = match fetched {
            Ok(Prefetched::InProcess) => self.scorer.score_in(&context, msg.edge, msg.market),
            Ok(Prefetched::Shared(inputs)) => {
                let mut outcomes = self.scorer.outcomes(&context);
                outcomes.extend(self.shared_outcomes(prepared, &inputs));
                self.scorer
                    .fuse_outcomes(&context, &outcomes, msg.edge, msg.market)
            }
            Err(error) => {
                self.note_state_failure(&error);
                let mut outcomes = self.scorer.outcomes(&context);
                outcomes.extend(SHARED_STATE_SCORERS.map(|model| ScorerOutcome {
                    model: model.to_owned(),
                    result: Err(error.to_string()),
                }));
                self.scorer
                    .fuse_outcomes(&context, &outcomes, msg.edge, msg.market)
            }
        };
        if let Ok(mut recent) = self.recent.lock() {
            // Only an operator rule forces Allow (reports force at most Quarantine).
            let operator_allowed = verdict.forced_action == Some(ForcedAction::Allow);
            recent.remember(&prepared.fingerprint, operator_allowed);
        }
        self.record_verdict(&verdict);
        self.to_proto(&verdict, prepared.fingerprint.to_hex())
    }

    /// The similarity and sender scores of a message from the shared state's inputs.
    pub(super) fn shared_outcomes(
        &self,
        prepared: &PreparedMessage,
        inputs: &SharedInputs,
    ) -> [ScorerOutcome; 2] {
        let similarity = score_candidates(
            &self.similarity_config,
            &prepared.fingerprint,
            &inputs.candidates,
        );
        let (score, reason) = self.sender.assess(&inputs.sender);
        [
            ScorerOutcome {
                model: similarity.model.to_owned(),
                result: Ok(similarity),
            },
            ScorerOutcome {
                model: self.sender.name().to_owned(),
                result: Ok(ModelScore::new(self.sender.name(), score, reason)),
            },
        ]
    }

    /// Counts a verdict given without the shared state, and logs it at most every 10 s.
    pub(super) fn note_state_failure(&self, error: &StateError) {
        use std::sync::atomic::Ordering;
        self.metrics.shared_state_degraded.inc();
        let now = server_now_ms();
        let last = self.last_state_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_state_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %error, "verdicts degraded: no shared state");
        }
    }

    pub(super) fn record_verdict(&self, verdict: &FusedVerdict) {
        self.metrics
            .record_verdict(verdict.label.as_str(), verdict.action.as_str());
        if verdict.degraded {
            self.metrics.record_degraded_verdict();
        }
        for contribution in verdict.contributions.iter().filter(|c| c.degraded) {
            self.metrics.record_model_error(&contribution.model);
        }
    }

    pub(super) fn to_proto(&self, verdict: &FusedVerdict, fingerprint: String) -> v1::Verdict {
        let contributions = verdict
            .contributions
            .iter()
            .map(|c| v1::Contribution {
                model: c.model.clone(),
                score: c.score,
                weight: c.weight,
                reason: c.reason.clone(),
                degraded: c.degraded,
            })
            .collect();
        let source = if verdict.forced_action.is_some() {
            v1::VerdictSource::Rule
        } else {
            v1::VerdictSource::Cloud
        };
        let cache_ttl_seconds = match self.config.cache_ttl_seconds {
            0 => verdict.cache_ttl_seconds,
            ttl => ttl,
        };
        v1::Verdict {
            label: v1::Label::from(verdict.label) as i32,
            category: if verdict.label == Label::Ham {
                String::new()
            } else {
                verdict.label.as_str().to_owned()
            },
            spam_score: verdict.spam_score,
            action: v1::Action::from(verdict.action) as i32,
            contributions,
            cache_ttl_seconds,
            fingerprint,
            model_versions: vec![
                v1::ModelVersion {
                    model: "edge".into(),
                    version: self.package.version.clone(),
                },
                v1::ModelVersion {
                    model: "cloud".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            ],
            source: source as i32,
            degraded: verdict.degraded,
        }
    }
}

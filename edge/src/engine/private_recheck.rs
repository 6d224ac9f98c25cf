//! Private mode's re-check queue: a message delivered without the cloud's private answers (a
//! timeout, an unreachable cloud) is asked again at `drain`, through `PrivateClassify` and
//! `PrivateSimilarity` both, exactly as at its arrival: the text stays on the phone, `Classify`
//! is never called. The stored local verdict is fused with the decrypted scores by the published
//! head, then raised one step by a similarity match. Nothing is asked while the cloud publishes
//! parameters this phone does not support (`private_params`).

use std::time::Instant;

use smsguard_core::{normalize, Market};
use smsguard_private::params::PARAMETER_SET;
use smsguard_private::similarity::band_prefixes;

use super::link::{Remote, BULK_WAIT};
use super::private::{fuse_private, PrivateMode};
use super::private_similarity::raise_by_similarity;
use super::{DrainSummary, Engine, EngineError};
use crate::store::{MessageRecord, QueueItem, StoredVerdict};

/// What one queued message's re-check came to.
enum Recheck {
    /// Both asked; the verdict to store.
    Answered(StoredVerdict),
    /// A retryable failure: stop the drain, the message stays queued.
    Stop,
    /// It cannot be re-checked (no body, a refused or unreadable answer): keep its verdict.
    Drop,
}

impl Engine {
    /// Private mode's `drain`: every queued re-check asks both private calls again (one message
    /// a call); the first retryable failure stops the drain (the rest wait), another failure
    /// drops that entry. Queued reports (from before private mode) stay where they are.
    pub(super) fn drain_private(
        &self,
        private: &PrivateMode,
        summary: &mut DrainSummary,
    ) -> Result<(), EngineError> {
        let store = self.store()?;
        let remote = self.remote()?;
        // Parameters this phone does not support: nothing goes out, the queue waits.
        if private
            .check_params(remote, Instant::now() + remote.deadline)
            .is_err()
        {
            return Ok(());
        }
        let mut last_key = None;
        loop {
            let batch = store.queue_after(last_key, self.config.recheck_batch.max(1))?;
            let Some(&(key, _)) = batch.last() else { break };
            last_key = Some(key);
            for (key, item) in batch {
                let QueueItem::Recheck { message_id } = item else {
                    continue;
                };
                let record = store.message(message_id).ok().flatten();
                match record.map_or(Recheck::Drop, |r| self.recheck_private(remote, private, &r)) {
                    Recheck::Answered(verdict) => {
                        summary.rechecked += 1;
                        self.apply_recheck(key, message_id, verdict, summary);
                    }
                    Recheck::Stop => return Ok(()),
                    Recheck::Drop => self.drop_recheck(key, message_id, summary),
                }
            }
        }
        Ok(())
    }

    /// Asks `PrivateClassify` and `PrivateSimilarity` about one stored message, concurrently.
    fn recheck_private(
        &self,
        remote: &Remote,
        private: &PrivateMode,
        record: &MessageRecord,
    ) -> Recheck {
        let Some(body) = record.body.as_deref() else {
            return Recheck::Drop;
        };
        let normalized = normalize(body);
        let Ok(features) = private.client.encrypt_text(&normalized.text) else {
            return Recheck::Drop;
        };
        let minhash = self.hasher.fingerprint(&normalized.text).minhash;
        let bits = private.prefix_bits.get();
        let similar = remote.start(
            remote
                .link
                .private_similarity(bits, band_prefixes(&minhash, bits)),
        );
        let call = remote
            .link
            .private_classify(PARAMETER_SET.to_owned(), features);
        let answer = match remote
            .call(call)
            .inspect_err(|e| private.params.note_failure(e))
        {
            Ok(answer) => answer,
            Err(e) if e.is_retryable() => return Recheck::Stop,
            Err(_) => {
                self.count_cloud_failure();
                return Recheck::Drop;
            }
        };
        let Ok((scores, head)) = private.open(&answer) else {
            self.count_cloud_failure();
            return Recheck::Drop;
        };
        let market = self
            .config
            .market
            .unwrap_or_else(|| Market::of_text(&normalized.text));
        let (verdict, _) = fuse_private(record.verdict, &scores, &head, market);
        match self.similarity_match(private, similar, Instant::now() + BULK_WAIT, &minhash) {
            Ok(found) => Recheck::Answered(raise_by_similarity(verdict, found)),
            // Both are asked again at the next drain.
            Err(e) if e.is_retryable() => Recheck::Stop,
            // A lookup this cloud does not serve: the scores alone decide.
            Err(_) => Recheck::Answered(verdict),
        }
    }
}

//! Private mode's similarity lookup on the phone: the message's band-key prefixes go to
//! `PrivateSimilarity` beside `PrivateClassify` (same deadline, fail open), the answer's entries
//! are matched against the full band keys here (`smsguard_private::similarity`), and a match with
//! stored spam raises the verdict one step (allow -> tag -> quarantine), never lowers it, never
//! past quarantine. The cloud learns which 1/2^P slice of band-key space each band falls in.

use std::sync::atomic::{AtomicU32, Ordering};

use smsguard_core::{Action, Label};
use smsguard_private::similarity::{self, BucketEntry, LocalMatch};
use smsguard_proto::v1::{self, PrivateSimilarityResponse};

use crate::store::{Source, StoredVerdict};

/// The prefix length to ask with: the published default until the cloud suggests the one that
/// fits its memory's size (each answer carries it), then that.
#[derive(Debug)]
pub(crate) struct PrefixBits(AtomicU32);

impl Default for PrefixBits {
    fn default() -> Self {
        PrefixBits(AtomicU32::new(similarity::PREFIX_BITS))
    }
}

impl PrefixBits {
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adopts the suggestion of a lookup's answer.
    pub(crate) fn learn(&self, answer: &PrivateSimilarityResponse) {
        self.adopt(answer.suggested_prefix_bits);
    }

    /// Adopts a suggestion of the cloud (an answer's, or `PrivateParams`') when it is in the
    /// served range.
    pub(crate) fn adopt(&self, bits: u32) {
        if (4..=32).contains(&bits) {
            self.0.store(bits, Ordering::Relaxed);
        }
    }
}

/// The answer's entries as the local match reads them (a ham-labelled entry is no spam evidence).
pub fn bucket_entries(answer: &PrivateSimilarityResponse) -> Vec<BucketEntry> {
    let mut entries = Vec::new();
    for bucket in &answer.buckets {
        for e in &bucket.entries {
            let spam = e.label != v1::Label::Ham as i32;
            entries.push(BucketEntry {
                band: bucket.band as usize,
                band_key: e.band_key,
                entry: e.entry,
                spam_evidence: if spam { e.spam_evidence } else { 0 },
                whitelisting: e.whitelisting,
            });
        }
    }
    entries
}

/// `verdict` raised one step by a spam match (allow -> tag, tag -> quarantine; a raised ham
/// becomes `Spam`, and the source `private`), unchanged otherwise.
pub fn raise_by_similarity(verdict: StoredVerdict, found: LocalMatch) -> StoredVerdict {
    let LocalMatch::Spam { .. } = found else {
        return verdict;
    };
    let action = match verdict.action {
        Action::Allow => Action::Tag,
        Action::Tag => Action::Quarantine,
        stronger => stronger,
    };
    if action == verdict.action {
        return verdict;
    }
    let label = if verdict.label == Label::Ham {
        Label::Spam
    } else {
        verdict.label
    };
    StoredVerdict {
        label,
        action,
        source: Source::Private,
        ..verdict
    }
}

/// The reason's words for a lookup's result.
pub(crate) fn describe(found: LocalMatch, bits: u32) -> String {
    match found {
        LocalMatch::None => format!("private similarity ({bits}-bit prefixes): no match"),
        LocalMatch::Spam {
            shared_bands,
            evidence,
        } => format!(
            "private similarity ({bits}-bit prefixes): known spam shares {shared_bands} bands \
             (evidence {evidence}) -> one step up"
        ),
        LocalMatch::Whitelisted { shared_bands } => format!(
            "private similarity ({bits}-bit prefixes): a whitelisted message shares \
             {shared_bands} bands"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(label: Label, action: Action) -> StoredVerdict {
        StoredVerdict {
            label,
            spam_score: 0.2,
            action,
            source: Source::Local,
        }
    }

    #[test]
    fn a_spam_match_raises_one_step_at_most_and_never_lowers() {
        let spam = LocalMatch::Spam {
            shared_bands: 3,
            evidence: 1,
        };
        let raised = raise_by_similarity(verdict(Label::Ham, Action::Allow), spam);
        assert_eq!(
            (raised.label, raised.action, raised.source),
            (Label::Spam, Action::Tag, Source::Private)
        );
        let raised = raise_by_similarity(verdict(Label::Fraud, Action::Tag), spam);
        assert_eq!(
            (raised.label, raised.action),
            (Label::Fraud, Action::Quarantine)
        );
        for action in [Action::Quarantine, Action::Block] {
            assert_eq!(
                raise_by_similarity(verdict(Label::Spam, action), spam).action,
                action
            );
        }
        for found in [
            LocalMatch::None,
            LocalMatch::Whitelisted { shared_bands: 9 },
        ] {
            let kept = raise_by_similarity(verdict(Label::Ham, Action::Allow), found);
            assert_eq!(kept, verdict(Label::Ham, Action::Allow));
        }
    }
}

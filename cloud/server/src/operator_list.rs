//! The operator's whitelist and blacklist of fingerprints, set from the console's Reports page.
//!
//! A listing pins the verdict of a reported message's near-duplicates (Jaccard estimate at or
//! above the similarity memory's `report_min_jaccard`, the bar user reports act at): a
//! whitelisted one is forced to `Allow`, a blacklisted one to `Block`, with the authority of the
//! operator, so it outranks any report quorum and meets the rules file's forced actions under
//! `ForcedAction::most_restrictive` (a block rule still beats a whitelist). It acts through the
//! [`OperatorListScorer`], one more scorer of the fusion that adds no contribution (fusion
//! takes inputs it was fitted on) but whose forced action fusion obeys.
//!
//! The listings live in the state backend (shared by replicas on Redis) and in memory here;
//! the replica that takes the action applies it at once, the others at their next reload tick
//! (`reload_interval_seconds`). Listings hold fingerprints, never text.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use smsguard_core::fingerprint::NUM_HASHES;
use smsguard_core::{Fingerprint, Label};
use smsguard_proto::v1;
use smsguard_scoring::{
    ForceAuthority, ForcedAction, MessageContext, ModelScore, Scorer, ScoringError,
};

use crate::state::AppState;
use crate::state_backend::StateError;
use crate::sync::Change;

/// The scorer's name (`ModelScore::model`).
pub const OPERATOR_LIST: &str = "operator_list";

/// Whitelist or blacklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    Whitelist,
    Blacklist,
}

impl Listing {
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Whitelist => "whitelist",
            Listing::Blacklist => "blacklist",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "whitelist" => Some(Listing::Whitelist),
            "blacklist" => Some(Listing::Blacklist),
            _ => None,
        }
    }

    fn forced(self) -> ForcedAction {
        match self {
            Listing::Whitelist => ForcedAction::Allow,
            Listing::Blacklist => ForcedAction::Block,
        }
    }
}

/// One listed fingerprint, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorListing {
    pub fingerprint_id: u64,
    pub minhash: Vec<u32>,
    pub listing: Listing,
    /// The class a blacklisted message gets (`Ham` for a whitelist).
    pub label: Label,
    /// The admin who listed it.
    pub who: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

impl OperatorListing {
    fn fingerprint(&self) -> Option<Fingerprint> {
        let minhash: [u32; NUM_HASHES] = self.minhash.as_slice().try_into().ok()?;
        Some(Fingerprint { minhash })
    }
}

/// The listings in force in this process.
#[derive(Debug, Default)]
pub struct OperatorList {
    /// (fingerprint, listing); empty in the common case, so a verdict pays one read lock.
    listed: RwLock<Vec<(Fingerprint, OperatorListing)>>,
    min_jaccard: f32,
}

impl OperatorList {
    pub fn new(min_jaccard: f32) -> Self {
        OperatorList {
            listed: RwLock::default(),
            min_jaccard,
        }
    }

    /// Replaces the listings in force (one per fingerprint id: the latest wins).
    pub fn replace(&self, listings: Vec<OperatorListing>) {
        let listed = listings
            .into_iter()
            .filter_map(|l| Some((l.fingerprint()?, l)))
            .collect();
        if let Ok(mut slot) = self.listed.write() {
            *slot = listed;
        }
    }

    /// Adds or replaces one listing.
    pub fn put(&self, listing: OperatorListing) {
        let Some(fp) = listing.fingerprint() else {
            return;
        };
        if let Ok(mut slot) = self.listed.write() {
            slot.retain(|(_, l)| l.fingerprint_id != listing.fingerprint_id);
            slot.push((fp, listing));
        }
    }

    /// Takes fingerprint `id`'s listing out of force.
    pub fn remove(&self, id: u64) {
        if let Ok(mut slot) = self.listed.write() {
            slot.retain(|(_, l)| l.fingerprint_id != id);
        }
    }

    /// Every listing in force.
    pub fn listed(&self) -> Vec<OperatorListing> {
        let listed = self.listed.read();
        listed.map_or_else(
            |_| Vec::new(),
            |l| l.iter().map(|(_, l)| l.clone()).collect(),
        )
    }

    /// The listing of fingerprint id `id`, if any.
    pub fn of(&self, id: u64) -> Option<Listing> {
        let listed = self.listed.read().ok()?;
        listed
            .iter()
            .find(|(_, l)| l.fingerprint_id == id)
            .map(|(_, l)| l.listing)
    }

    /// The most restrictive listing `fp` is a near-duplicate of, with its Jaccard estimate.
    fn matching(&self, fp: &Fingerprint) -> Option<(OperatorListing, f32)> {
        let listed = self.listed.read().ok()?;
        listed
            .iter()
            .filter_map(|(listed_fp, l)| {
                let j = fp.jaccard_estimate(listed_fp);
                (j >= self.min_jaccard).then_some((l, j))
            })
            .max_by_key(|(l, _)| l.listing.forced())
            .map(|(l, j)| (l.clone(), j))
    }
}

/// The scorer that applies [`OperatorList`].
#[derive(Debug, Clone)]
pub struct OperatorListScorer(pub Arc<OperatorList>);

impl Scorer for OperatorListScorer {
    fn name(&self) -> &'static str {
        OPERATOR_LIST
    }

    /// Operator listings only force actions; fusion was not fitted with them.
    fn weighed(&self) -> bool {
        false
    }

    fn score(&self, msg: &MessageContext<'_>) -> Result<ModelScore, ScoringError> {
        let Some((listed, jaccard)) = self.0.matching(msg.fingerprint) else {
            return Ok(ModelScore::new(OPERATOR_LIST, 0.0, "not listed"));
        };
        let reason = format!(
            "near-duplicate (Jaccard {jaccard:.2}) of {:016x}, {} by the operator",
            listed.fingerprint_id,
            match listed.listing {
                Listing::Whitelist => "whitelisted",
                Listing::Blacklist => "blacklisted",
            }
        );
        let (score, label) = match listed.listing {
            Listing::Whitelist => (0.0, Label::Ham),
            Listing::Blacklist => (1.0, listed.label),
        };
        let mut model = ModelScore::new(OPERATOR_LIST, score, reason);
        model.label = Some(label);
        model.forced_action = Some(listed.listing.forced());
        model.forced_by = ForceAuthority::Operator;
        Ok(model)
    }
}

/// Why a fingerprint could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("fingerprint {0:016x} is not in the similarity memory")]
    Unknown(u64),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Lists fingerprint `id` (an entry of the similarity memory) for the next verdicts: stored in
/// the state backend, put in force here, and logged in the sync log so the phones drop a
/// whitelisted fingerprint from their cache and match a blacklisted one before asking.
/// Blocking I/O: call off the async runtime.
pub fn list(
    app: &AppState,
    id: u64,
    listing: Listing,
    who: &str,
    at_ms: u64,
) -> Result<OperatorListing, ListError> {
    let state = app.state_backend();
    let entry = state.entry(id)?.ok_or(ListError::Unknown(id))?;
    let label = match listing {
        Listing::Whitelist => Label::Ham,
        Listing::Blacklist => entry.label,
    };
    let listed = OperatorListing {
        fingerprint_id: id,
        minhash: entry.minhash.to_vec(),
        listing,
        label,
        who: who.to_owned(),
        at_ms,
    };
    state.put_operator_listing(&listed)?;
    app.operator_list.put(listed.clone());
    let evidence = entry.counted_spam_evidence(app.similarity_config().report_quorum);
    state.sync_append(&[Change::Fingerprint {
        fingerprint: format!("{id:016x}"),
        minhash: listed.minhash.clone(),
        label: v1::Label::from(label) as i32,
        report_count: evidence.max(1),
        removed: listing == Listing::Whitelist,
    }])?;
    app.refresh_gauges();
    Ok(listed)
}

/// Takes fingerprint `id`'s listing out of force (stored, here, and for the phones: the sync
/// log then holds the fingerprint as the reports and seeds alone would, present while it has
/// counted spam evidence and no "not spam" quorum). Blocking I/O.
pub fn unlist(app: &AppState, id: u64) -> Result<(), ListError> {
    let state = app.state_backend();
    let entry = state.entry(id)?.ok_or(ListError::Unknown(id))?;
    state.remove_operator_listing(id)?;
    app.operator_list.remove(id);
    let config = app.similarity_config();
    let evidence = entry.counted_spam_evidence(config.report_quorum);
    let consensus = smsguard_scoring::similarity::consensus_of(config, &entry);
    state.sync_append(&[Change::Fingerprint {
        fingerprint: format!("{id:016x}"),
        minhash: entry.minhash.to_vec(),
        label: v1::Label::from(entry.label) as i32,
        report_count: evidence,
        removed: consensus == smsguard_scoring::similarity::Consensus::NotSpam || evidence == 0,
    }])?;
    app.refresh_gauges();
    Ok(())
}

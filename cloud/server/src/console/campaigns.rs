//! What the Campaigns and Reports pages show: the fingerprints users reported (the newest
//! [`TRAIL`] reports of the audit trail) and the operator's listings, grouped into clusters of
//! near-duplicates, with their counts from the similarity memory and their report times from
//! the trail. Only ids, hashes, classes and counts: the memory holds no text.
//!
//! Seeded entries (corpora, spam feed) carry no time and no report: they are counted, not
//! clustered. Growth is the reports of the last hour beside those of the hour before, both
//! from the trail (so only while the trail reaches that far back).

use std::collections::HashMap;

use smsguard_core::{Fingerprint, Label};
use smsguard_scoring::similarity::{consensus_of, AuditRecord, Consensus, Entry};

use crate::operator_list::Listing;
use crate::state::AppState;
use crate::state_backend::StateError;

/// Reports read from the audit trail.
pub const TRAIL: usize = 5_000;
/// Distinct fingerprints clustered (the most recently reported first).
pub const MAX_FINGERPRINTS: usize = 300;
/// Votes listed one by one on the Reports page.
pub const VOTES_SHOWN: usize = 100;
const HOUR_MS: i64 = 3_600_000;

/// One fingerprint of a cluster.
#[derive(Debug, Clone)]
pub struct Member {
    pub entry: Entry,
    pub listing: Option<Listing>,
    pub consensus: Consensus,
}

/// Near-duplicate fingerprints (Jaccard estimate at or above the match threshold, chained).
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Most reported first.
    pub members: Vec<Member>,
    /// Report classes users chose (from the trail), with counts.
    pub classes: Vec<(Label, u32)>,
    /// Seeded spam evidence (corpora, feed) of the members.
    pub seeded: u32,
    /// Current reporters per vote, from the memory.
    pub spam_reports: u32,
    pub not_spam_reports: u32,
    /// Votes in the trail window: spam, not spam, and those of distrusted reporters.
    pub trail_spam: u32,
    pub trail_not_spam: u32,
    pub trail_uncounted: u32,
    pub first_report_ms: Option<i64>,
    pub last_report_ms: Option<i64>,
    pub last_hour: u32,
    pub previous_hour: u32,
}

impl Cluster {
    /// The class most members hold.
    pub fn label(&self) -> Label {
        let mut counts: HashMap<Label, usize> = HashMap::new();
        for m in &self.members {
            *counts.entry(m.entry.label).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(label, n)| (*n, *label))
            .map_or(Label::Spam, |(label, _)| label)
    }

    /// The members' listing when they share one.
    pub fn listing(&self) -> Option<Listing> {
        let first = self.members.first()?.listing;
        self.members
            .iter()
            .all(|m| m.listing == first)
            .then_some(first)
            .flatten()
    }

    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.entry.id).collect()
    }
}

/// Everything both pages show.
#[derive(Debug, Clone, Default)]
pub struct CampaignView {
    /// Largest (by reports) first.
    pub clusters: Vec<Cluster>,
    /// The newest votes, newest first.
    pub votes: Vec<AuditRecord>,
    pub trail_len: usize,
    pub memory_len: usize,
    pub min_jaccard: f32,
}

/// Reads the trail and the entries and clusters them. Blocking: call off the async runtime.
pub fn gather(app: &AppState, now_ms: i64) -> Result<CampaignView, StateError> {
    let state = app.state_backend();
    let config = app.similarity_config();
    let trail = state.recent_reports(TRAIL)?;
    let mut ids: Vec<u64> = Vec::new();
    let listed = app.operator_list.listed();
    for id in trail
        .iter()
        .map(|r| r.fingerprint_id)
        .chain(listed.iter().map(|l| l.fingerprint_id))
    {
        if ids.len() < MAX_FINGERPRINTS && !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut members = Vec::new();
    for id in ids {
        if let Some(entry) = state.entry(id)? {
            members.push(Member {
                listing: app.operator_list.of(id),
                consensus: consensus_of(config, &entry),
                entry,
            });
        }
    }
    let mut clusters: Vec<Cluster> = group(members, config.min_jaccard)
        .into_iter()
        .map(|members| summarise(members, &trail, now_ms))
        .collect();
    clusters.sort_by_key(|c| std::cmp::Reverse(c.spam_reports + c.not_spam_reports));
    Ok(CampaignView {
        clusters,
        votes: trail.iter().take(VOTES_SHOWN).copied().collect(),
        trail_len: trail.len(),
        memory_len: state.similarity_len(),
        min_jaccard: config.min_jaccard,
    })
}

/// Groups members whose Jaccard estimate reaches `min_jaccard`, transitively (union-find over
/// every pair: a few hundred members at most).
fn group(members: Vec<Member>, min_jaccard: f32) -> Vec<Vec<Member>> {
    let fps: Vec<Fingerprint> = members
        .iter()
        .map(|m| Fingerprint {
            minhash: m.entry.minhash,
        })
        .collect();
    let mut parent: Vec<usize> = (0..members.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..fps.len() {
        for j in i + 1..fps.len() {
            if fps[i].jaccard_estimate(&fps[j]) >= min_jaccard {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: HashMap<usize, Vec<Member>> = HashMap::new();
    for (i, member) in members.into_iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(member);
    }
    let mut groups: Vec<(usize, Vec<Member>)> = groups.into_iter().collect();
    groups.sort_by_key(|(r, _)| *r);
    groups.into_iter().map(|(_, g)| g).collect()
}

fn summarise(mut members: Vec<Member>, trail: &[AuditRecord], now_ms: i64) -> Cluster {
    members
        .sort_by_key(|m| std::cmp::Reverse(m.entry.user_spam_reports + m.entry.not_spam_reports));
    let mut cluster = Cluster::default();
    let mut classes: HashMap<Label, u32> = HashMap::new();
    for m in &members {
        cluster.seeded += m.entry.seed_count;
        cluster.spam_reports += m.entry.user_spam_reports;
        cluster.not_spam_reports += m.entry.not_spam_reports;
    }
    let ids: Vec<u64> = members.iter().map(|m| m.entry.id).collect();
    for r in trail.iter().filter(|r| ids.contains(&r.fingerprint_id)) {
        match (r.counted, r.spam) {
            (false, _) => cluster.trail_uncounted += 1,
            (true, true) => cluster.trail_spam += 1,
            (true, false) => cluster.trail_not_spam += 1,
        }
        if let Some(class) = r.class.filter(|_| r.spam) {
            *classes.entry(class).or_default() += 1;
        }
        cluster.first_report_ms = Some(cluster.first_report_ms.map_or(r.at_ms, |t| t.min(r.at_ms)));
        cluster.last_report_ms = Some(cluster.last_report_ms.map_or(r.at_ms, |t| t.max(r.at_ms)));
        let age = now_ms - r.at_ms;
        if (0..HOUR_MS).contains(&age) {
            cluster.last_hour += 1;
        } else if (HOUR_MS..2 * HOUR_MS).contains(&age) {
            cluster.previous_hour += 1;
        }
    }
    let mut classes: Vec<(Label, u32)> = classes.into_iter().collect();
    classes.sort_by_key(|(label, n)| (std::cmp::Reverse(*n), *label));
    cluster.classes = classes;
    cluster.members = members;
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(text: &str) -> Member {
        let normalized = smsguard_core::normalize(text);
        let fp = smsguard_core::MinHasher::new().fingerprint(&normalized.text);
        Member {
            entry: Entry::empty(&fp),
            listing: None,
            consensus: Consensus::None,
        }
    }

    #[test]
    fn near_duplicates_share_a_cluster_and_others_do_not() {
        let members = vec![
            member("your parcel 4471 is held at the depot, pay the customs fee at parcel.example"),
            member("lunch on friday? the new place by the river opens at noon, my treat"),
            member("your parcel 9902 is held at the depot, pay the customs fee at parcel.example"),
        ];
        let (first, third) = (members[0].entry.id, members[2].entry.id);
        let groups = group(members, 0.5);
        assert_eq!(groups.len(), 2);
        let ids: Vec<u64> = groups[0].iter().map(|m| m.entry.id).collect();
        assert_eq!(ids, [first, third]);
        assert_eq!(groups[1].len(), 1);
    }
}

//! Thresholds of the private-mode fusion head, picked on one market's dev rows.
//!
//! The head may only raise a verdict (the phone keeps the stronger of its local action and the
//! head's), so against the edge alone a tag threshold `t` gains the spam the edge allowed with
//! `p >= t` and costs the ham it allowed with `p >= t`. The tag threshold is the one with the
//! largest net gain such that (a) the ham it adds is within the market's budget and (b) no dev
//! corpus of the market loses accuracy (gain >= cost on each). The quarantine threshold is the
//! lowest at or above the tag that holds at most its budget of the market's ham that the edge did
//! not already hold.

use std::collections::BTreeMap;

use smsguard_core::Action;

/// One dev message as the threshold picking sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadRow {
    /// Index of its corpus.
    pub corpus: usize,
    pub spam: bool,
    /// The edge model's action alone.
    pub local_action: Action,
    /// The head's fused probability.
    pub probability: f64,
}

/// Ham allowed by a budget: `floor(fraction * ham)`.
fn allowed_ham(rows: &[HeadRow], fraction: f64) -> usize {
    let ham = rows.iter().filter(|r| !r.spam).count();
    (fraction * ham as f64).floor() as usize
}

/// The tag threshold (see the module docs); `None` when no threshold gains anything.
pub fn pick_tag(rows: &[HeadRow], ham_fraction: f64) -> Option<f64> {
    let budget = allowed_ham(rows, ham_fraction);
    let mut raised: Vec<&HeadRow> = rows
        .iter()
        .filter(|r| r.local_action == Action::Allow)
        .collect();
    raised.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let mut net_by_corpus: BTreeMap<usize, i64> = BTreeMap::new();
    let (mut added_ham, mut net) = (0usize, 0i64);
    let mut best: Option<(i64, f64)> = None;
    let mut i = 0;
    while i < raised.len() {
        // Every row at this probability is raised together.
        let threshold = raised[i].probability;
        while i < raised.len() && raised[i].probability >= threshold {
            let delta = if raised[i].spam { 1 } else { -1 };
            added_ham += usize::from(!raised[i].spam);
            *net_by_corpus.entry(raised[i].corpus).or_default() += delta;
            net += delta;
            i += 1;
        }
        if added_ham > budget {
            break; // lower thresholds only add more ham
        }
        let no_corpus_loses = net_by_corpus.values().all(|&v| v >= 0);
        if no_corpus_loses && net > best.map_or(0, |(n, _)| n) {
            best = Some((net, threshold));
        }
    }
    best.map(|(_, threshold)| threshold)
}

/// The quarantine threshold (see the module docs); `None` without a tag threshold or when even
/// a probability of 1 would hold too much ham.
pub fn pick_quarantine(rows: &[HeadRow], tag: Option<f64>, ham_fraction: f64) -> Option<f64> {
    let tag = tag?;
    let budget = allowed_ham(rows, ham_fraction);
    let mut ham: Vec<f64> = rows
        .iter()
        .filter(|r| !r.spam && r.local_action < Action::Quarantine)
        .map(|r| r.probability)
        .collect();
    ham.sort_by(|a, b| b.total_cmp(a));
    let threshold = match ham.get(budget) {
        None => tag,
        // Just above the first ham past the budget (probabilities are >= 0, so the next bit
        // pattern is the next larger float).
        Some(&p) => f64::from_bits(p.max(0.0).to_bits() + 1).max(tag),
    };
    (threshold <= 1.0).then_some(threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(corpus: usize, spam: bool, local_action: Action, probability: f64) -> HeadRow {
        HeadRow {
            corpus,
            spam,
            local_action,
            probability,
        }
    }

    fn hams(corpus: usize, n: usize, p: f64) -> Vec<HeadRow> {
        vec![row(corpus, false, Action::Allow, p); n]
    }

    #[test]
    fn the_tag_maximises_net_gain_within_the_ham_budget() {
        // 400 ham at p 0.1 (budget 0.5 %: 2 may be raised), two ham at 0.8 and 0.6.
        let mut rows = hams(0, 400, 0.1);
        rows.extend([
            row(0, true, Action::Allow, 0.9),
            row(0, false, Action::Allow, 0.8),
            row(0, true, Action::Allow, 0.7),
            row(0, true, Action::Allow, 0.7),
            row(0, false, Action::Allow, 0.6),
            row(0, true, Action::Allow, 0.5),
            // Already tagged by the edge: neither gain nor cost.
            row(0, false, Action::Tag, 0.95),
        ]);
        // Net at 0.9: 1; 0.8: 0; 0.7: 2; 0.6: 1; 0.5: 2 (ties go to the higher threshold).
        assert_eq!(pick_tag(&rows, 0.005), Some(0.7));
        // With no ham budget only 0.9 is allowed.
        assert_eq!(pick_tag(&rows, 0.0), Some(0.9));
    }

    #[test]
    fn no_corpus_may_lose_accuracy() {
        let mut rows = hams(0, 1000, 0.0);
        rows.extend([
            row(0, true, Action::Allow, 0.9),
            row(0, true, Action::Allow, 0.9),
            row(1, false, Action::Allow, 0.8),
            row(0, true, Action::Allow, 0.7),
            row(1, true, Action::Allow, 0.6),
        ]);
        // At 0.8 and 0.7 corpus 1 has lost one message; at 0.6 it is even again.
        assert_eq!(pick_tag(&rows, 0.01), Some(0.6));
        // If corpus 1 never recovers, the best threshold stops above its ham.
        rows.pop();
        assert_eq!(pick_tag(&rows, 0.01), Some(0.9));
    }

    #[test]
    fn nothing_gained_means_no_tag_and_no_quarantine() {
        let mut rows = hams(0, 100, 0.9);
        rows.push(row(0, true, Action::Allow, 0.5));
        assert_eq!(pick_tag(&rows, 0.005), None);
        assert_eq!(pick_quarantine(&rows, None, 0.001), None);
    }

    #[test]
    fn the_quarantine_sits_above_the_ham_past_its_budget_and_at_least_at_the_tag() {
        // 2000 ham: budget 0.1 % = 2 may be held; ham at 0.99, 0.98, 0.97 (not held by the
        // edge) and one the edge already quarantines.
        let mut rows = hams(0, 1996, 0.1);
        rows.extend([
            row(0, false, Action::Allow, 0.99),
            row(0, false, Action::Tag, 0.98),
            row(0, false, Action::Allow, 0.97),
            row(0, false, Action::Quarantine, 1.0),
        ]);
        let q = pick_quarantine(&rows, Some(0.5), 0.001).unwrap();
        assert!(q > 0.97 && q < 0.971, "{q}");
        assert_eq!(pick_quarantine(&rows, Some(0.999), 0.001), Some(0.999));
        assert_eq!(pick_quarantine(&rows, Some(0.5), 0.01), Some(0.5));
        let saturated = hams(0, 10, 1.0);
        assert_eq!(pick_quarantine(&saturated, Some(0.5), 0.0), None);
    }
}

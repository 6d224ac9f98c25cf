//! Per-API-key report budgets: a token bucket per reporter (the key's id; anonymous clients
//! share one), holding `per_minute` reports and refilled at `per_minute` a minute. A user files
//! a report now and then; one key filing 215 in 0.3 s is a script, and each excess report is
//! refused (RESOURCE_EXHAUSTED) and counted. Memory is bounded by the configured keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::auth::TokenBucket;

/// The report budgets of every key.
#[derive(Debug)]
pub struct ReportBudgets {
    per_minute: u32,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl ReportBudgets {
    /// `per_minute` reports a minute per key; 0 turns budgets off.
    pub fn new(per_minute: u32) -> Self {
        ReportBudgets {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    /// Takes one report from `reporter`'s budget at `now`; false when it is spent.
    pub fn try_take(&self, reporter: &str, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let per_second = f64::from(self.per_minute) / 60.0;
        // A panic while the map was held leaves whole buckets behind: keep using them.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .entry(reporter.to_owned())
            .or_insert_with(|| TokenBucket::full_at(per_second, self.per_minute, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_key_spends_its_budget_and_gets_it_back_over_a_minute() {
        let budgets = ReportBudgets::new(3);
        let start = Instant::now();
        assert!((0..3).all(|_| budgets.try_take("a", start)));
        assert!(!budgets.try_take("a", start));
        assert!(budgets.try_take("b", start), "budgets are per key");
        assert!(budgets.try_take("a", start + Duration::from_secs(20)));
        assert!(!budgets.try_take("a", start + Duration::from_secs(21)));
        assert!(ReportBudgets::new(0).try_take("a", start));
    }
}

//! Small statistics helpers: summaries of samples and of lookup outcomes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::world::{LookupOutcome, LookupResult, Miss};

/// Count, mean and percentiles of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises `values` (any order).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Summary {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let rank = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Summary { n, mean: v.iter().sum::<f64>() / n as f64, p50: rank(0.5), p99: rank(0.99), max: v[n - 1] }
    }
}

/// What a batch of lookups came to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LookupStats {
    /// Lookups that finished.
    pub finished: usize,
    /// Lookups that returned the true owner at the time of the answer.
    pub correct: usize,
    /// Lookups that returned another node.
    pub wrong: usize,
    /// Wrong answers by what was going on at the time.
    pub wrong_by_cause: BTreeMap<Miss, usize>,
    /// Lookups that failed, by reason.
    pub failed: BTreeMap<String, usize>,
    /// Lookups still unanswered when the batch was closed.
    pub unanswered: usize,
    /// Hops to the owner (answered lookups).
    pub hops: Summary,
    /// Hops of request plus reply.
    pub path_len: Summary,
    /// Seconds from request to answer.
    pub latency_s: Summary,
}

impl LookupStats {
    /// Summarises finished lookups; `unanswered` counts those that never finished.
    pub fn of(outcomes: &[LookupOutcome], unanswered: usize) -> LookupStats {
        let mut s = LookupStats { finished: outcomes.len(), unanswered, ..LookupStats::default() };
        let mut hops = Vec::new();
        let mut path = Vec::new();
        let mut latency = Vec::new();
        for o in outcomes {
            match &o.result {
                LookupResult::Found { hops: h, path_len, miss, .. } => {
                    if o.correct() {
                        s.correct += 1;
                    } else {
                        s.wrong += 1;
                        *s.wrong_by_cause.entry(miss.unwrap_or(Miss::Other)).or_default() += 1;
                    }
                    hops.push(f64::from(*h));
                    path.push(f64::from(*path_len));
                    latency.push(o.done.since(o.issued).as_secs_f64());
                }
                LookupResult::Failed(reason) => *s.failed.entry(format!("{reason:?}")).or_default() += 1,
            }
        }
        s.hops = Summary::of(hops);
        s.path_len = Summary::of(path);
        s.latency_s = Summary::of(latency);
        s
    }

    /// Lookups asked: finished plus unanswered.
    pub fn asked(&self) -> usize {
        self.finished + self.unanswered
    }

    /// Fraction of asked lookups that returned the true owner.
    pub fn success_rate(&self) -> f64 {
        if self.asked() == 0 {
            return 1.0;
        }
        self.correct as f64 / self.asked() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = Summary::of((1..=100).map(f64::from));
        assert_eq!(s.n, 100);
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.p50, 50.0);
        assert_eq!(s.p99, 99.0);
        assert_eq!(s.max, 100.0);
        assert_eq!(Summary::of([]).n, 0);
        assert_eq!(Summary::of([3.0]).p99, 3.0);
    }
}

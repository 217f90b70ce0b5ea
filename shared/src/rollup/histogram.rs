//! The latency histogram of a rollup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A latency histogram with logarithmic buckets (each 4% wider than the
/// last): it merges by adding counts, so the p50 and p95 of a month come
/// from its hours, within 2% of the exact value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram(BTreeMap<u16, f64>);

const GROWTH: f64 = 1.04;

impl Histogram {
    fn index(ms: f64) -> u16 {
        ((ms.max(0.0) + 1.0).ln() / GROWTH.ln()).floor().min(f64::from(u16::MAX)) as u16
    }

    /// The representative value of a bucket (its geometric middle).
    fn value(i: u16) -> f64 {
        GROWTH.powf(f64::from(i) + 0.5) - 1.0
    }

    pub fn record(&mut self, ms: f64, weight: f64) {
        *self.0.entry(Self::index(ms)).or_default() += weight;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (i, w) in &other.0 {
            *self.0.entry(*i).or_default() += w;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// The value below which a fraction `q` of the weight lies.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * total;
        let mut seen = 0.0;
        for (i, w) in &self.0 {
            seen += w;
            if seen >= target - 1e-9 {
                return Some(Self::value(*i));
            }
        }
        self.0.keys().next_back().map(|i| Self::value(*i))
    }
}

//! The read API's figures, computed from rollups only: what the query
//! function returns, what the jobs store and report, and what the tests
//! compare against a direct computation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::snapshot::{ser_num, ser_opt};

use super::period::{Piece, clip};
use crate::rollup::{ReportStats, Rollup, shown};
use crate::time::day_label;

/// Rounds to 2 decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A share in percent, always within 0..=100.
pub(crate) fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { round2((100.0 * part / whole).clamp(0.0, 100.0)) } else { 0.0 }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyCount {
    pub key: String,
    pub count: u64,
}

/// `/activity-summary` groupings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    ActivityType,
    User,
    Day,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::ActivityType => "activity_type",
            GroupBy::User => "user",
            GroupBy::Day => "day",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivitySummary {
    pub group_by: &'static str,
    pub total: u64,
    pub groups: Vec<KeyCount>,
}

pub(crate) fn by_count_desc(map: BTreeMap<String, u64>) -> Vec<KeyCount> {
    let mut v: Vec<KeyCount> = map.into_iter().map(|(key, count)| KeyCount { key: shown(&key).to_owned(), count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v
}

/// Activity counts grouped by action, user or UTC day (every day of the
/// range listed, zero when empty). The pieces are already narrowed to
/// what the caller may see.
pub fn activity_summary(pieces: &[Piece], group_by: GroupBy, days: &[DateTime<Utc>]) -> ActivitySummary {
    let all = super::period::total(pieces);
    let groups = match group_by {
        GroupBy::ActivityType => by_count_desc(all.actions()),
        GroupBy::User => by_count_desc(all.users.iter().map(|(u, a)| (u.clone(), a.total())).collect()),
        GroupBy::Day => {
            let mut per_day: BTreeMap<String, u64> = days.iter().map(|d| (day_label(*d), 0)).collect();
            for p in pieces {
                crate::rollup::sat(per_day.entry(day_label(p.start)).or_default(), p.rollup.activities());
            }
            per_day.into_iter().map(|(key, count)| KeyCount { key, count }).collect()
        }
    };
    ActivitySummary { group_by: group_by.as_str(), total: all.activities(), groups }
}

/// `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Clients seen in the kept history (the retention window, or the
    /// period when it is longer).
    pub total_clients: usize,
    /// Clients with an event in the period.
    pub active_clients: usize,
    /// Reports generated in the kept history.
    pub total_reports: u64,
    pub reports_this_period: u64,
    #[serde(serialize_with = "ser_opt")]
    pub success_rate_percentage: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub avg_processing_time_seconds: Option<f64>,
    pub active_users: usize,
    pub total_activities: u64,
}

pub fn metrics(period: &Rollup, history: &Rollup) -> Metrics {
    let clients: BTreeSet<&String> = history.clients.keys().chain(period.clients.keys()).collect();
    Metrics {
        total_clients: clients.len(),
        active_clients: period.clients.len(),
        total_reports: history.reports.generated.max(period.reports.generated),
        reports_this_period: period.reports.generated,
        success_rate_percentage: period.reports.success_rate().map(round2),
        avg_processing_time_seconds: period.reports.avg_processing_seconds().map(round2),
        active_users: period.users.len(),
        total_activities: period.activities(),
    }
}

/// `/trends` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendMetric {
    Activities,
    Reports,
    ApiRequests,
    Errors,
    ActiveUsers,
}

/// Every trend metric of one bucket (stored in a dashboard window as
/// shown: its figures are rounded as the answer rounds them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketTotals {
    pub bucket_start: DateTime<Utc>,
    pub activities: u64,
    pub reports: u64,
    #[serde(serialize_with = "ser_num")]
    pub api_requests: f64,
    #[serde(serialize_with = "ser_num")]
    pub errors: f64,
    pub active_users: usize,
}

impl BucketTotals {
    pub fn value(&self, m: TrendMetric) -> f64 {
        match m {
            TrendMetric::Activities => self.activities as f64,
            TrendMetric::Reports => self.reports as f64,
            TrendMetric::ApiRequests => self.api_requests,
            TrendMetric::Errors => self.errors,
            TrendMetric::ActiveUsers => self.active_users as f64,
        }
    }
}

/// One point of `/trends`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub bucket_start: DateTime<Utc>,
    #[serde(serialize_with = "ser_num")]
    pub value: f64,
}

/// The totals of each bucket (`bounds` holds every start and the last
/// end), zero-filled. An hour cut by a bucket edge is split by quarters.
pub fn buckets(pieces: &[Piece], bounds: &[DateTime<Utc>]) -> Vec<BucketTotals> {
    bounds
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let mut t = BucketTotals { bucket_start: a, ..Default::default() };
            let mut users: BTreeSet<&str> = BTreeSet::new();
            let mut clipped = Vec::new();
            for p in pieces.iter().filter(|p| p.end > a && p.start < b) {
                if p.start >= a && p.end <= b {
                    add_counters(&mut t, &p.rollup);
                    users.extend(p.rollup.users.keys().map(String::as_str));
                } else if let Some(part) = clip(p, a, b) {
                    clipped.push(part);
                }
            }
            for part in &clipped {
                add_counters(&mut t, part);
                users.extend(part.users.keys().map(String::as_str));
            }
            t.active_users = users.len();
            t
        })
        .collect()
}

fn add_counters(t: &mut BucketTotals, r: &Rollup) {
    let c = r.counters();
    crate::rollup::sat(&mut t.activities, c.activities);
    crate::rollup::sat(&mut t.reports, c.reports);
    t.api_requests += c.api_requests;
    t.errors += c.errors;
}

/// A count and its share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub count: u64,
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryShare {
    pub category: String,
    pub count: u64,
    pub percentage: f64,
}

/// `/categories`: recommendations per category, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categories {
    pub total: u64,
    pub categories: Vec<CategoryShare>,
}

pub fn categories(r: &ReportStats) -> Categories {
    let total: u64 = r.categories.values().fold(0, |a, b| a.saturating_add(*b));
    let categories = by_count_desc(r.categories.clone())
        .into_iter()
        .map(|kc| CategoryShare { percentage: pct(kc.count as f64, total as f64), category: kc.key, count: kc.count })
        .collect();
    Categories { total, categories }
}

/// `/business-impact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessImpact {
    pub total: u64,
    pub high: Share,
    pub medium: Share,
    pub low: Share,
}

pub fn business_impact(r: &ReportStats) -> BusinessImpact {
    let total = r.impact_high.saturating_add(r.impact_medium).saturating_add(r.impact_low);
    let share = |n: u64| Share { count: n, percentage: pct(n as f64, total as f64) };
    BusinessImpact { total, high: share(r.impact_high), medium: share(r.impact_medium), low: share(r.impact_low) }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientPerformance {
    pub client_id: String,
    pub reports: u64,
    pub completed: u64,
    pub failed: u64,
    #[serde(serialize_with = "ser_opt")]
    pub success_rate_percentage: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub avg_processing_time_seconds: Option<f64>,
    pub total_estimated_savings: f64,
    pub activities: u64,
}

/// `/client-performance`: the top `limit` clients by reports.
pub fn client_performance(r: &Rollup, limit: usize) -> Vec<ClientPerformance> {
    let mut v: Vec<ClientPerformance> = r
        .clients
        .iter()
        .map(|(id, c)| ClientPerformance {
            client_id: shown(id).to_owned(),
            reports: c.reports.generated,
            completed: c.reports.completed,
            failed: c.reports.failed,
            success_rate_percentage: c.reports.success_rate().map(round2),
            avg_processing_time_seconds: c.reports.avg_processing_seconds().map(round2),
            total_estimated_savings: round2(c.reports.savings),
            activities: c.activities,
        })
        .collect();
    v.sort_by(|a, b| b.reports.cmp(&a.reports).then(b.activities.cmp(&a.activities)).then_with(|| a.client_id.cmp(&b.client_id)));
    v.truncate(limit);
    v
}

mod calls;
pub use calls::*;
mod ops;
pub use ops::*;

#[cfg(test)]
mod tests;

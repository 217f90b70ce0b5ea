//! The body of every read route, one type per response schema of
//! `infra/openapi.yaml` (tests/tests/openapi.rs checks real answers
//! against those schemas). The figures inside come from
//! [`super::answers`], whose types are the whole body of some routes
//! (`/metrics` is [`Metrics`], `/activity-summary` [`super::answers::ActivitySummary`],
//! `/categories` [`Categories`], `/business-impact` [`BusinessImpact`],
//! `/system-health` [`crate::model::HealthSnapshot`]); these types put
//! the others together.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::answers::{
    AuthEvents, BucketTotals, BusinessImpact, Categories, ClientPerformance, DayCalls, EndpointStats, Grouped, Metrics, TrendPoint,
};
use super::period::DateRange;
use crate::model::Event;
use crate::report::{DashboardMetrics, Period};

/// A page of items, newest first, and where the next page starts (`null`
/// on the last). `/user-activity`, `/reports/weekly`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The latest items, unpaged. `/recent-activity`.
#[derive(Debug, Serialize)]
pub struct Latest<T> {
    pub items: Vec<T>,
}

/// A stored JSON document passed through as it was written (weekly
/// reports): the job that wrote it shaped it.
pub type Stored = Box<RawValue>;

/// The range an answer covers: `date_to` exclusive.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Covered {
    pub date_from: DateTime<Utc>,
    pub date_to: DateTime<Utc>,
}

impl From<DateRange> for Covered {
    fn from(r: DateRange) -> Self {
        Covered { date_from: r.from, date_to: r.to }
    }
}

/// `/dashboard`: every part at once.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub period: String,
    #[serde(flatten)]
    pub covered: Covered,
    pub metrics: Metrics,
    pub trends: Vec<BucketTotals>,
    pub categories: Categories,
    pub recent_activity: Vec<Event>,
    pub client_performance: Vec<ClientPerformance>,
    pub business_impact: BusinessImpact,
}

/// `/trends`.
#[derive(Debug, Serialize)]
pub struct Trends {
    pub granularity: String,
    pub metric: String,
    pub tz: String,
    #[serde(flatten)]
    pub covered: Covered,
    pub points: Vec<TrendPoint>,
}

/// `/client-performance`.
#[derive(Debug, Serialize)]
pub struct Clients {
    pub clients: Vec<ClientPerformance>,
}

/// `/api-requests`.
#[derive(Debug, Serialize)]
pub struct ApiRequests {
    #[serde(flatten)]
    pub covered: Covered,
    pub endpoints: Vec<EndpointStats>,
}

/// `/auth-events`.
#[derive(Debug, Serialize)]
pub struct AuthEventsAnswer {
    #[serde(flatten)]
    pub covered: Covered,
    #[serde(flatten)]
    pub events: AuthEvents,
}

/// `/external-calls`: per service (or per service and model, user or
/// endpoint), and per UTC day when asked.
#[derive(Debug, Serialize)]
pub struct ExternalCalls {
    pub group_by: &'static str,
    #[serde(flatten)]
    pub covered: Covered,
    #[serde(flatten)]
    pub calls: Grouped,
    /// Every call's cost, summed exactly and rounded to a millionth.
    pub total_cost: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<DayCalls>>,
}

/// `POST /cache/invalidate`.
#[derive(Debug, Serialize)]
pub struct Invalidated {
    pub invalidated: usize,
}

#[cfg(test)]
mod tests {
    use super::super::answers;
    use super::*;

    #[test]
    fn ranges_flatten_into_the_answer_and_costs_round() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let covered = Covered::from(DateRange { from: at("2026-11-01T00:00:00Z"), to: at("2026-11-02T00:00:00Z") });
        let mut r = crate::rollup::Rollup::default();
        for cost in [0.1, 0.2] {
            let s = r.external.entry("gemini".into()).or_default();
            (s.calls, s.cost) = (s.calls + 1, s.cost + cost);
        }
        let calls = Grouped::of(&r, crate::rollup::CallKey::Service, 50);
        let v =
            serde_json::to_value(ExternalCalls { group_by: "service", covered, calls, total_cost: answers::external_cost(&r), days: None })
                .unwrap();
        assert_eq!(v["date_from"], "2026-11-01T00:00:00Z");
        assert_eq!(v["total_cost"], 0.3, "0.1 + 0.2 is shown as 0.3");
        assert_eq!(v["services"][0]["total_cost"], 0.3);
        assert_eq!(v["group_by"], "service");
        assert!(v.get("days").is_none(), "days only when asked");
    }
}

/// `/metrics/history`: stored DashboardMetrics of calendar periods,
/// oldest first.
#[derive(Debug, Serialize)]
pub struct MetricsHistory {
    pub period_type: Period,
    pub items: Vec<PeriodMetrics>,
}

/// One stored period: its first day, the day after the last day counted
/// (exclusive), and the figures of `/metrics`, categories and impact.
#[derive(Debug, Serialize)]
pub struct PeriodMetrics {
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub categories: Categories,
    pub business_impact: BusinessImpact,
}

impl From<DashboardMetrics> for PeriodMetrics {
    fn from(m: DashboardMetrics) -> Self {
        PeriodMetrics {
            period_start: m.start,
            period_end: m.end,
            metrics: m.metrics,
            categories: m.categories,
            business_impact: m.business_impact,
        }
    }
}

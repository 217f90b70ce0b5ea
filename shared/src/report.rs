//! The figures the jobs store: period metrics (the dashboard's seed
//! fields per day, ISO week, month and year) and the weekly report, both
//! computed from rollups with the read API's own rules (`query::answers`),
//! so a report never disagrees with the routes.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::snapshot::ser_opt;
use crate::query::answers::{
    self, BusinessImpact, CallRow, Categories, ClientPerformance, EndpointStats, IpCount, KeyCount, Metrics, ServiceStats, UserCount,
    round2,
};
use crate::rollup::{CallKey, ExternalStats, Rollup, shown, split_external_key};
use crate::time::week_label;

/// The periods metrics are stored for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Daily, Period::Weekly, Period::Monthly, Period::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }

    /// How far `/metrics/history` looks back by default, in days, and the
    /// longest range it accepts: 30 days, 26 weeks, 24 months or 10 years;
    /// daily and weekly ranges at most 400 days, monthly and yearly 10 years.
    pub fn history_days(self) -> (i64, i64) {
        match self {
            Period::Daily => (30, 400),
            Period::Weekly => (26 * 7, 400),
            Period::Monthly => (731, 3653),
            Period::Yearly => (3653, 3653),
        }
    }

    /// The first and the day after the last day of the period holding `day`.
    pub fn bounds(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Period::Daily => (day, day + Duration::days(1)),
            Period::Weekly => {
                let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Period::Monthly => {
                let first = day.with_day(1).expect("day 1 exists");
                (first, first.checked_add_months(chrono::Months::new(1)).expect("in range"))
            }
            Period::Yearly => {
                let first = NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("1 January exists");
                (first, NaiveDate::from_ymd_opt(day.year() + 1, 1, 1).expect("1 January exists"))
            }
        }
    }
}

/// DashboardMetrics of one period: the dashboard's seed fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardMetrics {
    pub period: Period,
    pub start: NaiveDate,
    /// The day after the last day counted (the period's end, or the end of
    /// the job's window for a period still running).
    pub end: NaiveDate,
    /// Clients, reports, success rate, processing time, users, activities:
    /// the figures of `/metrics`, by the same rule.
    #[serde(flatten)]
    pub metrics: Metrics,
    pub categories: Categories,
    pub business_impact: BusinessImpact,
}

/// Metrics of a period from its rollup and the kept history up to its end
/// (the same rule as `/metrics`).
pub fn dashboard_metrics(period: Period, start: NaiveDate, end: NaiveDate, span: &Rollup, history: &Rollup) -> DashboardMetrics {
    DashboardMetrics {
        period,
        start,
        end,
        metrics: answers::metrics(span, history),
        categories: answers::categories(&span.reports),
        business_impact: answers::business_impact(&span.reports),
    }
}

/// Events per kind (API requests weighted by their sample rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KindTotals {
    pub activity: u64,
    #[serde(serialize_with = "crate::model::snapshot::ser_num")]
    pub api_request: f64,
    pub auth: u64,
    pub external_call: u64,
}

impl KindTotals {
    pub fn of(r: &Rollup) -> Self {
        Self {
            activity: r.activities(),
            api_request: r.api.values().map(|s| s.count).sum(),
            auth: r.auth.values().map(|o| o.success + o.failure).sum(),
            external_call: r.external.values().map(|s| s.calls).sum(),
        }
    }
}

/// Week-over-week change per kind, in percent; `None` when the previous
/// week had none of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KindChange {
    #[serde(serialize_with = "ser_opt")]
    pub activity: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub api_request: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub auth: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub external_call: Option<f64>,
}

fn change(now: f64, before: f64) -> Option<f64> {
    (before > 0.0).then(|| round2(100.0 * (now - before) / before))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportOutcomes {
    pub generated: u64,
    #[serde(serialize_with = "ser_opt")]
    pub success_rate_percentage: Option<f64>,
    #[serde(serialize_with = "ser_opt")]
    pub avg_processing_time_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedLogins {
    pub total: u64,
    pub top_ips: Vec<IpCount>,
    pub top_users: Vec<UserCount>,
}

/// The weekly report of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklyReport {
    pub tenant: String,
    pub week: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub totals: KindTotals,
    pub previous_week: KindTotals,
    pub change_percent: KindChange,
    pub most_active_users: Vec<KeyCount>,
    pub most_active_clients: Vec<ClientPerformance>,
    pub reports: ReportOutcomes,
    /// By p95 response time, slowest first.
    pub slowest_endpoints: Vec<EndpointStats>,
    /// By 5xx responses, most first; endpoints without any are left out.
    pub most_failing_endpoints: Vec<EndpointStats>,
    pub failed_logins: FailedLogins,
    pub external_api_cost: Vec<ServiceStats>,
    pub total_external_cost: f64,
    /// Per service and model, costliest first (`/external-calls?group_by=model`).
    pub top_models: Vec<CallRow>,
    /// The users whose calls cost most, over every service; calls without
    /// a user count in `external_api_cost` only.
    pub top_spenders: Vec<Spender>,
}

/// A user's external calls over every service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spender {
    pub user_id: String,
    pub calls: u64,
    pub total_cost: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The `limit` users whose external calls cost most (ties: more calls,
/// then by id); the rollups' merged entry is shown as `other`.
pub fn top_spenders(r: &Rollup, limit: usize) -> Vec<Spender> {
    let mut per_user: BTreeMap<&str, ExternalStats> = BTreeMap::new();
    for (k, s) in &r.external_users {
        if let (_, Some(user)) = split_external_key(k) {
            per_user.entry(shown(user)).or_default().merge(s);
        }
    }
    let mut v: Vec<Spender> = per_user
        .into_iter()
        .map(|(u, s)| Spender {
            user_id: u.to_owned(),
            calls: s.calls,
            total_cost: answers::usd(s.cost),
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
        })
        .collect();
    v.sort_by(|a, b| b.total_cost.total_cmp(&a.total_cost).then(b.calls.cmp(&a.calls)).then_with(|| a.user_id.cmp(&b.user_id)));
    v.truncate(limit);
    v
}

/// How many entries each top list of the report holds.
pub const TOP: usize = 10;

pub fn weekly_report(tenant: &str, monday: NaiveDate, week: &Rollup, previous: &Rollup) -> WeeklyReport {
    let start = monday.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let (totals, previous_week) = (KindTotals::of(week), KindTotals::of(previous));
    let mut users: Vec<KeyCount> = week.users.iter().map(|(u, a)| KeyCount { key: u.clone(), count: a.total() }).collect();
    users.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    users.truncate(TOP);
    let mut clients = answers::client_performance(week, usize::MAX);
    clients.sort_by(|a, b| b.activities.cmp(&a.activities).then(b.reports.cmp(&a.reports)).then_with(|| a.client_id.cmp(&b.client_id)));
    clients.truncate(TOP);
    let endpoints = answers::api_requests(week, None, None);
    let mut slowest: Vec<EndpointStats> = endpoints.iter().filter(|e| e.p95_response_time_ms.is_some()).cloned().collect();
    slowest.sort_by(|a, b| b.p95_response_time_ms.unwrap_or(0.0).total_cmp(&a.p95_response_time_ms.unwrap_or(0.0)));
    slowest.truncate(TOP);
    let mut failing: Vec<EndpointStats> = endpoints.into_iter().filter(|e| e.error_count > 0.0).collect();
    failing.sort_by(|a, b| b.error_count.total_cmp(&a.error_count));
    failing.truncate(TOP);
    let auth = answers::auth_events(week, TOP);
    let external = answers::external_calls(week);
    let total_external_cost = answers::external_cost(week);
    WeeklyReport {
        tenant: tenant.to_owned(),
        week: week_label(monday),
        start,
        end: start + Duration::days(7),
        totals,
        previous_week,
        change_percent: KindChange {
            activity: change(totals.activity as f64, previous_week.activity as f64),
            api_request: change(totals.api_request, previous_week.api_request),
            auth: change(totals.auth as f64, previous_week.auth as f64),
            external_call: change(totals.external_call as f64, previous_week.external_call as f64),
        },
        most_active_users: users,
        most_active_clients: clients,
        reports: ReportOutcomes {
            generated: week.reports.generated,
            success_rate_percentage: week.reports.success_rate().map(round2),
            avg_processing_time_seconds: week.reports.avg_processing_seconds().map(round2),
        },
        slowest_endpoints: slowest,
        most_failing_endpoints: failing,
        failed_logins: FailedLogins { total: auth.failed_logins, top_ips: auth.top_failed_ips, top_users: auth.top_failed_users },
        external_api_cost: external,
        total_external_cost,
        top_models: answers::call_rows(week, CallKey::Model, TOP),
        top_spenders: top_spenders(week, TOP),
    }
}

/// What `WeeklyReportGenerated` carries: the headline figures and where the
/// whole report is read. Its size is bounded whatever the tenant's data
/// (ids are at most 128 characters), far below an entry's 256 KB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklyReportSummary {
    pub tenant: String,
    pub week: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub totals: KindTotals,
    pub change_percent: KindChange,
    pub reports: ReportOutcomes,
    pub failed_logins: u64,
    pub total_external_cost: f64,
    pub top_users: Vec<KeyCount>,
    pub costliest_services: BTreeMap<String, f64>,
    /// `{service}/{model}` of the costliest models (`other` for the rest).
    pub costliest_models: BTreeMap<String, f64>,
    pub top_spenders: BTreeMap<String, f64>,
    /// The route that returns the whole report.
    pub path: String,
}

/// Entries of the summary's short lists.
pub const SUMMARY_TOP: usize = 3;

impl WeeklyReport {
    pub fn summary(&self) -> WeeklyReportSummary {
        WeeklyReportSummary {
            tenant: self.tenant.clone(),
            week: self.week.clone(),
            start: self.start,
            end: self.end,
            totals: self.totals,
            change_percent: self.change_percent,
            reports: self.reports.clone(),
            failed_logins: self.failed_logins.total,
            total_external_cost: self.total_external_cost,
            top_users: self.most_active_users.iter().take(SUMMARY_TOP).cloned().collect(),
            costliest_services: self.external_api_cost.iter().take(SUMMARY_TOP).map(|s| (s.service.clone(), s.total_cost)).collect(),
            costliest_models: self
                .top_models
                .iter()
                .take(SUMMARY_TOP)
                .map(|m| (format!("{}/{}", m.service, m.key.clone().flatten().unwrap_or_else(|| "none".into())), m.total_cost))
                .collect(),
            top_spenders: self.top_spenders.iter().take(SUMMARY_TOP).map(|s| (s.user_id.clone(), s.total_cost)).collect(),
            path: format!("/api/v1/analytics/reports/weekly/{}", self.week),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_week;

    #[test]
    fn iso_weeks_round_trip_and_bad_labels_are_refused() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(week_label(d), "2026-W47");
        assert_eq!(parse_week("2026-W47"), NaiveDate::from_ymd_opt(2026, 11, 16));
        assert_eq!(week_label(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()), "2026-W53", "1 January 2027 is in 2026's week 53");
        for bad in ["2026-W54", "2025-W53", "2026W47", "2026-W4", "26-W47", "2026-w47", "2026-W47x", "abcd-W01"] {
            assert_eq!(parse_week(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_hold_the_day() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(Period::Weekly.bounds(d), (ymd(2026, 11, 16), ymd(2026, 11, 23)));
        assert_eq!(Period::Monthly.bounds(ymd(2026, 12, 31)), (ymd(2026, 12, 1), ymd(2027, 1, 1)));
        assert_eq!(Period::Yearly.bounds(d), (ymd(2026, 1, 1), ymd(2027, 1, 1)));
        assert_eq!(Period::Daily.bounds(d), (d, ymd(2026, 11, 22)));
    }

    #[test]
    fn the_summary_of_a_huge_week_fits_one_bus_entry() {
        let mut r = Rollup::default();
        for i in 0..5000 {
            let id = format!("{i:0>128}");
            r.users.insert(id.clone(), crate::rollup::UserActivity { actions: [("login".to_string(), i)].into(), slots: 0 });
            r.external.insert(
                id.clone(),
                crate::rollup::ExternalStats { calls: 1, errors: 0, time_ms: 1.0, cost: i as f64, ..Default::default() },
            );
        }
        let report = weekly_report("t", NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(), &r, &Rollup::default());
        assert_eq!(report.most_active_users.len(), TOP);
        let size = serde_json::to_string(&report.summary()).unwrap().len();
        assert!(size < 8 * 1024, "summary is {size} bytes");
        assert_eq!(report.change_percent.activity, None, "no previous week: no change figure");
    }
}

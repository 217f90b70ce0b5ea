//! Figures over periods, from the rollups: the activity summary, the
//! dashboard and its parts, trends.

use analytics_shared::ApiError;
use analytics_shared::query::Scope;
use analytics_shared::query::answers::{self, GroupBy, TrendMetric, TrendPoint};
use analytics_shared::query::period::{DASHBOARD_PERIODS, Granularity, MAX_BUCKETS, bucket_bounds};
use analytics_shared::query::responses::{Clients, Covered, Dashboard, Trends};
use analytics_shared::query::windowed::{PeriodFigures, read_period};
use analytics_shared::query::zone::Zone;

use super::{Ask, body, feeds, utc_days};

/// The `period` (whole UTC days up to now, today included), and for the
/// headline figures the history kept around it, read at once.
async fn period_read(ask: &Ask<'_>, with_history: bool) -> Result<PeriodFigures, ApiError> {
    let days = ask.params.choice("period", &DASHBOARD_PERIODS, 30)?;
    Ok(read_period(&ask.app.store, ask.tenant(), days, with_history, ask.now, &ask.app.cfg.retention).await?)
}

/// `/activity-summary`: by action, user (managers only) or UTC day.
pub(super) async fn activity_summary(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let choices = [("activity_type", GroupBy::ActivityType), ("user", GroupBy::User), ("day", GroupBy::Day)];
    let group_by = p.choice("group_by", &choices, GroupBy::ActivityType)?;
    if group_by == GroupBy::User {
        ask.caller.require(analytics_shared::query::Access::Managers)?;
    }
    let scope = ask.caller.scope(p.text("user_id", 256)?)?;
    let range = p.range(ask.now, &Zone::UTC, 30)?;
    let pieces = ask.pieces(&scope, range, &[]).await?;
    body(&answers::activity_summary(&pieces, group_by, &utc_days(range)))
}

/// `/metrics`.
pub(super) async fn metrics(ask: &Ask<'_>) -> Result<String, ApiError> {
    let read = period_read(ask, true).await?;
    body(&answers::metrics(&read.total, &read.history))
}

/// `/categories`.
pub(super) async fn categories(ask: &Ask<'_>) -> Result<String, ApiError> {
    body(&answers::categories(&period_read(ask, false).await?.total.reports))
}

/// `/business-impact`.
pub(super) async fn business_impact(ask: &Ask<'_>) -> Result<String, ApiError> {
    body(&answers::business_impact(&period_read(ask, false).await?.total.reports))
}

/// `/client-performance`.
pub(super) async fn client_performance(ask: &Ask<'_>) -> Result<String, ApiError> {
    let limit = ask.params.limit(10)?;
    body(&Clients { clients: answers::client_performance(&period_read(ask, false).await?.total, limit) })
}

/// `/dashboard`: the period's parts and the latest events, read at once.
pub(super) async fn dashboard(ask: &Ask<'_>) -> Result<String, ApiError> {
    let (read, recent) = futures::future::try_join(period_read(ask, true), feeds::latest(ask, &Scope::Tenant, 10)).await?;
    body(&Dashboard {
        period: ask.params.get("period").unwrap_or("30d").to_owned(),
        covered: Covered::from(read.range),
        metrics: answers::metrics(&read.total, &read.history),
        trends: read.days,
        categories: answers::categories(&read.total.reports),
        recent_activity: recent,
        client_performance: answers::client_performance(&read.total, 10),
        business_impact: answers::business_impact(&read.total.reports),
    })
}

/// `/trends`: one metric per bucket of the caller's local calendar.
pub(super) async fn trends(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let granularities =
        [("hour", Granularity::Hour), ("day", Granularity::Day), ("week", Granularity::Week), ("month", Granularity::Month)];
    let g = p.choice("granularity", &granularities, Granularity::Day)?;
    let metrics = [
        ("activities", TrendMetric::Activities),
        ("reports", TrendMetric::Reports),
        ("api_requests", TrendMetric::ApiRequests),
        ("errors", TrendMetric::Errors),
        ("active_users", TrendMetric::ActiveUsers),
    ];
    let metric = p.choice("metric", &metrics, TrendMetric::Activities)?;
    let tz = p.tz()?;
    let range = p.range(ask.now, &tz, 30)?;
    let bounds = bucket_bounds(range, g, &tz);
    if bounds.len() > MAX_BUCKETS + 1 {
        return Err(ApiError::bad_request(format!(
            "this range has {} buckets at this granularity; at most {MAX_BUCKETS}: narrow the dates or use a coarser granularity",
            bounds.len() - 1
        )));
    }
    let pieces = ask.pieces(&Scope::Tenant, range, &bounds).await?;
    let points =
        answers::buckets(&pieces, &bounds).iter().map(|b| TrendPoint { bucket_start: b.bucket_start, value: b.value(metric) }).collect();
    body(&Trends {
        granularity: p.get("granularity").unwrap_or("day").to_owned(),
        metric: p.get("metric").unwrap_or("activities").to_owned(),
        tz: tz.name().to_owned(),
        covered: Covered::from(range),
        points,
    })
}

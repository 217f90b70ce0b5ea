//! Figures over periods, from the rollups: the activity summary, the
//! dashboard and its parts, trends.

use analytics_shared::ApiError;
use analytics_shared::query::Scope;
use analytics_shared::query::answers::{self, GroupBy, TrendMetric, TrendPoint};
use analytics_shared::query::period::{self, DateRange, Granularity, MAX_BUCKETS, Piece, bucket_bounds};
use analytics_shared::query::responses::{Clients, Covered, Dashboard, Trends};
use analytics_shared::query::zone::Zone;
use analytics_shared::rollup::Rollup;
use analytics_shared::store::rollups::DayPart;
use analytics_shared::time::day_start;
use chrono::Duration;

use super::{Ask, body, feeds, utc_days};

/// The dashboard periods, in days.
const PERIODS: [(&str, i64); 4] = [("7d", 7), ("30d", 30), ("90d", 90), ("365d", 365)];

/// The `period` (whole UTC days up to now, today included), and for the
/// headline figures the history kept around it, read at once.
struct PeriodRead {
    range: DateRange,
    /// The period's pieces.
    pieces: Vec<Piece>,
    /// Everything kept, merged (empty unless asked for).
    history: Rollup,
}

impl PeriodRead {
    /// The period alone: the routes that show only what happened in it.
    async fn of(ask: &Ask<'_>) -> Result<PeriodRead, ApiError> {
        let range = Self::range(ask)?;
        let pieces = ask.pieces_of(&Scope::Tenant, range, &[], DayPart::Dashboard).await?;
        Ok(PeriodRead { range, pieces, history: Rollup::default() })
    }

    /// The period and everything kept (totals over the whole table, such
    /// as `total_clients`), in one read split at the period's start.
    async fn with_history(ask: &Ask<'_>) -> Result<PeriodRead, ApiError> {
        let range = Self::range(ask)?;
        let kept_days = i64::from(ask.app.cfg.retention.events_days);
        let history_from = range.from.min(day_start(ask.now) - Duration::days(kept_days - 1));
        // No stored day straddles the period's start, so the pieces split there.
        let all = ask.pieces_of(&Scope::Tenant, DateRange { from: history_from, to: ask.now }, &[range.from], DayPart::Dashboard).await?;
        let history = period::total(&all);
        let pieces = all.into_iter().filter(|x| x.start >= range.from).collect();
        Ok(PeriodRead { range, pieces, history })
    }

    fn range(ask: &Ask<'_>) -> Result<DateRange, ApiError> {
        let days = ask.params.choice("period", &PERIODS, 30)?;
        Ok(DateRange { from: day_start(ask.now) - Duration::days(days - 1), to: ask.now })
    }

    fn total(&self) -> Rollup {
        period::total(&self.pieces)
    }
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
    let read = PeriodRead::with_history(ask).await?;
    body(&answers::metrics(&read.total(), &read.history))
}

/// `/categories`.
pub(super) async fn categories(ask: &Ask<'_>) -> Result<String, ApiError> {
    body(&answers::categories(&PeriodRead::of(ask).await?.total().reports))
}

/// `/business-impact`.
pub(super) async fn business_impact(ask: &Ask<'_>) -> Result<String, ApiError> {
    body(&answers::business_impact(&PeriodRead::of(ask).await?.total().reports))
}

/// `/client-performance`.
pub(super) async fn client_performance(ask: &Ask<'_>) -> Result<String, ApiError> {
    let limit = ask.params.limit(10)?;
    body(&Clients { clients: answers::client_performance(&PeriodRead::of(ask).await?.total(), limit) })
}

/// `/dashboard`: the period's parts and the latest events, read at once.
pub(super) async fn dashboard(ask: &Ask<'_>) -> Result<String, ApiError> {
    let (read, recent) = futures::future::try_join(PeriodRead::with_history(ask), feeds::latest(ask, &Scope::Tenant, 10)).await?;
    let total = read.total();
    let bounds = bucket_bounds(read.range, Granularity::Day, &Zone::UTC);
    body(&Dashboard {
        period: ask.params.get("period").unwrap_or("30d").to_owned(),
        covered: Covered::from(read.range),
        metrics: answers::metrics(&total, &read.history),
        trends: answers::buckets(&read.pieces, &bounds),
        categories: answers::categories(&total.reports),
        recent_activity: recent,
        client_performance: answers::client_performance(&total, 10),
        business_impact: answers::business_impact(&total.reports),
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

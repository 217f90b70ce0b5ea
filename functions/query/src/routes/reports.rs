//! The stored weekly reports: a page of them, or one ISO week's.

use analytics_shared::ApiError;
use analytics_shared::query::responses::{MetricsHistory, Page, PeriodMetrics, Stored};
use analytics_shared::query::zone::Zone;
use analytics_shared::report::{DashboardMetrics, Period};
use analytics_shared::store::StoreError;
use analytics_shared::time::parse_week;
use serde_json::value::RawValue;

use super::{Ask, body};

/// A stored report as it was written; one that is not JSON is damaged.
fn stored(text: String) -> Result<Stored, ApiError> {
    RawValue::from_string(text).map_err(|e| ApiError::from(StoreError::corrupt(e)))
}

/// `/reports/weekly`: newest first, paged by a cursor bound to the caller.
pub(super) async fn weekly_reports(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let limit = p.limit(10)?;
    let cursors = ask.cursors();
    let before = cursors.start()?;
    let page = ask.app.store.documents().reports(&ask.caller.tenant, before.as_deref(), limit, ask.now).await?;
    // A damaged report is left out of the list (and logged) rather than
    // hiding every other one; asked for by its week, it is a 500.
    let items: Vec<Stored> = page
        .bodies
        .into_iter()
        .filter_map(|b| {
            let report = stored(b);
            if let Err(e) = &report {
                let cause = e.cause.as_deref().unwrap_or("");
                tracing::error!(tenant = %ask.caller.tenant, cause, "a stored weekly report is not JSON; left out of the list");
            }
            report.ok()
        })
        .collect();
    body(&Page { items, next_cursor: cursors.next(page.last) })
}

/// `/reports/weekly/{week}`: the stored body itself.
pub(super) async fn weekly_report(ask: &Ask<'_>) -> Result<String, ApiError> {
    let week = ask.path_param.unwrap_or_default();
    if parse_week(week).is_none() {
        return Err(ApiError::bad_request(format!("`{week}` is not an ISO week; write it like 2026-W47")));
    }
    let found = ask.app.store.documents().report(ask.tenant(), week, ask.now).await?;
    let text = found
        .ok_or_else(|| ApiError::not_found(format!("no weekly report for {week}; reports are made on Mondays for the week before")))?;
    Ok(Box::<str>::from(stored(text)?).into())
}

/// `/metrics/history`: the stored DashboardMetrics of the periods starting
/// within the range (the period holding `date_from` included), oldest
/// first; periods without a stored row are left out.
pub(super) async fn metrics_history(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let kind = p.choice(
        "period_type",
        &[("daily", Period::Daily), ("weekly", Period::Weekly), ("monthly", Period::Monthly), ("yearly", Period::Yearly)],
        Period::Daily,
    )?;
    let (default_days, max_days) = kind.history_days();
    let range = p.range_within(ask.now, &Zone::UTC, default_days, max_days)?;
    let first = kind.bounds(range.from.date_naive()).0;
    let last = (range.to - chrono::Duration::milliseconds(1)).date_naive();
    let bodies =
        ask.app.store.documents().metrics_between(ask.tenant(), kind.as_str(), &first.to_string(), &last.to_string(), ask.now).await?;
    let mut items = Vec::with_capacity(bodies.len());
    for b in bodies {
        let m: DashboardMetrics = serde_json::from_str(&b).map_err(|e| ApiError::from(StoreError::corrupt(e)))?;
        items.push(PeriodMetrics::from(m));
    }
    body(&MetricsHistory { period_type: kind, items })
}

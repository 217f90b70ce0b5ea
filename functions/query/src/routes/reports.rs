//! The stored weekly reports: a page of them, or one ISO week's.

use analytics_shared::ApiError;
use analytics_shared::query::responses::{Page, Stored};
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

//! Operations: API traffic, authentication, external calls and their cost,
//! system health, and the answer cache.

use analytics_shared::ApiError;
use analytics_shared::model::HealthSnapshot;
use analytics_shared::query::Scope;
use analytics_shared::query::answers;
use analytics_shared::query::period;
use analytics_shared::query::responses::{ApiRequests, AuthEventsAnswer, Covered, ExternalCalls, Invalidated, Page};
use analytics_shared::query::zone::Zone;
use analytics_shared::rollup::CallKey;
use analytics_shared::validate::redact::split_endpoint;
use chrono::Duration;

use super::{Ask, body, utc_days};

/// `/api-requests`: per endpoint and method, optionally one endpoint or
/// one status class.
pub(super) async fn api_requests(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let class = p.choice("status_class", &[("1xx", 1), ("2xx", 2), ("3xx", 3), ("4xx", 4), ("5xx", 5)], 0)?;
    let endpoint = p.text("endpoint", 2048)?.map(|e| split_endpoint(e).0);
    let range = p.range(ask.now, &Zone::UTC, ask.app.cfg.retention.api_log_days.into())?;
    let all = period::total(&ask.pieces(&Scope::Tenant, range, &[]).await?);
    body(&ApiRequests { covered: Covered::from(range), endpoints: answers::api_requests(&all, endpoint, (class != 0).then_some(class)) })
}

/// `/auth-events`.
pub(super) async fn auth_events(ask: &Ask<'_>) -> Result<String, ApiError> {
    let limit = ask.params.limit(10)?;
    let range = ask.params.range(ask.now, &Zone::UTC, 30)?;
    let all = period::total(&ask.pieces(&Scope::Tenant, range, &[]).await?);
    body(&AuthEventsAnswer { covered: Covered::from(range), events: answers::auth_events(&all, limit) })
}

/// `/external-calls`: per service, or per service and model, user or
/// endpoint (`group_by`), the costliest `limit` rows; per UTC day as well
/// with `granularity=day`.
pub(super) async fn external_calls(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let per_day = p.choice("granularity", &[("total", false), ("day", true)], false)?;
    let by = p.choice("group_by", &CallKey::ALL, CallKey::Service)?;
    let limit = p.limit(50)?;
    let range = p.range(ask.now, &Zone::UTC, 30)?;
    let pieces = ask.pieces(&Scope::Tenant, range, &[]).await?;
    let days = per_day.then(|| answers::calls_by_day(&pieces, &utc_days(range), by, limit));
    let all = period::total(&pieces);
    let total_cost = answers::external_cost(&all);
    body(&ExternalCalls {
        group_by: by.as_str(),
        covered: Covered::from(range),
        calls: answers::Grouped::of(&all, by, limit),
        total_cost,
        days,
    })
}

/// `/system-health`: the latest stored snapshot when it is recent, else
/// the application figures computed now (host figures then null).
pub(super) async fn system_health(ask: &Ask<'_>) -> Result<String, ApiError> {
    let store = &ask.app.store;
    let snapshot: HealthSnapshot = match store.documents().latest_snapshot(ask.tenant(), ask.now).await? {
        Some(s) if ask.now - s.captured_at <= Duration::minutes(15) => s,
        _ => period::app_health_now(store, ask.tenant(), ask.now, &ask.app.cfg.retention).await?,
    };
    body(&snapshot)
}

/// `/system-health/history`: stored snapshots, newest first, the last
/// 24 hours unless a range is given.
pub(super) async fn system_health_history(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let range = match (p.get("date_from"), p.get("date_to")) {
        (None, None) => period::DateRange { from: ask.now - Duration::hours(24), to: ask.now + Duration::milliseconds(1) },
        _ => p.range(ask.now, &Zone::UTC, 1)?,
    };
    let cursors = ask.cursors();
    let before = cursors.start()?;
    let limit = p.limit(50)?;
    let (items, more) =
        ask.app.store.documents().snapshots(ask.tenant(), (range.from, range.to), before.as_deref(), limit, ask.now).await?;
    let next = more.then(|| items.last().map(|s| s.captured_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))).flatten();
    body(&Page { items, next_cursor: cursors.next(next) })
}

/// `POST /cache/invalidate`.
pub(super) async fn invalidate_cache(ask: &Ask<'_>) -> Result<String, ApiError> {
    body(&Invalidated { invalidated: ask.app.store.documents().invalidate_cache(ask.tenant()).await? })
}

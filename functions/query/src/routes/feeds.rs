//! Feeds of activity events: a user's or a tenant's, newest first.

use analytics_shared::model::Event;
use analytics_shared::query::Scope;
use analytics_shared::query::explore::event_filter;
use analytics_shared::query::period::DateRange;
use analytics_shared::query::responses::{Latest, Page};
use analytics_shared::query::zone::Zone;
use analytics_shared::store::explorer::{ExploreQuery, PAGE_BUDGET};
use analytics_shared::store::feed::FeedQuery;
use analytics_shared::{ApiError, validate};

use super::{Ask, body};

/// What to read of a feed: whose events, which action, when, from where.
pub(super) struct Slice<'a> {
    pub scope: &'a Scope,
    pub action: Option<&'a str>,
    pub range: DateRange,
    /// Continue below this position (from an opened cursor).
    pub before: Option<String>,
    pub limit: usize,
}

/// A page of events and where the next one starts.
pub(super) async fn read(ask: &Ask<'_>, s: Slice<'_>) -> Result<(Vec<Event>, Option<String>), ApiError> {
    let q = FeedQuery {
        tenant: ask.tenant(),
        user: s.scope.user(),
        action: s.action,
        from: s.range.from,
        to: s.range.to,
        before: s.before,
        limit: s.limit,
    };
    let page = ask.app.store.feed().page(&q, ask.now).await?;
    Ok((page.items.into_iter().map(|e| e.event).collect(), page.next))
}

/// The newest `limit` events the scope may see.
pub(super) async fn latest(ask: &Ask<'_>, scope: &Scope, limit: usize) -> Result<Vec<Event>, ApiError> {
    Ok(read(ask, Slice { scope, action: None, range: ask.retained(), before: None, limit }).await?.0)
}

/// `/user-activity`: paged by a cursor bound to the caller and the query.
pub(super) async fn user_activity(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let scope = ask.caller.scope(p.text("user_id", 256)?)?;
    let action = p.text("activity_type", 64)?;
    if let Some(a) = action
        && !validate::valid_name(a)
    {
        return Err(ApiError::bad_request(format!("`activity_type` must be an action name such as generate_report, not `{a}`")));
    }
    let range = match (p.get("date_from"), p.get("date_to")) {
        (None, None) => ask.retained(),
        _ => p.range(ask.now, &Zone::UTC, ask.app.cfg.retention.events_days.into())?,
    };
    let cursors = ask.cursors();
    let slice = Slice { scope: &scope, action, range, before: cursors.start()?, limit: p.limit(50)? };
    let (items, next) = read(ask, slice).await?;
    body(&Page { items, next_cursor: cursors.next(next) })
}

/// `/recent-activity`.
pub(super) async fn recent_activity(ask: &Ask<'_>) -> Result<String, ApiError> {
    let scope = ask.caller.scope(None)?;
    body(&Latest { items: latest(ask, &scope, ask.params.limit(10)?).await? })
}

/// `GET /events`: stored events of every kind, newest first, filtered,
/// a bounded read per page.
pub(super) async fn events(ask: &Ask<'_>) -> Result<String, ApiError> {
    let p = ask.params;
    let scope = ask.caller.scope(p.text("user_id", 256)?)?;
    let f = event_filter(p, ask.now, &ask.app.cfg.retention)?;
    let cursors = ask.cursors();
    let q = ExploreQuery {
        tenant: ask.tenant(),
        kinds: f.kinds,
        user: scope.user(),
        action: f.action.as_deref(),
        conds: f.conds,
        from: f.range.from,
        to: f.range.to,
        before: cursors.start()?,
        limit: p.limit(50)?,
        budget: PAGE_BUDGET,
    };
    let page = ask.app.store.explorer().page(&q, ask.now).await?;
    tracing::debug!(items_read = page.items_read, queries = page.queries, "events page");
    body(&Page { items: page.items.into_iter().map(|e| e.event).collect::<Vec<Event>>(), next_cursor: cursors.next(page.next) })
}

//! The route handlers, one file per family: feeds of events, figures over
//! periods, operations (API traffic, logins, external calls, health, the
//! cache) and the stored weekly reports. Each parses its route's
//! parameters, reads, and serializes one type of
//! [`analytics_shared::query::responses`].

mod feeds;
mod ops;
mod periods;
mod reports;

use analytics_shared::cursor::Binding;
use analytics_shared::hash::digest;
use analytics_shared::query::period::{DateRange, Granularity, Piece, bucket_bounds};
use analytics_shared::query::planner::read_pieces;
use analytics_shared::query::zone::Zone;
use analytics_shared::query::{Params, Scope};
use analytics_shared::store::StoreError;
use analytics_shared::{ApiError, Caller};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::{App, Route, RouteDef};

/// One request, as a handler sees it.
pub(crate) struct Ask<'a> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub params: &'a Params,
    pub def: &'a RouteDef,
    /// The value of the route's `{parameter}` segment.
    pub path_param: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The body of the route's answer.
pub(crate) async fn answer(ask: &Ask<'_>) -> Result<String, ApiError> {
    match ask.def.route {
        Route::UserActivity => feeds::user_activity(ask).await,
        Route::RecentActivity => feeds::recent_activity(ask).await,
        Route::ActivitySummary => periods::activity_summary(ask).await,
        Route::Dashboard => periods::dashboard(ask).await,
        Route::Metrics => periods::metrics(ask).await,
        Route::Categories => periods::categories(ask).await,
        Route::BusinessImpact => periods::business_impact(ask).await,
        Route::ClientPerformance => periods::client_performance(ask).await,
        Route::Trends => periods::trends(ask).await,
        Route::SystemHealth => ops::system_health(ask).await,
        Route::ApiRequests => ops::api_requests(ask).await,
        Route::AuthEvents => ops::auth_events(ask).await,
        Route::ExternalCalls => ops::external_calls(ask).await,
        Route::CacheInvalidate => ops::invalidate_cache(ask).await,
        Route::WeeklyReports => reports::weekly_reports(ask).await,
        Route::WeeklyReport => reports::weekly_report(ask).await,
        Route::Events => feeds::events(ask).await,
        Route::MetricsHistory => reports::metrics_history(ask).await,
        Route::SystemHealthHistory => ops::system_health_history(ask).await,
    }
}

/// A response body. Every response type serializes (no map has keys that
/// are not strings); a failure would be a bug, answered as one.
fn body<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::from(StoreError::corrupt(e)))
}

impl Ask<'_> {
    fn tenant(&self) -> &str {
        self.caller.tenant.as_str()
    }

    /// The cursors of this request's pages, bound to the tenant, the
    /// caller, the route and (by digest) the query.
    fn cursors(&self) -> Cursors<'_> {
        Cursors { ask: self, query: digest(&self.params.normalized()) }
    }

    /// Everything events are kept for: a feed's default range.
    fn retained(&self) -> DateRange {
        let days = i64::from(self.app.cfg.retention.events_days);
        DateRange { from: self.now - Duration::days(days), to: self.now + Duration::milliseconds(1) }
    }

    /// The rollup pieces of a range, split at `boundaries`, narrowed to
    /// what the scope may see.
    async fn pieces(&self, scope: &Scope, range: DateRange, boundaries: &[DateTime<Utc>]) -> Result<Vec<Piece>, ApiError> {
        let app = self.app;
        let mut pieces = read_pieces(&app.store, self.tenant(), range, boundaries, self.now, &app.cfg.retention).await?;
        if let Scope::User(u) = scope {
            for p in &mut pieces {
                p.rollup = p.rollup.own(u);
            }
        }
        Ok(pieces)
    }
}

/// Where a page starts (the request's `cursor`, opened) and the cursor of
/// the next one (sealed): for every paged route.
struct Cursors<'a> {
    ask: &'a Ask<'a>,
    query: String,
}

impl Cursors<'_> {
    fn binding(&self) -> Binding<'_> {
        let (caller, route) = (self.ask.caller, self.ask.def.path);
        Binding { tenant: &caller.tenant, caller: &caller.user_id, route, query: &self.query }
    }

    /// The position the request's cursor continues from, if it sent one.
    fn start(&self) -> Result<Option<String>, ApiError> {
        let c = self.ask.params.get("cursor");
        c.map(|c| self.ask.app.cursors.open(c, self.binding(), self.ask.now)).transpose()
    }

    /// The next page's cursor, when there is a next page.
    fn next(&self, position: Option<String>) -> Option<String> {
        position.map(|pos| self.ask.app.cursors.seal(self.binding(), &pos, self.ask.now))
    }
}

/// The starts of the UTC days of a range.
fn utc_days(range: DateRange) -> Vec<DateTime<Utc>> {
    let mut b = bucket_bounds(range, Granularity::Day, &Zone::UTC);
    b.pop();
    b
}

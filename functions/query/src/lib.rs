//! The read API behind `/api/v1/analytics/...`: it turns each API Gateway
//! request into calls of [`analytics_shared::query`] and the store, and the
//! results into the contract's responses. Who may call what, whose events a
//! caller sees, and every figure are decided in the shared crate.
//!
//! Routing is a table ([`ROUTES`]) rather than a router framework: the
//! routes are fixed, 404 and 405 must answer in the contract's error shape,
//! and the same table feeds the OpenAPI, template and router checks.

use analytics_shared::cursor::{Binding, CursorKey};
use analytics_shared::error::json_text_response;
use analytics_shared::hash::digest;
use analytics_shared::query::answers::{self, GroupBy, TrendMetric};
use analytics_shared::query::period::{self, DateRange, Granularity, MAX_BUCKETS, Piece, bucket_bounds};
use analytics_shared::query::planner::read_pieces;
use analytics_shared::query::zone::Zone;
use analytics_shared::query::{Access, Params, Scope};
use analytics_shared::rollup::Rollup;
use analytics_shared::store::Table;
use analytics_shared::store::feed::FeedQuery;
use analytics_shared::{ApiError, Caller, Config, http as glue};
use chrono::{DateTime, Duration, Utc};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// Every route's path starts with this.
pub const BASE: &str = "/api/v1/analytics";

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    UserActivity,
    ActivitySummary,
    SystemHealth,
    Dashboard,
    Metrics,
    Trends,
    Categories,
    RecentActivity,
    ClientPerformance,
    BusinessImpact,
    ApiRequests,
    AuthEvents,
    ExternalCalls,
    CacheInvalidate,
    WeeklyReports,
    WeeklyReport,
}

/// How long a route's answers are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Never: feeds and writes.
    Never,
    /// `ANALYTICS_CACHE_TTL`.
    Standard,
    /// At most 300 s (system health).
    Health,
}

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct RouteDef {
    pub route: Route,
    pub method: &'static str,
    /// Below [`BASE`].
    pub path: &'static str,
    pub access: Access,
    pub params: &'static [&'static str],
    pub caching: Caching,
}

const RANGE: [&str; 2] = ["date_from", "date_to"];

macro_rules! params {
    ($($p:expr),* $(,)?) => { &[$($p),*] };
}

/// Every route, its method, who may call it and what it accepts.
pub const ROUTES: [RouteDef; 16] = [
    RouteDef {
        route: Route::UserActivity,
        method: "GET",
        path: "/user-activity",
        access: Access::Any,
        params: params!["user_id", RANGE[0], RANGE[1], "activity_type", "limit", "cursor"],
        caching: Caching::Never,
    },
    RouteDef {
        route: Route::ActivitySummary,
        method: "GET",
        path: "/activity-summary",
        access: Access::Any,
        params: params!["group_by", "user_id", RANGE[0], RANGE[1]],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::SystemHealth,
        method: "GET",
        path: "/system-health",
        access: Access::Managers,
        params: params![],
        caching: Caching::Health,
    },
    RouteDef {
        route: Route::Dashboard,
        method: "GET",
        path: "/dashboard",
        access: Access::Managers,
        params: params!["period"],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::Metrics,
        method: "GET",
        path: "/metrics",
        access: Access::Managers,
        params: params!["period"],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::Trends,
        method: "GET",
        path: "/trends",
        access: Access::Managers,
        params: params!["granularity", "metric", "tz", RANGE[0], RANGE[1]],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::Categories,
        method: "GET",
        path: "/categories",
        access: Access::Managers,
        params: params!["period"],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::RecentActivity,
        method: "GET",
        path: "/recent-activity",
        access: Access::Any,
        params: params!["limit"],
        caching: Caching::Never,
    },
    RouteDef {
        route: Route::ClientPerformance,
        method: "GET",
        path: "/client-performance",
        access: Access::Managers,
        params: params!["period", "limit"],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::BusinessImpact,
        method: "GET",
        path: "/business-impact",
        access: Access::Managers,
        params: params!["period"],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::ApiRequests,
        method: "GET",
        path: "/api-requests",
        access: Access::Managers,
        params: params!["endpoint", "status_class", RANGE[0], RANGE[1]],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::AuthEvents,
        method: "GET",
        path: "/auth-events",
        access: Access::Managers,
        params: params![RANGE[0], RANGE[1], "limit"],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::ExternalCalls,
        method: "GET",
        path: "/external-calls",
        access: Access::Managers,
        params: params!["granularity", RANGE[0], RANGE[1]],
        caching: Caching::Standard,
    },
    RouteDef {
        route: Route::CacheInvalidate,
        method: "POST",
        path: "/cache/invalidate",
        access: Access::Admin,
        params: params![],
        caching: Caching::Never,
    },
    RouteDef {
        route: Route::WeeklyReports,
        method: "GET",
        path: "/reports/weekly",
        access: Access::Managers,
        params: params!["limit", "cursor"],
        caching: Caching::Never,
    },
    RouteDef {
        route: Route::WeeklyReport,
        method: "GET",
        path: "/reports/weekly/{week}",
        access: Access::Managers,
        params: params![],
        caching: Caching::Never,
    },
];

/// The value of a path's `{parameter}` segment when it matches `pattern`
/// (`Some(None)` for a pattern without one), `None` when it does not match.
pub fn path_match<'a>(pattern: &str, path: &'a str) -> Option<Option<&'a str>> {
    let (mut pat, mut segs) = (pattern.split('/'), path.split('/'));
    let mut param = None;
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return Some(param),
            (Some(p), Some(s)) if p.starts_with('{') && p.ends_with('}') && !s.is_empty() => param = Some(s),
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

/// The route of a path, or the 404/405 to answer.
pub fn route_of(method: &str, path: &str) -> Result<&'static RouteDef, ApiError> {
    let below = glue::path_below(path, BASE).ok_or_else(|| ApiError::not_found(format!("no route {path}; routes start with {BASE}")))?;
    let def = ROUTES
        .iter()
        .find(|d| path_match(d.path, below).is_some())
        .ok_or_else(|| ApiError::not_found(format!("no route {BASE}{below}; see the API reference (openapi.yaml)")))?;
    if def.method != method {
        return Err(ApiError::method_not_allowed(def.method));
    }
    Ok(def)
}

/// The dashboard periods, in days.
const PERIODS: [(&str, i64); 4] = [("7d", 7), ("30d", 30), ("90d", 90), ("365d", 365)];

/// Everything an invocation needs, built once.
pub struct App {
    pub cfg: Config,
    pub store: Table,
    cursors: CursorKey,
}

/// A response body and whether it came from the cache.
struct Answer {
    body: String,
    cached: bool,
}

impl App {
    /// The cursor key is `ANALYTICS_CURSOR_SECRET`, or locally the JWT
    /// secret; without either, start-up fails rather than hand out cursors
    /// another instance could not read.
    pub fn new(cfg: Config, client: analytics_shared::store::DynamoDbClient) -> Result<Self, String> {
        let secret =
            cfg.query.cursor_secret.clone().or_else(|| cfg.auth.local_jwt_secret.clone()).ok_or(
                "ANALYTICS_CURSOR_SECRET is not set: page cursors need a key shared by every instance (the SAM template sets one)",
            )?;
        let store = Table::new(client, cfg.store.clone());
        Ok(Self { cfg, store, cursors: CursorKey::new(secret.as_bytes()) })
    }

    /// Serves one request; never fails: every error is a response.
    #[tracing::instrument(skip_all, fields(request_id, route))]
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let request_id = glue::request_id(&req);
        tracing::Span::current().record("request_id", request_id.as_str());
        let resp = match self.serve(&req).await {
            Ok(a) => {
                let mut resp = json_text_response(http::StatusCode::OK, a.body, &request_id);
                resp.headers_mut().insert("x-cache", http::HeaderValue::from_static(if a.cached { "hit" } else { "miss" }));
                resp
            }
            Err(e) => {
                tracing::info!(code = e.code.as_str(), message = %e.message, "request refused");
                e.into_response(&request_id)
            }
        };
        glue::into_lambda(resp)
    }

    async fn serve(&self, req: &Request) -> Result<Answer, ApiError> {
        let now = analytics_shared::time::receive_time();
        let def = route_of(req.method().as_str(), req.uri().path())?;
        tracing::Span::current().record("route", def.path);
        let caller = glue::caller(req, &self.cfg.auth)?;
        caller.require(def.access)?;
        let pairs = glue::query_pairs(req);
        let params = Params::new(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), def.params)?;
        let ttl = match def.caching {
            Caching::Never => None,
            Caching::Standard => Some(self.cfg.query.cache_ttl),
            Caching::Health => Some(self.cfg.query.cache_ttl.min(300)),
        };
        let cache_key = ttl.map(|_| analytics_shared::query::cache_key(def.path, &caller.visibility(), &params));
        if let Some(key) = &cache_key
            && let Some(body) = self.store.documents().cached(&caller.tenant, key, now).await?
        {
            return Ok(Answer { body, cached: true });
        }
        let read_before = self.store.items_read();
        let below = glue::path_below(req.uri().path(), BASE).unwrap_or_default();
        let path_param = path_match(def.path, below).flatten();
        let value = self.answer(def, &caller, &params, path_param, now).await?;
        tracing::info!(tenant = %caller.tenant, items_read = self.store.items_read() - read_before, "answered");
        let body = value.to_string();
        if let (Some(ttl), Some(key)) = (ttl, &cache_key)
            && let Err(e) = self.store.documents().put_cached(&caller.tenant, key, &body, ttl, now).await
        {
            tracing::warn!(error = %e, "caching an answer failed; answering uncached");
        }
        Ok(Answer { body, cached: false })
    }

    async fn answer(
        &self,
        def: &RouteDef,
        caller: &Caller,
        p: &Params,
        path_param: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        let tenant = caller.tenant.as_str();
        Ok(match def.route {
            Route::UserActivity => self.user_activity(caller, def.path, p, now).await?,
            Route::RecentActivity => {
                let scope = caller.scope(None)?;
                let (items, _) = self.feed(tenant, &scope, None, self.retained(now), None, p.limit(10)?, now).await?;
                json!({ "items": items })
            }
            Route::ActivitySummary => {
                let group_by = p.choice(
                    "group_by",
                    &[("activity_type", GroupBy::ActivityType), ("user", GroupBy::User), ("day", GroupBy::Day)],
                    GroupBy::ActivityType,
                )?;
                if group_by == GroupBy::User {
                    caller.require(Access::Managers)?;
                }
                let scope = caller.scope(p.text("user_id", 256)?)?;
                let range = p.range(now, &Zone::UTC, 30)?;
                let pieces = self.pieces(tenant, &scope, range, &[], now).await?;
                let days = utc_days(range);
                json!(answers::activity_summary(&pieces, group_by, &days))
            }
            Route::SystemHealth => json!(self.system_health(tenant, now).await?),
            Route::Dashboard => self.dashboard(caller, p, now).await?,
            Route::Metrics => {
                let (period, history) = self.period_totals(tenant, p, now).await?;
                json!(answers::metrics(&period, &history))
            }
            Route::Categories => json!(answers::categories(&self.period_totals(tenant, p, now).await?.0.reports)),
            Route::BusinessImpact => json!(answers::business_impact(&self.period_totals(tenant, p, now).await?.0.reports)),
            Route::ClientPerformance => {
                let limit = p.limit(10)?;
                json!({ "clients": answers::client_performance(&self.period_totals(tenant, p, now).await?.0, limit) })
            }
            Route::Trends => self.trends(tenant, p, now).await?,
            Route::ApiRequests => {
                let class = p.choice("status_class", &[("1xx", 1), ("2xx", 2), ("3xx", 3), ("4xx", 4), ("5xx", 5)], 0)?;
                let endpoint = p.text("endpoint", 2048)?;
                let range = p.range(now, &Zone::UTC, self.cfg.retention.api_log_days.into())?;
                let all = period::total(&self.pieces(tenant, &Scope::Tenant, range, &[], now).await?);
                let endpoints = answers::api_requests(&all, endpoint, (class != 0).then_some(class));
                json!({ "date_from": range.from, "date_to": range.to, "endpoints": endpoints })
            }
            Route::AuthEvents => {
                let limit = p.limit(10)?;
                let range = p.range(now, &Zone::UTC, 30)?;
                let all = period::total(&self.pieces(tenant, &Scope::Tenant, range, &[], now).await?);
                let mut v = json!(answers::auth_events(&all, limit));
                v["date_from"] = json!(range.from);
                v["date_to"] = json!(range.to);
                v
            }
            Route::ExternalCalls => {
                let per_day = p.choice("granularity", &[("total", false), ("day", true)], false)?;
                let range = p.range(now, &Zone::UTC, 30)?;
                let pieces = self.pieces(tenant, &Scope::Tenant, range, &[], now).await?;
                let services = answers::external_calls(&period::total(&pieces));
                let total_cost = services.iter().map(|s| s.total_cost).sum::<f64>();
                let mut v = json!({ "date_from": range.from, "date_to": range.to, "services": services,
                    "total_cost": (total_cost * 1e6).round() / 1e6 });
                if per_day {
                    v["days"] = json!(answers::external_calls_by_day(&pieces, &utc_days(range)));
                }
                v
            }
            Route::CacheInvalidate => json!({ "invalidated": self.store.documents().invalidate_cache(tenant).await? }),
            Route::WeeklyReports => self.weekly_reports(caller, def.path, p, now).await?,
            Route::WeeklyReport => {
                let week = path_param.unwrap_or_default();
                if analytics_shared::time::parse_week(week).is_none() {
                    return Err(ApiError::bad_request(format!("`{week}` is not an ISO week; write it like 2026-W47")));
                }
                let body = self.store.documents().report(tenant, week, now).await?;
                let body = body.ok_or_else(|| {
                    ApiError::not_found(format!("no weekly report for {week}; reports are made on Mondays for the week before"))
                })?;
                serde_json::from_str(&body).map_err(|e| ApiError::from(analytics_shared::store::StoreError::corrupt(e)))?
            }
        })
    }

    /// Stored weekly reports, newest first, paged by an opaque cursor.
    async fn weekly_reports(&self, caller: &Caller, route: &str, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let limit = p.limit(10)?;
        let binding_query = digest(&p.normalized());
        let binding = Binding { tenant: &caller.tenant, caller: &caller.user_id, route, query: &binding_query };
        let before = p.get("cursor").map(|c| self.cursors.open(c, binding, now)).transpose()?;
        let page = self.store.documents().reports(&caller.tenant, before.as_deref(), limit, now).await?;
        let items: Vec<Value> = page.bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect();
        let next_cursor = page.last.map(|pos| self.cursors.seal(binding, &pos, now));
        Ok(json!({ "items": items, "next_cursor": next_cursor }))
    }

    /// Everything events are kept for: a feed's default range.
    fn retained(&self, now: DateTime<Utc>) -> DateRange {
        DateRange { from: now - Duration::days(self.cfg.retention.events_days.into()), to: now + Duration::milliseconds(1) }
    }

    async fn user_activity(&self, caller: &Caller, route: &str, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let scope = caller.scope(p.text("user_id", 256)?)?;
        let action = p.text("activity_type", 64)?;
        if let Some(a) = action
            && !analytics_shared::validate::valid_name(a)
        {
            return Err(ApiError::bad_request(format!("`activity_type` must be an action name such as generate_report, not `{a}`")));
        }
        let range = match (p.get("date_from"), p.get("date_to")) {
            (None, None) => self.retained(now),
            _ => p.range(now, &Zone::UTC, self.cfg.retention.events_days.into())?,
        };
        let binding_query = digest(&p.normalized());
        let binding = Binding { tenant: &caller.tenant, caller: &caller.user_id, route, query: &binding_query };
        let before = p.get("cursor").map(|c| self.cursors.open(c, binding, now)).transpose()?;
        let (items, next) = self.feed(&caller.tenant, &scope, action, range, before, p.limit(50)?, now).await?;
        let next_cursor = next.map(|pos| self.cursors.seal(binding, &pos, now));
        Ok(json!({ "items": items, "next_cursor": next_cursor }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn feed(
        &self,
        tenant: &str,
        scope: &Scope,
        action: Option<&str>,
        range: DateRange,
        before: Option<String>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let q = FeedQuery { tenant, user: scope.user(), action, from: range.from, to: range.to, before, limit };
        let page = self.store.feed().page(&q, now).await?;
        let items = page.items.into_iter().map(|e| serde_json::to_value(e.event).unwrap_or(Value::Null)).collect();
        Ok((items, page.next))
    }

    /// The rollup pieces of a range, narrowed to what the scope may see.
    async fn pieces(
        &self,
        tenant: &str,
        scope: &Scope,
        range: DateRange,
        boundaries: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Piece>, ApiError> {
        let mut pieces = read_pieces(&self.store, tenant, range, boundaries, now, &self.cfg.retention).await?;
        if let Scope::User(u) = scope {
            for p in &mut pieces {
                p.rollup = p.rollup.own(u);
            }
        }
        Ok(pieces)
    }

    /// The `period` (whole UTC days up to now, today included) and the kept
    /// history around it, read at once: the period's range and pieces, and
    /// the whole history merged.
    async fn period_and_history(&self, tenant: &str, p: &Params, now: DateTime<Utc>) -> Result<(DateRange, Vec<Piece>, Rollup), ApiError> {
        let days = p.choice("period", &PERIODS, 30)?;
        let today = analytics_shared::time::day_start(now);
        let range = DateRange { from: today - Duration::days(days - 1), to: now };
        let history_from = range.from.min(today - Duration::days(i64::from(self.cfg.retention.events_days) - 1));
        // No stored day straddles the period's start, so the pieces split there.
        let pieces = self.pieces(tenant, &Scope::Tenant, DateRange { from: history_from, to: now }, &[range.from], now).await?;
        let history = period::total(&pieces);
        let in_period = pieces.into_iter().filter(|x| x.start >= range.from).collect();
        Ok((range, in_period, history))
    }

    /// The period's figures merged, and the history's.
    async fn period_totals(&self, tenant: &str, p: &Params, now: DateTime<Utc>) -> Result<(Rollup, Rollup), ApiError> {
        let (_, in_period, history) = self.period_and_history(tenant, p, now).await?;
        Ok((period::total(&in_period), history))
    }

    async fn dashboard(&self, caller: &Caller, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let tenant = caller.tenant.as_str();
        let ((range, in_period, history), (recent, _)) = futures::future::try_join(
            self.period_and_history(tenant, p, now),
            self.feed(tenant, &Scope::Tenant, None, self.retained(now), None, 10, now),
        )
        .await?;
        let total = period::total(&in_period);
        let bounds = bucket_bounds(range, Granularity::Day, &Zone::UTC);
        Ok(json!({
            "period": p.get("period").unwrap_or("30d"),
            "date_from": range.from,
            "date_to": range.to,
            "metrics": answers::metrics(&total, &history),
            "trends": answers::buckets(&in_period, &bounds),
            "categories": answers::categories(&total.reports),
            "recent_activity": recent,
            "client_performance": answers::client_performance(&total, 10),
            "business_impact": answers::business_impact(&total.reports),
        }))
    }

    async fn trends(&self, tenant: &str, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let g = p.choice(
            "granularity",
            &[("hour", Granularity::Hour), ("day", Granularity::Day), ("week", Granularity::Week), ("month", Granularity::Month)],
            Granularity::Day,
        )?;
        let metric = p.choice(
            "metric",
            &[
                ("activities", TrendMetric::Activities),
                ("reports", TrendMetric::Reports),
                ("api_requests", TrendMetric::ApiRequests),
                ("errors", TrendMetric::Errors),
                ("active_users", TrendMetric::ActiveUsers),
            ],
            TrendMetric::Activities,
        )?;
        let tz = p.tz()?;
        let range = p.range(now, &tz, 30)?;
        let bounds = bucket_bounds(range, g, &tz);
        if bounds.len() > MAX_BUCKETS + 1 {
            return Err(ApiError::bad_request(format!(
                "this range has {} buckets at this granularity; at most {MAX_BUCKETS}: narrow the dates or use a coarser granularity",
                bounds.len() - 1
            )));
        }
        let pieces = self.pieces(tenant, &Scope::Tenant, range, &bounds, now).await?;
        let points: Vec<answers::TrendPoint> = answers::buckets(&pieces, &bounds)
            .iter()
            .map(|b| answers::TrendPoint { bucket_start: b.bucket_start, value: b.value(metric) })
            .collect();
        Ok(json!({
            "granularity": p.get("granularity").unwrap_or("day"),
            "metric": p.get("metric").unwrap_or("activities"),
            "tz": tz.name(),
            "date_from": range.from,
            "date_to": range.to,
            "points": points,
        }))
    }

    /// The latest stored snapshot when it is recent, else the application
    /// figures computed now (host figures then null).
    async fn system_health(&self, tenant: &str, now: DateTime<Utc>) -> Result<analytics_shared::model::HealthSnapshot, ApiError> {
        if let Some(s) = self.store.documents().latest_snapshot(tenant, now).await?
            && now - s.captured_at <= Duration::minutes(15)
        {
            return Ok(s);
        }
        Ok(period::app_health_now(&self.store, tenant, now, &self.cfg.retention).await?)
    }
}

/// The starts of the UTC days of a range.
fn utc_days(range: DateRange) -> Vec<DateTime<Utc>> {
    let mut b = bucket_bounds(range, Granularity::Day, &Zone::UTC);
    b.pop();
    b
}

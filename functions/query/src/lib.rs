//! The read API behind `/api/v1/analytics/...`: the route table, the access
//! check and the answer cache. The handlers, one file per route family in
//! `routes`, parse a route's parameters, call [`analytics_shared::query`]
//! and the store, and shape the typed bodies of
//! [`analytics_shared::query::responses`]. Who may call what, whose events
//! a caller sees, and every figure are decided in the shared crate.
//!
//! Routing is a table ([`ROUTES`]) rather than a router framework: the
//! routes are fixed, 404 and 405 must answer in the contract's error shape,
//! and the same table feeds the OpenAPI, template and router checks.

mod routes;

use analytics_shared::cursor::CursorKey;
use analytics_shared::error::json_text_response;
use analytics_shared::query::{Access, Params};
use analytics_shared::store::Table;
use analytics_shared::{ApiError, Config, http as glue};
use lambda_http::{Body, Request, Response};

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
    Events,
    MetricsHistory,
    SystemHealthHistory,
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

const fn def(
    route: Route,
    method: &'static str,
    path: &'static str,
    access: Access,
    params: &'static [&'static str],
    caching: Caching,
) -> RouteDef {
    RouteDef { route, method, path, access, params, caching }
}

use Access::{Admin, Any, Managers};
use Caching::{Health, Never, Standard};

/// Every route, its method, who may call it, what it accepts and how long
/// its answers are cached.
#[rustfmt::skip]
pub const ROUTES: [RouteDef; 19] = [
    def(Route::UserActivity, "GET", "/user-activity", Any, &["user_id", "date_from", "date_to", "activity_type", "limit", "cursor"], Never),
    def(Route::ActivitySummary, "GET", "/activity-summary", Any, &["group_by", "user_id", "date_from", "date_to"], Standard),
    def(Route::SystemHealth, "GET", "/system-health", Managers, &[], Health),
    def(Route::Dashboard, "GET", "/dashboard", Managers, &["period"], Standard),
    def(Route::Metrics, "GET", "/metrics", Managers, &["period"], Standard),
    def(Route::Trends, "GET", "/trends", Managers, &["granularity", "metric", "tz", "date_from", "date_to"], Standard),
    def(Route::Categories, "GET", "/categories", Managers, &["period"], Standard),
    def(Route::RecentActivity, "GET", "/recent-activity", Any, &["limit"], Never),
    def(Route::ClientPerformance, "GET", "/client-performance", Managers, &["period", "limit"], Standard),
    def(Route::BusinessImpact, "GET", "/business-impact", Managers, &["period"], Standard),
    def(Route::ApiRequests, "GET", "/api-requests", Managers, &["endpoint", "status_class", "date_from", "date_to"], Standard),
    def(Route::AuthEvents, "GET", "/auth-events", Managers, &["date_from", "date_to", "limit"], Standard),
    def(Route::ExternalCalls, "GET", "/external-calls", Managers, &["granularity", "group_by", "limit", "date_from", "date_to"], Standard),
    def(Route::CacheInvalidate, "POST", "/cache/invalidate", Admin, &[], Never),
    def(Route::WeeklyReports, "GET", "/reports/weekly", Managers, &["limit", "cursor"], Never),
    def(Route::WeeklyReport, "GET", "/reports/weekly/{week}", Managers, &[], Never),
    def(Route::Events, "GET", "/events", Any, &analytics_shared::query::explore::EVENT_PARAMS, Never),
    def(Route::MetricsHistory, "GET", "/metrics/history", Managers, &["period_type", "date_from", "date_to"], Standard),
    def(Route::SystemHealthHistory, "GET", "/system-health/history", Managers, &["date_from", "date_to", "limit", "cursor"], Never),
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

/// What a request's log line and metrics name, as far as it got.
#[derive(Default)]
struct Served {
    route: Option<&'static str>,
    tenant: Option<String>,
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
        Ok(Self { cfg, store, cursors: CursorKey::new(secret.expose().as_bytes()) })
    }

    /// Serves one request; never fails: every error is a response. Logs
    /// one `request` line and records the request's metrics (printed by
    /// [`analytics_shared::emf::flush`] after the invocation).
    #[tracing::instrument(skip_all, fields(request_id, route))]
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let request_id = glue::request_id(&req);
        analytics_shared::telemetry::begin_invocation(&request_id);
        tracing::Span::current().record("request_id", request_id.as_str());
        let mut served = Served::default();
        let resp = match self.serve(&req, &mut served).await {
            Ok(a) => {
                let mut resp = json_text_response(http::StatusCode::OK, a.body, &request_id);
                resp.headers_mut().insert("x-cache", http::HeaderValue::from_static(if a.cached { "hit" } else { "miss" }));
                resp
            }
            Err(e) => {
                e.log();
                e.into_response(&request_id)
            }
        };
        let route = served.route.unwrap_or("unknown");
        let status = resp.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let tenant = served.tenant.as_deref().unwrap_or("");
        tracing::info!(route, method = %req.method(), status, latency_ms, tenant, "request");
        analytics_shared::emf::request(route, status, started.elapsed());
        glue::into_lambda(resp)
    }

    /// Routes, checks access, parses the parameters, and answers from the
    /// cache when the route is cached and the tenant's answer is there.
    async fn serve(&self, req: &Request, served: &mut Served) -> Result<Answer, ApiError> {
        let now = analytics_shared::time::receive_time();
        let def = route_of(req.method().as_str(), req.uri().path())?;
        tracing::Span::current().record("route", def.path);
        served.route = Some(def.path);
        let caller = glue::caller(req, &self.cfg.auth)?;
        served.tenant = Some(caller.tenant.to_string());
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
            analytics_shared::emf::cache(def.path, true);
            return Ok(Answer { body, cached: true });
        }
        if cache_key.is_some() {
            analytics_shared::emf::cache(def.path, false);
        }
        let read_before = self.store.items_read();
        let below = glue::path_below(req.uri().path(), BASE).unwrap_or_default();
        let ask = routes::Ask { app: self, caller: &caller, params: &params, def, path_param: path_match(def.path, below).flatten(), now };
        let body = routes::answer(&ask).await?;
        tracing::info!(tenant = %caller.tenant, items_read = self.store.items_read() - read_before, "answered");
        if let (Some(ttl), Some(key)) = (ttl, &cache_key)
            && let Err(e) = self.store.documents().put_cached(&caller.tenant, key, &body, ttl, now).await
        {
            tracing::warn!(error = %e, "caching an answer failed; answering uncached");
        }
        Ok(Answer { body, cached: false })
    }
}

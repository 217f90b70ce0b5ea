//! The sending client (`analytics-client`) against the real ingest function
//! on DynamoDB Local: its layer in front of a small axum app, the batches
//! posted over HTTP to `ingest::App` behind a local server, and what the
//! query function then reports. A gate in front of the ingest server
//! answers 503, loses answers or drops connections on demand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use analytics_client::{Analytics, AnalyticsLayer, AnalyticsUser, AuthEventType, ClientConfig, ErrorMessage, FlushStrategy, StaticToken};
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use integration_tests::*;
use serde_json::Value;
use tower::ServiceExt;

/// What the gate does to the next requests.
#[derive(Default)]
struct Gate {
    /// Answer 503 (Retry-After: 0) without passing the request on.
    refuse: AtomicUsize,
    /// Pass the request on, store it, then answer 503: the answer is lost.
    lose_answer: AtomicUsize,
    /// Close the next connections without reading them.
    drop_connections: AtomicUsize,
    /// Close every connection (a backend gone).
    gone: AtomicBool,
    /// Requests that reached the HTTP server.
    requests: AtomicUsize,
}

fn take(n: &AtomicUsize) -> bool {
    n.fetch_update(SeqCst, SeqCst, |v| v.checked_sub(1)).is_ok()
}

struct Backend {
    gate: Arc<Gate>,
    url: String,
    cfg: analytics_shared::Config,
    query: query::App,
}

impl Backend {
    /// A fresh table, the ingest function behind a gated local server, and
    /// the query function on the same table.
    async fn start() -> Backend {
        let (client, cfg) = fresh_table().await;
        let ingest = Arc::new(ingest::App::new(cfg.clone(), client.clone()));
        let query = query::App::new(cfg.clone(), client).expect("query app");
        let gate = Arc::new(Gate::default());
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let app = axum::Router::new().fallback(as_api_gateway).with_state((ingest, gate.clone()));
        tokio::spawn(async move { axum::serve(server, app).await });
        // The gate's own listener: closes connections on demand, otherwise
        // relays bytes to the server.
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr: SocketAddr = front.local_addr().unwrap();
        let g = gate.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = front.accept().await {
                if g.gone.load(SeqCst) || take(&g.drop_connections) {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(server_addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Backend { gate, url: format!("http://{front_addr}"), cfg, query }
    }

    fn client(&self, tenant: &str, cfg: ClientConfig) -> Analytics {
        let cfg = ClientConfig {
            api_url: self.url.clone(),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(100),
            ..cfg
        };
        Analytics::builder(cfg).token(StaticToken::new(ingest_token(tenant))).build().expect("client")
    }

    async fn get(&self, tenant: &str, path: &str, params: &[(&str, &str)]) -> Value {
        let mut ev = ApiEvent::get(&format!("{}{path}", query::BASE)).bearer(&token("boss", Some(tenant), &["admin"], &[]));
        for (k, v) in params {
            ev = ev.query(k, v);
        }
        let a = Answer::from(self.query.handle(ev.into_request()).await);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        a.body
    }

    /// `/api-requests` as (endpoint, method) -> (count, error count).
    async fn api_requests(&self, tenant: &str) -> BTreeMap<(String, String), (f64, f64)> {
        let body = self.get(tenant, "/api-requests", &[]).await;
        body["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .map(|e| {
                let key = (e["endpoint"].as_str().unwrap().to_owned(), e["method"].as_str().unwrap().to_owned());
                (key, (e["count"].as_f64().unwrap(), e["error_count"].as_f64().unwrap()))
            })
            .collect()
    }
}

/// The local stand-in for API Gateway: the HTTP request becomes the event
/// the Lambda runtime would hand to `ingest::App::handle` (the bearer
/// token is verified by the local verifier, as in every other test).
async fn as_api_gateway(State((ingest, gate)): State<(Arc<ingest::App>, Arc<Gate>)>, req: axum::extract::Request) -> Response {
    gate.requests.fetch_add(1, SeqCst);
    if take(&gate.refuse) {
        return (http::StatusCode::SERVICE_UNAVAILABLE, [(http::header::RETRY_AFTER, "0")], "{}").into_response();
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return http::StatusCode::BAD_REQUEST.into_response();
    };
    let mut ev = ApiEvent::post(parts.uri.path(), String::from_utf8_lossy(&bytes).into_owned());
    for (k, v) in url_pairs(parts.uri.query().unwrap_or("")) {
        ev = ev.query(&k, &v);
    }
    if let Some(auth) = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        ev.headers.push(("authorization".into(), auth.into()));
    }
    let resp = ingest.handle(ev.into_request()).await;
    if take(&gate.lose_answer) {
        return (http::StatusCode::SERVICE_UNAVAILABLE, "{}").into_response();
    }
    let (parts, body) = resp.into_parts();
    let bytes = body_bytes(body);
    Response::from_parts(parts, Body::from(bytes))
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).map(|(k, v)| (k.into(), v.into())).collect()
}

/// The small app the layer wraps.
fn app(analytics: &Analytics) -> axum::Router {
    axum::Router::new()
        .route("/items/{id}", get(|| async { "an item" }))
        .route("/orders", post(|| async { (http::StatusCode::CREATED, "created") }))
        .route(
            "/fail",
            get(|| async {
                let mut r = (http::StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response();
                r.extensions_mut().insert(ErrorMessage("database unreachable".into()));
                r
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(AnalyticsLayer::new(analytics.clone()))
}

/// Serves a request through the app and returns its status.
async fn serve(app: &axum::Router, method: &str, path: &str) -> u16 {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("x-forwarded-for", "198.51.100.20, 203.0.113.50")
        .header("user-agent", "client-tests")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(AnalyticsUser("u-7".into()));
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

/// Per (endpoint template, method): served count and 5xx count.
type Served = BTreeMap<(String, String), (f64, f64)>;

fn tally(served: &mut Served, endpoint: &str, method: &str, status: u16) {
    let e = served.entry((endpoint.into(), method.into())).or_default();
    e.0 += 1.0;
    if status >= 500 {
        e.1 += 1.0;
    }
}

#[tokio::test]
async fn what_the_app_served_is_what_the_query_routes_report() {
    let backend = Backend::start().await;
    let analytics =
        backend.client("acme", ClientConfig { flush_strategy: FlushStrategy::Count, flush_count_threshold: 1000, ..Default::default() });
    let app = app(&analytics);
    let mut served = Served::new();
    for i in 0..30 {
        let s = serve(&app, "GET", &format!("/items/{i}?page=2&api_key=k-{i}")).await;
        tally(&mut served, "/items/{id}", "GET", s);
    }
    for _ in 0..10 {
        tally(&mut served, "/orders", "POST", serve(&app, "POST", "/orders").await);
    }
    for _ in 0..5 {
        tally(&mut served, "/fail", "GET", serve(&app, "GET", "/fail").await);
    }
    for _ in 0..7 {
        assert_eq!(serve(&app, "GET", "/health").await, 200);
    }
    let report = analytics.flush().await;
    assert_eq!((report.sent, report.rejected, report.requeued), (45, 0, 0), "{report:?}");
    assert_eq!(served[&("/fail".to_owned(), "GET".to_owned())], (5.0, 5.0));
    assert_eq!(backend.api_requests("acme").await, served, "per route template and method; /health excluded");

    // The stored events in full: the fields the layer captured, sanitized.
    let store = analytics_shared::store::Table::new(client(&backend.cfg.store), backend.cfg.store.clone());
    let now = chrono::Utc::now();
    let mut stored = Vec::new();
    for hour in [now - chrono::Duration::hours(1), now] {
        let label = analytics_shared::time::hour_label(analytics_shared::time::hour_start(hour));
        stored.extend(store.events().hour_events("acme", &label, now).await.expect("hour events"));
    }
    let requests: Vec<analytics_shared::model::event::ApiRequest> = stored
        .iter()
        .filter_map(|s| match &s.event.body {
            analytics_shared::model::EventBody::ApiRequest(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 45);
    assert!(stored.iter().all(|s| s.event.user_id.as_deref() == Some("u-7")), "the user the app put in the extensions");
    assert!(stored.iter().all(|s| s.event.ip_address.as_deref() == Some("203.0.113.50")), "one trusted proxy: the rightmost hop");
    assert!(stored.iter().all(|s| s.event.user_agent.as_deref() == Some("client-tests")));
    let item = requests.iter().find(|a| a.endpoint == "/items/{id}").expect("an /items/{id} request");
    let q = item.query_params.as_ref().expect("query parameters");
    assert_eq!((q["page"].as_str(), q["api_key"].as_str()), ("2", "[REDACTED]"));
    assert!(item.response_size == Some(7) && item.response_time_ms >= 0.0 && item.sample_rate == 1.0, "{item:?}");
    let fail = requests.iter().find(|a| a.endpoint == "/fail").expect("a /fail request");
    assert_eq!(fail.error_message.as_deref(), Some("database unreachable"));
    analytics.shutdown().await;
}

#[tokio::test]
async fn sampled_traffic_is_counted_by_weight_within_tolerance() {
    // Deterministic draws on this (current-thread) test's thread; the
    // tolerance is what any seed must meet: 1,500 draws at 0.2 keep 300 ± 15
    // (one standard deviation), so ±15% is about 3 deviations.
    fastrand::seed(20261122);
    let backend = Backend::start().await;
    let analytics = backend.client(
        "acme",
        ClientConfig { flush_strategy: FlushStrategy::Count, sampling_enabled: true, sampling_rate: 0.2, ..Default::default() },
    );
    let app = app(&analytics);
    for i in 0..1500 {
        assert_eq!(serve(&app, "GET", &format!("/items/{i}")).await, 200);
    }
    for _ in 0..30 {
        assert_eq!(serve(&app, "GET", "/fail").await, 500);
    }
    analytics.flush().await;
    let stats = analytics.stats();
    assert_eq!(stats.sent + stats.sampled_out, 1530, "{stats:?}");
    assert!(stats.sent < 400, "sampling sends about a fifth: {stats:?}");

    let check = |api: &BTreeMap<(String, String), (f64, f64)>| {
        let items = api[&("/items/{id}".to_owned(), "GET".to_owned())];
        assert!((items.0 - 1500.0).abs() <= 0.15 * 1500.0, "weighted count {} within 15% of 1500", items.0);
        assert_eq!(items.1, 0.0);
        assert_eq!(api[&("/fail".to_owned(), "GET".to_owned())], (30.0, 30.0), "5xx kept at rate 1: exact");
    };
    let raw = backend.api_requests("acme").await;
    check(&raw);
    // The same figures once the hour is rolled up (and the cache dropped).
    let store = analytics_shared::store::Table::new(client(&backend.cfg.store), backend.cfg.store.clone());
    analytics_shared::jobs::rollup::roll_up_tenant(&store, "acme", chrono::Utc::now(), &backend.cfg.retention, 10_000)
        .await
        .expect("roll-up");
    let inv = Answer::from(
        backend
            .query
            .handle(
                ApiEvent::post(&format!("{}/cache/invalidate", query::BASE), "")
                    .bearer(&token("boss", Some("acme"), &["admin"], &[]))
                    .into_request(),
            )
            .await,
    );
    assert_eq!(inv.status, 200);
    let rolled = backend.api_requests("acme").await;
    check(&rolled);
    assert_eq!(rolled, raw, "raw events and rollups agree");
    analytics.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_fails_then_recovers_loses_nothing_and_duplicates_nothing() {
    let backend = Backend::start().await;
    // A dropped connection, two 503s, then a batch stored whose answer is
    // lost: the resend must be recognised, not stored again.
    backend.gate.drop_connections.store(1, SeqCst);
    backend.gate.refuse.store(2, SeqCst);
    backend.gate.lose_answer.store(1, SeqCst);
    let analytics = backend.client(
        "acme",
        ClientConfig { flush_strategy: FlushStrategy::Count, flush_count_threshold: 1000, max_retries: 8, ..Default::default() },
    );
    let app = app(&analytics);
    for i in 0..40 {
        assert_eq!(serve(&app, "GET", &format!("/items/{i}")).await, 200);
    }
    for _ in 0..3 {
        analytics.auth(AuthEventType::LoginFailed, false).user("u-9").ip("198.51.100.9".parse().unwrap()).record();
    }
    let call = analytics
        .external_call("gemini", "https://generativelanguage.googleapis.com/v1/generate?key=SECRET-KEY")
        .method("POST")
        .cost(0.5)
        .user("u-9")
        .model("gemini-1.5-pro")
        .tokens(1200, 340);
    let out = call.time(async { Ok::<_, std::io::Error>(http::StatusCode::OK) }).await;
    assert!(out.is_ok());
    let report = analytics.flush().await;
    let stats = analytics.stats();
    assert_eq!(stats.recorded, 44);
    assert_eq!(report.sent + report.duplicates, 44, "every event answered for exactly once: {report:?}");
    assert_eq!(report.duplicates, 44, "the batch whose answer was lost came back as duplicates");
    assert_eq!((stats.dropped, stats.buffered, stats.rejected), (0, 0, 0), "{stats:?}");
    assert!(stats.retried >= 3 * 44, "{stats:?}");
    assert_eq!(backend.gate.requests.load(SeqCst), 4, "two refused, one answer lost, one recognised");

    let api = backend.api_requests("acme").await;
    assert_eq!(api[&("/items/{id}".to_owned(), "GET".to_owned())], (40.0, 0.0), "stored once, counted once");
    let auth = backend.get("acme", "/auth-events", &[]).await;
    assert_eq!(auth["failed_logins"], 3);
    let ext = backend.get("acme", "/external-calls", &[]).await;
    assert_eq!(ext["services"][0]["calls"], 1);
    assert_eq!((ext["services"][0]["input_tokens"].as_u64(), ext["services"][0]["output_tokens"].as_u64()), (Some(1200), Some(340)));
    assert_eq!(ext["total_cost"], 0.5);
    let models = backend.get("acme", "/external-calls", &[("group_by", "model")]).await;
    assert_eq!((models["rows"][0]["key"].as_str(), models["rows"][0]["calls"].as_u64()), (Some("gemini-1.5-pro"), Some(1)), "{models}");
    let users = backend.get("acme", "/external-calls", &[("group_by", "user")]).await;
    assert_eq!(users["rows"][0]["key"], "u-9");
    let endpoints = backend.get("acme", "/external-calls", &[("group_by", "endpoint")]).await;
    assert_eq!(endpoints["rows"][0]["key"], "https://generativelanguage.googleapis.com/v1/generate", "sent without its query string");
    assert!(!endpoints.to_string().contains("SECRET-KEY"));
    analytics.shutdown().await;
}

#[tokio::test]
async fn a_backend_gone_for_long_drops_the_oldest_first_and_reports_it() {
    let backend = Backend::start().await;
    backend.gate.gone.store(true, SeqCst);
    let analytics = backend.client(
        "acme",
        ClientConfig {
            flush_strategy: FlushStrategy::Time,
            flush_interval: Duration::from_secs(3600),
            buffer_capacity: 20,
            max_retries: 1,
            ..Default::default()
        },
    );
    let user = |i: usize| format!("u-{i:02}");
    for i in 0..30 {
        analytics.activity(user(i), "view_dashboard").record();
    }
    assert_eq!(analytics.stats().dropped, 10, "a full buffer drops on record");
    let report = analytics.flush().await;
    assert_eq!((report.sent, report.requeued, report.dropped), (0, 20, 0), "kept for later: {report:?}");
    for i in 30..60 {
        analytics.activity(user(i), "view_dashboard").record();
    }
    let report = analytics.flush().await;
    assert_eq!(report.requeued, 20);
    let stats = analytics.stats();
    assert_eq!((stats.recorded, stats.dropped, stats.buffered, stats.sent), (60, 40, 20, 0), "{stats:?}");

    backend.gate.gone.store(false, SeqCst);
    let report = analytics.shutdown().await;
    assert_eq!((report.sent, report.dropped), (20, 0), "{report:?}");
    let feed = backend.get("acme", "/user-activity", &[("limit", "100")]).await;
    let mut users: Vec<String> = feed["items"].as_array().unwrap().iter().map(|e| e["user_id"].as_str().unwrap().to_owned()).collect();
    users.sort();
    let newest: Vec<String> = (40..60).map(user).collect();
    assert_eq!(users, newest, "the newest twenty survive, the oldest forty were dropped");
}

/// The layer's activity table: each 2xx answer to a signed-in user on one
/// of its routes is an activity, with its ids from the path; a refused or
/// anonymous request, or a route outside the table, is none.
#[tokio::test]
async fn the_layers_activity_table_records_what_signed_in_users_did() {
    use analytics_client::{ActivityRoute, ActivityTable};
    let backend = Backend::start().await;
    let analytics =
        backend.client("acme", ClientConfig { flush_strategy: FlushStrategy::Count, flush_count_threshold: 1000, ..Default::default() });
    let table = ActivityTable::standard().with(ActivityRoute::new(&[http::Method::POST], "/exports", "export_data"));
    let denied = || async { http::StatusCode::FORBIDDEN };
    let app = axum::Router::new()
        .route("/clients/{client_id}/reports", post(|| async { http::StatusCode::CREATED }).get(|| async { "list" }))
        .route("/reports/{id}", axum::routing::delete(|| async { http::StatusCode::NO_CONTENT }))
        .route("/clients", post(denied))
        .route("/exports", post(|| async { "ok" }))
        .route("/health", get(|| async { "ok" }))
        .layer(AnalyticsLayer::new(analytics.clone()).with_activities(table));
    let send = |method: &'static str, path: &'static str, user: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut req = http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            if let Some(u) = user {
                req.extensions_mut().insert(AnalyticsUser(u.into()));
            }
            app.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(send("POST", "/clients/c-1/reports", Some("u-1")).await, 201);
    assert_eq!(send("POST", "/clients/c-2/reports", Some("u-2")).await, 201);
    assert_eq!(send("DELETE", "/reports/r-9", Some("u-1")).await, 204);
    assert_eq!(send("POST", "/exports", Some("u-3")).await, 200, "an entry of the app's own");
    assert_eq!(send("POST", "/clients/c-3/reports", None).await, 201, "anonymous: no activity");
    assert_eq!(send("POST", "/clients", Some("u-1")).await, 403, "refused: no activity");
    assert_eq!(send("GET", "/clients/c-1/reports", Some("u-1")).await, 200, "not in the table");
    assert_eq!(send("POST", "/exports", Some("u-4")).await, 200);
    let report = analytics.flush().await;
    // 8 api_request events (none excluded) and 5 activities.
    assert_eq!((report.sent, report.rejected), (13, 0), "{report:?}");

    let feed = backend.get("acme", "/user-activity", &[("limit", "100")]).await;
    let mut got: Vec<(String, String, Option<String>, Option<String>)> = feed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().map(str::to_owned);
            (s("user_id").unwrap(), s("action").unwrap(), s("client_id"), s("report_id"))
        })
        .collect();
    got.sort();
    let want = |u: &str, a: &str, c: Option<&str>, r: Option<&str>| (u.to_owned(), a.to_owned(), c.map(Into::into), r.map(Into::into));
    assert_eq!(
        got,
        vec![
            want("u-1", "delete_report", None, Some("r-9")),
            want("u-1", "generate_report", Some("c-1"), None),
            want("u-2", "generate_report", Some("c-2"), None),
            want("u-3", "export_data", None, None),
            want("u-4", "export_data", None, None),
        ],
        "{feed}"
    );
    analytics.shutdown().await;
}

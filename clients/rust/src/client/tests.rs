//! The client's behaviour against an in-process backend that keeps the
//! contract's rules (de-duplication by `event_id`, 413 beyond a size,
//! scripted failures), under Tokio's paused clock: no real waiting, no
//! timing flakiness.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;

use analytics_contract::event::AuthEventType;
use bytes::Bytes;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

use super::*;
use crate::config::FlushStrategy;
use crate::transport::{BoxFuture, Reply};
use crate::{AnalyticsLayer, AnalyticsUser, ErrorMessage};

enum Fail {
    Status(u16, Option<Duration>),
    Network,
    /// Stores the batch, then the answer is lost (a 503 instead).
    LoseAnswer,
    /// Stores all but these indexes, rejected with these codes.
    Reject(Vec<(usize, &'static str)>),
}

#[derive(Default)]
struct State {
    requests: Vec<(String, Vec<Value>)>,
    stored: Vec<Value>,
    script: VecDeque<Fail>,
    down: bool,
    max_events: Option<usize>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }
    fn stored_ids(&self) -> Vec<String> {
        self.state().stored.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect()
    }
    fn stored(&self) -> Vec<Value> {
        self.state().stored.clone()
    }
}

fn answer(status: u16, body: Value) -> Reply {
    Reply { status, retry_after: None, body: Bytes::from(body.to_string()) }
}

impl Transport for Fake {
    fn post(&self, bearer: String, body: Bytes) -> BoxFuture<'_, Result<Reply, SendError>> {
        Box::pin(async move {
            let v: Value = serde_json::from_slice(&body).expect("the client sends JSON");
            assert!(v["sent_at"].is_string(), "every batch has sent_at");
            let events = v["events"].as_array().unwrap().clone();
            let mut s = self.state();
            s.requests.push((bearer.clone(), events.clone()));
            if bearer == "old" {
                return Ok(answer(401, json!({"error": {"code": "unauthorized"}})));
            }
            if s.down {
                return Err(SendError::Network("connection refused".into()));
            }
            if s.max_events.is_some_and(|m| events.len() > m) {
                return Ok(answer(413, json!({"error": {"code": "payload_too_large"}})));
            }
            let fail = s.script.pop_front();
            let skip: Vec<(usize, &str)> = match &fail {
                Some(Fail::Status(code, retry_after)) => {
                    return Ok(Reply { status: *code, retry_after: *retry_after, body: Bytes::new() });
                }
                Some(Fail::Network) => return Err(SendError::Network("reset".into())),
                Some(Fail::Reject(list)) => list.clone(),
                _ => vec![],
            };
            let (mut accepted, mut duplicates) = (0, 0);
            for (i, e) in events.iter().enumerate() {
                if skip.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                if s.stored.iter().any(|x| x["event_id"] == e["event_id"]) {
                    duplicates += 1;
                } else {
                    s.stored.push(e.clone());
                    accepted += 1;
                }
            }
            if matches!(fail, Some(Fail::LoseAnswer)) {
                return Ok(answer(503, json!({"error": {"code": "unavailable"}})));
            }
            let rejected: Vec<Value> = skip.iter().map(|(i, code)| json!({"index": i, "code": code, "message": "m"})).collect();
            Ok(answer(202, json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected, "received_at": "x"})))
        })
    }
}

fn cfg(strategy: FlushStrategy) -> ClientConfig {
    ClientConfig {
        flush_strategy: strategy,
        flush_interval: Duration::from_secs(10),
        flush_count_threshold: 3,
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(10),
        ..ClientConfig::default()
    }
}

fn client(cfg: ClientConfig, fake: &Fake) -> Analytics {
    Analytics::builder(cfg).token(StaticToken::new("tok")).transport(fake.clone()).build().unwrap()
}

fn record_n(a: &Analytics, n: usize) {
    for i in 0..n {
        a.activity(format!("u-{i}"), "login").record();
    }
}

/// Lets the background task run everything it can without the clock moving.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn time_strategy_flushes_on_the_interval_and_not_before() {
    let fake = Fake::default();
    let a = client(cfg(FlushStrategy::Time), &fake);
    record_n(&a, 5);
    tokio::time::sleep(Duration::from_millis(9_900)).await;
    settle().await;
    assert_eq!(fake.stored().len(), 0, "nothing before the interval, though the count threshold (3) is passed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(fake.stored().len(), 5);
    assert_eq!(fake.state().requests.len(), 1, "one batch");
    record_n(&a, 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(fake.stored().len(), 6, "and again on the next tick");
}

#[tokio::test(start_paused = true)]
async fn count_strategy_flushes_at_the_threshold_and_not_on_time() {
    let fake = Fake::default();
    let a = client(cfg(FlushStrategy::Count), &fake);
    record_n(&a, 2);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    settle().await;
    assert_eq!(fake.stored().len(), 0, "below the threshold nothing is sent, however long");
    record_n(&a, 1);
    settle().await;
    assert_eq!(fake.stored().len(), 3, "the third event triggers the flush without the clock moving");
}

#[tokio::test(start_paused = true)]
async fn hybrid_flushes_on_whichever_comes_first() {
    let fake = Fake::default();
    let a = client(cfg(FlushStrategy::Hybrid), &fake);
    record_n(&a, 3);
    settle().await;
    assert_eq!(fake.stored().len(), 3, "by count");
    record_n(&a, 1);
    settle().await;
    assert_eq!(fake.stored().len(), 3);
    tokio::time::sleep(Duration::from_secs(11)).await;
    settle().await;
    assert_eq!(fake.stored().len(), 4, "by time");
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_what_is_left_and_later_records_are_counted_as_dropped() {
    let fake = Fake::default();
    let a = client(ClientConfig { flush_count_threshold: 100, ..cfg(FlushStrategy::Count) }, &fake);
    record_n(&a, 7);
    let report = a.shutdown().await;
    assert_eq!((report.sent, report.dropped), (7, 0));
    assert_eq!(fake.stored().len(), 7);
    record_n(&a, 1);
    assert_eq!(a.stats().dropped, 1);
}

#[tokio::test(start_paused = true)]
async fn per_invocation_mode_flushes_before_the_response_is_returned() {
    let fake = Fake::default();
    let a = client(ClientConfig { flush_per_invocation: true, ..cfg(FlushStrategy::Time) }, &fake);
    let svc = AnalyticsLayer::new(a.clone())
        .layer(tower::service_fn(|_req: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new(String::from("ok"))) }));
    let resp = svc.oneshot(http::Request::get("/lambda").body(String::new()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.stored().len(), 1, "sent before the invocation answered");
    assert_eq!(fake.stored()[0]["endpoint"], "/lambda");
}

#[tokio::test(start_paused = true)]
async fn a_503_and_a_lost_answer_then_recovery_lose_nothing_and_duplicate_nothing() {
    let fake = Fake::default();
    fake.state().script.extend([Fail::Status(503, None), Fail::Network, Fail::LoseAnswer, Fail::Status(503, None)]);
    let a = client(cfg(FlushStrategy::Count), &fake);
    let report = {
        record_n(&a, 2);
        a.flush().await
    };
    let ids = fake.stored_ids();
    assert_eq!(ids.len(), 2, "stored once each");
    assert_eq!(report.sent + report.duplicates, 2, "each event answered for once: {report:?}");
    assert_eq!((report.sent, report.duplicates), (0, 2), "the lost answer's batch came back as duplicates");
    let stats = a.stats();
    assert_eq!(stats.retried, 8, "4 failed attempts of 2 events");
    assert_eq!((stats.buffered, stats.dropped), (0, 0));
    let sent: Vec<Vec<Value>> = fake.state().requests.iter().map(|(_, e)| e.clone()).collect();
    assert!(sent.windows(2).all(|w| w[0] == w[1]), "every resend carries the same ids and occurred_at");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for() {
    let fake = Fake::default();
    fake.state().script.push_back(Fail::Status(503, Some(Duration::from_secs(5))));
    let a = client(cfg(FlushStrategy::Count), &fake);
    record_n(&a, 1);
    let t0 = tokio::time::Instant::now();
    a.flush().await;
    assert!(t0.elapsed() >= Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(fake.stored().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_the_events_kept_for_the_next_flush() {
    let fake = Fake::default();
    fake.state().down = true;
    let a = client(ClientConfig { max_retries: 2, ..cfg(FlushStrategy::Count) }, &fake);
    record_n(&a, 2);
    let report = a.flush().await;
    assert_eq!(report.requeued, 2);
    assert_eq!(fake.state().requests.len(), 3, "one attempt and two retries");
    assert_eq!(a.stats().buffered, 2);
    fake.state().down = false;
    assert_eq!(a.flush().await.sent, 2);
    assert_eq!(a.stats().buffered, 0);
}

#[tokio::test(start_paused = true)]
async fn a_long_outage_drops_the_oldest_and_counts_them() {
    let fake = Fake::default();
    fake.state().down = true;
    let a = client(ClientConfig { buffer_capacity: 10, max_retries: 1, ..cfg(FlushStrategy::Time) }, &fake);
    let mut ids = Vec::new();
    for round in 0..5 {
        for i in 0..5 {
            a.activity(format!("u-{round}-{i}"), "login").record();
        }
        ids.extend((0..5).map(|i| format!("u-{round}-{i}")));
        tokio::time::sleep(Duration::from_secs(11)).await;
        settle().await;
    }
    let stats = a.stats();
    assert_eq!((stats.recorded, stats.dropped, stats.buffered), (25, 15, 10), "{stats:?}");
    fake.state().down = false;
    a.flush().await;
    let users: Vec<String> = fake.stored().iter().map(|e| e["user_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(users, ids[15..], "the newest ten survive, in order");
}

#[tokio::test(start_paused = true)]
async fn a_413_splits_the_batch_until_it_fits() {
    let fake = Fake::default();
    fake.state().max_events = Some(3);
    let a = client(cfg(FlushStrategy::Count), &fake);
    record_n(&a, 10);
    let report = a.flush().await;
    assert_eq!(report.sent, 10);
    let mut users: Vec<String> = fake.stored().iter().map(|e| e["user_id"].as_str().unwrap().to_owned()).collect();
    users.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("u-{i}")).collect();
    want.sort();
    assert_eq!(users, want);
    assert_eq!(a.stats().retried, 0, "a split is not a retry");
}

#[tokio::test(start_paused = true)]
async fn only_what_was_not_stored_is_sent_again() {
    let fake = Fake::default();
    fake.state().script.push_back(Fail::Reject(vec![(0, "unavailable"), (1, "validation_failed")]));
    let a = client(cfg(FlushStrategy::Count), &fake);
    record_n(&a, 4);
    let report = a.flush().await;
    assert_eq!((report.sent, report.rejected), (3, 1));
    let requests = fake.state().requests.clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].1.len(), 1, "only the event the backend could not store");
    assert_eq!(requests[1].1[0]["user_id"], "u-0");
}

#[tokio::test(start_paused = true)]
async fn the_token_is_asked_for_before_every_send() {
    let fake = Fake::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let a = Analytics::builder(cfg(FlushStrategy::Count))
        .token(move || {
            let n = c.fetch_add(1, Relaxed);
            async move { Ok::<_, std::io::Error>(if n == 0 { "old".to_owned() } else { "new".to_owned() }) }
        })
        .transport(fake.clone())
        .build()
        .unwrap();
    record_n(&a, 1);
    a.flush().await;
    let bearers: Vec<String> = fake.state().requests.iter().map(|(b, _)| b.clone()).collect();
    assert_eq!(bearers, ["old", "new"], "a 401 is retried with the rotated token");
    assert_eq!(fake.stored().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_event_over_the_size_limit_is_refused_alone() {
    let fake = Fake::default();
    let a = client(cfg(FlushStrategy::Count), &fake);
    a.activity("u-big", "login").meta("blob", "x".repeat(40_000)).record();
    record_n(&a, 1);
    let report = a.flush().await;
    assert_eq!((report.sent, report.rejected), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_layer_records_what_the_service_answered() {
    let fake = Fake::default();
    let a = client(ClientConfig { trusted_proxies: 1, ..cfg(FlushStrategy::Count) }, &fake);
    let app = axum::Router::new()
        .route("/items/{id}", axum::routing::get(|| async { "an item" }))
        .route(
            "/boom",
            axum::routing::post(|| async {
                let mut r = axum::response::IntoResponse::into_response((http::StatusCode::BAD_GATEWAY, "x"));
                r.extensions_mut().insert(ErrorMessage("upstream timed out".into()));
                r.extensions_mut().insert(AnalyticsUser("u-late".into()));
                r
            }),
        )
        .route("/health", axum::routing::get(|| async { "ok" }))
        .layer(AnalyticsLayer::new(a.clone()));
    let mut req = http::Request::get("/items/42?q=shoes&password=hunter2")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .header("user-agent", "tests/1.0")
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut().insert(AnalyticsUser("u-1".into()));
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
    let req = http::Request::post("/boom").header("content-length", "3").body(axum::body::Body::from("abc")).unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 502);
    let req = http::Request::get("/health/db").body(axum::body::Body::empty()).unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 404, "the route does not exist, yet it is excluded");
    a.flush().await;
    let ev = fake.stored();
    assert_eq!(ev.len(), 2, "the excluded path is not recorded: {ev:?}");
    let item = &ev[0];
    assert_eq!(item["kind"], "api_request");
    assert_eq!(item["endpoint"], "/items/{id}", "the route template, not the path");
    assert_eq!((item["method"].as_str(), item["status_code"].as_u64()), (Some("GET"), Some(200)));
    assert_eq!(item["ip_address"], "203.0.113.7", "one trusted proxy: the rightmost hop");
    assert_eq!(item["user_agent"], "tests/1.0");
    assert_eq!(item["user_id"], "u-1");
    assert_eq!(item["query_params"], json!({"q": "shoes", "password": "[REDACTED]"}));
    assert_eq!(item["response_size"], 7);
    assert_eq!(item["sample_rate"], 1.0);
    assert!(item["response_time_ms"].as_f64().unwrap() >= 0.0);
    assert!(item["occurred_at"].as_str().unwrap().ends_with('Z'));
    let boom = &ev[1];
    assert_eq!((boom["status_code"].as_u64(), boom["error_message"].as_str()), (Some(502), Some("upstream timed out")));
    assert_eq!((boom["request_size"].as_u64(), boom["user_id"].as_str()), (Some(3), Some("u-late")));
}

#[tokio::test(start_paused = true)]
async fn a_disabled_client_records_nothing_and_the_layer_passes_through() {
    let fake = Fake::default();
    let a = client(ClientConfig { enabled: false, ..cfg(FlushStrategy::Count) }, &fake);
    let svc = AnalyticsLayer::new(a.clone())
        .layer(tower::service_fn(|_r: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new(String::new())) }));
    svc.oneshot(http::Request::get("/x").body(String::new()).unwrap()).await.unwrap();
    record_n(&a, 3);
    a.flush().await;
    assert_eq!(a.stats(), Stats::default());
    assert!(fake.state().requests.is_empty());
}

#[tokio::test(start_paused = true)]
async fn sampled_out_requests_are_counted_and_errors_always_kept() {
    let fake = Fake::default();
    let a = client(ClientConfig { sampling_enabled: true, sampling_rate: 0.1, ..cfg(FlushStrategy::Count) }, &fake);
    let svc = AnalyticsLayer::new(a.clone()).layer(tower::service_fn(|r: http::Request<String>| async move {
        let status = if r.uri().path() == "/err" { 500 } else { 200 };
        Ok::<_, Infallible>(http::Response::builder().status(status).body(String::new()).unwrap())
    }));
    for i in 0..400 {
        let path = if i % 40 == 0 { "/err" } else { "/ok" };
        svc.clone().oneshot(http::Request::get(path).body(String::new()).unwrap()).await.unwrap();
    }
    a.flush().await;
    let ev = fake.stored();
    let errors: Vec<&Value> = ev.iter().filter(|e| e["status_code"] == 500).collect();
    assert_eq!(errors.len(), 10, "every 5xx is kept");
    assert!(errors.iter().all(|e| e["sample_rate"] == 1.0));
    let ok = ev.len() - 10;
    assert!(ev.iter().filter(|e| e["status_code"] == 200).all(|e| e["sample_rate"] == 0.1));
    assert_eq!(a.stats().sampled_out as usize + ok, 390);
    assert!((10..=80).contains(&ok), "about 39 of 390 kept: {ok}");
}

#[tokio::test(start_paused = true)]
async fn the_helpers_record_one_line_events() {
    let fake = Fake::default();
    let a = client(cfg(FlushStrategy::Count), &fake);
    a.auth(AuthEventType::LoginFailed, false).user("u-9").ip("203.0.113.9".parse().unwrap()).error("bad password").record();
    a.activity("u-9", "generate_report").client_id("c-7").report_id("r-1").meta("api_token", "s").record();
    let out = a
        .external_call("gemini", "/v1/generate")
        .method("POST")
        .cost(0.002)
        .time(async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            Ok::<_, std::io::Error>(http::Response::builder().status(429).body(()).unwrap())
        })
        .await;
    assert_eq!(out.unwrap().status(), 429, "the call's own output is returned");
    let cancelled = a.external_call("brightdata", "/scrape").time(std::future::pending::<()>());
    let _ = tokio::time::timeout(Duration::from_secs(1), cancelled).await;
    a.flush().await;
    let ev = fake.stored();
    assert_eq!(ev.len(), 4);
    assert_eq!(
        (ev[0]["kind"].as_str(), ev[0]["event_type"].as_str(), ev[0]["success"].as_bool(), ev[0]["error_message"].as_str()),
        (Some("auth"), Some("login_failed"), Some(false), Some("bad password"))
    );
    assert_eq!(ev[0]["ip_address"], "203.0.113.9");
    assert_eq!((ev[1]["action"].as_str(), ev[1]["client_id"].as_str()), (Some("generate_report"), Some("c-7")));
    assert_eq!(ev[1]["metadata"]["api_token"], "[REDACTED]");
    let call = &ev[2];
    assert_eq!(
        (call["service"].as_str(), call["status_code"].as_u64(), call["cost_estimate"].as_f64()),
        (Some("gemini"), Some(429), Some(0.002))
    );
    assert_eq!(call["error_message"], "Too Many Requests");
    let ms = call["response_time_ms"].as_f64().unwrap();
    assert!((250.0..260.0).contains(&ms), "{ms}");
    assert_eq!((ev[3]["service"].as_str(), ev[3]["error_message"].as_str()), (Some("brightdata"), Some("cancelled before completion")));
}

#[cfg(feature = "lambda")]
#[tokio::test(start_paused = true)]
async fn on_lambda_the_route_key_and_source_ip_are_read() {
    let fake = Fake::default();
    let a = client(ClientConfig { flush_per_invocation: true, ..cfg(FlushStrategy::Time) }, &fake);
    let event = json!({
        "version": "2.0", "routeKey": "GET /items/{id}", "rawPath": "/items/42", "rawQueryString": "",
        "headers": {"user-agent": "lambda-tests"},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
            "http": {"method": "GET", "path": "/items/42", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.77", "userAgent": "lambda-tests"},
            "requestId": "r", "routeKey": "GET /items/{id}", "stage": "$default", "time": "t", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let svc = AnalyticsLayer::new(a.clone()).layer(tower::service_fn(|_r: lambda_http::Request| async {
        Ok::<_, lambda_http::Error>(http::Response::new(lambda_http::Body::from("ok")))
    }));
    svc.oneshot(req).await.unwrap();
    let ev = fake.stored();
    assert_eq!(ev.len(), 1, "flushed before the invocation returned");
    assert_eq!((ev[0]["endpoint"].as_str(), ev[0]["ip_address"].as_str()), (Some("/items/{id}"), Some("198.51.100.77")));
}

#[test]
fn a_disabled_client_starts_without_a_url_or_a_runtime() {
    let a = Analytics::builder(ClientConfig { enabled: false, api_url: "not a url".into(), ..ClientConfig::default() }).build();
    assert!(a.is_ok());
    let err = Analytics::builder(ClientConfig { api_url: "not a url".into(), ..ClientConfig::default() }).build().unwrap_err();
    assert!(err.to_string().contains("not a URL"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn per_invocation_flushes_are_bounded_in_time_and_keep_what_they_could_not_send() {
    let fake = Fake::default();
    fake.state().down = true;
    let timeout = Duration::from_secs(3);
    let a =
        client(ClientConfig { flush_per_invocation: true, max_retries: 20, request_timeout: timeout, ..cfg(FlushStrategy::Time) }, &fake);
    let svc = AnalyticsLayer::new(a.clone())
        .layer(tower::service_fn(|_r: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new(String::new())) }));
    let t0 = tokio::time::Instant::now();
    svc.oneshot(http::Request::get("/x").body(String::new()).unwrap()).await.unwrap();
    assert!(t0.elapsed() <= timeout, "the invocation answered within {timeout:?}: {:?}", t0.elapsed());
    assert!(fake.state().requests.len() < 21, "the deadline, not the 20 retries, ended the flush");
    assert_eq!(a.stats().buffered, 1, "kept for the next invocation");
    fake.state().down = false;
    assert_eq!(a.flush().await.sent, 1);
}

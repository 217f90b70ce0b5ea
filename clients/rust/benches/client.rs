//! The client's two targets (BENCHMARKS.md, "Client"):
//!
//! - `layer/*`: what the tracking layer adds to a request on the caller's
//!   path: the same axum route served with and without it (the difference
//!   is the layer: capture, sampling decision, event built and pushed into
//!   the buffer). Flushes run between timed rounds, never inside one.
//! - `throughput/*`: events recorded and delivered per second on one core:
//!   the client on a current-thread runtime (count-triggered flushes of
//!   500, serialization, HTTP/1.1 posts) into a local sink that answers
//!   202 from its own thread.
//!
//! cargo bench -p analytics-client --bench client

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use analytics_client::event::PendingEvent;
use analytics_client::{Analytics, AnalyticsLayer, BoxFuture, ClientConfig, FlushStrategy, Reply, SendError, StaticToken, Transport};
use analytics_contract::event::{ApiRequest, EventBody};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tower::ServiceExt;

/// A backend that stores everything at once: the untimed flushes between
/// rounds of the layer benchmark empty the buffer through it.
struct Accept;

impl Transport for Accept {
    fn post(&self, _: String, body: bytes::Bytes) -> BoxFuture<'_, Result<Reply, SendError>> {
        let n = std::str::from_utf8(&body).map(|s| s.matches("\"event_id\"").count()).unwrap_or(0);
        let answer = format!(r#"{{"accepted":{n},"duplicates":0,"rejected":[]}}"#);
        Box::pin(async move { Ok(Reply { status: 202, retry_after: None, body: answer.into() }) })
    }
}

fn request() -> http::Request<axum::body::Body> {
    http::Request::get("/items/42?page=2&api_key=k")
        .header("x-forwarded-for", "198.51.100.20, 203.0.113.50")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
        .body(axum::body::Body::empty())
        .unwrap()
}

/// Requests between two flushes: the default count threshold, so the
/// buffer is as small as it is in a service with the default settings.
const ROUND: u64 = 100;

fn serve(app: &axum::Router) {
    let resp = futures::executor::block_on(app.clone().oneshot(request())).unwrap();
    assert_eq!(resp.status(), 200);
}

/// Times `iters` requests in rounds of [`ROUND`]; between rounds, untimed,
/// the buffer is flushed (as the background flusher would, off this path).
fn timed(rt: &tokio::runtime::Runtime, app: &axum::Router, analytics: &Analytics, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(ROUND);
        let start = Instant::now();
        for _ in 0..n {
            serve(app);
        }
        total += start.elapsed();
        left -= n;
        rt.block_on(analytics.flush());
    }
    total
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let cfg = |sampling_enabled| ClientConfig {
        flush_strategy: FlushStrategy::Count,
        flush_count_threshold: 1_000_000,
        sampling_enabled,
        sampling_rate: 0.1,
        ..ClientConfig::default()
    };
    let analytics = Analytics::builder(cfg(false)).transport(Accept).build().unwrap();
    let sampled = Analytics::builder(cfg(true)).transport(Accept).build().unwrap();
    let plain: axum::Router = axum::Router::new().route("/items/{id}", axum::routing::get(|| async { "an item" }));
    let tracked = plain.clone().layer(AnalyticsLayer::new(analytics.clone()));
    let tracked_sampled = plain.clone().layer(AnalyticsLayer::new(sampled.clone()));
    let mut g = c.benchmark_group("layer");
    g.throughput(Throughput::Elements(1));
    g.bench_function("axum_without_layer", |b| b.iter_custom(|iters| timed(&rt, &plain, &analytics, iters)));
    g.bench_function("axum_with_layer", |b| b.iter_custom(|iters| timed(&rt, &tracked, &analytics, iters)));
    g.bench_function("axum_with_layer_sampling_0.1", |b| b.iter_custom(|iters| timed(&rt, &tracked_sampled, &sampled, iters)));
    // The figure of the target: with and without the layer alternating
    // round by round, so a neighbour's load hits both sides alike; the
    // reported time per request is the difference.
    g.bench_function("added_per_request_paired", |b| {
        b.iter_custom(|iters| {
            let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
            let mut left = iters;
            while left > 0 {
                let n = left.min(ROUND);
                without += timed(&rt, &plain, &analytics, n);
                with += timed(&rt, &tracked, &analytics, n);
                left -= n;
            }
            with.saturating_sub(without)
        })
    });
    g.finish();
    let s = analytics.stats();
    assert!(s.sent > 0 && s.sent == s.recorded && s.dropped == 0, "the layer recorded and the flushes delivered: {s:?}");
}

/// A local sink: answers every batch with 202 and the number of events.
fn start_sink() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
                let n = std::str::from_utf8(&body).map(|s| s.matches("\"event_id\"").count()).unwrap_or(0);
                let answer = format!(r#"{{"accepted":{n},"duplicates":0,"rejected":[],"received_at":"2026-11-22T00:00:00Z"}}"#);
                Ok::<_, Infallible>((http::StatusCode::ACCEPTED, answer))
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// An API request event as the layer builds it.
fn api_event(i: u64) -> PendingEvent {
    let mut e = PendingEvent::new(EventBody::ApiRequest(ApiRequest {
        endpoint: "/api/clients/{id}".into(),
        method: "GET".into(),
        status_code: 200,
        response_time_ms: 35.2 + (i % 7) as f64,
        request_size: None,
        response_size: Some(5120),
        query_params: None,
        error_message: None,
        sample_rate: 1.0,
    }));
    e.raw_query = Some("page=2&api_key=k".into());
    e.user_id = Some("u-7".into());
    e.ip_address = Some("203.0.113.9".parse().unwrap());
    e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36".into());
    e
}

const EVENTS: u64 = 50_000;

fn throughput(c: &mut Criterion) {
    let addr = start_sink();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cfg = ClientConfig {
        api_url: format!("http://{addr}"),
        flush_strategy: FlushStrategy::Count,
        flush_count_threshold: 500,
        buffer_capacity: 100_000,
        ..ClientConfig::default()
    };
    let analytics = rt.block_on(async { Analytics::builder(cfg).token(StaticToken::new("t")).build().unwrap() });
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("record_and_deliver_50k_one_core", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(async {
                    for i in 0..EVENTS {
                        analytics.record(api_event(i));
                        if i % 500 == 499 {
                            // The caller's own work would yield here; the flusher runs.
                            tokio::task::yield_now().await;
                        }
                    }
                    analytics.flush().await;
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    let s = analytics.stats();
    assert_eq!((s.dropped, s.buffered, s.rejected), (0, 0, 0), "{s:?}");
    assert_eq!(s.sent, s.recorded, "every event delivered: {s:?}");
}

criterion_group!(benches, layer, throughput);
criterion_main!(benches);

//! Harness for the integration tests: it makes sure the local stack is up
//! (starting it with `tests/stack/start.sh` when it is not), gives every
//! test its own table, and builds API Gateway requests the way the Lambda
//! runtime would deliver them.

pub mod props;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use analytics_shared::auth::{LocalToken, mint_local_token};
use analytics_shared::config::{AuthConfig, Config, StoreConfig};
use analytics_shared::store::Table;
use analytics_shared::store::{self, table};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};

/// The secret the tests' local verifier uses.
pub const SECRET: &str = "integration-test-secret";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// DynamoDB Local's endpoint (`AWS_ENDPOINT_URL_DYNAMODB`, default port 8000).
pub fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        let port = std::env::var("ANALYTICS_DDB_PORT").unwrap_or_else(|_| "8000".into());
        format!("http://127.0.0.1:{port}")
    })
}

fn reachable(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    addr.parse().ok().is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

/// Starts the local stack once per test process if nothing answers.
pub fn ensure_stack() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let endpoint = dynamodb_endpoint();
        if reachable(&endpoint) {
            return;
        }
        let script = root().join("tests/stack/start.sh");
        let status = Command::new("bash").arg(&script).status().expect("bash runs tests/stack/start.sh");
        assert!(status.success(), "tests/stack/start.sh failed; run it by hand to see why");
        assert!(reachable(&endpoint), "DynamoDB Local is not answering on {endpoint} after start.sh");
    });
}

/// How many connections a relay has taken: 2 or more once the client has
/// retried on a new connection.
#[derive(Clone, Default)]
pub struct Connections(Arc<AtomicUsize>);

impl Connections {
    pub fn taken(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A relay to DynamoDB Local that holds back the answer on its first
/// connection for `hold` (longer than a test's attempt timeout: the request
/// lands, its answer comes too late); returns its endpoint.
async fn relay_holding_the_first_answer(hold: Duration) -> (String, Connections) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = dynamodb_endpoint().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let connections = Connections::default();
    let count = connections.0.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let first = count.fetch_add(1, Ordering::SeqCst) == 0;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let up = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let ((mut down_r, mut down_w), (mut up_r, mut up_w)) = (down.into_split(), up.into_split());
                let requests = tokio::io::copy(&mut down_r, &mut up_w);
                let answers = async {
                    if first {
                        tokio::time::sleep(hold).await;
                    }
                    tokio::io::copy(&mut up_r, &mut down_w).await
                };
                let _ = tokio::join!(requests, answers);
            });
        }
    });
    (format!("http://{addr}"), connections)
}

/// A switch that freezes a relay: while on, nothing crosses it in either
/// direction (requests wait before reaching DynamoDB, answers before
/// reaching the client), as when storage stops answering.
#[derive(Clone, Default)]
pub struct Freeze(Arc<std::sync::atomic::AtomicBool>);

impl Freeze {
    pub fn set(&self, frozen: bool) {
        self.0.store(frozen, Ordering::SeqCst);
    }

    fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Copies bytes from `from` to `to`, holding each chunk while frozen.
async fn pass_unless_frozen(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, freeze: Freeze) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while freeze.is_on() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A DynamoDB client of `cfg`'s table through a relay that `Freeze`
/// stops, with short attempt timeouts and deadline so a frozen store is a
/// 503 within seconds; and the configuration it was built with.
pub async fn freezable_store(cfg: &Config) -> (aws_sdk_dynamodb::Client, Config, Freeze) {
    ensure_stack();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = dynamodb_endpoint().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let freeze = Freeze::default();
    let f = freeze.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let f = f.clone();
            tokio::spawn(async move {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else { return };
                let ((down_r, down_w), (up_r, up_w)) = (down.into_split(), up.into_split());
                tokio::join!(pass_unless_frozen(down_r, up_w, f.clone()), pass_unless_frozen(up_r, down_w, f));
            });
        }
    });
    let mut cfg = cfg.clone();
    cfg.store.attempt_timeout = Duration::from_millis(400);
    cfg.store.max_attempts = 3;
    cfg.store.deadline = Duration::from_secs(3);
    let client = aws_sdk_dynamodb::Client::from_conf(store::client_config(&sdk_config(&format!("http://{addr}")), &cfg.store));
    (client, cfg, freeze)
}

/// A store of `cfg`'s table whose first request lands but whose answer
/// comes after the attempt timeout, as when a network drops an answer: the
/// client retries.
pub async fn store_losing_its_first_answer(cfg: &Config) -> (Table, Connections) {
    ensure_stack();
    let mut slow = cfg.store.clone();
    slow.attempt_timeout = Duration::from_millis(400);
    slow.deadline = Duration::from_secs(20);
    let (endpoint, connections) = relay_holding_the_first_answer(Duration::from_secs(2)).await;
    let client = aws_sdk_dynamodb::Client::from_conf(store::client_config(&sdk_config(&endpoint), &slow));
    (Table::new(client, slow), connections)
}

/// Shared SDK settings pointing at an endpoint, with dummy credentials.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
            "local", "local", None, None, "tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// A client of DynamoDB Local.
pub fn client(cfg: &StoreConfig) -> aws_sdk_dynamodb::Client {
    ensure_stack();
    aws_sdk_dynamodb::Client::from_conf(store::client_config(&sdk_config(&dynamodb_endpoint()), cfg))
}

/// A configuration with the local verifier on and a table of the test's own.
pub fn config(table: &str) -> Config {
    Config {
        auth: AuthConfig { local_jwt_secret: Some(SECRET.into()), ..AuthConfig::default() },
        store: StoreConfig { table: table.into(), ..StoreConfig::default() },
        ..Config::default()
    }
}

/// Creates a table with a unique name, so tests run in parallel.
pub async fn fresh_table() -> (aws_sdk_dynamodb::Client, Config) {
    let name = format!("t-{}", uuid::Uuid::now_v7().simple());
    let cfg = config(&name);
    let client = client(&cfg.store);
    table::create_table(&client, &name).await.expect("table created on DynamoDB Local");
    (client, cfg)
}

/// The query function over a fresh table, and a GET through its handler.
pub struct QueryEnv {
    pub client: aws_sdk_dynamodb::Client,
    pub cfg: Config,
    pub app: query::App,
}

impl QueryEnv {
    pub async fn new() -> QueryEnv {
        let (client, cfg) = fresh_table().await;
        QueryEnv::with(client, cfg)
    }

    pub fn with(client: aws_sdk_dynamodb::Client, cfg: Config) -> QueryEnv {
        let app = query::App::new(cfg.clone(), client.clone()).expect("app");
        QueryEnv { client, cfg, app }
    }

    pub fn store(&self) -> Table {
        Table::new(self.client.clone(), self.cfg.store.clone())
    }

    pub async fn get(&self, path: &str, tok: &str, query: &[(&str, &str)]) -> Answer {
        let mut ev = ApiEvent::get(&format!("{}{path}", query::BASE)).bearer(tok);
        for (k, v) in query {
            ev = ev.query(k, v);
        }
        Answer::from(self.app.handle(ev.into_request()).await)
    }
}

/// A local token.
pub fn token(sub: &str, tenant: Option<&str>, roles: &[&str], scopes: &[&str]) -> String {
    let cfg = AuthConfig::default();
    mint_local_token(&LocalToken { sub, tenant, roles, scopes, ttl_seconds: 600 }, &cfg, SECRET)
}

/// A backend's ingest token for a tenant.
pub fn ingest_token(tenant: &str) -> String {
    token("backend-1", Some(tenant), &[], &["analytics/ingest"])
}

/// An API Gateway HTTP API (v2) event, as the runtime hands it over.
pub struct ApiEvent {
    pub method: &'static str,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub claims: Option<Value>,
}

impl ApiEvent {
    pub fn post(path: &str, body: impl Into<String>) -> Self {
        ApiEvent {
            method: "POST",
            path: path.into(),
            query: vec![],
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body.into()),
            claims: None,
        }
    }

    pub fn get(path: &str) -> Self {
        ApiEvent { method: "GET", path: path.into(), query: vec![], headers: vec![], body: None, claims: None }
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.headers.push(("authorization".into(), format!("Bearer {token}")));
        self
    }

    pub fn query(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }

    pub fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }

    /// Claims as the JWT authorizer passes them (all values strings).
    pub fn claims(mut self, claims: Value) -> Self {
        self.claims = Some(claims);
        self
    }

    pub fn into_request(self) -> lambda_http::Request {
        let raw_query =
            self.query.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&");
        let qsp: serde_json::Map<String, Value> = self.query.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let headers: serde_json::Map<String, Value> = self.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut ctx = json!({
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "local",
            "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestId": "req-test", "routeKey": "$default", "stage": "$default", "time": "21/Nov/2026:10:00:00 +0000", "timeEpoch": 1795255200000u64
        });
        if let Some(claims) = self.claims {
            ctx["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        }
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": self.path, "rawQueryString": raw_query,
            "headers": headers, "queryStringParameters": if qsp.is_empty() { Value::Null } else { Value::Object(qsp) },
            "requestContext": ctx, "body": self.body, "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
    }
}

/// Percent-encodes a query-string component as a browser would (every
/// byte but the unreserved ones).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

/// Stores events for a tenant through the real ingest pipeline, in
/// batches of 500, and returns how many were accepted.
pub async fn store_events(client: &aws_sdk_dynamodb::Client, cfg: &Config, tenant: &str, events: &[Value]) -> usize {
    let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
    let mut accepted = 0;
    for chunk in events.chunks(500) {
        let body = json!({ "events": chunk }).to_string();
        let now = analytics_shared::time::receive_time();
        let out = analytics_shared::ingest::ingest(&store, tenant, body.as_bytes(), false, now, &cfg.retention).await.expect("ingest");
        assert!(out.rejected.is_empty(), "rejected: {:?}", out.rejected);
        accepted += out.accepted;
    }
    accepted
}

/// Every string stored anywhere in a table, binary attributes decoded as
/// text (stored rollups and cached answers are JSON): what a test that
/// says "never stored" searches.
pub async fn stored_text(client: &aws_sdk_dynamodb::Client, table: &str) -> String {
    let mut out = String::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
        for item in page.items() {
            item.values().for_each(|v| collect_text(v, &mut out));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

fn collect_text(v: &aws_sdk_dynamodb::types::AttributeValue, out: &mut String) {
    use aws_sdk_dynamodb::types::AttributeValue;
    match v {
        AttributeValue::S(s) => out.push_str(s),
        AttributeValue::B(b) => out.push_str(&String::from_utf8_lossy(b.as_ref())),
        AttributeValue::M(m) => m.values().for_each(|v| collect_text(v, out)),
        AttributeValue::L(l) => l.iter().for_each(|v| collect_text(v, out)),
        AttributeValue::Ss(l) => l.iter().for_each(|s| out.push_str(s)),
        _ => {}
    }
    out.push('\n');
}

/// A response's status, headers and JSON body.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn from(resp: lambda_http::Response<lambda_http::Body>) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
            lambda_http::Body::Binary(b) => serde_json::from_slice(b).expect("JSON body"),
            _ => Value::Null,
        };
        Answer { status, headers, body }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// moto's endpoint for EventBridge and SQS (`AWS_ENDPOINT_URL_EVENTBRIDGE`,
/// default port 5050).
pub fn bus_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").unwrap_or_else(|_| {
        let port = std::env::var("ANALYTICS_BUS_PORT").unwrap_or_else(|_| "5050".into());
        format!("http://127.0.0.1:{port}")
    })
}

/// A bus of its own for one test, with a rule that sends every event of
/// source `analytics` to an SQS queue the test reads back.
pub struct BusProbe {
    pub bus: analytics_shared::bus::Bus,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusProbe {
    pub async fn new() -> BusProbe {
        ensure_stack();
        let endpoint = bus_endpoint();
        assert!(reachable(&endpoint), "moto is not answering on {endpoint}; run tests/stack/start.sh");
        let shared = sdk_config(&endpoint);
        let events = aws_sdk_eventbridge::Client::new(&shared);
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let name = format!("bus-{}", uuid::Uuid::now_v7().simple());
        let bus = analytics_shared::bus::Bus::new(events.clone(), &name);
        assert!(bus.create_if_missing().await.expect("create bus"), "a new bus");
        let queue_url = sqs.create_queue().queue_name(&name).send().await.expect("create queue").queue_url.expect("queue url");
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
        events
            .put_rule()
            .name(&name)
            .event_bus_name(&name)
            .event_pattern(json!({"source": [analytics_shared::bus::SOURCE]}).to_string())
            .send()
            .await
            .expect("put rule");
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(&name)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
            .send()
            .await
            .expect("put targets");
        BusProbe { bus, sqs, queue_url }
    }

    /// A publisher to a bus that does not exist: every entry fails.
    pub fn broken(&self) -> analytics_shared::bus::Bus {
        let shared = sdk_config(&bus_endpoint());
        analytics_shared::bus::Bus::new(aws_sdk_eventbridge::Client::new(&shared), "no-such-bus")
    }

    /// Everything delivered to the queue since the last call: whole
    /// EventBridge events (`detail-type`, `source`, `detail`).
    pub async fn received(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let page = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = page.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("an EventBridge event"));
                self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    }
}

/// The jobs on a fresh table and a fresh bus.
pub async fn jobs_env(cfg: Config, client: &aws_sdk_dynamodb::Client) -> (analytics_shared::jobs::Jobs, BusProbe) {
    let probe = BusProbe::new().await;
    let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
    (analytics_shared::jobs::Jobs::new(store, probe.bus.clone(), cfg), probe)
}

/// Runs a job the way its Lambda would, with a generous time budget.
pub async fn run_job(jobs: &analytics_shared::jobs::Jobs, payload: Value) -> Result<Value, analytics_shared::jobs::JobError> {
    use analytics_shared::jobs::{HostFigures, Job};
    let host =
        HostFigures { cpu_percent: Some(12.5), memory_percent: Some(40.0), memory_used_mb: Some(512.0), process_memory_mb: Some(20.0) };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    ::jobs::handle(jobs, &Job::ALL, payload, deadline, host).await
}

/// A bench's mode and world sizes: under `--bench`, `--events 10000,...`
/// or 10,000 then 1,000,000; otherwise (a smoke run) 2,000.
pub fn bench_sizes() -> (bool, Vec<u64>) {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes = match std::env::args().skip_while(|a| a != "--events").nth(1) {
        Some(list) => list.split(',').map(|n| n.parse().expect("--events takes numbers")).collect(),
        None if bench => vec![10_000, 1_000_000],
        None => vec![2_000],
    };
    (bench, sizes)
}

/// Worlds for the benchmarks: many users, clients, endpoints and IPs.
/// A deterministic xorshift generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn bench_event(i: u64, rng: &mut Rng, start: chrono::DateTime<chrono::Utc>, span_s: u64) -> serde_json::Value {
    let at = (start + chrono::Duration::seconds(rng.below(span_s) as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let user = format!("u-{}", rng.below(300));
    let id = format!("e-{i}");
    match rng.below(10) {
        0..=1 => json!({"event_id": id, "kind": "activity", "occurred_at": at, "user_id": user, "action": "generate_report",
            "client_id": format!("c-{}", rng.below(100)),
            "report": {"status": if rng.below(10) == 0 { "failed" } else { "completed" }, "processing_time_ms": 1000 + rng.below(9000),
                "categories": {"cost": rng.below(10), "security": rng.below(5)}, "impact": {"high": rng.below(3), "medium": rng.below(5), "low": rng.below(5)},
                "estimated_monthly_savings": rng.below(2000) as f64}}),
        2..=3 => json!({"event_id": id, "kind": "activity", "occurred_at": at, "user_id": user, "action": "view_dashboard",
            "client_id": format!("c-{}", rng.below(100))}),
        4..=7 => json!({"event_id": id, "kind": "api_request", "occurred_at": at, "user_id": user,
            "endpoint": format!("/api/r{}", rng.below(40)), "method": "GET", "status_code": if rng.below(50) == 0 { 500 } else { 200 },
            "response_time_ms": 5 + rng.below(500)}),
        8 => json!({"event_id": id, "kind": "auth", "occurred_at": at, "user_id": user, "event_type": "login_failed", "success": false,
            "ip_address": format!("198.51.100.{}", rng.below(200))}),
        _ => json!({"event_id": id, "kind": "external_call", "occurred_at": at, "service": format!("svc-{}", rng.below(3)),
            "endpoint": "/v1", "response_time_ms": 300, "cost_estimate": 0.01}),
    }
}

/// The key of an event item.
fn w_key(item: &analytics_shared::store::Item) -> analytics_shared::store::events::ItemKey {
    let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    analytics_shared::store::events::ItemKey { pk: get("pk"), sk: get("sk") }
}

/// Writes `n` bench events of a tenant spread over `[start, start + span_s)`,
/// fast: validated and mapped by the ingest pipeline, then written 25 a call
/// with 16 calls in flight, their hours marked dirty and the
/// live hours' deltas recorded. Deterministic.
pub async fn seed_world(
    client: &aws_sdk_dynamodb::Client,
    cfg: &Config,
    tenant: &str,
    n: u64,
    start: chrono::DateTime<chrono::Utc>,
    span_s: u64,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let now = chrono::Utc::now();
    let mut hours = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + 5000).min(n)).map(|k| bench_event(k, &mut rng, start, span_s)).collect();
        i += batch.len() as u64;
        let mut items = Vec::new();
        let mut stored: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        for chunk in batch.chunks(500) {
            let body = json!({ "events": chunk }).to_string();
            let p = analytics_shared::ingest::prepare(body.as_bytes(), tenant, now, &cfg.retention, cfg.store.shards).unwrap();
            for (_, w) in p.writes {
                let hour = analytics_shared::time::hour_label(w.placed_at);
                hours.insert(hour.clone());
                let item = w.item.into_item();
                let event = analytics_shared::store::read_event(item.clone()).unwrap();
                stored.entry(hour).or_default().push((w_key(&item), event));
                items.push(item);
            }
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
        analytics_shared::store::batch::batch_put(client, &cfg.store.table, items, 16, 10, deadline).await.unwrap();
        // The live hours' deltas, as ingest keeps them (store::deltas).
        let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
        store.deltas().record(tenant, &analytics_shared::store::events::writer_id(), now, &stored).await.unwrap();
    }
    let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
    store.markers().mark(tenant, &hours).await.unwrap();
}

/// A function's answer body as the bytes API Gateway would send.
pub fn body_bytes(body: lambda_http::Body) -> Vec<u8> {
    match body {
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => vec![],
    }
}

/// CPU time of every thread of this process so far, in nanoseconds (what
/// the benches put beside wall time: DynamoDB Local's share is the rest).
pub fn process_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// Deletes every item of one partition: how many there were, and the bytes
/// of their stored documents (`data`, as rollups and windows keep them).
pub async fn delete_partition(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str) -> (usize, usize) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (mut start, mut items, mut bytes) = (None, 0, 0);
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(pk.to_owned()))
            .projection_expression("pk, sk, #d")
            .expression_attribute_names("#d", "data")
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            items += 1;
            bytes += item.get("data").and_then(|d| d.as_b().ok()).map_or(0, |b| b.as_ref().len());
            let key = item.iter().filter(|(k, _)| *k == "pk" || *k == "sk").map(|(k, v)| (k.clone(), v.clone())).collect();
            client.delete_item().table_name(table).set_key(Some(key)).send().await.unwrap();
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return (items, bytes);
        }
    }
}

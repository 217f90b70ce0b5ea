//! The CloudWatch metrics the functions print (Embedded Metric Format), read
//! back as CloudWatch would read them: for one ingest request with
//! accepted, rejected and duplicate events, for a 503 from a frozen store,
//! and for query requests answered and cached. One test, because the
//! recorder is one per process.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use integration_tests::*;
use serde_json::{Value, json};

const ROUTE: &str = "/api/v1/analytics/events";

/// The documents one flush printed, parsed and checked against the EMF
/// specification's shape: each declares its namespace, dimension set and
/// metrics, and carries every dimension and metric value at the top.
fn flushed(request_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    analytics_shared::emf::flush_into(request_id, &mut out).unwrap();
    let docs: Vec<Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).expect("one JSON document per line")).collect();
    for d in &docs {
        let aws = &d["_aws"];
        assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{d}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Analytics/test-stack", "{d}");
        for dim in directive["Dimensions"][0].as_array().unwrap() {
            assert!(d.get(dim.as_str().unwrap()).is_some_and(Value::is_string), "dimension {dim} has a value: {d}");
        }
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(d.get(m["Name"].as_str().unwrap()).is_some(), "metric {m} has a value: {d}");
        }
        assert_eq!(d["request_id"], request_id, "documents carry the request id");
    }
    docs
}

/// `(metric, dimensions as name=value) -> (unit, value)` of some documents.
fn metrics(docs: &[Value]) -> BTreeMap<(String, String), (String, Value)> {
    let mut out = BTreeMap::new();
    for d in docs {
        let directive = &d["_aws"]["CloudWatchMetrics"][0];
        let dims: Vec<String> = directive["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| format!("{}={}", k.as_str().unwrap(), d[k.as_str().unwrap()].as_str().unwrap()))
            .collect();
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            out.insert((name.to_owned(), dims.join(",")), (m["Unit"].as_str().unwrap_or("").to_owned(), d[name].clone()));
        }
    }
    out
}

fn metric<'a>(m: &'a BTreeMap<(String, String), (String, Value)>, name: &str, dims: &str) -> &'a (String, Value) {
    m.get(&(name.to_owned(), dims.to_owned())).unwrap_or_else(|| panic!("{name} [{dims}] in {m:#?}"))
}

#[tokio::test]
async fn the_functions_print_their_metrics_in_embedded_metric_format() {
    let (client, mut cfg) = fresh_table().await;
    cfg.metrics_namespace = "Analytics/test-stack".into();
    analytics_shared::emf::init("ingest", &cfg.metrics_namespace);
    let app = ingest::App::new(cfg.clone(), client.clone());
    let tok = token("backend", Some("acme"), &["admin"], &["analytics/ingest"]);
    let at = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let login = |id: &str| json!({"event_id": id, "kind": "activity", "occurred_at": at, "user_id": "u", "action": "login"});
    let post = |body: Value| ApiEvent::post(ROUTE, body.to_string()).bearer(&tok).into_request();
    // A first batch, then one with two new events, a resend and a bad one.
    assert_eq!(Answer::from(app.handle(post(json!({"events": [login("a")]}))).await).status, 202);
    let cold = metrics(&flushed("req-0"));
    assert_eq!(metric(&cold, "ColdStart", "Function=ingest"), &("Count".to_owned(), json!(1)));
    let bad = json!({"event_id": "bad", "kind": "activity", "user_id": "u", "action": "Not An Action"});
    let a = Answer::from(app.handle(post(json!({"events": [login("b"), login("c"), login("a"), bad]}))).await);
    assert_eq!((a.status, a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()), (202, Some(2), Some(1)), "{}", a.body);
    let m = metrics(&flushed("req-1"));
    let count = |n: u64| ("Count".to_owned(), json!(n));
    assert_eq!(metric(&m, "EventsAccepted", "Function=ingest,Tenant=acme"), &count(2));
    assert_eq!(metric(&m, "EventsRejected", "Function=ingest,Tenant=acme"), &count(1));
    assert_eq!(metric(&m, "EventsDuplicate", "Function=ingest,Tenant=acme"), &count(1));
    assert_eq!(metric(&m, "Requests", &format!("Function=ingest,Route={ROUTE}")), &count(1));
    let (unit, latency) = metric(&m, "Latency", &format!("Function=ingest,Route={ROUTE}"));
    assert_eq!(unit, "Milliseconds");
    assert!(latency.as_array().is_some_and(|v| v.len() == 1 && v[0].as_f64().unwrap() > 0.0), "{latency}");
    assert!(!m.keys().any(|(n, _)| n == "ColdStart" || n == "Unavailable"), "counted once, and no 503: {m:#?}");
    // A batch refused whole still counts its rejections for its tenant.
    let bad2 = json!({"event_id": "bad2", "kind": "activity", "user_id": "u", "action": "Nope"});
    assert_eq!(Answer::from(app.handle(post(json!({"events": [bad2.clone(), bad2]}))).await).status, 400);
    let m = metrics(&flushed("req-1b"));
    assert_eq!(metric(&m, "EventsRejected", "Function=ingest,Tenant=acme"), &count(2));
    assert!(!m.contains_key(&("EventsAccepted".to_owned(), "Function=ingest,Tenant=acme".to_owned())));

    // Storage frozen: the 503 is counted where the alarm looks.
    let (relay, relay_cfg, freeze) = freezable_store(&cfg).await;
    let frozen = ingest::App::new(relay_cfg, relay);
    freeze.set(true);
    let a = Answer::from(frozen.handle(post(json!({"events": [login("d")]}))).await);
    assert_eq!(a.status, 503, "{}", a.body);
    let m = metrics(&flushed("req-2"));
    assert_eq!(metric(&m, "Unavailable", "Function=ingest"), &count(1));
    assert_eq!(metric(&m, "ServerErrors", &format!("Function=ingest,Route={ROUTE}")), &count(1));
    assert!(!m.keys().any(|(n, _)| n.starts_with("Events")), "nothing acknowledged, nothing counted: {m:#?}");
    freeze.set(false);

    // The query function's figures per route, with its cache.
    let env = QueryEnv::with(client, cfg);
    let admin = token("boss", Some("acme"), &["admin"], &[]);
    for _ in 0..2 {
        assert_eq!(env.get("/dashboard", &admin, &[]).await.status, 200);
    }
    let m = metrics(&flushed("req-3"));
    assert_eq!(metric(&m, "Requests", "Function=ingest,Route=/dashboard"), &count(2), "one recorder per process: its Function dimension");
    assert_eq!(metric(&m, "CacheMisses", "Function=ingest,Route=/dashboard"), &count(1));
    assert_eq!(metric(&m, "CacheHits", "Function=ingest,Route=/dashboard"), &count(1));
    assert!(flushed("req-4").is_empty(), "a flush prints only what is new");

    // A job's duration and what it left.
    let (jobs_app, _bus) = jobs_env(env.cfg.clone(), &env.client).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let runs = jobs::jobs_of("rollup");
    let out = jobs::handle(&jobs_app, runs, json!({"job": "usage-rollup"}), deadline, Default::default()).await.unwrap();
    let m = metrics(&flushed("req-5"));
    let (unit, took) = metric(&m, "JobDuration", "Function=ingest,Job=usage-rollup");
    assert_eq!((unit.as_str(), took.as_array().map(Vec::len)), ("Milliseconds", Some(1)));
    let left = jobs::left_and_failed(&out).0;
    assert!(
        left == 0 && !m.contains_key(&("JobLeft".to_owned(), "Function=ingest,Job=usage-rollup".to_owned())),
        "zero counts are left out"
    );
    assert_eq!(jobs::left_and_failed(&json!({"remaining": 3, "tenants_left": 2, "failed": [{}, {}]})), (5, 2));
}

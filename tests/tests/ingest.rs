//! The ingest function against DynamoDB Local: what is acknowledged is
//! stored (and read back), resends are stored once, limits answer with the
//! contract's errors, and a storage outage never gives a false 202.

use analytics_shared::time;
use std::time::Duration;

use analytics_shared::model::{EventBody, EventKind};
use analytics_shared::store::Table;
use analytics_shared::store::events::{ItemKey, PutOutcome};
use analytics_shared::time::parse_timestamp;
use chrono::Utc;
use integration_tests::*;
use serde_json::{Value, json};

const ROUTE: &str = "/api/v1/analytics/events";

async fn post(app: &ingest::App, body: &Value, token: &str) -> Answer {
    Answer::from(app.handle(ApiEvent::post(ROUTE, body.to_string()).bearer(token).into_request()).await)
}

fn minutes_ago(m: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One event of each kind, with ids, so resends can be recognised.
fn mixed_batch(prefix: &str) -> Value {
    json!({"events": [
        {"event_id": format!("{prefix}-a"), "kind": "activity", "occurred_at": minutes_ago(5), "user_id": "u-42",
         "action": "generate_report", "client_id": "c-7", "report_id": "r-9", "ip_address": "203.0.113.7",
         "metadata": {"source": "web", "session_id": "s-123"},
         "report": {"status": "completed", "processing_time_ms": 8421, "categories": {"cost": 12, "security": 3},
                    "impact": {"high": 2, "medium": 9, "low": 9}, "estimated_monthly_savings": 1830.5}},
        {"event_id": format!("{prefix}-b"), "kind": "api_request", "occurred_at": minutes_ago(4), "endpoint": "/api/clients",
         "method": "GET", "status_code": 200, "response_time_ms": 35.5, "query_params": {"page": "2", "api_key": "k-1"}},
        {"event_id": format!("{prefix}-c"), "kind": "auth", "occurred_at": minutes_ago(3), "user_id": "u-42",
         "event_type": "login_failed", "success": false, "ip_address": "198.51.100.1"},
        {"event_id": format!("{prefix}-d"), "kind": "external_call", "occurred_at": minutes_ago(2), "service": "gemini",
         "endpoint": "/v1/generate", "response_time_ms": 900, "cost_estimate": 0.0125, "status_code": 200}
    ]})
}

/// Where an event sent without `sent_at` is stored.
fn key_of(tenant: &str, shards: u16, ev: &Value) -> ItemKey {
    let ctx = analytics_shared::validate::Context { received_at: Utc::now(), sent_at: None, retention: Default::default() };
    let e = analytics_shared::validate::validate_event(&ev.to_string(), &ctx).unwrap();
    ItemKey::of_event(tenant, &e, shards)
}

async fn count_items(client: &aws_sdk_dynamodb::Client, table: &str) -> usize {
    let out = client
        .scan()
        .table_name(table)
        .filter_expression("begins_with(pk, :e)")
        .expression_attribute_values(":e", analytics_shared::store::s("T#"))
        .send()
        .await
        .unwrap();
    // Events: the hour shards and the activity partitions.
    out.items
        .unwrap_or_default()
        .iter()
        .filter(|i| i["pk"].as_s().unwrap().contains("#E#") || i["pk"].as_s().unwrap().contains("#A#"))
        .count()
}

#[tokio::test]
async fn stored_events_read_back_with_their_ttl_sanitized() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let batch = mixed_batch("rb");
    let a = post(&app, &batch, &ingest_token("acme")).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 4);
    assert_eq!(a.body["duplicates"], 0);
    assert_eq!(a.body["rejected"], json!([]));
    assert!(a.body["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(a.headers["x-request-id"], "req-test");

    let store = Table::new(client.clone(), cfg.store.clone());
    let now = Utc::now();
    for (i, ev) in batch["events"].as_array().unwrap().iter().enumerate() {
        let key = key_of("acme", cfg.store.shards, ev);
        let stored = store.events().get(&key, now).await.unwrap().unwrap_or_else(|| panic!("event {i} not stored"));
        let days = if ev["kind"] == "api_request" { 30 } else { 90 };
        let occurred = parse_timestamp(ev["occurred_at"].as_str().unwrap()).unwrap();
        assert_eq!(stored.expires_at, (occurred + chrono::Duration::days(days)).timestamp(), "TTL of {}", ev["kind"]);
        assert_eq!(stored.event.event_id, ev["event_id"].as_str().unwrap());
        assert_eq!(stored.event.occurred_at, occurred);
        assert_eq!(stored.event.kind().as_str(), ev["kind"].as_str().unwrap());
    }
    // The activity: report outcome kept, secrets redacted, indexed by user and action.
    let key = key_of("acme", cfg.store.shards, &batch["events"][0]);
    let a = store.events().get(&key, now).await.unwrap().unwrap();
    assert_eq!(a.gsi1pk.as_deref(), Some("T#acme#U#u-42"));
    assert!(a.pk.starts_with("T#acme#A#activity:generate_report#"), "{}", a.pk);
    assert!(a.gsi2pk.is_none());
    let m = a.event.metadata.as_ref().unwrap();
    assert_eq!(m["source"], "web");
    assert_eq!(m["session_id"], "[REDACTED]");
    let EventBody::Activity(act) = &a.event.body else { panic!("activity expected") };
    let report = act.report.as_ref().unwrap();
    assert_eq!(report.categories["cost"], 12);
    assert_eq!(report.estimated_monthly_savings, Some(1830.5));
    // The API request: query secret redacted, no per-name index.
    let key = key_of("acme", cfg.store.shards, &batch["events"][1]);
    let b = store.events().get(&key, now).await.unwrap().unwrap();
    let EventBody::ApiRequest(req) = &b.event.body else { panic!("api_request expected") };
    assert_eq!(req.query_params.as_ref().unwrap()["api_key"], "[REDACTED]");
    assert_eq!(req.query_params.as_ref().unwrap()["page"], "2");
    assert!(b.gsi2pk.is_none() && b.gsi1pk.is_none());
    // Read through the user index too, and the hours are marked for the rollup.
    // Only activity is indexed by user: the auth event of u-42 is not.
    let by_user = store.events().user_events("acme", "u-42", now).await.unwrap();
    assert_eq!(by_user.iter().map(|e| e.event.kind()).collect::<Vec<_>>(), [EventKind::Activity]);
    // Reading an hour back gathers every shard of it.
    let first_hour = time::hour_label(parse_timestamp(batch["events"][0]["occurred_at"].as_str().unwrap()).unwrap());
    let in_hour = store.events().hour_events("acme", &first_hour, now).await.unwrap();
    let expected = batch["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| time::hour_label(parse_timestamp(e["occurred_at"].as_str().unwrap()).unwrap()) == first_hour);
    assert_eq!(in_hour.len(), expected.count());
    assert!(in_hour.windows(2).all(|w| w[0].sk <= w[1].sk), "oldest first");
    assert!(store.events().hour_events("globex", &first_hour, now).await.unwrap().is_empty(), "another tenant sees nothing");
    let dirty = store.markers().dirty_hours("acme").await.unwrap();
    for ev in batch["events"].as_array().unwrap() {
        assert!(dirty.contains_key(&time::hour_label(parse_timestamp(ev["occurred_at"].as_str().unwrap()).unwrap())));
    }
}

#[tokio::test]
async fn a_resent_batch_stores_nothing_twice() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let batch = mixed_batch("dup");
    let first = post(&app, &batch, &ingest_token("acme")).await;
    assert_eq!((first.status, first.body["accepted"].clone()), (202, json!(4)));
    // The retry carries a later sent_at, as a real resend does.
    let mut resend = batch.clone();
    resend["sent_at"] = json!(Utc::now().to_rfc3339());
    let second = post(&app, &resend, &ingest_token("acme")).await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_eq!(second.body["accepted"], 0);
    assert_eq!(second.body["duplicates"], 4);
    assert_eq!(count_items(&client, &cfg.store.table).await, 4);

    // Repeats inside one batch are recognised as well.
    let ev = json!({"event_id": "same", "kind": "auth", "occurred_at": minutes_ago(1), "event_type": "login", "success": true});
    let a = post(&app, &json!({"events": [ev.clone(), ev]}), &ingest_token("acme")).await;
    assert_eq!((a.body["accepted"].clone(), a.body["duplicates"].clone()), (json!(1), json!(1)));
    assert_eq!(count_items(&client, &cfg.store.table).await, 5);

    // The same event id in another tenant is another event.
    let other = post(&app, &batch, &ingest_token("globex")).await;
    assert_eq!(other.body["accepted"], 4);
}

#[tokio::test]
async fn valid_events_are_stored_and_invalid_ones_reported() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let body = json!({"events": [
        {"event_id": "ok-1", "kind": "auth", "event_type": "login", "success": true},
        {"event_id": "bad-1", "kind": "api_request", "endpoint": "/x", "method": "GET", "status_code": 700, "response_time_ms": 1},
        {"kind": "activity", "action": "login"}
    ]});
    let a = post(&app, &body, &ingest_token("acme")).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    let rejected = a.body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["event_id"], "bad-1");
    assert_eq!(rejected[0]["code"], "validation_failed");
    assert_eq!(rejected[0]["message"], "status_code: must be 100..=599, not 700");
    assert_eq!(rejected[1]["index"], 2);
    assert_eq!(rejected[1]["problems"][0]["path"], "events[2].user_id");
    assert_eq!(count_items(&client, &cfg.store.table).await, 1, "nothing of the rejected events is written");
}

#[tokio::test]
async fn a_batch_with_no_valid_event_is_a_400_listing_every_problem() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let body = json!({"events": [
        {"kind": "pageview"},
        {"event_id": "fut", "kind": "auth", "event_type": "login", "success": true, "occurred_at": (Utc::now() + chrono::Duration::hours(30)).to_rfc3339()}
    ]});
    let a = post(&app, &body, &ingest_token("acme")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "validation_failed");
    let details = a.body["error"]["details"].as_array().unwrap();
    assert_eq!(details[0]["index"], 0);
    assert_eq!(details[0]["path"], "events[0].kind");
    assert!(details[0]["message"].as_str().unwrap().contains("unknown kind `pageview`"));
    assert_eq!(details[1]["path"], "events[1].occurred_at");
    assert!(details[1]["message"].as_str().unwrap().contains("in the future"));
    assert_eq!(details[1]["event_id"], "fut");
    assert_eq!(count_items(&client, &cfg.store.table).await, 0);
}

#[tokio::test]
async fn limits_answer_with_the_contract_errors() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let tok = ingest_token("acme");
    let ev = |i: usize| json!({"event_id": format!("l-{i}"), "kind": "auth", "event_type": "login", "success": true});

    let a = post(&app, &json!({"events": (0..501).map(ev).collect::<Vec<_>>()}), &tok).await;
    assert_eq!((a.status, a.code()), (413, "payload_too_large"));
    assert!(a.body["error"]["message"].as_str().unwrap().contains("at most 500"));
    let a = post(&app, &json!({"events": (0..500).map(ev).collect::<Vec<_>>()}), &tok).await;
    assert_eq!((a.status, a.body["accepted"].clone()), (202, json!(500)), "500 is the limit, not over it");

    // A 33 KiB event is rejected alone; its neighbour is stored.
    let big = json!({"event_id": "big", "kind": "activity", "user_id": "u", "action": "upload_csv", "description": "d".repeat(2000),
                     "metadata": (0..33).map(|i| (format!("k{i}"), json!("x".repeat(1000)))).collect::<serde_json::Map<_, _>>()});
    let a = post(&app, &json!({"events": [big, ev(1000)]}), &tok).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    assert_eq!(a.body["rejected"][0]["event_id"], "big");
    assert!(a.body["rejected"][0]["message"].as_str().unwrap().contains("at most 32768 bytes"));

    let huge = format!(
        r#"{{"events": [{{"kind": "auth", "event_type": "login", "success": true, "error_message": "{}"}}]}}"#,
        "x".repeat(1_153_434)
    );
    let a = Answer::from(app.handle(ApiEvent::post(ROUTE, huge).bearer(&tok).into_request()).await);
    assert_eq!((a.status, a.code()), (413, "payload_too_large"));

    for bad in ["{not json", "", "[]", "null", r#"{"events": "many"}"#, r#"{"evnts": []}"#] {
        let a = Answer::from(app.handle(ApiEvent::post(ROUTE, bad).bearer(&tok).into_request()).await);
        assert_eq!((a.status, a.code()), (400, "bad_request"), "{bad}: {}", a.body);
        assert!(!a.body["error"]["message"].as_str().unwrap().contains("Wire"), "internal names stay inside: {}", a.body);
    }
    let a = post(&app, &json!({"events": []}), &tok).await;
    assert_eq!((a.status, a.code()), (400, "validation_failed"));
    let a = post(&app, &json!({"sent_at": "now", "events": [ev(1)]}), &tok).await;
    assert_eq!((a.status, a.code()), (400, "validation_failed"));
    assert_eq!(a.body["error"]["details"][0]["path"], "sent_at");
    let a = post(&app, &json!({"events": [{"kind": "telemetry"}]}), &tok).await;
    assert_eq!((a.status, a.code()), (400, "validation_failed"));
}

#[tokio::test]
async fn identity_is_checked_before_anything_is_stored() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let body = mixed_batch("auth");
    let send = |tok: Option<String>| {
        let mut e = ApiEvent::post(ROUTE, body.to_string());
        if let Some(t) = tok {
            e = e.bearer(&t);
        }
        app.handle(e.into_request())
    };

    let a = Answer::from(send(None).await);
    assert_eq!((a.status, a.code()), (401, "unauthorized"));
    // alg: none, signed by nobody.
    let parts: Vec<String> = ingest_token("acme").split('.').map(str::to_owned).collect();
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let a = Answer::from(send(Some(format!("{none_header}.{}.", parts[1]))).await);
    assert_eq!((a.status, a.code()), (401, "unauthorized"));
    // Expired.
    let expired = analytics_shared::auth::mint_local_token(
        &analytics_shared::auth::LocalToken {
            sub: "b",
            tenant: Some("acme"),
            roles: &[],
            scopes: &["analytics/ingest"],
            ttl_seconds: -120,
        },
        &analytics_shared::config::AuthConfig::default(),
        SECRET,
    );
    let a = Answer::from(send(Some(expired)).await);
    assert_eq!((a.status, a.code()), (401, "unauthorized"));
    assert!(a.body["error"]["message"].as_str().unwrap().contains("expired"));
    // Signed with another secret.
    let forged = analytics_shared::auth::mint_local_token(
        &analytics_shared::auth::LocalToken { sub: "b", tenant: Some("acme"), roles: &["admin"], scopes: &[], ttl_seconds: 600 },
        &analytics_shared::config::AuthConfig::default(),
        "not-the-secret",
    );
    assert_eq!(Answer::from(send(Some(forged)).await).status, 401);
    // A valid token without the ingest scope: 403. An admin may ingest.
    let a = Answer::from(send(Some(token("u-1", Some("acme"), &["manager"], &[]))).await);
    assert_eq!((a.status, a.code()), (403, "forbidden"));
    assert_eq!(count_items(&client, &cfg.store.table).await, 0, "nothing stored for refused callers");
    let a = Answer::from(send(Some(token("u-1", Some("acme"), &["admin"], &[]))).await);
    assert_eq!(a.status, 202);
}

#[tokio::test]
async fn authorizer_claims_decide_the_tenant_in_aws() {
    let (client, mut cfg) = fresh_table().await;
    cfg.auth.local_jwt_secret = None;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let req = ApiEvent::post(ROUTE, mixed_batch("gw").to_string())
        .bearer("verified.by.gateway")
        .claims(json!({"sub": "svc", "scope": "openid analytics/ingest", "custom:tenant": "initech"}))
        .into_request();
    let a = Answer::from(app.handle(req).await);
    assert_eq!(a.status, 202, "{}", a.body);
    let store = Table::new(client.clone(), cfg.store.clone());
    assert_eq!(store.events().user_events("initech", "u-42", Utc::now()).await.unwrap().len(), 1);
    assert!(store.events().user_events("default", "u-42", Utc::now()).await.unwrap().is_empty());
    // Without claims and without a local secret nobody is let in.
    let a = Answer::from(app.handle(ApiEvent::post(ROUTE, "{}").bearer("x").into_request()).await);
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn routes_methods_and_parameters() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let tok = ingest_token("acme");
    let a = Answer::from(app.handle(ApiEvent::post("/api/v1/analytics/nope", "{}").bearer(&tok).into_request()).await);
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let a = Answer::from(app.handle(ApiEvent::post(ROUTE, "").method("GET").bearer(&tok).into_request()).await);
    assert_eq!((a.status, a.code()), (405, "method_not_allowed"));
    assert_eq!(a.headers["allow"], "POST");
    let a = Answer::from(
        app.handle(ApiEvent::post(ROUTE, mixed_batch("q").to_string()).query("verbose", "1").bearer(&tok).into_request()).await,
    );
    assert_eq!((a.status, a.code()), (400, "bad_request"));
    assert!(a.body["error"]["message"].as_str().unwrap().contains("verbose"));
    let a = Answer::from(
        app.handle(ApiEvent::post(ROUTE, mixed_batch("q").to_string()).query("dry_run", "maybe").bearer(&tok).into_request()).await,
    );
    assert_eq!((a.status, a.code()), (400, "bad_request"));
}

#[tokio::test]
async fn dry_run_reports_exactly_but_writes_nothing() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let tok = ingest_token("acme");
    let mut batch = mixed_batch("dry");
    batch["events"].as_array_mut().unwrap().push(json!({"kind": "auth", "event_type": "nope", "success": true}));
    let dry = |b: &Value| app.handle(ApiEvent::post(ROUTE, b.to_string()).query("dry_run", "true").bearer(&tok).into_request());
    let a = Answer::from(dry(&batch).await);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!((a.body["accepted"].clone(), a.body["duplicates"].clone()), (json!(4), json!(0)));
    assert_eq!(a.body["rejected"][0]["index"], 4);
    assert_eq!(count_items(&client, &cfg.store.table).await, 0, "a dry run writes nothing");
    let store = Table::new(client.clone(), cfg.store.clone());
    assert!(store.markers().dirty_hours("acme").await.unwrap().is_empty());

    // After a real write, the dry run recognises the resends.
    assert_eq!(post(&app, &batch, &tok).await.body["accepted"], 4);
    let a = Answer::from(dry(&batch).await);
    assert_eq!((a.body["accepted"].clone(), a.body["duplicates"].clone()), (json!(0), json!(4)));
}

#[tokio::test]
async fn storage_outage_is_a_503_and_the_resend_is_stored_once() {
    let (client, cfg) = fresh_table().await;
    // The same configuration, but DynamoDB is unreachable.
    let mut down_cfg = cfg.clone();
    down_cfg.store.max_attempts = 2;
    down_cfg.store.attempt_timeout = Duration::from_millis(500);
    down_cfg.store.deadline = Duration::from_secs(3);
    let dead =
        aws_sdk_dynamodb::Client::from_conf(analytics_shared::store::client_config(&sdk_config("http://127.0.0.1:9"), &down_cfg.store));
    let down = ingest::App::new(down_cfg, dead);
    let batch = mixed_batch("outage");
    let a = post(&down, &batch, &ingest_token("acme")).await;
    assert_eq!((a.status, a.code()), (503, "unavailable"), "{}", a.body);
    assert_eq!(a.headers["retry-after"], "5");
    assert!(a.body.get("accepted").is_none(), "no acknowledgement of anything");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("resend"));

    // The caller resends when storage is back: stored once, then recognised.
    let up = ingest::App::new(cfg.clone(), client.clone());
    assert_eq!(post(&up, &batch, &ingest_token("acme")).await.body["accepted"], 4);
    assert_eq!(post(&up, &batch, &ingest_token("acme")).await.body["duplicates"], 4);
    assert_eq!(count_items(&client, &cfg.store.table).await, 4);
}

#[tokio::test]
async fn a_missing_table_is_a_503_not_a_500() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.table = "no-such-table".into();
    let app = ingest::App::new(cfg, client);
    let a = post(&app, &mixed_batch("nt"), &ingest_token("acme")).await;
    assert_eq!((a.status, a.code()), (503, "unavailable"));
}

/// The payloads in `events/` (for `cargo lambda invoke --data-file`) keep
/// working and mean what their names say.
#[tokio::test]
async fn the_committed_invoke_payloads_answer_as_named() {
    let (client, cfg) = fresh_table().await;
    let app = ingest::App::new(cfg.clone(), client.clone());
    let cases = [("ingest-batch.json", 202), ("ingest-dry-run.json", 202), ("ingest-invalid.json", 400), ("ingest-forbidden.json", 403)];
    for (file, status) in cases {
        let raw = std::fs::read_to_string(root().join("events").join(file)).unwrap();
        let req = lambda_http::request::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let a = Answer::from(app.handle(req).await);
        assert_eq!(a.status, status, "{file}: {}", a.body);
    }
    // Only the real batch wrote: 4 events, under the default tenant.
    assert_eq!(count_items(&client, &cfg.store.table).await, 4);
}

/// DynamoDB deletes expired items days late: reads must skip them anyway.
#[tokio::test]
async fn expired_items_are_never_read_back() {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    let now = Utc::now();
    let ctx = analytics_shared::validate::Context { received_at: now, sent_at: None, retention: cfg.retention };
    let mut keys_written = Vec::new();
    for (id, expired) in [("old", true), ("fresh", false)] {
        let raw = json!({"event_id": id, "kind": "activity", "user_id": "u-1", "action": "login", "occurred_at": minutes_ago(10)});
        let event = analytics_shared::validate::validate_event(&raw.to_string(), &ctx).unwrap();
        let mut w = analytics_shared::store::events::event_write("acme", event, cfg.store.shards, &cfg.retention);
        w.item.insert("w", aws_sdk_dynamodb::types::AttributeValue::S("test".into()));
        if expired {
            w.item.insert("expires_at", aws_sdk_dynamodb::types::AttributeValue::N((now.timestamp() - 60).to_string()));
        }
        keys_written.push(w.key());
        client.put_item().table_name(&cfg.store.table).set_item(Some(w.item.into_item())).send().await.unwrap();
    }
    assert!(store.events().get(&keys_written[0], now).await.unwrap().is_none());
    assert!(store.events().get(&keys_written[1], now).await.unwrap().is_some());
    let by_user = store.events().user_events("acme", "u-1", now).await.unwrap();
    assert_eq!(by_user.iter().map(|e| e.event.event_id.as_str()).collect::<Vec<_>>(), vec!["fresh"]);
    let hour = time::hour_label(parse_timestamp(&minutes_ago(10)).unwrap());
    let in_hour = store.events().hour_events("acme", &hour, now).await.unwrap();
    assert!(in_hour.iter().all(|e| e.event.event_id != "old"));
}

/// The write lands but its answer comes after the attempt timeout: the
/// client's retry finds the item, and it is still this write, reported
/// stored, once. A resend later is a duplicate.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_stored_not_a_duplicate() {
    let (client, cfg) = fresh_table().await;
    let (store, connections) = store_losing_its_first_answer(&cfg).await;
    let ev = json!({"event_id": "lost-answer", "kind": "auth", "occurred_at": minutes_ago(1), "event_type": "login", "success": true});
    let body = json!({ "events": [ev] }).to_string();
    let write = |received_at| {
        let batch = analytics_shared::ingest::prepare(body.as_bytes(), "acme", received_at, &cfg.retention, cfg.store.shards).unwrap();
        batch.writes.into_iter().map(|(_, w)| w).collect::<Vec<_>>()
    };
    let hours = |w: &[analytics_shared::store::events::EventWrite]| w.iter().map(|w| time::hour_label(w.placed_at)).collect();
    // The identity write is the relay's first connection: its answer is held.
    let now = analytics_shared::time::receive_time();
    let first = write(now);
    assert_eq!(
        store.events().put("acme", first.clone(), "writer-1", &hours(&first), Some(chrono::Utc::now())).await.unwrap(),
        vec![PutOutcome::Stored]
    );
    assert!(connections.taken() >= 2, "the held answer made the client retry");
    assert_eq!(count_items(&client, &cfg.store.table).await, 1);

    // A resend is another request (another writer), received later.
    let later = write(now + chrono::Duration::milliseconds(1));
    assert_eq!(
        store.events().put("acme", later.clone(), "writer-2", &hours(&later), Some(chrono::Utc::now())).await.unwrap(),
        vec![PutOutcome::Duplicate]
    );
    assert_eq!(count_items(&client, &cfg.store.table).await, 1);
    // Two requests received in the same millisecond are still two requests.
    let same_ms = write(now);
    assert_eq!(
        store.events().put("acme", same_ms.clone(), "writer-3", &hours(&same_ms), Some(chrono::Utc::now())).await.unwrap(),
        vec![PutOutcome::Duplicate]
    );
}

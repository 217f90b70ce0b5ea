//! Trustworthy numbers, against DynamoDB Local: what a hostile outsider or
//! a buggy client found (issue "no input loses, misplaces or miscounts
//! data, and none reaches a panic"), one test per finding. Each was
//! written to fail on the code before the fix.

use analytics_shared::time;
use std::collections::BTreeSet;

use analytics_shared::ingest::ingest;
use analytics_shared::store::Table;
use analytics_shared::store::events::{PutOutcome, event_write};
use analytics_shared::store::keys;
use analytics_shared::store::rollups::Resolution;
use analytics_shared::time::parse_timestamp;
use analytics_shared::validate::{Context, validate_event};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use integration_tests::*;
use serde_json::{Value, json};

const EVENTS: &str = "/api/v1/analytics/events";

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap()
}

struct Env {
    client: aws_sdk_dynamodb::Client,
    cfg: analytics_shared::Config,
    query: query::App,
    ingest: ingest::App,
}

impl Env {
    async fn new() -> Env {
        let (client, cfg) = fresh_table().await;
        Env::with(client, cfg)
    }

    fn with(client: aws_sdk_dynamodb::Client, cfg: analytics_shared::Config) -> Env {
        let query = query::App::new(cfg.clone(), client.clone()).expect("app");
        let ingest = ingest::App::new(cfg.clone(), client.clone());
        Env { client, cfg, query, ingest }
    }

    fn store(&self) -> Table {
        Table::new(self.client.clone(), self.cfg.store.clone())
    }

    async fn get(&self, path: &str, tok: &str, q: &[(&str, &str)]) -> Answer {
        let mut ev = ApiEvent::get(&format!("{}{path}", query::BASE)).bearer(tok);
        for (k, v) in q {
            ev = ev.query(k, v);
        }
        Answer::from(self.query.handle(ev.into_request()).await)
    }

    async fn post(&self, body: &Value, tok: &str) -> Answer {
        Answer::from(self.ingest.handle(ApiEvent::post(EVENTS, body.to_string()).bearer(tok).into_request()).await)
    }

    /// Ingests as if the request had arrived at `received_at`.
    async fn ingest_at(&self, tenant: &str, events: &[Value], received_at: DateTime<Utc>) -> analytics_shared::ingest::IngestOutcome {
        let body = json!({ "events": events }).to_string();
        ingest(&self.store(), tenant, body.as_bytes(), false, received_at, &self.cfg.retention).await.expect("ingest")
    }

    async fn roll_up(&self, tenant: &str, now: DateTime<Utc>) -> analytics_shared::jobs::rollup::RollUpSummary {
        analytics_shared::jobs::rollup::roll_up_tenant(&self.store(), tenant, now, &self.cfg.retention, 10_000).await.expect("roll-up")
    }
}

fn admin(tenant: &str) -> String {
    token("boss", Some(tenant), &["admin"], &["analytics/ingest"])
}

fn member(tenant: &str, sub: &str) -> String {
    token(sub, Some(tenant), &[], &[])
}

fn api_event(id: &str, at: DateTime<Utc>, status: u16) -> Value {
    json!({"event_id": id, "kind": "api_request", "occurred_at": ts(at), "endpoint": "/clients", "method": "GET",
        "status_code": status, "response_time_ms": 20})
}

fn login(id: &str, at: DateTime<Utc>, user: &str) -> Value {
    json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": user, "action": "login"})
}

/// 1. A device whose clock reads 1970, or two days ahead: its events are
/// placed, listed, counted and kept at the moment they really happened,
/// and a resend (another `sent_at`, another delay) is still a duplicate.
#[tokio::test]
async fn skew_corrected_events_are_placed_at_their_corrected_time() {
    let env = Env::new().await;
    let now = Utc::now();
    for (device, clock) in [("epoch", DateTime::UNIX_EPOCH + Duration::minutes(10)), ("ahead", now + Duration::days(2))] {
        // The event happened 30 s before the device sent it.
        let batch = |sent: DateTime<Utc>| {
            json!({"sent_at": ts(sent), "events": [
                {"event_id": format!("{device}-1"), "kind": "activity", "occurred_at": ts(clock), "user_id": "alice", "action": "login"}]})
        };
        let first = env.post(&batch(clock + Duration::seconds(30)), &admin("acme")).await;
        assert_eq!((first.status, first.body["accepted"].clone()), (202, json!(1)), "{device}: {}", first.body);
        // The resend, minutes later by the device's clock.
        let again = env.post(&batch(clock + Duration::minutes(7)), &admin("acme")).await;
        assert_eq!((again.body["accepted"].clone(), again.body["duplicates"].clone()), (json!(0), json!(1)), "{device}: {}", again.body);
    }
    // Both sit at the top of alice's feed, at corrected times within the last minute.
    let feed = env.get("/user-activity", &member("acme", "alice"), &[]).await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    let items = feed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", feed.body);
    for item in items {
        let at = parse_timestamp(item["occurred_at"].as_str().unwrap()).unwrap();
        assert!((now - at).num_seconds().abs() < 120, "placed at the corrected time: {item}");
        assert!(item["client_occurred_at"].is_string(), "the sender's own time is kept: {item}");
    }
    // Counted today, in the hour they happened, before and after the roll-up.
    let today = time::day_label(now);
    for phase in ["raw", "rolled"] {
        let summary = env.get("/activity-summary", &member("acme", "alice"), &[("group_by", "day")]).await;
        let groups = summary.body["groups"].as_array().unwrap();
        assert_eq!(groups.iter().find(|g| g["key"] == today.as_str()).unwrap()["count"], 2, "{phase}: {}", summary.body);
        assert_eq!(summary.body["total"], 2, "{phase}");
        env.roll_up("acme", Utc::now()).await;
    }
    // Kept for the retention from the corrected time (the TTL).
    let stored = env.store().events().user_events("acme", "alice", Utc::now()).await.unwrap();
    for e in &stored {
        assert_eq!(e.expires_at, (e.event.occurred_at + Duration::days(90)).timestamp());
        assert!(e.sk.starts_with(&format!("{:013}", e.event.occurred_at.timestamp_millis())));
    }
    // One item each, whatever was resent.
    assert_eq!(stored.len(), 2);
}

/// 2a. A legitimate 35-day-late activity event does not erase the API
/// figures of its hour, whose raw events passed their 30-day retention.
#[tokio::test]
async fn a_late_event_into_an_hour_past_raw_retention_keeps_its_figures() {
    let env = Env::new().await;
    let now = Utc::now();
    let h = hour(now - Duration::days(36));
    let then = h + Duration::minutes(50);
    let events: Vec<Value> =
        (0..6).map(|i| api_event(&format!("api-{i}"), h + Duration::minutes(i), if i == 0 { 503 } else { 200 })).collect();
    let mut events = events;
    events.push(login("act-0", h + Duration::minutes(10), "alice"));
    assert_eq!(env.ingest_at("acme", &events, then).await.accepted, 7);
    env.roll_up("acme", then + Duration::minutes(5)).await;

    // 35 days late now (journaled: more than a quarter of 90 days late).
    let late = env.ingest_at("acme", &[login("act-late", h + Duration::minutes(20), "bob")], now).await;
    assert_eq!(late.accepted, 1);
    let range = [("date_from", ts(h)), ("date_to", ts(h + Duration::hours(1)))];
    let range: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for phase in ["before the roll-up (read from the journal)", "after the roll-up"] {
        let a = env.get("/api-requests", &admin("acme"), &range).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["endpoints"][0]["count"], 6, "{phase}: the API figures are kept: {}", a.body);
        assert_eq!(a.body["endpoints"][0]["error_count"], 1, "{phase}");
        let s = env.get("/activity-summary", &admin("acme"), &[("group_by", "user"), range[0], range[1]]).await;
        assert_eq!(s.body["total"], 2, "{phase}: the late event is added: {}", s.body);
        let summary = env.roll_up("acme", Utc::now()).await;
        if phase.starts_with("before") {
            assert_eq!(summary.hours, 1);
            assert!(summary.kept >= 1, "{summary:?}");
        }
    }
    // Rolling up again changes nothing (each journal entry counted once).
    env.store().markers().mark("acme", &[time::hour_label(h)].into()).await.unwrap();
    env.roll_up("acme", Utc::now()).await;
    let s = env.get("/activity-summary", &admin("acme"), &[("group_by", "user"), range[0], range[1]]).await;
    assert_eq!(s.body["total"], 2, "{}", s.body);
    let stored =
        env.store().rollups().read("acme", Resolution::Hour, &time::hour_label(h), &time::hour_label(h), Utc::now()).await.unwrap();
    assert_eq!(stored[&time::hour_label(h)].api.values().map(|a| a.count).sum::<f64>(), 6.0);
}

/// 2b. A backfill window older than raw retention keeps what it cannot
/// recompute and says so.
#[tokio::test]
async fn a_backfill_past_raw_retention_changes_nothing_it_cannot_recompute() {
    let (client, cfg) = fresh_table().await;
    let env = Env::with(client.clone(), cfg.clone());
    let now = Utc::now();
    let h = hour(now - Duration::days(100));
    let events = vec![api_event("old-api", h + Duration::minutes(1), 200), login("old-act", h + Duration::minutes(2), "alice")];
    assert_eq!(env.ingest_at("acme", &events, h + Duration::minutes(30)).await.accepted, 2);
    env.roll_up("acme", h + Duration::minutes(40)).await;
    let before = env.store().rollups().read("acme", Resolution::Hour, &time::hour_label(h), &time::hour_label(h), now).await.unwrap();
    assert!(!before.is_empty());

    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let w = json!({"job": "usage-rollup", "window_start": ts(h), "window_end": ts(h + Duration::hours(2)), "tenant": "acme"});
    let summary = run_job(&jobs, w).await.unwrap();
    assert!(summary["kept_past_retention"].as_u64().unwrap() >= 2, "{summary}");
    assert!(summary["note"].as_str().unwrap().contains("past raw retention"), "{summary}");
    let after = env.store().rollups().read("acme", Resolution::Hour, &time::hour_label(h), &time::hour_label(h), now).await.unwrap();
    assert_eq!(after, before, "nothing recomputed from what is left");
    let day = time::day_label(h);
    let days = env.store().rollups().read("acme", Resolution::Day, &day, &day, now).await.unwrap();
    assert_eq!(days[&day].activities(), 1, "the day is rebuilt from the kept hours");
}

/// 2c. An hour straddling the retention cut: some of its raw API events
/// are gone, a late one arrives; the stored figures are kept and the late
/// one is added.
#[tokio::test]
async fn an_hour_straddling_the_cut_adds_late_events_to_what_it_kept() {
    let env = Env::new().await;
    let now = Utc::now();
    // The hour 30 days ago that holds the retention cut: its first
    // minutes are past retention, its last ones not yet.
    let h = hour(now - Duration::days(30));
    let events: Vec<Value> = [0, 1, 58].iter().map(|m| api_event(&format!("s-{m}"), h + Duration::minutes(*m), 200)).collect();
    assert_eq!(env.ingest_at("acme", &events, h + Duration::minutes(59)).await.accepted, 3);
    env.roll_up("acme", h + Duration::hours(1)).await;
    let late = api_event("s-late", h + Duration::minutes(59) + Duration::seconds(59), 200);
    assert_eq!(env.ingest_at("acme", &[late], now).await.accepted, 1);
    env.roll_up("acme", now).await;
    let stored = env.store().rollups().read("acme", Resolution::Hour, &time::hour_label(h), &time::hour_label(h), now).await.unwrap();
    assert_eq!(stored[&time::hour_label(h)].api.values().map(|a| a.count).sum::<f64>(), 4.0, "three kept, one added");
}

/// 3. Extended years and out-of-range dates are a 400 naming the
/// parameter on every route that takes dates, never a panic.
#[tokio::test]
async fn far_dates_are_a_400_on_every_route() {
    let env = Env::new().await;
    let tok = admin("acme");
    for def in query::ROUTES.iter().filter(|d| d.params.contains(&"date_to")) {
        for (name, v) in [
            ("date_to", "-262143-01-05"),
            ("date_to", "+262142-12-31"),
            ("date_from", "+262142-12-31"),
            ("date_to", "10000-01-01"),
            ("date_from", "1969-12-31"),
        ] {
            let a = env.get(def.path, &tok, &[(name, v)]).await;
            assert_eq!((a.status, a.code()), (400, "bad_request"), "{} {name}={v}: {}", def.path, a.body);
            assert!(a.body["error"]["message"].as_str().unwrap().contains(name), "{}", a.body);
        }
    }
    let a = env
        .get(
            "/trends",
            &tok,
            &[("granularity", "month"), ("date_from", "9999-11-01"), ("date_to", "9999-12-31T23:00:00Z"), ("tz", "Pacific/Kiritimati")],
        )
        .await;
    assert_eq!(a.status, 200, "the last months of year 9999 are fine: {}", a.body);
}

/// 4. Values DynamoDB cannot hold are refused alone, at validation; a
/// refusal by DynamoDB itself is that event's `unstorable`, never a 503.
#[tokio::test]
async fn unstorable_values_reject_their_event_alone() {
    let env = Env::new().await;
    let ok = login("fine", Utc::now() - Duration::minutes(1), "alice");
    let mut bad: Vec<Value> = Vec::new();
    for (i, patch) in [
        json!({"response_time_ms": 1e200}),
        json!({"sample_rate": 1e-200}),
        json!({"metadata": {"n": 1e127}}),
        json!({"metadata": {"": "empty key"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = api_event(&format!("bad-{i}"), Utc::now() - Duration::minutes(2), 200);
        e.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        bad.push(e);
    }
    let mut batch = vec![ok];
    batch.extend(bad);
    let body = json!({ "events": batch });
    for attempt in 0..2 {
        let a = env.post(&body, &admin("acme")).await;
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.body["accepted"], if attempt == 0 { 1 } else { 0 });
        assert_eq!(a.body["duplicates"], attempt);
        let rejected = a.body["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 4, "{}", a.body);
        let paths: BTreeSet<&str> = rejected.iter().map(|r| r["problems"][0]["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["events[1].response_time_ms", "events[2].sample_rate", "events[3].metadata.n", "events[4].metadata."].into());
    }

    // Storage refusing an item (here a number beyond DynamoDB's range,
    // written past validation) is that event's `unstorable`; its neighbour
    // is stored, and the refused one's identity is taken back, so the
    // corrected event is stored when resent.
    let store = env.store();
    let now = Utc::now();
    let ctx = Context { received_at: now, sent_at: None, retention: env.cfg.retention };
    let write = |id: &str| {
        let raw =
            json!({"event_id": id, "kind": "auth", "occurred_at": ts(now - Duration::minutes(1)), "event_type": "login", "success": true});
        event_write("acme", validate_event(&raw.to_string(), &ctx).unwrap(), 8, &env.cfg.retention)
    };
    let mut refused = write("refused");
    refused.item.insert("metadata", AttributeValue::M([("n".to_string(), AttributeValue::N("1e200".into()))].into()));
    let hours: BTreeSet<String> = [time::hour_label(now - Duration::minutes(1))].into();
    let out = store.events().put("acme", vec![refused.clone(), write("neighbour")], "w-1", &hours, Some(chrono::Utc::now())).await.unwrap();
    assert!(matches!(&out[0], PutOutcome::Unstorable(why) if !why.is_empty()), "{out:?}");
    assert_eq!(out[1], PutOutcome::Stored);
    let out = store.events().put("acme", vec![write("refused")], "w-2", &hours, Some(chrono::Utc::now())).await.unwrap();
    assert_eq!(out, vec![PutOutcome::Stored], "the corrected resend is stored, not a duplicate");
}

/// 5. Counts at the top of their range add up without wrapping, and the
/// shares stay within 0..=100.
#[tokio::test]
async fn aggregates_of_huge_counts_never_wrap() {
    let env = Env::new().await;
    let max = 1_000_000_000_000_i64;
    let events: Vec<Value> = (0..5)
        .map(|i| {
            json!({"event_id": format!("r-{i}"), "kind": "activity", "occurred_at": ts(Utc::now() - Duration::minutes(i)), "user_id": "u",
                "action": "generate_report", "client_id": "c",
                "report": {"status": "completed", "processing_time_ms": max, "categories": {"cost": max, "security": 1},
                           "impact": {"high": max, "medium": max, "low": 0}, "estimated_monthly_savings": 1e9}})
        })
        .collect();
    assert_eq!(env.ingest_at("acme", &events, Utc::now()).await.accepted, 5);
    // Two out-of-range counts are refused, not stored.
    let over = json!({"event_id": "over", "kind": "activity", "user_id": "u", "action": "generate_report",
        "report": {"status": "completed", "impact": {"high": 9_223_372_036_854_775_000_i64}}});
    let a = env.post(&json!({"events": [over]}), &admin("acme")).await;
    assert_eq!((a.status, a.code()), (400, "validation_failed"), "{}", a.body);
    for path in ["/business-impact", "/categories", "/dashboard", "/metrics", "/client-performance"] {
        let a = env.get(path, &admin("acme"), &[("period", "7d")]).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }
    let b = env.get("/business-impact", &admin("acme"), &[("period", "7d")]).await;
    assert_eq!(b.body["total"], json!(10 * max));
    assert_eq!((b.body["high"]["percentage"].as_f64(), b.body["medium"]["percentage"].as_f64()), (Some(50.0), Some(50.0)));
    let c = env.get("/categories", &admin("acme"), &[("period", "7d")]).await;
    let shares: f64 = c.body["categories"].as_array().unwrap().iter().map(|c| c["percentage"].as_f64().unwrap()).sum();
    assert!((99.9..=100.1).contains(&shares), "{}", c.body);
}

/// 6. A tenant claim of the wrong type is a 403 on every function, never
/// the default tenant; `ANALYTICS_REQUIRE_TENANT` refuses tokens without.
#[tokio::test]
async fn a_tenant_claim_of_the_wrong_type_is_forbidden() {
    let (client, mut cfg) = fresh_table().await;
    let env = Env::with(client.clone(), cfg.clone());
    let sign = |tenant: Value| {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let exp = Utc::now().timestamp() + 600;
        let claims = json!({"sub": "u-1", "iss": "analytics-local", "exp": exp, "custom:tenant": tenant, "cognito:groups": ["admin"],
            "scope": "analytics/ingest"});
        encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    };
    for bad in [json!(""), json!(["acme"]), json!(true), json!({"id": "acme"}), json!(7)] {
        let tok = sign(bad.clone());
        let a = env.get("/dashboard", &tok, &[]).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{bad}: {}", a.body);
        let a = env.post(&json!({"events": [login("x", Utc::now(), "u")]}), &tok).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{bad}: {}", a.body);
    }
    // From API Gateway's authorizer an array arrives as "[acme]".
    let req = ApiEvent::get(&format!("{}/dashboard", query::BASE))
        .claims(json!({"sub": "u-1", "custom:tenant": "[acme]", "cognito:groups": "[admin]"}))
        .into_request();
    assert_eq!(Answer::from(env.query.handle(req).await).status, 403);
    cfg.auth.require_tenant = true;
    let strict = Env::with(client, cfg);
    let a = strict.get("/dashboard", &token("boss", None, &["admin"], &[]), &[]).await;
    assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.body);
    assert_eq!(strict.get("/dashboard", &admin("acme"), &[]).await.status, 200);
}

/// 7. A parameter value holding `&` and `=` cannot plant a cached answer
/// for another parameter list.
#[tokio::test]
async fn a_forged_cache_key_plants_nothing() {
    let env = Env::new().await;
    let at = Utc::now() - Duration::minutes(5);
    let events = vec![api_event("e1", at, 200), api_event("e2", at, 503)];
    assert_eq!(env.ingest_at("acme", &events, Utc::now()).await.accepted, 2);
    let manager = token("lead", Some("acme"), &["manager"], &[]);
    let forged = env.get("/api-requests", &manager, &[("endpoint", "/clients&status_class=5xx")]).await;
    assert_eq!(forged.status, 200);
    assert_eq!(forged.body["endpoints"], json!([]), "no endpoint is called that");
    let real = env.get("/api-requests", &admin("acme"), &[("endpoint", "/clients"), ("status_class", "5xx")]).await;
    assert_eq!(real.headers["x-cache"], "miss", "not the planted answer");
    assert_eq!(real.body["endpoints"][0]["count"], 1, "{}", real.body);
}

/// 8. A cursor of one route is refused by another; a token not valid yet
/// is a 401; a media type that only starts like JSON is a 400.
#[tokio::test]
async fn cursors_tokens_and_media_types_are_checked_whole() {
    let env = Env::new().await;
    let events: Vec<Value> = (0..3).map(|i| login(&format!("l{i}"), Utc::now() - Duration::minutes(i + 1), "alice")).collect();
    assert_eq!(env.ingest_at("acme", &events, Utc::now()).await.accepted, 3);
    let page = env.get("/user-activity", &admin("acme"), &[("limit", "1")]).await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let a = env.get("/reports/weekly", &admin("acme"), &[("limit", "1"), ("cursor", &cursor)]).await;
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{}", a.body);
    assert_eq!(env.get("/user-activity", &admin("acme"), &[("limit", "1"), ("cursor", &cursor)]).await.status, 200);

    let immature = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let now = Utc::now().timestamp();
        let claims = json!({"sub": "boss", "iss": "analytics-local", "exp": now + 600, "nbf": now + 300, "custom:tenant": "acme",
            "cognito:groups": ["admin"]});
        encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    };
    assert_eq!(env.get("/dashboard", &immature, &[]).await.status, 401);
    assert_eq!(env.post(&json!({"events": events}), &immature).await.status, 401);

    let mut req = ApiEvent::post(EVENTS, json!({"events": [login("ct", Utc::now(), "u")]}).to_string()).bearer(&admin("acme"));
    req.headers = vec![("content-type".into(), "application/jsonx".into())];
    let a = Answer::from(env.ingest.handle(req.bearer(&admin("acme")).into_request()).await);
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{}", a.body);
}

/// 9a. Rollups stay bounded however many distinct endpoints an hour
/// holds; totals stay exact, and the rest is one `other` row.
#[tokio::test]
async fn rollups_stay_bounded_with_an_other_entry() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.rollup_max_keys = 50;
    let env = Env::with(client, cfg);
    let at = hour(Utc::now() - Duration::hours(2)) + Duration::minutes(5);
    let events: Vec<Value> = (0..300)
        .map(|i| {
            json!({"event_id": format!("u-{i}"), "kind": "api_request", "occurred_at": ts(at), "endpoint": format!("/items/{i}"),
            "method": "GET", "status_code": 200, "response_time_ms": 5, "ip_address": format!("198.51.100.{}", i % 250)})
        })
        .collect();
    assert_eq!(env.ingest_at("acme", &events, Utc::now()).await.accepted, 300);
    env.roll_up("acme", Utc::now()).await;
    let label = time::hour_label(at);
    let stored = env.store().rollups().read("acme", Resolution::Hour, &label, &label, Utc::now()).await.unwrap();
    let r = &stored[&label];
    let endpoints: BTreeSet<&str> = r.api.keys().map(|k| analytics_shared::rollup::split_api_key(k).2).collect();
    assert_eq!(endpoints.len(), 50, "49 busiest and other");
    let range = [("date_from", ts(hour(at))), ("date_to", ts(hour(at) + Duration::hours(1)))];
    let range: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = env.get("/api-requests", &admin("acme"), &range).await;
    let rows = a.body["endpoints"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["count"].as_f64().unwrap()).sum::<f64>(), 300.0, "totals stay exact");
    assert!(rows.iter().any(|r| r["endpoint"] == "other"), "{}", a.body);
}

/// 9b. A custom action that matches little among many ends its pages
/// where the read budget runs out, with a cursor; paging finds them all.
#[tokio::test]
async fn a_rare_custom_action_pages_within_a_read_budget() {
    let env = Env::new().await;
    let now = Utc::now();
    let mut events: Vec<Value> = (0..2600)
        .map(|i| {
            json!({"event_id": format!("c-{i}"), "kind": "activity", "occurred_at": ts(now - Duration::seconds(i)), "user_id": "u",
            "action": "common_custom"})
        })
        .collect();
    // The rare ones are the oldest.
    for i in 0..3 {
        events.push(json!({"event_id": format!("r-{i}"), "kind": "activity", "occurred_at": ts(now - Duration::seconds(3000 + i)),
            "user_id": "u", "action": "rare_custom"}));
    }
    for chunk in events.chunks(500) {
        assert_eq!(env.ingest_at("acme", chunk, now).await.rejected.len(), 0);
    }
    let mut cursor: Option<String> = None;
    let mut found = Vec::new();
    let mut pages = 0;
    loop {
        let before = env.store().items_read();
        let mut q = vec![("activity_type", "rare_custom".to_string()), ("limit", "10".to_string())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = env.get("/user-activity", &admin("acme"), &q).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(env.store().items_read() - before <= 2_000, "a page reads within the budget");
        found.extend(a.body["items"].as_array().unwrap().iter().map(|i| i["event_id"].as_str().unwrap().to_owned()));
        pages += 1;
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(found, ["r-0", "r-1", "r-2"]);
    assert!(pages >= 2, "the first page ended at the budget");
}

/// 9c. A tenant whose first hour lies in 1970 is swept a bounded number
/// of hours per run.
#[tokio::test]
async fn a_sweep_from_1970_is_bounded_per_run() {
    let (client, cfg) = fresh_table().await;
    let store = Table::new(client.clone(), cfg.store.clone());
    store.tenants().register("acme", "1970-01-01T00", Utc::now(), 800).await.unwrap();
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let started = std::time::Instant::now();
    let s = run_job(&jobs, json!({"job": "metrics-cleanup"})).await.unwrap();
    assert_eq!(s["complete"], false, "{s}");
    assert_eq!(s["swept"], 2400, "100 days a run: {s}");
    assert!(started.elapsed() < std::time::Duration::from_secs(300));
}

/// 10a. One tenant's failure does not stop the job for the others; the
/// invocation fails after every tenant was tried, naming the one that
/// failed. 11. Data that does not map is a 500, not a 503.
#[tokio::test]
async fn one_tenants_failure_stops_nobody_else_and_corrupt_data_is_a_500() {
    let (client, cfg) = fresh_table().await;
    let env = Env::with(client.clone(), cfg.clone());
    let at = hour(Utc::now() - Duration::hours(3)) + Duration::minutes(1);
    for t in ["acme", "globex", "initech"] {
        assert_eq!(env.ingest_at(t, &[login(&format!("{t}-1"), at, "u")], Utc::now()).await.accepted, 1);
    }
    // globex's stored hour is damaged.
    let label = time::hour_label(at);
    let item: analytics_shared::store::Item = [
        ("pk".to_string(), AttributeValue::S(keys::rollup_pk("globex", "hour"))),
        ("sk".to_string(), AttributeValue::S(format!("{label}#0"))),
        ("data".to_string(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"{not json".to_vec()))),
        ("parts".to_string(), AttributeValue::N("1".into())),
        ("rev".to_string(), AttributeValue::S("0".into())),
        ("expires_at".to_string(), AttributeValue::N((Utc::now().timestamp() + 86_400).to_string())),
    ]
    .into();
    client.put_item().table_name(&cfg.store.table).set_item(Some(item)).send().await.unwrap();
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let err = run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap_err();
    let analytics_shared::jobs::JobError::TenantsFailed { failed, summary } = &err else { panic!("{err}") };
    assert_eq!(*failed, 1);
    assert_eq!(summary["failed"][0]["tenant"], "globex", "{summary}");
    assert_eq!(summary["hours"], 2, "acme and initech were rolled up: {summary}");
    for t in ["acme", "initech"] {
        assert!(env.store().markers().dirty_hours(t).await.unwrap().is_empty());
    }
    // Reading the damaged hour is a bug, not an outage: 500, no Retry-After.
    let range = [("date_from", ts(hour(at))), ("date_to", ts(hour(at) + Duration::hours(1)))];
    let range: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = env.get("/api-requests", &admin("globex"), &range).await;
    assert_eq!((a.status, a.code()), (500, "internal_error"), "{}", a.body);
    assert!(a.headers.get("retry-after").is_none());
}

/// 10b. The hourly roll-up drops the cached answers of the tenants whose
/// rollups it changed.
#[tokio::test]
async fn the_hourly_roll_up_drops_the_cache() {
    let (client, cfg) = fresh_table().await;
    let env = Env::with(client.clone(), cfg.clone());
    let at = Utc::now() - Duration::minutes(30);
    env.ingest_at("acme", &[login("c1", at, "u")], Utc::now()).await;
    assert_eq!(env.get("/dashboard", &admin("acme"), &[]).await.headers["x-cache"], "miss");
    assert_eq!(env.get("/dashboard", &admin("acme"), &[]).await.headers["x-cache"], "hit");
    let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
    let s = run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    assert!(s["cache_entries_dropped"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(env.get("/dashboard", &admin("acme"), &[]).await.headers["x-cache"], "miss");
}

/// A non-UTF-8 body, which API Gateway delivers base64-encoded, is a 400.
#[tokio::test]
async fn a_non_utf8_body_is_a_400() {
    let env = Env::new().await;
    let raw = std::fs::read_to_string(root().join("events/ingest-non-utf8.json")).unwrap();
    let req = lambda_http::request::from_str(&raw).unwrap();
    let a = Answer::from(env.ingest.handle(req).await);
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{}", a.body);
    assert!(a.body["error"]["message"].as_str().unwrap().contains("UTF-8"));
}

/// Storage freezes under concurrent senders, then comes back: every event
/// the senders sent is counted exactly once, whatever answers they got and
/// however often they resent.
#[tokio::test]
async fn events_sent_through_a_storage_freeze_are_counted_exactly_once() {
    let (client, cfg) = fresh_table().await;
    let (relay, relay_cfg, freeze) = freezable_store(&cfg).await;
    let app = std::sync::Arc::new(ingest::App::new(relay_cfg, relay));
    let tok = admin("acme");
    let base = Utc::now() - Duration::minutes(20);
    // Storage freezes while the senders are at work, then comes back.
    let switch = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        freeze.set(true);
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        freeze.set(false);
    });
    let senders: Vec<_> = (0..6)
        .map(|s| {
            let app = app.clone();
            let tok = tok.clone();
            tokio::spawn(async move {
                let mut resends = 0;
                for b in 0..5 {
                    let events: Vec<Value> = (0..20)
                        .map(|i| login(&format!("s{s}-b{b}-{i}"), base + Duration::seconds(i64::from(s * 100 + b * 20 + i)), "u"))
                        .collect();
                    loop {
                        // Each resend carries its own sent_at, as a client's does.
                        let body = json!({"sent_at": ts(Utc::now()), "events": events});
                        let a = Answer::from(app.handle(ApiEvent::post(EVENTS, body.to_string()).bearer(&tok).into_request()).await);
                        if a.status == 202 {
                            break;
                        }
                        assert_eq!(a.status, 503, "{}", a.body);
                        resends += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        assert!(resends < 100);
                    }
                }
                resends
            })
        })
        .collect();
    let mut resends = 0;
    for s in senders {
        resends += s.await.unwrap();
    }
    switch.await.unwrap();
    assert!(resends > 0, "the freeze made some senders resend");
    let store = Table::new(client.clone(), cfg.store.clone());
    let stored = store.events().user_events("acme", "u", Utc::now()).await.unwrap();
    let ids: BTreeSet<&str> = stored.iter().map(|e| e.event.event_id.as_str()).collect();
    assert_eq!((stored.len(), ids.len()), (600, 600), "every event once");
    analytics_shared::jobs::rollup::roll_up_tenant(&store, "acme", Utc::now(), &cfg.retention, 10_000).await.unwrap();
    let env = Env::with(client, cfg);
    let s = env.get("/activity-summary", &admin("acme"), &[]).await;
    assert_eq!(s.body["total"], 600, "{}", s.body);
}

/// 9d. A period query reads the dirty markers of its own hours only, not
/// every marker the tenant has.
#[tokio::test]
async fn a_period_query_reads_only_its_own_dirty_markers() {
    let env = Env::new().await;
    let old = hour(Utc::now() - Duration::days(200));
    let far: BTreeSet<String> = (0..1500).map(|i| time::hour_label(old + Duration::hours(i))).collect();
    env.store().markers().mark("acme", &far).await.unwrap();
    let before = env.query.store.items_read();
    let a = env.get("/metrics", &admin("acme"), &[("period", "7d")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let read = env.query.store.items_read() - before;
    assert!(read < 200, "{read} items read for a week with no events");
}

//! Property tests, for the "never"s of the contract: arbitrary bodies
//! through the ingest pipeline and its handler, arbitrary query strings
//! through every query route, and arbitrary sequences of events, late
//! events, expiries and backfills against the roll-up, compared with a
//! simple model. Each runs a few dozen cases inside `make test`;
//! `make proptest` runs them a hundred times longer.

use analytics_shared::time;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use analytics_shared::config::Retention;
use analytics_shared::ingest::{PreparedBatch, Rejection, UNSTORABLE, prepare, prepare_each_alone};
use analytics_shared::model::EventKind;
use analytics_shared::query::period::{DateRange, total};
use analytics_shared::query::planner::read_pieces;
use analytics_shared::store::Attrs;
use analytics_shared::store::Table;
use analytics_shared::store::events::item_size;
use analytics_shared::store::rollups::Resolution;
use chrono::{DateTime, Duration, DurationRound, Utc};
use integration_tests::props::{self, cases};
use integration_tests::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// One table for the cases of a property (created on first use).
fn table(
    slot: &'static OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)>,
) -> &'static (aws_sdk_dynamodb::Client, analytics_shared::Config) {
    slot.get_or_init(|| runtime().block_on(fresh_table()))
}

fn events_in(body: &str) -> Option<usize> {
    serde_json::from_str::<Value>(body).ok()?.get("events")?.as_array().map(Vec::len)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    /// The pure pipeline: any body is a batch (every event accepted,
    /// repeated, or rejected with paths inside it) or a 4xx, and every
    /// item it builds is one DynamoDB stores.
    #[test]
    fn prepare_never_panics_and_builds_only_storable_items(body in props::body()) {
        let now = analytics_shared::time::receive_time();
        match prepare(body.as_bytes(), "tenant-1", now, &Retention::default(), 8) {
            Err(e) => prop_assert!(e.status().is_client_error(), "{} for {body}", e.status()),
            Ok(p) => {
                let n = events_in(&body).expect("a prepared body has events");
                prop_assert_eq!(p.writes.len() + p.rejected.len() + p.repeated, n);
                for r in &p.rejected {
                    prop_assert!(!r.problems.is_empty());
                    for problem in &r.problems {
                        prop_assert!(problem.path.starts_with(&format!("events[{}]", r.index)), "{}", problem.path);
                    }
                }
                for (_, w) in &p.writes {
                    for (name, v) in w.item.iter().chain(w.identity.iter()) {
                        prop_assert!(props::unstorable(v, 0).is_none(), "{name}: {:?} in {body}", props::unstorable(v, 0));
                    }
                    prop_assert!(item_size(&w.item) < 400_000);
                    prop_assert!(analytics_shared::time::in_range(w.placed_at));
                }
            }
        }
    }
}

type Prepared<'a> = Result<(Vec<(usize, DateTime<Utc>, &'a Attrs, &'a Attrs)>, &'a [Rejection], usize), String>;

/// What a prepared batch holds, comparable (the items' nested maps are
/// `HashMap`s, whose order differs from one map to the next).
fn prepared(p: &Result<PreparedBatch, analytics_shared::ApiError>) -> Prepared<'_> {
    match p {
        Ok(p) => Ok((p.writes.iter().map(|(i, w)| (*i, w.placed_at, &w.identity, &w.item)).collect(), &p.rejected, p.repeated)),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// Whether every event object of a body names its id (one without, or with
/// `null`, gets a random one, which no two reads share).
fn ids_given(body: &str) -> bool {
    let events = serde_json::from_str::<Value>(body).ok().and_then(|b| b.get("events").and_then(Value::as_array).cloned());
    events.unwrap_or_default().iter().all(|e| !e.is_object() || e.get("event_id").is_some_and(|id| !id.is_null()))
}

proptest! {
    // A body with an event of no id is skipped: a third of them or so.
    #![proptest_config(ProptestConfig { cases: cases(400), max_global_rejects: cases(400) * 4, ..ProptestConfig::default() })]

    /// The one-pass read changes no answer: for any body, `prepare` gives
    /// what the usual way alone gives (the same items, rejections with
    /// their paths, repeats, errors), whether the one-pass read took the
    /// whole batch, gave it up at an event, or never began.
    #[test]
    fn prepare_answers_as_the_usual_way_alone(body in props::body()) {
        prop_assume!(ids_given(&body));
        let now = analytics_shared::time::receive_time();
        let fast = prepare(body.as_bytes(), "tenant-1", now, &Retention::default(), 8);
        let alone = prepare_each_alone(body.as_bytes(), "tenant-1", now, &Retention::default(), 8);
        prop_assert_eq!(prepared(&fast), prepared(&alone), "{}", body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(40), ..ProptestConfig::default() })]

    /// The ingest function on DynamoDB Local: never a 5xx; a 202 accounts
    /// for every event; nothing valid is ever refused by storage.
    #[test]
    fn the_ingest_handler_never_answers_5xx(body in props::body()) {
        static TABLE: OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)> = OnceLock::new();
        let (client, cfg) = table(&TABLE);
        let app = ingest::App::new(cfg.clone(), client.clone());
        let tok = token("backend", Some("acme"), &["admin"], &["analytics/ingest"]);
        let a = runtime().block_on(async {
            Answer::from(app.handle(ApiEvent::post("/api/v1/analytics/events", body.clone()).bearer(&tok).into_request()).await)
        });
        prop_assert!(a.status < 500, "{}: {} for {body}", a.status, a.body);
        if a.status == 202 {
            let n = events_in(&body).unwrap();
            let counted = a.body["accepted"].as_u64().unwrap() + a.body["duplicates"].as_u64().unwrap()
                + a.body["rejected"].as_array().unwrap().len() as u64;
            prop_assert_eq!(counted, n as u64, "{}", a.body);
            prop_assert!(a.body["rejected"].as_array().unwrap().iter().all(|r| r["code"] != UNSTORABLE), "{}", a.body);
        } else {
            prop_assert!(!a.code().is_empty(), "an error body: {}", a.body);
        }
    }
}

fn routes_with_queries() -> impl Strategy<Value = (usize, Vec<(String, String)>, usize, String)> {
    (0..query::ROUTES.len()).prop_flat_map(|i| (Just(i), props::query(query::ROUTES[i].params), 0usize..3, props::nasty_string()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(160), ..ProptestConfig::default() })]

    /// Every query route on DynamoDB Local, with arbitrary parameters and
    /// roles: never a 5xx, every error in the contract's shape.
    #[test]
    fn query_routes_never_answer_5xx((route, query, role, segment) in routes_with_queries()) {
        static TABLE: OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)> = OnceLock::new();
        let (client, cfg) = table(&TABLE);
        static SEEDED: OnceLock<()> = OnceLock::new();
        SEEDED.get_or_init(|| {
            let now = Utc::now();
            let events: Vec<Value> = (0..40).map(|i| {
                let at = (now - Duration::minutes(37 * i)).to_rfc3339();
                match i % 3 {
                    0 => json!({"event_id": format!("q{i}"), "kind": "activity", "occurred_at": at, "user_id": "alice", "action": "login", "client_id": "c"}),
                    1 => json!({"event_id": format!("q{i}"), "kind": "api_request", "occurred_at": at, "endpoint": "/x", "method": "GET", "status_code": 503, "response_time_ms": 9}),
                    _ => json!({"event_id": format!("q{i}"), "kind": "external_call", "occurred_at": at, "service": "gemini", "endpoint": "/v1", "response_time_ms": 9, "cost_estimate": 0.1}),
                }
            }).collect();
            runtime().block_on(store_events(client, cfg, "acme", &events));
        });
        let app = query::App::new(cfg.clone(), client.clone()).unwrap();
        let def = &query::ROUTES[route];
        let tok = match role {
            0 => token("boss", Some("acme"), &["admin"], &[]),
            1 => token("lead", Some("acme"), &["manager"], &[]),
            _ => token("alice", Some("acme"), &[], &[]),
        };
        let path = format!("{}{}", query::BASE, def.path.replace("{week}", &percent_encode(&segment)));
        let mut ev = ApiEvent::get(&path).method(def.method).bearer(&tok);
        for (k, v) in &query {
            ev = ev.query(k, v);
        }
        let a = runtime().block_on(async { Answer::from(app.handle(ev.into_request()).await) });
        prop_assert!(a.status < 500, "{} {}?{query:?}: {} {}", def.method, path, a.status, a.body);
        if a.status != 200 {
            prop_assert!(!a.code().is_empty() && a.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.body);
        }
    }
}

/// A step of the roll-up model test.
#[derive(Debug, Clone)]
enum Step {
    /// An event of `kind` that happened `ago_minutes` before the clock,
    /// sent by a device whose clock is `skew_minutes` off (with `sent_at`).
    Send { activity: bool, ago_minutes: i64, skew_minutes: i64 },
    /// The same event again, as a retry sends it (a new `sent_at` by the
    /// same device clock).
    Resend(usize),
    /// The clock moves on by `hours`, then the hourly roll-up runs (the
    /// roll-up runs at least every ten hours, well within half of the
    /// shortest retention, as its schedule does).
    Advance { hours: i64 },
    /// A backfill marks six hours, `ago_hours` back, for recomputation;
    /// then the roll-up runs.
    Backfill { ago_hours: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<bool>(), prop_oneof![0i64..120, 120i64..1_800, 1_800i64..7_200], prop_oneof![Just(0i64), -29_000_000i64..4_000])
            .prop_map(|(activity, ago_minutes, skew_minutes)| Step::Send { activity, ago_minutes, skew_minutes }),
        1 => (0usize..100).prop_map(Step::Resend),
        3 => (1i64..=10).prop_map(|hours| Step::Advance { hours }),
        1 => (0i64..(6 * 24)).prop_map(|ago_hours| Step::Backfill { ago_hours }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(5), ..ProptestConfig::default() })]

    /// The roll-up against a model that counts every acknowledged event
    /// once, in the hour it happened, forever: under late events (minutes
    /// to days late), raw events expiring (retentions of one and four
    /// days), resends and backfills, every stored hour and every period
    /// read equals the model. No stored figure loses an event whose raw
    /// item expired.
    #[test]
    fn rollups_agree_with_a_model(steps in prop::collection::vec(step(), 8..24)) {
        let result: Result<(), TestCaseError> = runtime().block_on(async {
            let (client, mut cfg) = fresh_table().await;
            cfg.retention = Retention { events_days: 4, api_log_days: 1, metrics_days: 1, rollup_days: 800 };
            let store = Table::new(client, cfg.store.clone());
            let start: DateTime<Utc> = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::days(20);
            let mut now = start;
            let mut sent: Vec<(Value, i64)> = Vec::new();
            let mut model: BTreeMap<(String, EventKind), u64> = BTreeMap::new();
            for (i, s) in steps.iter().enumerate() {
                match s {
                    Step::Send { .. } | Step::Resend(_) => {
                        let (ev, skew) = match s {
                            Step::Send { activity, ago_minutes, skew_minutes } => {
                                // The device's clock: its occurred_at and sent_at are off by the skew.
                                let at = (now - Duration::minutes(*ago_minutes) + Duration::minutes(*skew_minutes)).to_rfc3339();
                                let e = if *activity {
                                    json!({"event_id": format!("m{i}"), "kind": "activity", "occurred_at": at, "user_id": "u", "action": "login"})
                                } else {
                                    json!({"event_id": format!("m{i}"), "kind": "api_request", "occurred_at": at, "endpoint": "/x", "method": "GET",
                                           "status_code": 200, "response_time_ms": 1})
                                };
                                sent.push((e.clone(), *skew_minutes));
                                (e, *skew_minutes)
                            }
                            Step::Resend(k) if !sent.is_empty() => sent[k % sent.len()].clone(),
                            _ => continue,
                        };
                        let sent_at = (now + Duration::minutes(skew)).to_rfc3339();
                        let body = json!({ "sent_at": sent_at, "events": [ev.clone()] }).to_string();
                        match analytics_shared::ingest::ingest(&store, "acme", body.as_bytes(), false, now, &cfg.retention).await {
                            Ok(out) if out.accepted == 1 => {
                                // Counted at the corrected time, the moment it happened.
                                let at = analytics_shared::time::parse_timestamp(ev["occurred_at"].as_str().unwrap()).unwrap() - Duration::minutes(skew);
                                let kind = if ev["kind"] == "activity" { EventKind::Activity } else { EventKind::ApiRequest };
                                *model.entry((time::hour_label(at), kind)).or_default() += 1;
                            }
                            Ok(out) => prop_assert!(out.duplicates == 1 || !out.rejected.is_empty(), "{out:?}"),
                            Err(e) => prop_assert!(e.status().is_client_error(), "{e:?}"),
                        }
                    }
                    Step::Advance { hours } => {
                        now += Duration::hours(*hours);
                        analytics_shared::jobs::rollup::roll_up_tenant(&store, "acme", now, &cfg.retention, 10_000).await.unwrap();
                    }
                    Step::Backfill { ago_hours } => {
                        let from = now.duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(*ago_hours);
                        let hours = (0..6).map(|h| time::hour_label(from + Duration::hours(h))).collect();
                        store.markers().mark("acme", &hours).await.unwrap();
                        analytics_shared::jobs::rollup::roll_up_tenant(&store, "acme", now, &cfg.retention, 10_000).await.unwrap();
                    }
                }
                if !matches!(s, Step::Advance { .. } | Step::Backfill { .. }) {
                    continue;
                }
                // Every stored hour holds what the model holds.
                let stored = store.rollups().stored("acme", Resolution::Hour, &time::hour_label(start - Duration::days(6)), &time::hour_label(now), now, true).await.unwrap();
                let mut seen: BTreeMap<(String, EventKind), u64> = BTreeMap::new();
                for (label, doc) in &stored {
                    let api = doc.rollup.api.values().map(|a| a.count).sum::<f64>() as u64;
                    for (kind, n) in [(EventKind::Activity, doc.rollup.activities()), (EventKind::ApiRequest, api)] {
                        if n > 0 {
                            seen.insert((label.clone(), kind), n);
                        }
                    }
                }
                prop_assert_eq!(&seen, &model, "stored hours at step {} ({:?}) of {:?}", i, s, steps);
                // And a period read (stored days and hours) says the same.
                let range = DateRange { from: start - Duration::days(6), to: now + Duration::milliseconds(1) };
                let r = total(&read_pieces(&store, "acme", range, &[], now, &cfg.retention).await.unwrap());
                let want: u64 = model.iter().filter(|((_, k), _)| *k == EventKind::Activity).map(|(_, n)| n).sum();
                prop_assert_eq!(r.activities(), want, "period read at step {}", i);
            }
            Ok(())
        });
        result?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(120), ..ProptestConfig::default() })]

    /// `GET /events` with every filter of the kind it names, at extreme and
    /// odd values, as each role: never a 5xx, errors in the contract's
    /// shape, and an answer holds only events of the asked kind.
    #[test]
    fn events_filters_never_answer_5xx(query in props::events_query(), role in 0usize..3) {
        static TABLE: OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)> = OnceLock::new();
        let (client, cfg) = table(&TABLE);
        static SEEDED: OnceLock<()> = OnceLock::new();
        SEEDED.get_or_init(|| {
            let now = Utc::now();
            let events: Vec<Value> = (0..40).map(|i| {
                let at = (now - Duration::minutes(53 * i)).to_rfc3339();
                match i % 4 {
                    0 => json!({"event_id": format!("e{i}"), "kind": "activity", "occurred_at": at, "user_id": "alice", "action": "login"}),
                    1 => json!({"event_id": format!("e{i}"), "kind": "api_request", "occurred_at": at, "endpoint": "/x", "method": "GET",
                        "status_code": 503, "response_time_ms": 9, "ip_address": "203.0.113.7"}),
                    2 => json!({"event_id": format!("e{i}"), "kind": "auth", "occurred_at": at, "user_id": "alice", "event_type": "login_failed",
                        "success": false, "ip_address": "203.0.113.7"}),
                    _ => json!({"event_id": format!("e{i}"), "kind": "external_call", "occurred_at": at, "service": "gemini", "endpoint": "/v1",
                        "response_time_ms": 9, "cost_estimate": 0.1}),
                }
            }).collect();
            runtime().block_on(store_events(client, cfg, "acme", &events));
        });
        let app = query::App::new(cfg.clone(), client.clone()).unwrap();
        let tok = match role {
            0 => token("boss", Some("acme"), &["admin"], &[]),
            1 => token("lead", Some("acme"), &["manager"], &[]),
            _ => token("alice", Some("acme"), &[], &[]),
        };
        let mut ev = ApiEvent::get(&format!("{}/events", query::BASE)).bearer(&tok);
        for (k, v) in &query {
            ev = ev.query(k, v);
        }
        let a = runtime().block_on(async { Answer::from(app.handle(ev.into_request()).await) });
        prop_assert!(a.status < 500, "/events?{query:?}: {} {}", a.status, a.body);
        if a.status == 200 {
            let kind = query.iter().find(|(k, _)| k == "kind").map(|(_, v)| v.as_str());
            for e in a.body["items"].as_array().unwrap() {
                prop_assert!(kind.is_none_or(|k| e["kind"] == k), "{query:?}: {e}");
                prop_assert!(role != 2 || e["user_id"] == "alice", "a member sees only its own events: {e}");
            }
        } else {
            prop_assert!(!a.code().is_empty() && a.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.body);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(16), ..ProptestConfig::default() })]

    /// A secret, under a sensitive key however spelled and however deep, in
    /// an endpoint's query string, or shaped as a Bearer credential or a
    /// JWT under any key, never survives: not in a stored item, not in an
    /// answer of the routes that show events or endpoints, not in a cached
    /// answer (the second read of each route, stored in the same table).
    #[test]
    fn no_redacted_value_survives_anywhere((event, needles) in props::secret_event(0, &Utc::now().to_rfc3339())) {
        static TABLE: OnceLock<(aws_sdk_dynamodb::Client, analytics_shared::Config)> = OnceLock::new();
        let (client, cfg) = table(&TABLE);
        let ingest = ingest::App::new(cfg.clone(), client.clone());
        let tok = token("backend", Some("acme"), &["admin"], &["analytics/ingest"]);
        let admin = token("boss", Some("acme"), &["admin"], &[]);
        // The secrets are upper case: the id, lower case, finds the event.
        let id = format!("id-{}", needles[0].to_lowercase());
        let mut event = event;
        event["event_id"] = json!(id);
        let body = json!({"events": [event]}).to_string();
        let env = QueryEnv::with(client.clone(), cfg.clone());
        let (posted, answers, stored) = runtime().block_on(async {
            let posted = Answer::from(ingest.handle(ApiEvent::post("/api/v1/analytics/events", body.clone()).bearer(&tok).into_request()).await);
            let mut answers = String::new();
            for _ in 0..2 {
                for (path, q) in [("/events", &[][..]), ("/api-requests", &[]), ("/external-calls", &[("group_by", "endpoint")]),
                    ("/user-activity", &[("user_id", "u")]), ("/recent-activity", &[])] {
                    answers.push_str(&env.get(path, &admin, q).await.body.to_string());
                }
            }
            (posted, answers, stored_text(client, &cfg.store.table).await)
        });
        prop_assert_eq!(posted.status, 202, "{} for {}", posted.body, body);
        prop_assert!(answers.contains(&id), "the event is answered: {}", answers);
        for needle in &needles {
            prop_assert!(!answers.contains(needle.as_str()), "{} answered for {}", needle, body);
            prop_assert!(!stored.contains(needle.as_str()), "{} stored for {}", needle, body);
        }
    }
}

//! External API usage and cost, and secrets, against DynamoDB Local: every
//! `group_by` of `/external-calls` sums calls, errors, cost and tokens
//! exactly, from raw hours and from rolled-up hours alike; the `other` row
//! holds the rest; the weekly report names the top models and spenders;
//! and no secret sent in a URL, a query parameter or metadata is ever
//! stored or answered, by any route, cached or not.

use std::collections::BTreeMap;

use analytics_shared::time;
use chrono::{DateTime, Datelike, Duration, DurationRound, Utc};
use integration_tests::*;
use query::ROUTES;
use serde_json::{Value, json};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn admin() -> String {
    token("boss", Some("acme"), &["admin"], &[])
}

/// Calls spread over three days: three services, models (some calls
/// without one), users (some without), endpoints given as URLs with a
/// key in their query string; costs in tenths of a cent so sums are exact.
fn calls(start: DateTime<Utc>, n: u64) -> Vec<Value> {
    let mut rng = Rng(7);
    (0..n)
        .map(|i| {
            let service = ["gemini", "openai", "brightdata"][rng.below(3) as usize];
            let model = match rng.below(4) {
                0 => Value::Null,
                m => json!(format!("{service}-m{m}")),
            };
            let user = match rng.below(5) {
                0 => Value::Null,
                u => json!(format!("u{u}")),
            };
            let mut e = json!({"event_id": format!("c{i}"), "kind": "external_call",
                "occurred_at": ts(start + Duration::minutes(i as i64 * 4320 / n as i64)),
                "service": service, "endpoint": format!("https://api.{service}.example/v1/op{}?key=SECRET-{i}", rng.below(3)),
                "response_time_ms": 10 + rng.below(500), "cost_estimate": rng.below(50) as f64 / 1000.0,
                "input_tokens": rng.below(2000), "output_tokens": rng.below(300)});
            if rng.below(6) == 0 {
                e["status_code"] = json!(429);
            } else if rng.below(8) == 0 {
                e["error_message"] = json!("timed out");
            }
            for (k, v) in [("model", model), ("user_id", user)] {
                if !v.is_null() {
                    e[k] = v;
                }
            }
            e
        })
        .collect()
}

/// The figures of one row: calls, errors, cost in tenths of a cent, tokens.
type Sums = (u64, u64, u64, u64, u64);

/// The expected rows of a grouping, computed from the events themselves.
fn expected(events: &[Value], by: &str) -> BTreeMap<(String, Option<String>), Sums> {
    let mut out: BTreeMap<(String, Option<String>), Sums> = BTreeMap::new();
    for e in events {
        let text = |f: &str| e.get(f).and_then(Value::as_str).map(str::to_owned);
        let key = match by {
            "service" => None,
            "model" => text("model"),
            "user" => text("user_id"),
            _ => e["endpoint"].as_str().unwrap().split('?').next().map(str::to_owned),
        };
        let s = out.entry((e["service"].as_str().unwrap().to_owned(), key)).or_default();
        let error = e.get("status_code").is_some() || e.get("error_message").is_some();
        *s = (
            s.0 + 1,
            s.1 + u64::from(error),
            s.2 + (e["cost_estimate"].as_f64().unwrap() * 1000.0).round() as u64,
            s.3 + e["input_tokens"].as_u64().unwrap(),
            s.4 + e["output_tokens"].as_u64().unwrap(),
        );
    }
    out
}

/// The rows of an answer in the same form.
fn answered(rows: &Value, by: &str) -> BTreeMap<(String, Option<String>), Sums> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = if by == "service" { None } else { r["key"].as_str().map(str::to_owned) };
            let cost = (r["total_cost"].as_f64().unwrap() * 1000.0).round() as u64;
            let n = |f: &str| r[f].as_u64().unwrap();
            ((r["service"].as_str().unwrap().to_owned(), key), (n("calls"), n("errors"), cost, n("input_tokens"), n("output_tokens")))
        })
        .collect()
}

fn rows_of(body: &Value, by: &str) -> Value {
    body[if by == "service" { "services" } else { "rows" }].clone()
}

#[tokio::test]
async fn every_group_by_sums_exactly_from_raw_and_from_rolled_up_hours() {
    let env = QueryEnv::new().await;
    let start = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(3);
    let events = calls(start, 300);
    assert_eq!(store_events(&env.client, &env.cfg, "acme", &events).await, events.len());
    let from = [("date_from", time::day_label(start)), ("limit", "500".to_owned())];
    let query = |by: &'static str, day: bool| {
        let mut q: Vec<(&str, String)> = from.to_vec();
        q.push(("group_by", by.to_owned()));
        if day {
            q.push(("granularity", "day".to_owned()));
        }
        q
    };
    let total_cost: u64 = events.iter().map(|e| (e["cost_estimate"].as_f64().unwrap() * 1000.0).round() as u64).sum();
    for pass in ["raw", "rolled up"] {
        if pass == "rolled up" {
            let summary =
                analytics_shared::jobs::rollup::roll_up_tenant(&env.store(), "acme", Utc::now(), &env.cfg.retention, 10_000).await.unwrap();
            assert!(summary.hours > 0, "{summary:?}");
            env.app.handle(ApiEvent::post(&format!("{}/cache/invalidate", query::BASE), "").bearer(&admin()).into_request()).await;
        }
        for by in ["service", "model", "user", "endpoint"] {
            let q = query(by, true);
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let a = env.get("/external-calls", &admin(), &q).await;
            assert_eq!(a.status, 200, "{by}: {}", a.body);
            assert_eq!(a.body["group_by"], by);
            assert_eq!(answered(&rows_of(&a.body, by), by), expected(&events, by), "{pass}, group_by={by}");
            assert_eq!((a.body["total_cost"].as_f64().unwrap() * 1000.0).round() as u64, total_cost, "{pass} {by}");
            // Per day: each day's rows are that day's events.
            for day in a.body["days"].as_array().unwrap() {
                let label = day["day"].as_str().unwrap();
                let of_day: Vec<Value> = events.iter().filter(|e| e["occurred_at"].as_str().unwrap().starts_with(label)).cloned().collect();
                assert_eq!(answered(&rows_of(day, by), by), expected(&of_day, by), "{pass}, {by} on {label}");
            }
        }
    }
    let bad = env.get("/external-calls", &admin(), &[("group_by", "colour")]).await;
    assert_eq!((bad.status, bad.code()), (400, "bad_request"));
    assert!(bad.body["error"]["message"].as_str().unwrap().contains("service, model, user, endpoint"), "{}", bad.body);
}

#[tokio::test]
async fn the_other_row_sums_what_the_limit_and_the_rollups_left_out() {
    let (client, mut cfg) = fresh_table().await;
    cfg.store.rollup_max_keys = 3;
    let env = QueryEnv::with(client, cfg);
    let start = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(3);
    let events = calls(start, 200);
    store_events(&env.client, &env.cfg, "acme", &events).await;
    let want = expected(&events, "model");
    let mut by_cost: Vec<(&(String, Option<String>), &Sums)> = want.iter().collect();
    by_cost.sort_by(|a, b| b.1.2.cmp(&a.1.2).then(b.1.0.cmp(&a.1.0)));
    let q = [("date_from", time::day_label(start)), ("group_by", "model".to_owned()), ("limit", "2".to_owned())];
    let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Raw hours: the two costliest, then everything else in one row.
    let a = env.get("/external-calls", &admin(), &q).await;
    let rows = a.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{}", a.body);
    let got = answered(&a.body["rows"], "model");
    for (k, v) in &by_cost[..2] {
        assert_eq!(got.get(*k), Some(*v), "{k:?}");
    }
    assert_eq!((rows[2]["service"].as_str(), rows[2]["key"].as_str()), (Some("other"), Some("other")));
    let rest = by_cost[2..].iter().fold((0, 0, 0, 0, 0), |a, (_, s)| (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3, a.4 + s.4));
    assert_eq!(got[&("other".to_owned(), Some("other".to_owned()))], rest);

    // Rolled up with at most three models an hour: the merged ones land in
    // `other` too, and the totals stay exact.
    analytics_shared::jobs::rollup::roll_up_tenant(&env.store(), "acme", Utc::now(), &env.cfg.retention, 10_000).await.unwrap();
    env.app.handle(ApiEvent::post(&format!("{}/cache/invalidate", query::BASE), "").bearer(&admin()).into_request()).await;
    let q = [("date_from", time::day_label(start)), ("group_by", "user".to_owned()), ("limit", "500".to_owned())];
    let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = env.get("/external-calls", &admin(), &q).await;
    let got = answered(&a.body["rows"], "user");
    assert!(got.contains_key(&("other".to_owned(), Some("other".to_owned()))), "{}", a.body);
    let sum = |m: &BTreeMap<(String, Option<String>), Sums>| {
        m.values().fold((0, 0, 0, 0, 0), |a, s| (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3, a.4 + s.4))
    };
    assert_eq!(sum(&got), sum(&expected(&events, "user")), "totals stay exact");
}

#[tokio::test]
async fn the_weekly_report_names_the_top_models_and_spenders() {
    let (client, cfg) = fresh_table().await;
    let now = Utc::now();
    let monday = time::day_start(now) - Duration::days(i64::from(now.weekday().num_days_from_monday()) + 7);
    let at = |h: i64| ts(monday + Duration::hours(24 + h));
    let call = |id: &str, h: i64, model: &str, user: &str, cost: f64, tokens: u64| {
        json!({"event_id": id, "kind": "external_call", "occurred_at": at(h), "service": "gemini", "endpoint": "/v1/generate",
            "response_time_ms": 900, "cost_estimate": cost, "model": model, "user_id": user, "input_tokens": tokens, "output_tokens": 10})
    };
    let events = [
        call("w1", 1, "gemini-1.5-pro", "ana", 2.0, 1000),
        call("w2", 2, "gemini-1.5-pro", "ben", 1.0, 500),
        call("w3", 3, "gemini-1.5-flash", "ana", 0.25, 4000),
        call("w4", 4, "gemini-1.5-flash", "cy", 0.5, 100),
    ];
    store_events(&client, &cfg, "acme", &events).await;
    let (jobs, bus) = jobs_env(cfg.clone(), &client).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    run_job(&jobs, json!({"job": "weekly-report"})).await.unwrap();
    let env = QueryEnv::with(client, cfg);
    let week = time::week_label(monday.date_naive());
    let r = env.get(&format!("/reports/weekly/{week}"), &admin(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let models: Vec<(&str, f64, u64)> = r.body["top_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap(), m["total_cost"].as_f64().unwrap(), m["input_tokens"].as_u64().unwrap()))
        .collect();
    assert_eq!(models, [("gemini-1.5-pro", 3.0, 1500), ("gemini-1.5-flash", 0.75, 4100)]);
    let spenders: Vec<(&str, f64, u64)> = r.body["top_spenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["user_id"].as_str().unwrap(), s["total_cost"].as_f64().unwrap(), s["calls"].as_u64().unwrap()))
        .collect();
    assert_eq!(spenders, [("ana", 2.25, 2), ("ben", 1.0, 1), ("cy", 0.5, 1)]);
    let published = bus.received().await;
    let summary = published.iter().find(|e| e["detail-type"] == "WeeklyReportGenerated").expect("published")["detail"].clone();
    assert_eq!(summary["costliest_models"], json!({"gemini/gemini-1.5-pro": 3.0, "gemini/gemini-1.5-flash": 0.75}));
    assert_eq!(summary["top_spenders"], json!({"ana": 2.25, "ben": 1.0, "cy": 0.5}));
}

/// Every GET route, default parameters, as an admin, twice (the second
/// answer is the cached one where the route caches).
async fn every_answer(env: &QueryEnv, week: &str) -> String {
    let mut out = String::new();
    for d in ROUTES.iter().filter(|d| d.method == "GET") {
        for _ in 0..2 {
            let a = env.get(&d.path.replace("{week}", week), &admin(), &[]).await;
            assert!(a.status < 500, "{}: {}", d.path, a.body);
            out.push_str(&a.body.to_string());
        }
    }
    for q in [&[("kind", "api_request")][..], &[("kind", "external_call")], &[("kind", "api_request"), ("endpoint", "/reset")]] {
        out.push_str(&env.get("/events", &admin(), q).await.body.to_string());
    }
    out
}

#[tokio::test]
async fn no_secret_sent_in_a_url_or_a_value_is_stored_or_answered() {
    let (client, cfg) = fresh_table().await;
    let now = Utc::now();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUNSRVQtSldUIn0.c2lnU0VDUkVU";
    let events = [
        json!({"event_id": "a1", "kind": "api_request", "occurred_at": ts(now - Duration::minutes(3)), "method": "POST", "status_code": 200,
            "response_time_ms": 12, "endpoint": "/reset?token=SECRET-URL-1&page=2#SECRET-FRAGMENT",
            "query_params": {"next": "Bearer SECRET-BEARER", "q": "shoes"}}),
        json!({"event_id": "a2", "kind": "api_request", "occurred_at": ts(now - Duration::minutes(2)), "method": "GET", "status_code": 200,
            "response_time_ms": 15, "endpoint": "/reset?X-Api-Key=SECRET-URL-2"}),
        json!({"event_id": "x1", "kind": "external_call", "occurred_at": ts(now - Duration::minutes(2)), "service": "gemini",
            "endpoint": "https://generativelanguage.googleapis.com/v1/models/pro:generate?key=SECRET-URL-3", "response_time_ms": 700,
            "model": "gemini-1.5-pro", "input_tokens": 10, "output_tokens": 2, "user_id": "ana",
            "metadata": {"usage": {"prompt_tokens": 10, "total_tokens": 12}, "auth": {"header": "SECRET-OBJECT"}, "trace": [jwt]}}),
        json!({"event_id": "v1", "kind": "activity", "occurred_at": ts(now - Duration::minutes(1)), "user_id": "ana", "action": "login",
            "metadata": {"refreshToken": "SECRET-META", "keyword": "kept-keyword", "nested": {"deeper": {"sessionId": "SECRET-DEEP"}}}}),
    ];
    let ingest = ingest::App::new(cfg.clone(), client.clone());
    let body = json!({ "events": events }).to_string();
    let tok = token("backend", Some("acme"), &["admin"], &["analytics/ingest"]);
    let a = Answer::from(ingest.handle(ApiEvent::post("/api/v1/analytics/events", body).bearer(&tok).into_request()).await);
    assert_eq!((a.status, a.body["accepted"].as_u64()), (202, Some(4)), "{}", a.body);
    let env = QueryEnv::with(client.clone(), cfg.clone());
    let week = time::week_label((now - Duration::days(7)).date_naive());
    let check = |text: &str, where_: &str| {
        for secret in ["SECRET-URL", "SECRET-FRAGMENT", "SECRET-BEARER", "SECRET-OBJECT", "SECRET-META", "SECRET-DEEP", jwt] {
            assert!(!text.contains(secret), "{secret} found in {where_}");
        }
    };
    let answers = every_answer(&env, &week).await;
    check(&answers, "the answers from raw hours");
    assert!(answers.contains("\"/reset\"") && answers.contains("kept-keyword") && answers.contains("\"prompt_tokens\":10"), "{answers}");
    let api = env.get("/api-requests", &admin(), &[("endpoint", "/reset?anything=1")]).await;
    let endpoints = api.body["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.iter().map(|e| e["count"].as_f64().unwrap()).sum::<f64>(), 2.0, "both calls grouped on the path: {}", api.body);
    let (jobs, _bus) = jobs_env(cfg, &client).await;
    for job in ["usage-rollup", "daily-metrics", "weekly-report", "health-snapshot"] {
        run_job(&jobs, json!({"job": job})).await.unwrap();
    }
    check(&every_answer(&env, &week).await, "the answers from rolled-up hours");
    let stored = stored_text(&env.client, &env.cfg.store.table).await;
    check(&stored, "a stored item, rollup or cached answer");
    assert!(stored.contains("[REDACTED]") && stored.contains("gemini-1.5-pro"), "the table was read");
}

use super::*;
use crate::config::Retention;
use crate::model::EventKind;
use crate::time::parse_timestamp;
use crate::validate::{Context, validate_event};

fn ev(v: serde_json::Value) -> Event {
    let now = parse_timestamp("2026-11-21T12:00:00Z").unwrap();
    validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
}

fn sample() -> Vec<Event> {
    use serde_json::json;
    vec![
        ev(json!({"kind": "activity", "occurred_at": "2026-11-21T10:05:00Z", "user_id": "u1", "action": "generate_report",
            "client_id": "c1", "report": {"status": "completed", "processing_time_ms": 4000, "categories": {"cost": 3},
            "impact": {"high": 1, "medium": 2, "low": 0}, "estimated_monthly_savings": 10.5}})),
        ev(json!({"kind": "activity", "occurred_at": "2026-11-21T10:35:00Z", "user_id": "u2", "action": "login"})),
        ev(json!({"kind": "api_request", "occurred_at": "2026-11-21T10:50:00Z", "endpoint": "/a", "method": "GET",
            "status_code": 503, "response_time_ms": 100, "sample_rate": 0.5})),
        ev(json!({"kind": "auth", "occurred_at": "2026-11-21T10:10:00Z", "user_id": "u3", "event_type": "login_failed",
            "success": false, "ip_address": "198.51.100.1"})),
        ev(json!({"kind": "external_call", "occurred_at": "2026-11-21T10:20:00Z", "service": "gemini", "endpoint": "/v1",
            "status_code": 429, "response_time_ms": 300, "cost_estimate": 0.25})),
    ]
}

#[test]
fn an_hour_counts_every_kind_with_weights_and_quarters() {
    let mut r = Rollup::default();
    sample().iter().for_each(|e| r.add(e));
    assert_eq!(r.activities(), 2);
    assert_eq!(r.reports.completed, 1);
    assert_eq!(r.reports.categories["cost"], 3);
    assert_eq!(r.clients["c1"].reports.generated, 1);
    let api = &r.api["5 GET /a"];
    assert_eq!((api.count, api.received), (2.0, 1), "weighted by 1/sample_rate");
    assert_eq!(r.auth["login_failed"], Outcomes { success: 0, failure: 1 });
    assert_eq!(r.failed_login_ips["198.51.100.1"], 1);
    assert_eq!(r.failed_login_users["u3"], 1);
    assert_eq!(r.failed_logins(), 1);
    assert_eq!(r.external["gemini"].errors, 1);
    let no_model = &r.external_models[&external_key("gemini", None)];
    assert_eq!((no_model.calls, no_model.errors), (1, 1), "a call without a model is kept under NONE");
    assert_eq!(split_external_key(&external_key("gemini", None)), ("gemini", None));
    assert_eq!(split_external_key(&external_key("gemini", Some("a b"))), ("gemini", Some("a b")));
    assert_eq!(r.external_endpoints[&external_key("gemini", Some("/v1"))].calls, 1);
    assert_eq!(r.part(EventKind::ExternalCall).external_users.len(), 1, "one kind's part keeps its breakdowns");
    assert_eq!(r.users["u1"].slots, 0b0001);
    assert_eq!(r.users["u2"].slots, 0b0100);
    let c = r.counters();
    assert_eq!((c.activities, c.reports, c.api_requests, c.errors), (2, 1, 2.0, 2.0));
    let second_half = r.quarters(0b1100);
    assert_eq!(second_half.users.keys().collect::<Vec<_>>(), ["u2"]);
    assert_eq!(second_half.counters().activities, 1);
    assert_eq!(second_half.counters().errors, 2.0);
}

#[test]
fn merging_equals_adding_everything_at_once() {
    let events = sample();
    let mut whole = Rollup::default();
    events.iter().for_each(|e| whole.add(e));
    let mut merged = Rollup::default();
    for e in &events {
        let mut one = Rollup::default();
        one.add(e);
        let mut tmp = merged.clone();
        tmp.merge(&one);
        merged = tmp;
    }
    assert_eq!(merged, whole, "parts of one hour merge into the hour, quarters included");
    let mut day = Rollup { slots: Vec::new(), ..whole.clone() };
    day.merge(&whole);
    assert!(day.slots.is_empty(), "a span without quarters drops them");
    assert_eq!(day.counters().activities, 2 * whole.counters().activities);
    assert_eq!(day.counters().errors, 2.0 * whole.counters().errors);
}

#[test]
fn the_parts_of_each_kind_merge_back_into_the_whole() {
    let mut whole = Rollup::default();
    sample().iter().for_each(|e| whole.add(e));
    let mut back = Rollup::default();
    for k in EventKind::ALL {
        back.merge(&whole.part(k));
    }
    assert_eq!(back, whole);
    assert!(whole.part(EventKind::ApiRequest).users.is_empty());
    assert_eq!(whole.part(EventKind::ApiRequest).counters().errors, 2.0);
    assert_eq!(whole.part(EventKind::ApiRequest).counters().activities, 0);
}

#[test]
fn compacting_keeps_the_busiest_keys_and_every_total() {
    let mut r = Rollup::default();
    let t = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
    for i in 0..50u32 {
        for _ in 0..=i {
            r.add(&ev(serde_json::json!({"kind": "api_request", "occurred_at": t, "endpoint": format!("/items/{i}"), "method": "GET",
                "status_code": if i % 2 == 0 { 200 } else { 503 }, "response_time_ms": 10})));
            r.add(&ev(serde_json::json!({"kind": "activity", "occurred_at": t, "user_id": format!("u{i}"), "action": "login", "client_id": format!("c{i}")})));
            r.add(&ev(serde_json::json!({"kind": "auth", "occurred_at": t, "user_id": format!("u{i}"), "event_type": "login_failed", "success": false,
                "ip_address": format!("198.51.100.{i}")})));
            r.add(&ev(
                serde_json::json!({"kind": "external_call", "occurred_at": t, "service": format!("s{i}"), "endpoint": format!("/v{i}"),
                "model": format!("m{i}"), "user_id": format!("u{i}"), "response_time_ms": 1, "cost_estimate": 0.5, "input_tokens": 3}),
            ));
        }
    }
    let calls = |r: &Rollup, by: CallKey| {
        let m = r.external_by(by);
        (
            m.len(),
            m.values().map(|s| s.calls).sum::<u64>(),
            m.values().map(|s| s.cost).sum::<f64>(),
            m.values().map(|s| s.input_tokens).sum::<u64>(),
        )
    };
    let all_by = [CallKey::Service, CallKey::Model, CallKey::User, CallKey::Endpoint];
    let sums_before: Vec<_> = all_by.iter().map(|by| calls(&r, *by)).collect();
    assert!(sums_before.iter().all(|s| *s == (50, 1275, 637.5, 3825)), "{sums_before:?}");
    let before = (r.counters(), r.activities(), r.failed_logins(), r.external.values().map(|s| s.cost).sum::<f64>());
    r.compact(10);
    for by in all_by {
        assert_eq!(calls(&r, by), (10, 1275, 637.5, 3825), "{by:?}: ten entries, the same sums");
        assert_eq!(r.external_by(by)[OTHER].calls, (1..=41).sum::<u64>(), "{by:?}: the 41 least active merged");
    }
    assert_eq!(split_external_key(OTHER), (OTHER, Some(OTHER)));
    let endpoints: std::collections::BTreeSet<&str> = r.api.keys().map(|k| split_api_key(k).2).collect();
    assert_eq!(endpoints.len(), 10);
    assert!(endpoints.contains(OTHER) && endpoints.contains("/items/49") && !endpoints.contains("/items/0"));
    assert_eq!(
        (r.users.len(), r.clients.len(), r.failed_login_ips.len(), r.failed_login_users.len(), r.external.len()),
        (10, 10, 10, 10, 10)
    );
    assert_eq!(r.users[OTHER].total(), (1..=41).sum::<u64>(), "the 41 least active users merged");
    let after = (r.counters(), r.activities(), r.failed_logins(), r.external.values().map(|s| s.cost).sum::<f64>());
    assert_eq!(before, after, "totals stay exact");
    assert_eq!(r.api.values().map(|s| s.count).sum::<f64>(), (1..=50).sum::<u32>() as f64);
    assert_eq!(shown(OTHER), "other");
    let again = r.clone();
    r.compact(10);
    assert_eq!(r, again, "compacting is idempotent");
}

#[test]
fn sums_saturate_instead_of_wrapping() {
    let big = |n: u64| ReportStats { generated: n, completed: n, impact_high: n, processing_ms: n, ..Default::default() };
    let mut r = big(u64::MAX - 1);
    r.merge(&big(10));
    assert_eq!((r.generated, r.completed, r.impact_high, r.processing_ms), (u64::MAX, u64::MAX, u64::MAX, u64::MAX));
    r.failed = u64::MAX;
    let rate = r.success_rate().unwrap();
    assert!((0.0..=100.0).contains(&rate), "{rate}");
}

#[test]
fn the_histogram_is_within_two_percent_and_merges() {
    let mut h = Histogram::default();
    let mut parts = [Histogram::default(), Histogram::default()];
    for i in 1..=1000 {
        h.record(f64::from(i), 1.0);
        parts[i as usize % 2].record(f64::from(i), 1.0);
    }
    let p50 = h.quantile(0.5).unwrap();
    let p95 = h.quantile(0.95).unwrap();
    assert!((p50 - 500.0).abs() / 500.0 < 0.02, "{p50}");
    assert!((p95 - 950.0).abs() / 950.0 < 0.02, "{p95}");
    let mut m = parts[0].clone();
    m.merge(&parts[1]);
    assert_eq!(m, h);
    assert_eq!(Histogram::default().quantile(0.5), None);
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
}

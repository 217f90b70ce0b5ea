//! The query function against DynamoDB Local: every route, the matrix of
//! roles and tenants, cursors, rollups versus raw events, time zones,
//! expired items and caching.

use analytics_shared::time;
use std::collections::BTreeSet;

use analytics_shared::cursor::{Binding, CursorKey};
use analytics_shared::hash::digest;
use analytics_shared::query::period::local_midnight;
use analytics_shared::query::zone::Zone;
use analytics_shared::store::events::event_write;
use analytics_shared::store::keys;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use integration_tests::*;
use query::{BASE, ROUTES};
use serde_json::{Value, json};

type Env = QueryEnv;

/// What these tests do besides reading a route.
trait EnvExt {
    async fn invalidate(&self, tok: &str) -> Answer;
    async fn seed(&self, tenant: &str, events: &[Value]);
    async fn roll_up(&self, tenant: &str) -> analytics_shared::jobs::rollup::RollUpSummary;
}

impl EnvExt for Env {
    async fn invalidate(&self, tok: &str) -> Answer {
        Answer::from(self.app.handle(ApiEvent::post(&format!("{BASE}/cache/invalidate"), "").bearer(tok).into_request()).await)
    }

    async fn seed(&self, tenant: &str, events: &[Value]) {
        assert_eq!(store_events(&self.client, &self.cfg, tenant, events).await, events.len());
    }

    async fn roll_up(&self, tenant: &str) -> analytics_shared::jobs::rollup::RollUpSummary {
        analytics_shared::jobs::rollup::roll_up_tenant(&self.store(), tenant, Utc::now(), &self.cfg.retention, 10_000)
            .await
            .expect("roll-up")
    }
}

fn admin_of(tenant: &str) -> String {
    token("boss", Some(tenant), &["admin"], &[])
}
fn manager_of(tenant: &str) -> String {
    token("lead", Some(tenant), &["manager"], &[])
}
fn member(tenant: &str, sub: &str) -> String {
    token(sub, Some(tenant), &[], &[])
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn today() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::days(1)).unwrap()
}

/// A tenant's small world over the last few days: each user generates
/// reports for each client, logs in (some failures), calls an endpoint
/// and an external service.
fn world(prefix: &str, users: &[&str], client: &str, endpoint: &str, ip: &str) -> Vec<Value> {
    let base = today() - Duration::days(3) + Duration::hours(9);
    let mut out = Vec::new();
    for (u, user) in users.iter().enumerate() {
        for i in 0..4 {
            let at = base + Duration::hours(i * 7 + u as i64);
            out.push(json!({"event_id": format!("{prefix}-r-{u}-{i}"), "kind": "activity", "occurred_at": ts(at), "user_id": user,
                "action": "generate_report", "client_id": client,
                "report": {"status": if i == 3 { "failed" } else { "completed" }, "processing_time_ms": 1000 * (i + 1),
                           "categories": {"cost": 2, "security": 1}, "impact": {"high": 1, "medium": 1, "low": 2},
                           "estimated_monthly_savings": 100.0}}));
            out.push(json!({"event_id": format!("{prefix}-l-{u}-{i}"), "kind": "activity", "occurred_at": ts(at + Duration::minutes(5)),
                "user_id": user, "action": "login"}));
            out.push(
                json!({"event_id": format!("{prefix}-a-{u}-{i}"), "kind": "api_request", "occurred_at": ts(at + Duration::minutes(6)),
                "user_id": user, "endpoint": endpoint, "method": "GET", "status_code": if i == 0 { 503 } else { 200 },
                "response_time_ms": 50 * (i + 1)}),
            );
            out.push(json!({"event_id": format!("{prefix}-f-{u}-{i}"), "kind": "auth", "occurred_at": ts(at + Duration::minutes(7)),
                "user_id": user, "event_type": "login_failed", "success": false, "ip_address": ip}));
            out.push(
                json!({"event_id": format!("{prefix}-x-{u}-{i}"), "kind": "external_call", "occurred_at": ts(at + Duration::minutes(8)),
                "user_id": user, "service": format!("{prefix}-llm"), "endpoint": "/v1", "response_time_ms": 300, "cost_estimate": 0.5}),
            );
        }
    }
    out
}

/// A route's path with its parameter filled in: the current ISO week,
/// which has no report yet (404 to those allowed).
fn sample_path(path: &str) -> String {
    path.replace("{week}", &analytics_shared::time::week_label(Utc::now().date_naive()))
}

/// Query parameters that make every GET route return something.
fn sample_query(path: &str) -> Vec<(&'static str, &'static str)> {
    match path {
        "/activity-summary" => vec![("group_by", "activity_type")],
        "/trends" => vec![("metric", "activities")],
        "/external-calls" => vec![("granularity", "day")],
        _ => vec![],
    }
}

/// Tenants never see each other, and every route lets in exactly the roles
/// the contract names.
#[tokio::test]
async fn the_matrix_of_routes_roles_and_tenants() {
    let env = Env::new().await;
    env.seed("acme", &world("acme", &["alice", "bob"], "c-acme", "/acme/clients", "203.0.113.9")).await;
    env.seed("globex", &world("globex", &["mallory"], "c-globex", "/globex-secret", "198.51.100.66")).await;
    let secrets = ["mallory", "c-globex", "globex-secret", "198.51.100.66", "globex-llm"];
    let (admin, manager, alice) = (admin_of("acme"), manager_of("acme"), member("acme", "alice"));
    for def in ROUTES.iter() {
        let q = sample_query(def.path);
        for (who, tok) in [("admin", &admin), ("manager", &manager), ("member", &alice)] {
            let a = if def.method == "POST" { env.invalidate(tok).await } else { env.get(&sample_path(def.path), tok, &q).await };
            let allowed = match def.access {
                analytics_shared::query::Access::Any => true,
                analytics_shared::query::Access::Managers => who != "member",
                analytics_shared::query::Access::Admin => who == "admin",
            };
            let found = if def.path.contains('{') { 404 } else { 200 };
            let expected = if allowed { found } else { 403 };
            assert_eq!(a.status, expected, "{who} {} {}: {}", def.method, def.path, a.body);
            assert!(a.headers.contains_key("x-request-id"));
            let text = a.body.to_string();
            for s in secrets {
                assert!(!text.contains(s), "{who} {} leaks {s}: {text}", def.path);
            }
            if a.status == 403 {
                assert_eq!(a.code(), "forbidden");
            }
        }
    }
    // Without a token: 401 everywhere.
    let a = Answer::from(env.app.handle(ApiEvent::get(&format!("{BASE}/dashboard")).into_request()).await);
    assert_eq!((a.status, a.code()), (401, "unauthorized"));

    // A member sees only their own events, and asking for another user's is a 403.
    let a = env.get("/user-activity", &alice, &[]).await;
    let items = a.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 8);
    assert!(items.iter().all(|i| i["user_id"] == "alice"));
    assert_eq!(env.get("/user-activity", &alice, &[("user_id", "bob")]).await.status, 403);
    assert_eq!(env.get("/user-activity", &alice, &[("user_id", "alice")]).await.status, 200);
    assert_eq!(env.get("/user-activity", &manager, &[("user_id", "bob")]).await.body["items"].as_array().unwrap().len(), 8);
    assert!(env.get("/recent-activity", &alice, &[]).await.body["items"].as_array().unwrap().iter().all(|i| i["user_id"] == "alice"));
    let own = env.get("/activity-summary", &alice, &[]).await;
    assert_eq!(own.body["total"], 8, "{}", own.body);
    assert_eq!(env.get("/activity-summary", &admin, &[]).await.body["total"], 16);
    assert_eq!(env.get("/activity-summary", &alice, &[("group_by", "user")]).await.status, 403);
    assert_eq!(env.get("/activity-summary", &alice, &[("user_id", "bob")]).await.status, 403);
    let by_user = env.get("/activity-summary", &manager, &[("group_by", "user")]).await;
    assert_eq!(by_user.body["groups"], json!([{"key": "alice", "count": 8}, {"key": "bob", "count": 8}]));
    // The other tenant sees its own world only.
    let g = env.get("/dashboard", &admin_of("globex"), &[]).await;
    assert_eq!(g.body["metrics"]["active_users"], 1, "{}", g.body);
    assert!(!g.body.to_string().contains("alice"));
}

/// The figures of the small world, by route.
#[tokio::test]
async fn every_route_reports_what_was_stored() {
    let env = Env::new().await;
    env.seed("acme", &world("acme", &["alice", "bob"], "c-acme", "/acme/clients", "203.0.113.9")).await;
    let admin = admin_of("acme");
    let m = env.get("/metrics", &admin, &[("period", "7d")]).await.body;
    assert_eq!(
        (m["total_clients"].clone(), m["active_clients"].clone(), m["reports_this_period"].clone(), m["total_activities"].clone()),
        (json!(1), json!(1), json!(8), json!(16))
    );
    assert_eq!(m["success_rate_percentage"], 75.0);
    assert_eq!(m["avg_processing_time_seconds"], 2.5);
    assert_eq!(m["active_users"], 2);
    let c = env.get("/categories", &admin, &[]).await.body;
    assert_eq!(c["categories"][0], json!({"category": "cost", "count": 16, "percentage": 66.67}));
    let b = env.get("/business-impact", &admin, &[]).await.body;
    assert_eq!((b["total"].clone(), b["low"]["percentage"].clone()), (json!(32), json!(50.0)));
    let cp = env.get("/client-performance", &admin, &[]).await.body;
    assert_eq!(cp["clients"][0]["client_id"], "c-acme");
    assert_eq!(cp["clients"][0]["total_estimated_savings"], 800.0);
    let api = env.get("/api-requests", &admin, &[]).await.body;
    let ep = &api["endpoints"][0];
    assert_eq!((ep["endpoint"].clone(), ep["count"].clone(), ep["error_count"].clone()), (json!("/acme/clients"), json!(8), json!(2)));
    let p50 = ep["p50_response_time_ms"].as_f64().unwrap();
    assert!((97.0..=104.0).contains(&p50), "p50 of 50,100,150,200 within the histogram's 2%: {p50}");
    let only_5xx = env.get("/api-requests", &admin, &[("status_class", "5xx")]).await.body;
    assert_eq!(only_5xx["endpoints"][0]["count"], 2);
    let auth = env.get("/auth-events", &admin, &[]).await.body;
    assert_eq!(auth["failed_logins"], 8);
    assert_eq!(auth["top_failed_ips"][0], json!({"ip_address": "203.0.113.9", "count": 8}));
    assert_eq!(auth["top_failed_users"].as_array().unwrap().len(), 2);
    let ext = env.get("/external-calls", &admin, &[("granularity", "day")]).await.body;
    assert_eq!(ext["services"][0]["calls"], 8);
    assert_eq!(ext["total_cost"], 4.0);
    assert!(ext["days"].as_array().unwrap().len() >= 28, "every day of the range is listed");
    let health = env.get("/system-health", &admin, &[]).await.body;
    assert!(health["cpu_percent"].is_null(), "no snapshot yet: host figures are null, {health}");
    assert!(health.get("captured_at").is_some());
    let d = env.get("/dashboard", &admin, &[("period", "7d")]).await.body;
    assert_eq!(d["trends"].as_array().unwrap().len(), 7, "7 days, zero-filled");
    assert_eq!(d["trends"].as_array().unwrap().iter().map(|t| t["activities"].as_u64().unwrap()).sum::<u64>(), 16);
    assert_eq!(d["recent_activity"].as_array().unwrap().len(), 10);
    for part in ["metrics", "categories", "client_performance", "business_impact"] {
        assert!(!d[part].is_null(), "{part}");
    }
    let days = env.get("/activity-summary", &admin, &[("group_by", "day")]).await.body;
    let groups = days["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 30, "30 days, zero-filled: {days}");
    assert!(groups.windows(2).all(|w| w[0]["key"].as_str() < w[1]["key"].as_str()), "by day");

    // A stored snapshot is what system-health returns while it is fresh.
    let snap = analytics_shared::model::HealthSnapshot {
        cpu_percent: Some(12.5),
        memory_percent: Some(40.0),
        memory_used_mb: Some(512.0),
        process_memory_mb: Some(20.0),
        error_rate: 1.0,
        requests_24h: 10.0,
        avg_response_time_ms: Some(5.0),
        p95_response_time_ms: Some(9.0),
        active_users_today: 2,
        failed_logins_24h: 0,
        captured_at: Utc::now() - Duration::minutes(1),
    };
    env.store().documents().put_snapshot("acme", &snap, 30).await.unwrap();
    env.invalidate(&admin).await;
    assert_eq!(env.get("/system-health", &admin, &[]).await.body["cpu_percent"], 12.5);
}

#[tokio::test]
async fn unknown_routes_methods_and_parameters_are_clear_errors() {
    let env = Env::new().await;
    let admin = admin_of("acme");
    let a = env.get("/nope", &admin, &[]).await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    let a = Answer::from(env.app.handle(ApiEvent::post(&format!("{BASE}/dashboard"), "{}").bearer(&admin).into_request()).await);
    assert_eq!((a.status, a.code()), (405, "method_not_allowed"));
    assert_eq!(a.headers["allow"], "GET");
    assert_eq!(env.get("/cache/invalidate", &admin, &[]).await.status, 405);
    let far = (Utc::now() - Duration::days(60)).date_naive().to_string();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("/dashboard", vec![("perod", "7d")], "perod"),
        ("/dashboard", vec![("period", "8d")], "period"),
        ("/user-activity", vec![("limit", "0")], "limit"),
        ("/user-activity", vec![("limit", "many")], "limit"),
        ("/user-activity", vec![("activity_type", "Bad!")], "activity_type"),
        ("/user-activity", vec![("cursor", "forged")], "cursor"),
        ("/trends", vec![("tz", "Mars/Olympus")], "tz"),
        ("/trends", vec![("granularity", "hour"), ("date_from", &far)], "granularity"),
        ("/trends", vec![("metric", "revenue")], "metric"),
        ("/api-requests", vec![("status_class", "6xx")], "status_class"),
        ("/auth-events", vec![("date_from", "2026-13-01")], "date_from"),
        ("/auth-events", vec![("date_from", "2026-11-10"), ("date_to", "2026-11-01")], "date_from"),
        ("/auth-events", vec![("date_from", "2024-01-01"), ("date_to", "2026-01-01")], "400 days"),
        ("/external-calls", vec![("granularity", "week")], "granularity"),
    ];
    for (path, q, named) in cases {
        let a = env.get(path, &admin, &q).await;
        assert_eq!((a.status, a.code()), (400, "bad_request"), "{path} {q:?}: {}", a.body);
        assert!(a.body["error"]["message"].as_str().unwrap().contains(named), "{path} {q:?}: {}", a.body);
    }
}

/// 1,200 events of one user, paged 50 at a time: each exactly once, newest
/// first; cursors only work for their tenant, caller and query, unexpired.
#[tokio::test]
async fn paging_returns_every_event_exactly_once() {
    let env = Env::new().await;
    let start = Utc::now() - Duration::days(50);
    let mut events = Vec::new();
    for i in 0..1500 {
        let user = if i < 1200 { "alice" } else { "bob" };
        let action = if i % 3 == 0 { "login" } else { "view_dashboard" };
        let at = start + Duration::minutes(i * 47);
        events.push(json!({"event_id": format!("p-{i}"), "kind": "activity", "occurred_at": ts(at), "user_id": user, "action": action}));
    }
    // Same event ids in another tenant: never in acme's pages.
    env.seed("acme", &events).await;
    env.seed("globex", &events[..10]).await;

    let pages = |tok: String, q: Vec<(&'static str, String)>| {
        let env = &env;
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            let mut count = 0;
            loop {
                let mut query: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
                if let Some(c) = &cursor {
                    query.push(("cursor", c));
                }
                let a = env.get("/user-activity", &tok, &query).await;
                assert_eq!(a.status, 200, "{}", a.body);
                for it in a.body["items"].as_array().unwrap() {
                    seen.push((it["occurred_at"].as_str().unwrap().to_owned(), it["event_id"].as_str().unwrap().to_owned()));
                }
                count += 1;
                match a.body["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => return (seen, count),
                }
            }
        }
    };
    let (seen, pages_read) = pages(member("acme", "alice"), vec![("limit", "50".into())]).await;
    assert_eq!(pages_read, 24);
    assert_eq!(seen.len(), 1200);
    assert_eq!(seen.iter().map(|s| &s.1).collect::<BTreeSet<_>>().len(), 1200, "no event twice");
    assert!(seen.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    // The whole tenant, across two months of per-action partitions.
    let (all, _) = pages(admin_of("acme"), vec![("limit", "200".into())]).await;
    assert_eq!(all.iter().map(|s| &s.1).collect::<BTreeSet<_>>().len(), 1500);
    assert!(all.windows(2).all(|w| w[0].0 > w[1].0));
    let (logins, _) = pages(admin_of("acme"), vec![("limit", "77".into()), ("activity_type", "login".into())]).await;
    assert_eq!(logins.len(), 500);

    // Cursors are bound to tenant, caller and query, and expire.
    let first = env.get("/user-activity", &member("acme", "alice"), &[("limit", "50")]).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let refused = [
        env.get("/user-activity", &member("acme", "bob"), &[("limit", "50"), ("cursor", &cursor)]).await,
        env.get("/user-activity", &member("globex", "alice"), &[("limit", "50"), ("cursor", &cursor)]).await,
        env.get("/user-activity", &member("acme", "alice"), &[("limit", "51"), ("cursor", &cursor)]).await,
        env.get("/user-activity", &member("acme", "alice"), &[("limit", "50"), ("cursor", &format!("{cursor}x"))]).await,
    ];
    for a in refused {
        assert_eq!((a.status, a.code()), (400, "bad_request"), "{}", a.body);
    }
    let key = CursorKey::new(SECRET.as_bytes());
    let q = digest(r#"{"limit":"50"}"#);
    let binding = Binding { tenant: "acme", caller: "alice", route: "/user-activity", query: &q };
    let fresh = key.seal(binding, "9999999999999#z", Utc::now());
    assert_eq!(env.get("/user-activity", &member("acme", "alice"), &[("limit", "50"), ("cursor", &fresh)]).await.status, 200);
    let stale = key.seal(binding, "9999999999999#z", Utc::now() - Duration::hours(2));
    let a = env.get("/user-activity", &member("acme", "alice"), &[("limit", "50"), ("cursor", &stale)]).await;
    assert_eq!(a.status, 400);
    assert!(a.body["error"]["message"].as_str().unwrap().contains("expired"));
}

/// Answers with every route, without the parts that move with the clock.
async fn period_answers(env: &Env, tok: &str, from: &str, to: &str) -> Vec<Value> {
    let range = [("date_from", from), ("date_to", to)];
    let mut out = Vec::new();
    for (path, extra) in [
        ("/activity-summary", vec![("group_by", "activity_type")]),
        ("/activity-summary", vec![("group_by", "user")]),
        ("/activity-summary", vec![("group_by", "day")]),
        ("/trends", vec![("metric", "activities")]),
        ("/trends", vec![("metric", "active_users"), ("tz", "Asia/Kolkata")]),
        ("/trends", vec![("metric", "errors"), ("granularity", "week")]),
        ("/api-requests", vec![]),
        ("/auth-events", vec![]),
        ("/external-calls", vec![("granularity", "day")]),
    ] {
        let mut q = extra.clone();
        q.extend(range);
        let a = env.get(path, tok, &q).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        out.push(a.body);
    }
    for path in ["/metrics", "/categories", "/client-performance", "/business-impact", "/dashboard"] {
        let mut body = env.get(path, tok, &[("period", "30d")]).await.body;
        if let Some(o) = body.as_object_mut() {
            o.remove("date_to");
        }
        out.push(body);
    }
    out
}

/// Period routes read rollups where the roll-up has run and raw events
/// where it has not: the answers are the same either way, late events
/// included.
#[tokio::test]
async fn period_routes_agree_before_and_after_the_roll_up() {
    let env = Env::new().await;
    env.seed("acme", &world("acme", &["alice", "bob", "carol"], "c-acme", "/acme/clients", "203.0.113.9")).await;
    let admin = admin_of("acme");
    let (from, to) = ((today() - Duration::days(9)).date_naive().to_string(), (today() + Duration::days(1)).date_naive().to_string());
    let raw = period_answers(&env, &admin, &from, &to).await;
    assert!(!env.store().markers().dirty_hours("acme").await.unwrap().is_empty());
    let summary = env.roll_up("acme").await;
    assert!(summary.hours >= 8 && summary.days >= 1 && summary.still_dirty == 0, "{summary:?}");
    assert!(env.store().markers().dirty_hours("acme").await.unwrap().is_empty());
    assert_eq!(env.roll_up("acme").await.hours, 0, "a second run has nothing to do");
    env.invalidate(&admin).await;
    let rolled = period_answers(&env, &admin, &from, &to).await;
    for (a, b) in raw.iter().zip(&rolled) {
        assert_eq!(a, b);
    }
    // A late event lands in an hour already rolled up: it counts at once
    // (its hour is read raw again) and after the next roll-up.
    let late_at = today() - Duration::days(3) + Duration::hours(9) + Duration::minutes(30);
    env.seed(
        "acme",
        &[json!({"event_id": "late-1", "kind": "activity", "occurred_at": ts(late_at), "user_id": "dave", "action": "upload_csv"})],
    )
    .await;
    env.invalidate(&admin).await;
    let q = [("group_by", "user"), ("date_from", from.as_str()), ("date_to", to.as_str())];
    let with_late = env.get("/activity-summary", &admin, &q).await.body;
    assert!(with_late["groups"].as_array().unwrap().iter().any(|g| g["key"] == "dave"), "{with_late}");
    assert_eq!(env.roll_up("acme").await.hours, 1);
    env.invalidate(&admin).await;
    assert_eq!(env.get("/activity-summary", &admin, &q).await.body, with_late);
}

/// Trends bucket in the caller's zone: Kolkata's days start at 18:30 UTC.
#[tokio::test]
async fn trends_bucket_in_kolkata_days_and_hours() {
    let env = Env::new().await;
    let d = today() - Duration::days(3);
    let at = |h: i64, m: i64| ts(d + Duration::hours(h) + Duration::minutes(m));
    let ev =
        |id: &str, t: String, user: &str| json!({"event_id": id, "kind": "activity", "occurred_at": t, "user_id": user, "action": "login"});
    env.seed("acme", &[ev("k1", at(5, 0), "u1"), ev("k2", at(18, 20), "u2"), ev("k3", at(18, 40), "u3")]).await;
    let admin = admin_of("acme");
    let day = |n: i64| (d + Duration::days(n)).date_naive().to_string();
    for stage in ["raw", "rolled up"] {
        let q = [("tz", "Asia/Kolkata"), ("date_from", &day(-1)[..]), ("date_to", &day(2)[..])];
        let a = env.get("/trends", &admin, &q).await.body;
        let points = a["points"].as_array().unwrap();
        let values: Vec<u64> = points.iter().map(|p| p["value"].as_u64().unwrap()).collect();
        assert_eq!(values, [0, 2, 1], "{stage}: {a}");
        assert_eq!(points[1]["bucket_start"], ts_z(d - Duration::minutes(330)), "{stage}");
        let users = env.get("/trends", &admin, &[("tz", "Asia/Kolkata"), ("metric", "active_users"), q[1], q[2]]).await.body;
        assert_eq!(users["points"].as_array().unwrap().iter().map(|p| p["value"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 2, 1]);
        let utc = env.get("/trends", &admin, &[q[1], q[2]]).await.body;
        assert_eq!(utc["points"].as_array().unwrap().iter().map(|p| p["value"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 3, 0]);
        let hours = env
            .get("/trends", &admin, &[("tz", "Asia/Kolkata"), ("granularity", "hour"), ("date_from", &at(17, 0)), ("date_to", &at(20, 0))])
            .await
            .body;
        let hp: Vec<(String, u64)> = hours["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["bucket_start"].as_str().unwrap().to_owned(), p["value"].as_u64().unwrap()))
            .collect();
        assert_eq!(hp.iter().find(|(b, _)| *b == ts_z(d + Duration::minutes(17 * 60 + 30))).unwrap().1, 1, "{stage}: {hp:?}");
        assert_eq!(hp.iter().find(|(b, _)| *b == ts_z(d + Duration::minutes(18 * 60 + 30))).unwrap().1, 1, "{stage}: {hp:?}");
        env.roll_up("acme").await;
        env.invalidate(&admin).await;
    }
}

fn ts_z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Across a daylight-saving change a local day lasts 23 or 25 hours; the
/// trend's buckets follow it.
#[tokio::test]
async fn trends_follow_a_dst_change() {
    let (client, mut cfg) = fresh_table().await;
    cfg.retention.events_days = 400;
    let env = Env::with(client, cfg);
    let ny = Zone::named("America/New_York").unwrap();
    let midnight = |d: NaiveDate| local_midnight(&ny, d);
    // The latest day within a year whose length in New York is not 24 hours.
    let mut day = ny.local(Utc::now()).date() - Duration::days(1);
    while midnight(day.succ_opt().unwrap()) - midnight(day) == Duration::hours(24) {
        day = day.pred_opt().unwrap();
    }
    let (start, next) = (midnight(day), midnight(day.succ_opt().unwrap()));
    let length = next - start;
    assert!(length == Duration::hours(23) || length == Duration::hours(25));
    let ev =
        |id: &str, t: DateTime<Utc>| json!({"event_id": id, "kind": "activity", "occurred_at": ts(t), "user_id": "u1", "action": "login"});
    env.seed(
        "acme",
        &[ev("d1", start + Duration::minutes(30)), ev("d2", next - Duration::minutes(30)), ev("d3", next + Duration::minutes(30))],
    )
    .await;
    let admin = admin_of("acme");
    let (from, to) = (day.to_string(), (day + Duration::days(2)).to_string());
    let a = env.get("/trends", &admin, &[("tz", "America/New_York"), ("date_from", &from), ("date_to", &to)]).await.body;
    let points = a["points"].as_array().unwrap();
    assert_eq!(points.iter().map(|p| p["value"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 1], "{a}");
    let starts: Vec<DateTime<Utc>> = points.iter().map(|p| p["bucket_start"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(starts[1] - starts[0], length, "the bucket lasts as long as the local day: {a}");
}

/// Items past their retention are never returned, even while DynamoDB
/// Local still holds them (its TTL sweeper is lazy).
#[tokio::test]
async fn expired_items_are_never_returned_by_any_route() {
    let env = Env::new().await;
    let now = Utc::now();
    let ctx = analytics_shared::validate::Context { received_at: now, sent_at: None, retention: env.cfg.retention };
    let hour = time::hour_label(now - Duration::hours(2));
    let at = ts(now - Duration::hours(2));
    let raws = world("old", &["ghost"], "c-ghost", "/ghost", "192.0.2.1");
    let mut hours = BTreeSet::new();
    for mut raw in raws {
        raw["occurred_at"] = json!(at);
        let event = analytics_shared::validate::validate_event(&raw.to_string(), &ctx).unwrap();
        let mut w = event_write("acme", event, env.cfg.store.shards, &env.cfg.retention);
        w.item.insert("expires_at", AttributeValue::N((now.timestamp() - 60).to_string()));
        env.client.put_item().table_name(&env.cfg.store.table).set_item(Some(w.item.into_item())).send().await.unwrap();
        hours.insert(hour.clone());
    }
    env.store().markers().mark("acme", &hours).await.unwrap();
    let admin = admin_of("acme");
    for stage in ["raw", "rolled up"] {
        for def in ROUTES.iter().filter(|d| d.method == "GET" && !d.path.contains('{')) {
            let a = env.get(def.path, &admin, &sample_query(def.path)).await;
            assert_eq!(a.status, 200, "{}: {}", def.path, a.body);
            let text = a.body.to_string();
            for s in ["ghost", "old-", "203.0.113", "192.0.2.1"] {
                assert!(!text.contains(s), "{stage} {} returns an expired item: {text}", def.path);
            }
        }
        let m = env.get("/metrics", &admin, &[]).await.body;
        assert_eq!((m["total_activities"].clone(), m["active_users"].clone()), (json!(0), json!(0)), "{stage}");
        assert_eq!(env.get("/system-health", &admin, &[]).await.body["requests_24h"].as_f64(), Some(0.0), "{stage}");
        assert_eq!(env.get("/user-activity", &admin, &[]).await.body["items"], json!([]));
        env.roll_up("acme").await;
        env.invalidate(&admin).await;
    }
}

/// Answers are cached per tenant and visibility until invalidated.
#[tokio::test]
async fn cached_answers_until_invalidated() {
    let env = Env::new().await;
    let first = world("c1", &["alice"], "c-1", "/x", "203.0.113.1");
    env.seed("acme", &first[..5]).await;
    let (admin, alice) = (admin_of("acme"), member("acme", "alice"));
    let a = env.get("/metrics", &admin, &[]).await;
    assert_eq!((a.headers["x-cache"].to_str().unwrap(), a.body["total_activities"].clone()), ("miss", json!(2)));
    let own = env.get("/activity-summary", &alice, &[]).await;
    assert_eq!(own.headers["x-cache"], "miss", "another visibility has its own entry");
    env.seed("acme", &first[5..10]).await;
    let b = env.get("/metrics", &admin, &[]).await;
    assert_eq!((b.headers["x-cache"].to_str().unwrap(), b.body.clone()), ("hit", a.body.clone()));
    assert_eq!(env.get("/metrics", &manager_of("acme"), &[]).await.headers["x-cache"], "hit", "admins and managers share");
    assert_eq!(env.get("/metrics", &admin, &[("period", "7d")]).await.headers["x-cache"], "miss", "other parameters");
    assert_eq!(env.get("/metrics", &admin_of("globex"), &[]).await.body["total_activities"], 0, "never another tenant's entry");
    assert_eq!(env.invalidate(&manager_of("acme")).await.status, 403);
    let inv = env.invalidate(&admin).await;
    assert_eq!(inv.status, 200);
    assert!(inv.body["invalidated"].as_u64().unwrap() >= 3, "{}", inv.body);
    let c = env.get("/metrics", &admin, &[]).await;
    assert_eq!((c.headers["x-cache"].to_str().unwrap(), c.body["total_activities"].clone()), ("miss", json!(4)));
    assert_eq!(env.invalidate(&admin_of("globex")).await.body["invalidated"], 1, "invalidation stays inside the tenant");

    // Entries live ANALYTICS_CACHE_TTL seconds (900), system health at most 300.
    env.get("/system-health", &admin, &[]).await;
    let items = env
        .client
        .query()
        .table_name(&env.cfg.store.table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", AttributeValue::S(keys::cache_pk("acme")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let now = Utc::now().timestamp();
    for item in items {
        let sk = item["sk"].as_s().unwrap();
        let ttl = item["expires_at"].as_n().unwrap().parse::<i64>().unwrap() - now;
        let want = if sk.starts_with("system-health#") { 300 } else { 900 };
        assert!((want - 30..=want).contains(&ttl), "{sk} lives {ttl} s, not {want}");
    }
}

/// The query payloads in `events/` (for `cargo lambda invoke`) answer as named.
#[tokio::test]
async fn the_committed_query_payloads_answer_as_named() {
    let (client, mut cfg) = fresh_table().await;
    cfg.auth.local_jwt_secret = None;
    cfg.query.cursor_secret = Some("payload-test".into());
    let env = Env::with(client, cfg);
    env.seed("default", &world("p", &["alice"], "c-1", "/x", "203.0.113.1")).await;
    let (jobs, _bus) = jobs_env(env.cfg.clone(), &env.client).await;
    for job in ["usage-rollup", "dashboard-metrics", "health-snapshot"] {
        run_job(&jobs, json!({"job": job, "tenant": "default"})).await.unwrap();
    }
    for (file, status) in [
        ("query-dashboard.json", 200),
        ("query-user-activity.json", 200),
        ("query-forbidden.json", 403),
        ("query-events-failed-logins.json", 200),
        ("query-metrics-history.json", 200),
        ("query-system-health-history.json", 200),
    ] {
        let raw = std::fs::read_to_string(root().join("events").join(file)).unwrap();
        let req = lambda_http::request::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let a = Answer::from(env.app.handle(req).await);
        assert_eq!(a.status, status, "{file}: {}", a.body);
        match file {
            "query-user-activity.json" => assert_eq!(a.body["items"].as_array().unwrap().len(), 5),
            "query-events-failed-logins.json" => {
                let items = a.body["items"].as_array().unwrap();
                assert_eq!(items.len(), 4, "{}", a.body);
                assert!(items.iter().all(|e| e["kind"] == "auth" && e["success"] == false));
            }
            "query-metrics-history.json" => assert!(!a.body["items"].as_array().unwrap().is_empty(), "{}", a.body),
            "query-system-health-history.json" => assert_eq!(a.body["items"].as_array().unwrap().len(), 1, "{}", a.body),
            _ => {}
        }
    }
}

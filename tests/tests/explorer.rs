//! `GET /events`, `/metrics/history` and `/system-health/history` against
//! DynamoDB Local: every filter alone and combined, roles and tenants,
//! paging at a bounded cost (pages cut short by the budget included),
//! expired items, and the histories on data the real jobs wrote.

use std::collections::BTreeSet;

use analytics_shared::store::explorer::{Cond, ExploreQuery, Kinds, ReadBudget, Value as V};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use integration_tests::*;

use serde_json::{Value, json};

type Env = QueryEnv;

/// Reading `/events` page after page.
trait Pages {
    async fn all_pages(&self, tok: &str, query: &[(&str, &str)]) -> (Vec<String>, usize);
}

impl Pages for Env {
    /// Every page of `/events` for the query: the event ids in order and
    /// the number of pages.
    async fn all_pages(&self, tok: &str, query: &[(&str, &str)]) -> (Vec<String>, usize) {
        let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let a = self.get("/events", tok, &q).await;
            assert_eq!(a.status, 200, "{query:?}: {}", a.body);
            ids.extend(a.body["items"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_owned()));
            pages += 1;
            match a.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return (ids, pages),
            }
        }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn admin_of(tenant: &str) -> String {
    token("boss", Some(tenant), &["admin"], &[])
}

/// A small world with one event of each shape a filter can pick out.
fn world(now: DateTime<Utc>) -> Vec<Value> {
    let at = |m: i64| ts(now - Duration::minutes(m));
    vec![
        json!({"event_id": "act-1", "kind": "activity", "occurred_at": at(5), "user_id": "alice", "action": "login", "ip_address": "10.0.0.1"}),
        json!({"event_id": "act-2", "kind": "activity", "occurred_at": at(6), "user_id": "bob", "action": "export_pdf"}),
        json!({"event_id": "api-500", "kind": "api_request", "occurred_at": at(70), "user_id": "alice", "endpoint": "/reports",
            "method": "POST", "status_code": 500, "response_time_ms": 900, "ip_address": "10.0.0.1"}),
        json!({"event_id": "api-200", "kind": "api_request", "occurred_at": at(71), "user_id": "bob", "endpoint": "/reports",
            "method": "GET", "status_code": 200, "response_time_ms": 40}),
        json!({"event_id": "api-404", "kind": "api_request", "occurred_at": at(130), "endpoint": "/clients/9",
            "method": "GET", "status_code": 404, "response_time_ms": 250}),
        json!({"event_id": "auth-bad", "kind": "auth", "occurred_at": at(8), "user_id": "alice", "event_type": "login_failed",
            "success": false, "ip_address": "10.0.0.1"}),
        json!({"event_id": "auth-ok", "kind": "auth", "occurred_at": at(9), "user_id": "alice", "event_type": "login",
            "success": true, "ip_address": "10.0.0.2"}),
        json!({"event_id": "ext-1", "kind": "external_call", "occurred_at": at(200), "user_id": "bob", "service": "gemini",
            "endpoint": "/v1/generate", "method": "POST", "status_code": 200, "response_time_ms": 1200, "cost_estimate": 0.4,
            "model": "gemini-1.5-pro", "input_tokens": 900, "output_tokens": 80}),
        json!({"event_id": "ext-2", "kind": "external_call", "occurred_at": at(201), "service": "brightdata",
            "endpoint": "/scrape", "response_time_ms": 300}),
    ]
}

/// A query and the event ids it must return, in order.
type Case = (&'static [(&'static str, &'static str)], &'static [&'static str]);

#[tokio::test]
async fn every_filter_alone_and_combined() {
    let env = Env::new().await;
    let now = Utc::now();
    assert_eq!(store_events(&env.client, &env.cfg, "acme", &world(now)).await, 9);
    let admin = admin_of("acme");
    let ids = |q: &'static [(&'static str, &'static str)]| {
        let env = &env;
        let admin = admin.clone();
        async move { env.all_pages(&admin, q).await.0 }
    };
    let cases: [Case; 20] = [
        (&[], &["act-1", "act-2", "auth-bad", "auth-ok", "api-500", "api-200", "api-404", "ext-1", "ext-2"]),
        (&[("kind", "activity")], &["act-1", "act-2"]),
        (&[("kind", "api_request")], &["api-500", "api-200", "api-404"]),
        (&[("kind", "auth")], &["auth-bad", "auth-ok"]),
        (&[("kind", "external_call")], &["ext-1", "ext-2"]),
        (&[("user_id", "alice")], &["act-1", "auth-bad", "auth-ok", "api-500"]),
        (&[("ip_address", "10.0.0.1")], &["act-1", "auth-bad", "api-500"]),
        (&[("kind", "api_request"), ("endpoint", "/reports")], &["api-500", "api-200"]),
        (&[("kind", "api_request"), ("method", "get")], &["api-200", "api-404"]),
        (&[("kind", "api_request"), ("status_code", "404")], &["api-404"]),
        (&[("kind", "api_request"), ("status_class", "5xx")], &["api-500"]),
        (&[("kind", "api_request"), ("min_response_time_ms", "250")], &["api-500", "api-404"]),
        (&[("kind", "auth"), ("event_type", "login_failed"), ("ip_address", "10.0.0.1")], &["auth-bad"]),
        (&[("kind", "auth"), ("success", "true")], &["auth-ok"]),
        (&[("kind", "external_call"), ("service", "gemini"), ("min_response_time_ms", "1200")], &["ext-1"]),
        (&[("kind", "external_call"), ("endpoint", "/scrape")], &["ext-2"]),
        (&[("kind", "external_call"), ("model", "gemini-1.5-pro")], &["ext-1"]),
        (&[("kind", "external_call"), ("endpoint", "/scrape?page=2")], &["ext-2"]),
        (&[("kind", "activity"), ("action", "export_pdf")], &["act-2"]),
        (&[("kind", "activity"), ("action", "login"), ("user_id", "alice")], &["act-1"]),
    ];
    for (q, want) in cases {
        assert_eq!(ids(q).await, want, "{q:?}");
    }
    // Combined filters that match nothing, and a range.
    assert!(ids(&[("kind", "api_request"), ("status_class", "5xx"), ("method", "GET")]).await.is_empty());
    let from = ts(now - Duration::minutes(100));
    let a = env.get("/events", &admin, &[("kind", "api_request"), ("date_from", &from)]).await;
    let got: Vec<&str> = a.body["items"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(got, ["api-500", "api-200"]);
    // Items carry the stored event, fields of its kind included.
    let a = env.get("/events", &admin, &[("kind", "external_call"), ("service", "gemini")]).await;
    let e = &a.body["items"][0];
    assert_eq!((e["cost_estimate"].as_f64(), e["endpoint"].as_str()), (Some(0.4), Some("/v1/generate")));
    assert!(e["received_at"].is_string());
}

#[tokio::test]
async fn a_filter_the_kind_does_not_have_is_a_400_naming_what_it_needs() {
    let env = Env::new().await;
    let admin = admin_of("acme");
    for (q, needs) in [
        (vec![("status_code", "500")], "kind=api_request or kind=external_call"),
        (vec![("kind", "activity"), ("endpoint", "/x")], "kind=api_request or kind=external_call"),
        (vec![("kind", "api_request"), ("success", "false")], "kind=auth"),
        (vec![("kind", "auth"), ("service", "gemini")], "kind=external_call"),
        (vec![("kind", "auth"), ("action", "login")], "kind=activity"),
    ] {
        let a = env.get("/events", &admin, &q).await;
        assert_eq!((a.status, a.code()), (400, "bad_request"), "{q:?}");
        assert!(a.body["error"]["message"].as_str().unwrap().contains(needs), "{q:?}: {}", a.body);
    }
    for q in [vec![("kind", "nope")], vec![("kind", "api_request"), ("status_code", "700")], vec![("date_from", "10000-01-01")]] {
        assert_eq!(env.get("/events", &admin, &q).await.status, 400, "{q:?}");
    }
}

#[tokio::test]
async fn roles_and_tenants_on_every_new_route() {
    let env = Env::new().await;
    let now = Utc::now();
    store_events(&env.client, &env.cfg, "acme", &world(now)).await;
    let mut other = world(now);
    for e in &mut other {
        e["user_id"] = json!("mallory");
        e["event_id"] = json!(format!("globex-{}", e["event_id"].as_str().unwrap()));
    }
    store_events(&env.client, &env.cfg, "globex", &other).await;
    let (jobs, _bus) = jobs_env(env.cfg.clone(), &env.client).await;
    for job in ["usage-rollup", "dashboard-metrics", "health-snapshot"] {
        run_job(&jobs, json!({"job": job})).await.unwrap();
    }
    let alice = token("alice", Some("acme"), &[], &[]);
    let manager = token("lead", Some("acme"), &["manager"], &[]);
    let admin = admin_of("acme");
    // A member sees its own events only, of every kind.
    let (mine, _) = env.all_pages(&alice, &[]).await;
    assert_eq!(mine, ["act-1", "auth-bad", "auth-ok", "api-500"]);
    assert_eq!(env.all_pages(&alice, &[("user_id", "alice"), ("kind", "auth")]).await.0, ["auth-bad", "auth-ok"]);
    assert_eq!(env.get("/events", &alice, &[("user_id", "bob")]).await.status, 403);
    for tok in [&manager, &admin] {
        let (all, _) = env.all_pages(tok, &[]).await;
        assert_eq!(all.len(), 9, "managers and admins see the tenant's events");
        assert!(all.iter().all(|id| !id.starts_with("globex")), "never another tenant's");
        for path in ["/metrics/history", "/system-health/history"] {
            let a = env.get(path, tok, &[]).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
            assert!(!a.body.to_string().contains("mallory"));
        }
    }
    for path in ["/metrics/history", "/system-health/history"] {
        assert_eq!(env.get(path, &alice, &[]).await.status, 403, "{path} is for admins and managers");
    }
    // Another tenant's admin sees its own world only.
    let (theirs, _) = env.all_pages(&admin_of("globex"), &[]).await;
    assert_eq!(theirs.len(), 9);
    assert!(theirs.iter().all(|id| id.starts_with("globex-")));
    // A cursor of one tenant, caller or query is refused elsewhere.
    let first = env.get("/events", &admin, &[("limit", "2")]).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    for (tok, q) in [
        (&admin_of("globex"), vec![("limit", "2"), ("cursor", cursor.as_str())]),
        (&manager, vec![("limit", "2"), ("cursor", cursor.as_str())]),
        (&admin, vec![("limit", "3"), ("cursor", cursor.as_str())]),
    ] {
        assert_eq!(env.get("/events", tok, &q).await.status, 400);
    }
    let a = env.get("/user-activity", &admin, &[("limit", "2"), ("cursor", &cursor)]).await;
    assert_eq!(a.status, 400, "a cursor of /events is refused by /user-activity");
}

/// 1,500 mixed events over three days, paged with small limits and a
/// small budget: each comes back exactly once, newest first, no page reads
/// more than its budget, and rare matches end pages early.
#[tokio::test]
async fn mixed_events_page_exactly_once_within_the_budget() {
    let env = Env::new().await;
    let now = Utc::now();
    let mut events = Vec::new();
    let mut expected_auth_failures = Vec::new();
    for i in 0..1500_i64 {
        let at = now - Duration::seconds(30 + i * 173);
        let id = format!("m-{i:04}");
        let e = match i % 4 {
            0 => json!({"event_id": id, "kind": "activity", "occurred_at": ts(at), "user_id": format!("u{}", i % 5), "action": "login"}),
            1 => json!({"event_id": id, "kind": "api_request", "occurred_at": ts(at), "user_id": format!("u{}", i % 5),
                "endpoint": "/x", "method": "GET", "status_code": if i % 40 == 1 { 503 } else { 200 }, "response_time_ms": i}),
            2 => {
                if i % 20 == 2 {
                    expected_auth_failures.push(id.clone());
                }
                json!({"event_id": id, "kind": "auth", "occurred_at": ts(at), "event_type": "login_failed",
                    "success": i % 20 != 2, "ip_address": "10.1.1.1"})
            }
            _ => json!({"event_id": id, "kind": "external_call", "occurred_at": ts(at), "service": "gemini", "endpoint": "/v1",
                "response_time_ms": 10}),
        };
        events.push(e);
    }
    assert_eq!(store_events(&env.client, &env.cfg, "acme", &events).await, 1500);
    let newest_first: Vec<String> = (0..1500).map(|i| format!("m-{i:04}")).collect();
    let admin = admin_of("acme");
    let (all, pages) = env.all_pages(&admin, &[("limit", "37")]).await;
    assert_eq!(all, newest_first, "every event once, newest first");
    assert!(pages >= 1500 / 37);
    let (rare, _) = env.all_pages(&admin, &[("kind", "auth"), ("success", "false"), ("limit", "4")]).await;
    assert_eq!(rare, expected_auth_failures);

    // The store's explorer with a budget far below the events scanned.
    let store = env.store();
    let budget = ReadBudget { items: 60, queries: 60 };
    let five_xx = |before: Option<String>, limit: usize, budget: ReadBudget| ExploreQuery {
        tenant: "acme",
        kinds: Kinds { activity: false, api_request: true, auth: false, external_call: false },
        user: None,
        action: None,
        conds: vec![Cond::Between("status_code", V::Number(500.0), V::Number(599.0))],
        from: now - Duration::days(30),
        to: now,
        before,
        limit,
        budget,
    };
    let (mut got, mut before, mut short_pages) = (Vec::new(), None::<String>, 0);
    loop {
        let q = five_xx(before.clone(), 5, budget);
        let page = store.explorer().page(&q, now).await.unwrap();
        assert!(page.items_read <= budget.items, "a page read {} items", page.items_read);
        assert!(page.queries <= budget.queries, "a page sent {} queries", page.queries);
        if page.items.len() < 5 && page.next.is_some() {
            short_pages += 1;
        }
        got.extend(page.items.iter().map(|e| e.event.event_id.clone()));
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let want: Vec<String> = (0..1500).filter(|i| i % 40 == 1).map(|i| format!("m-{i:04}")).collect();
    assert_eq!(got, want, "every 5xx once, newest first, across pages cut by the budget");
    assert!(short_pages > 0, "the budget cut some pages short");
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len());

    // Rolled up, the hour index lets a sparse filter skip the hours
    // without a 5xx: one page, a few partitions per such hour.
    analytics_shared::jobs::rollup::roll_up_tenant(&store, "acme", Utc::now(), &env.cfg.retention, usize::MAX).await.unwrap();
    let q = five_xx(None, 50, analytics_shared::store::explorer::PAGE_BUDGET);
    let page = store.explorer().page(&q, now).await.unwrap();
    let ids: Vec<String> = page.items.iter().map(|e| e.event.event_id.clone()).collect();
    assert_eq!((ids, page.next), (want.clone(), None));
    let hours_with_5xx: BTreeSet<String> = page.items.iter().map(|e| analytics_shared::time::hour_label(e.event.occurred_at)).collect();
    assert!(page.queries <= hours_with_5xx.len() * 8, "{} queries for {} hours", page.queries, hours_with_5xx.len());
    assert!(page.index_read <= 24 * 31, "one index item per hour at most: {}", page.index_read);
    // The same through the route, and the tenant's newest page still whole.
    let (all, _) = env.all_pages(&admin, &[("limit", "500")]).await;
    assert_eq!(all, newest_first);
}

#[tokio::test]
async fn expired_events_are_never_returned() {
    let env = Env::new().await;
    let now = Utc::now();
    store_events(&env.client, &env.cfg, "acme", &world(now)).await;
    // Age every api_request item past its TTL, as if TTL had not swept yet.
    let out = env.client.scan().table_name(&env.cfg.store.table).send().await.unwrap();
    for mut item in out.items.unwrap_or_default() {
        if item.get("kind") == Some(&AttributeValue::S("api_request".into())) {
            item.insert("expires_at".into(), AttributeValue::N((now.timestamp() - 1).to_string()));
            env.client.put_item().table_name(&env.cfg.store.table).set_item(Some(item)).send().await.unwrap();
        }
    }
    let (ids, _) = env.all_pages(&admin_of("acme"), &[]).await;
    assert_eq!(ids.len(), 6);
    assert!(ids.iter().all(|id| !id.starts_with("api-")), "{ids:?}");
}

/// The histories read what the real jobs stored.
#[tokio::test]
async fn the_histories_read_what_the_jobs_wrote() {
    let env = Env::new().await;
    let now = Utc::now();
    let two_days_ago = analytics_shared::time::day_start(now) - Duration::days(2) + Duration::hours(10);
    let reports: Vec<Value> = (0..3)
        .map(|i| {
            json!({"event_id": format!("r{i}"), "kind": "activity", "occurred_at": ts(two_days_ago + Duration::minutes(i)),
                "user_id": "alice", "action": "generate_report", "client_id": format!("c{i}"),
                "report": {"status": "completed", "processing_time_ms": 2000, "categories": {"cost": 1}}})
        })
        .collect();
    store_events(&env.client, &env.cfg, "acme", &reports).await;
    let (jobs, _bus) = jobs_env(env.cfg.clone(), &env.client).await;
    run_job(&jobs, json!({"job": "usage-rollup"})).await.unwrap();
    let window = json!({"job": "dashboard-metrics", "window_start": ts(now - Duration::days(4)), "window_end": ts(now)});
    run_job(&jobs, window).await.unwrap();
    for k in 0..3 {
        run_job(&jobs, json!({"job": "health-snapshot", "scheduled_time": ts(now - Duration::minutes(10 * k))})).await.unwrap();
    }
    let admin = admin_of("acme");
    let a = env.get("/metrics/history", &admin, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["period_type"], "daily");
    let items = a.body["items"].as_array().unwrap();
    let day = two_days_ago.date_naive().to_string();
    let row = items.iter().find(|r| r["period_start"] == day.as_str()).unwrap_or_else(|| panic!("no row for {day}: {}", a.body));
    assert_eq!((row["reports_this_period"].as_u64(), row["categories"]["total"].as_u64()), (Some(3), Some(3)));
    let starts: Vec<&str> = items.iter().map(|r| r["period_start"].as_str().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "oldest first: {starts:?}");
    let monthly = env.get("/metrics/history", &admin, &[("period_type", "monthly")]).await;
    assert!(monthly.body["items"].as_array().unwrap().iter().any(|r| r["reports_this_period"].as_u64() == Some(3)), "{}", monthly.body);
    assert_eq!(env.get("/metrics/history", &admin, &[("period_type", "hourly")]).await.status, 400);
    assert_eq!(env.get("/metrics/history", &admin, &[("date_from", "2020-01-01")]).await.status, 400, "daily: at most 400 days");
    let ten_years = env.get("/metrics/history", &admin, &[("period_type", "yearly"), ("date_from", "2018-01-01")]).await;
    assert_eq!(ten_years.status, 200);

    let (mut captured, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut q = vec![("limit", "2")];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let a = env.get("/system-health/history", &admin, &q).await;
        assert_eq!(a.status, 200, "{}", a.body);
        captured.extend(a.body["items"].as_array().unwrap().iter().map(|s| s["captured_at"].as_str().unwrap().to_owned()));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(captured.len(), 3, "{captured:?}");
    assert!(captured.windows(2).all(|w| w[0] > w[1]), "newest first");
    let old = env.get("/system-health/history", &admin, &[("date_to", &ts(now - Duration::hours(1)))]).await;
    assert_eq!(old.body["items"], json!([]), "nothing captured in the day before the last hour");
}

//! `infra/openapi.yaml` documents exactly the routes the functions serve,
//! with their methods and query parameters, every `$ref` resolves, and
//! every route's real answers (DynamoDB Local, a world with every kind of
//! figure) match its documented 200 schema field by field, both ways, and
//! carry its documented headers; the documented parameter bounds are the
//! ones the routes enforce. The ingest schemas are held to the contract's
//! code in `openapi/contract.rs`.

#[path = "openapi/contract.rs"]
mod contract;
#[path = "openapi/pattern.rs"]
mod pattern;

use std::collections::BTreeSet;

use integration_tests::root;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

fn spec() -> Yaml {
    let text = std::fs::read_to_string(root().join("infra/openapi.yaml")).expect("infra/openapi.yaml exists");
    YamlLoader::load_from_str(&text).expect("the OpenAPI document is YAML").remove(0)
}

/// The names of an operation's query parameters, `$ref`s followed.
fn parameter_names(doc: &Yaml, op: &Yaml) -> BTreeSet<String> {
    op["parameters"]
        .as_vec()
        .map(|ps| {
            ps.iter()
                .map(|p| match p["$ref"].as_str() {
                    Some(r) => &doc["components"]["parameters"][r.rsplit('/').next().unwrap()],
                    None => p,
                })
                .filter(|p| p["in"].as_str() == Some("query"))
                .map(|p| p["name"].as_str().expect("a parameter has a name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_route_and_parameter_is_documented_and_nothing_else() {
    let doc = spec();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut served: BTreeSet<(String, String, BTreeSet<String>)> = query::ROUTES
        .iter()
        .map(|d| (format!("{}{}", query::BASE, d.path), d.method.to_lowercase(), d.params.iter().map(|p| p.to_string()).collect()))
        .collect();
    served.insert((ingest::ROUTE.to_owned(), "post".to_owned(), ["dry_run".to_owned()].into()));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_hash().expect("paths") {
        for (method, op) in item.as_hash().unwrap() {
            documented.insert((path.as_str().unwrap().to_owned(), method.as_str().unwrap().to_owned(), parameter_names(&doc, op)));
            assert!(op["responses"].as_hash().is_some_and(|r| !r.is_empty()), "{path:?} {method:?} has responses");
        }
    }
    assert_eq!(documented, served, "infra/openapi.yaml and the route tables differ (path, method, query parameters)");
}

#[test]
fn every_reference_resolves() {
    let text = std::fs::read_to_string(root().join("infra/openapi.yaml")).unwrap();
    let doc = spec();
    for r in text.split("$ref: \"").skip(1).map(|s| s.split('"').next().unwrap()) {
        let mut node = &doc;
        for part in r.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        assert!(!node.is_badvalue(), "{r} does not resolve");
    }
}

/// The schema a `$ref` names, or the schema itself, and where it is (a
/// component's name, or the location of an inline schema).
fn resolve<'a>(doc: &'a Yaml, schema: &'a Yaml, at: &str) -> (&'a Yaml, String) {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            (&doc["components"]["schemas"][name], name.to_owned())
        }
        None => (schema, at.to_owned()),
    }
}

fn types(schema: &Yaml) -> Vec<&str> {
    match &schema["type"] {
        Yaml::String(t) => vec![t.as_str()],
        Yaml::Array(ts) => ts.iter().filter_map(Yaml::as_str).collect(),
        _ => vec![],
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("the checker does not know the type {other}"),
    }
}

/// Checks a value against a schema (types, enums, formats, required
/// fields, properties closed unless `additionalProperties` says
/// otherwise, array items), recording where the value went (`seen`) and
/// what does not match (`errors`).
fn check(doc: &Yaml, schema: &Yaml, at: &str, v: &Value, seen: &mut BTreeSet<String>, errors: &mut Vec<String>) {
    let (schema, at) = resolve(doc, schema, at);
    seen.insert(at.clone());
    let ts = types(schema);
    if !ts.is_empty() && !ts.iter().any(|t| has_type(v, t)) {
        errors.push(format!("{at}: {v} is not of type {ts:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_vec()
        && !allowed.iter().any(|a| a.as_str() == v.as_str())
    {
        errors.push(format!("{at}: {v} is not one of the documented values"));
    }
    if let Some(s) = v.as_str() {
        let ok = match schema["format"].as_str() {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {s} is not a {}", schema["format"].as_str().unwrap()));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_hash();
        for name in schema["required"].as_vec().into_iter().flatten().filter_map(Yaml::as_str) {
            if !obj.contains_key(name) {
                errors.push(format!("{at}: the required field {name} is missing"));
            }
        }
        for (k, field) in obj {
            let documented = props.and_then(|p| p.get(&Yaml::String(k.clone())));
            match (documented, &schema["additionalProperties"]) {
                (Some(s), _) => check(doc, s, &format!("{at}.{k}"), field, seen, errors),
                (None, Yaml::Hash(_)) => check(doc, &schema["additionalProperties"], &format!("{at}.*"), field, seen, errors),
                (None, _) if props.is_some() || schema["additionalProperties"].as_bool() == Some(false) => {
                    errors.push(format!("{at}: the field {k} is not documented"))
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), false) = (v.as_array(), schema["items"].is_badvalue()) {
        for item in items {
            check(doc, &schema["items"], &format!("{at}[]"), item, seen, errors);
        }
    }
}

/// Every place a schema documents: what a full set of answers must reach.
fn places(doc: &Yaml, schema: &Yaml, at: &str, out: &mut BTreeSet<String>) {
    let (schema, at) = resolve(doc, schema, at);
    if !out.insert(at.clone()) {
        return;
    }
    for (k, s) in schema["properties"].as_hash().into_iter().flatten() {
        places(doc, s, &format!("{at}.{}", k.as_str().unwrap()), out);
    }
    if schema["additionalProperties"].as_hash().is_some() {
        places(doc, &schema["additionalProperties"], &format!("{at}.*"), out);
    }
    if !schema["items"].is_badvalue() {
        places(doc, &schema["items"], &format!("{at}[]"), out);
    }
}

/// The documented 200 schema of a route.
fn ok_schema<'a>(doc: &'a Yaml, path: &str, method: &str) -> &'a Yaml {
    let s = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(!s.is_badvalue(), "{method} {path} documents a 200 body");
    s
}

mod answers {
    use super::*;

    /// A route, its method and its query.
    type Ask = (&'static str, &'static str, &'static [(&'static str, &'static str)]);
    use analytics_shared::time;
    use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
    use integration_tests::*;
    use serde_json::{Value, json};

    fn ts(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Events of every kind and every optional field, at `at`.
    fn world(tag: &str, at: DateTime<Utc>) -> Vec<Value> {
        let t = ts(at);
        vec![
            json!({"event_id": format!("{tag}-r"), "kind": "activity", "occurred_at": t, "user_id": "alice", "action": "generate_report",
                "client_id": "c-1", "report_id": "r-1", "description": "Quarterly review", "ip_address": "203.0.113.7",
                "user_agent": "x".repeat(600), "metadata": {"plan": "pro", "pages": 12},
                "report": {"status": "completed", "processing_time_ms": 4200, "categories": {"cost": 2, "security": 1},
                    "impact": {"high": 1, "medium": 1, "low": 1}, "estimated_monthly_savings": 120.5}}),
            json!({"event_id": format!("{tag}-f"), "kind": "activity", "occurred_at": t, "user_id": "bob", "action": "generate_report",
                "client_id": "c-2", "report": {"status": "failed"}}),
            json!({"event_id": format!("{tag}-c"), "kind": "activity", "occurred_at": t, "user_id": "bob", "action": "export_pdf"}),
            json!({"event_id": format!("{tag}-a"), "kind": "api_request", "occurred_at": t, "endpoint": "/clients", "method": "GET",
                "status_code": 500, "response_time_ms": 40,
                "request_size": 120, "response_size": 64, "query_params": {"page": "2"}, "error_message": "upstream timed out"}),
            json!({"event_id": format!("{tag}-b"), "kind": "api_request", "occurred_at": t, "endpoint": "/clients", "method": "GET",
                "status_code": 200, "response_time_ms": 20}),
            json!({"event_id": format!("{tag}-l"), "kind": "auth", "occurred_at": t, "user_id": "carol", "event_type": "login_failed",
                "success": false, "ip_address": "198.51.100.9"}),
            json!({"event_id": format!("{tag}-x"), "kind": "external_call", "occurred_at": t, "service": "gemini", "endpoint": "/v1",
                "response_time_ms": 300, "cost_estimate": 0.4, "user_id": "alice", "model": "gemini-1.5-pro", "input_tokens": 900,
                "output_tokens": 120}),
        ]
    }

    /// Every route answers, on a world holding every kind of figure, with
    /// bodies that match their documented schemas field by field, and the
    /// answers together reach every field the schemas document.
    #[tokio::test]
    async fn every_answer_matches_its_documented_schema_and_reaches_every_field() {
        let (client, cfg) = fresh_table().await;
        let now = Utc::now();
        let last_week = time::day_start(now) - Duration::days(i64::from(now.weekday().num_days_from_monday()) + 4);
        let mut events = world("now", now - Duration::minutes(5));
        events.extend(world("wk", last_week));
        store_events(&client, &cfg, "acme", &events).await;
        // A sender whose clock is an hour behind: the stored event keeps its
        // own time beside the corrected one.
        let store = analytics_shared::store::Table::new(client.clone(), cfg.store.clone());
        let skewed = json!({"sent_at": ts(now - Duration::hours(1)), "events": [{"event_id": "skewed", "kind": "activity",
            "occurred_at": ts(now - Duration::hours(1) - Duration::minutes(1)), "user_id": "alice", "action": "login"}]});
        let out =
            analytics_shared::ingest::ingest(&store, "acme", skewed.to_string().as_bytes(), false, now, &cfg.retention).await.unwrap();
        assert_eq!(out.accepted, 1);
        let (jobs, _bus) = jobs_env(cfg.clone(), &client).await;
        for job in ["usage-rollup", "health-snapshot", "weekly-report", "dashboard-metrics"] {
            run_job(&jobs, json!({"job": job})).await.unwrap();
        }
        let app = query::App::new(cfg, client).unwrap();
        let admin = token("root", Some("acme"), &["admin"], &[]);
        let week = time::week_label(last_week.date_naive());

        let asks: [Ask; 25] = [
            ("/user-activity", "get", &[]),
            ("/user-activity", "get", &[("limit", "1")]),
            ("/activity-summary", "get", &[]),
            ("/activity-summary", "get", &[("group_by", "user")]),
            ("/activity-summary", "get", &[("group_by", "day")]),
            ("/system-health", "get", &[]),
            ("/dashboard", "get", &[]),
            ("/metrics", "get", &[("period", "7d")]),
            // The same question again: answered from the cache (x-cache: hit).
            ("/metrics", "get", &[("period", "7d")]),
            ("/trends", "get", &[("granularity", "hour"), ("metric", "active_users"), ("tz", "Asia/Kolkata")]),
            ("/categories", "get", &[]),
            ("/recent-activity", "get", &[]),
            ("/client-performance", "get", &[]),
            ("/business-impact", "get", &[]),
            ("/api-requests", "get", &[]),
            ("/auth-events", "get", &[]),
            ("/external-calls", "get", &[("granularity", "day")]),
            ("/external-calls", "get", &[("granularity", "day"), ("group_by", "model")]),
            ("/cache/invalidate", "post", &[]),
            ("/reports/weekly", "get", &[]),
            ("/reports/weekly/{week}", "get", &[]),
            ("/events", "get", &[]),
            ("/events", "get", &[("kind", "api_request"), ("limit", "1")]),
            ("/metrics/history", "get", &[("period_type", "weekly")]),
            ("/system-health/history", "get", &[]),
        ];
        let doc = spec();
        let (mut seen, mut errors, mut reached, mut documented) = (BTreeSet::new(), Vec::new(), BTreeSet::new(), BTreeSet::new());
        let mut caches = BTreeSet::new();
        for (route, method, query) in asks {
            let path = format!("{}{route}", query::BASE);
            let mut ev = match method {
                "post" => ApiEvent::post(&path.replace("{week}", &week), ""),
                _ => ApiEvent::get(&path.replace("{week}", &week)),
            }
            .bearer(&admin);
            for (k, v) in query {
                ev = ev.query(k, v);
            }
            let answer = Answer::from(app.handle(ev.into_request()).await);
            assert_eq!(answer.status, 200, "{method} {route} {query:?}: {}", answer.body);
            check(&doc, ok_schema(&doc, &path, method), &format!("{method} {route}"), &answer.body, &mut seen, &mut errors);
            let documented = &doc["paths"][path.as_str()][method]["responses"]["200"];
            errors.extend(contract::header_problems(&doc, documented, &answer.headers, &format!("{method} {route}")));
            caches.extend(answer.headers.get("x-cache").and_then(|v| v.to_str().ok()).map(str::to_owned));
            reached.insert((route.to_string(), method.to_string()));
        }
        assert_eq!(caches, ["hit".to_owned(), "miss".to_owned()].into(), "a repeated question is answered from the cache");
        errors.dedup();
        assert_eq!(errors, Vec::<String>::new(), "answers that differ from infra/openapi.yaml");
        for d in query::ROUTES.iter() {
            let m = d.method.to_lowercase();
            assert!(reached.contains(&(d.path.to_owned(), m.clone())), "{m} {} has no answer checked here", d.path);
            places(&doc, ok_schema(&doc, &format!("{}{}", query::BASE, d.path), &m), &format!("{m} {}", d.path), &mut documented);
        }
        let never: Vec<&String> = documented.difference(&seen).collect();
        assert!(never.is_empty(), "documented but in no answer (a field the code no longer writes, or a world too small): {never:#?}");
    }

    /// A real batch through the ingest function (examples, a resend, two
    /// invalid events): its 202 matches the documented IngestOutcome,
    /// reaches every field of it, and carries x-request-id.
    #[tokio::test]
    async fn the_ingest_answer_matches_its_documented_schema_and_reaches_every_field() {
        let (client, cfg) = fresh_table().await;
        let app = ::ingest::App::new(cfg, client);
        let doc = spec();
        // The examples' events at the receive time (their own times are fixed).
        let sent: Vec<Value> = contract::example_events(&doc)
            .into_iter()
            .map(|mut e| {
                e.as_object_mut().unwrap().remove("occurred_at");
                e
            })
            .collect();
        let mut events = sent.clone();
        events.push(sent[0].clone());
        events.push(json!({"event_id": "bad-1", "kind": "api_request", "endpoint": "/x", "method": "GET", "status_code": 600, "response_time_ms": 1}));
        events.push(json!({"kind": "auth", "success": true}));
        let ask = ApiEvent::post(::ingest::ROUTE, json!({ "events": events }).to_string()).bearer(&ingest_token("acme"));
        let answer = Answer::from(app.handle(ask.into_request()).await);
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert_eq!((answer.body["accepted"].as_u64(), answer.body["duplicates"].as_u64()), (Some(sent.len() as u64), Some(1)));
        assert_eq!(answer.body["rejected"].as_array().map(Vec::len), Some(2));
        let documented = &doc["paths"][::ingest::ROUTE]["post"]["responses"]["202"];
        let schema = &documented["content"]["application/json"]["schema"];
        let (mut seen, mut errors, mut places_) =
            (BTreeSet::new(), contract::header_problems(&doc, documented, &answer.headers, "202"), BTreeSet::new());
        check(&doc, schema, "post /events", &answer.body, &mut seen, &mut errors);
        assert_eq!(errors, Vec::<String>::new(), "the 202 differs from infra/openapi.yaml");
        places(&doc, schema, "post /events", &mut places_);
        let never: Vec<&String> = places_.difference(&seen).collect();
        assert!(never.is_empty(), "documented but not in the 202: {never:?}");
    }

    /// Every value a query parameter's documented schema allows is
    /// accepted, every value outside it (enum, range, length, format) is a
    /// 400 that names the parameter, and a filter of /events is accepted
    /// with each kind its `x-kinds` names and refused with the others.
    #[tokio::test]
    async fn the_documented_parameter_bounds_are_the_routes() {
        let (client, cfg) = fresh_table().await;
        let app = query::App::new(cfg, client).unwrap();
        let admin = token("root", Some("acme"), &["admin"], &[]);
        let doc = spec();
        let now = Utc::now();
        let (mut wrong, mut asked) = (Vec::new(), 0);
        for d in query::ROUTES.iter().filter(|d| d.method == "GET") {
            let path = format!("{}{}", query::BASE, d.path);
            for p in doc["paths"][path.as_str()]["get"]["parameters"].as_vec().into_iter().flatten() {
                let p = contract::parameter(&doc, p);
                if p["in"].as_str() != Some("query") {
                    continue;
                }
                let name = p["name"].as_str().unwrap();
                let kinds: Vec<&str> = p["x-kinds"].as_vec().map(|ks| ks.iter().filter_map(Yaml::as_str).collect()).unwrap_or_default();
                let (good, bad) = contract::parameter_values(&doc, &p["schema"], name, now);
                let ask = |v: &str, kind: Option<&str>| {
                    let mut ev = ApiEvent::get(&path).bearer(&admin).query(name, v);
                    if let Some(k) = kind {
                        ev = ev.query("kind", k);
                    }
                    app.handle(ev.into_request())
                };
                for (v, ok) in good.iter().map(|v| (v, true)).chain(bad.iter().map(|v| (v, false))) {
                    let answer = Answer::from(ask(v, kinds.first().copied()).await);
                    asked += 1;
                    let named = answer.body["error"]["message"].as_str().is_some_and(|m| m.contains(&format!("`{name}`")));
                    if (ok && answer.status != 200) || (!ok && (answer.status != 400 || !named)) {
                        wrong.push(format!("{} {name}={v:?} (allowed: {ok}): {} {}", d.path, answer.status, answer.body));
                    }
                }
                if !kinds.is_empty() {
                    let v = good.first().unwrap_or_else(|| panic!("{name} documents a value"));
                    for k in analytics_shared::model::EventKind::ALL.map(|k| k.as_str()) {
                        let answer = Answer::from(ask(v, Some(k)).await);
                        asked += 1;
                        if (answer.status == 200) != kinds.contains(&k) {
                            wrong.push(format!("{} {name} with kind={k} (x-kinds {kinds:?}): {} {}", d.path, answer.status, answer.body));
                        }
                    }
                }
            }
        }
        assert!(asked > 150, "{asked} questions");
        assert!(wrong.is_empty(), "parameters whose documented schema is not what the route enforces:\n{}", wrong.join("\n"));
    }
}

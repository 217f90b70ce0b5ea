//! `infra/template.yaml` and the code agree: the table's keys, indexes and
//! TTL are the code's table definition, the HTTP routes are the local
//! router's, the environment only names variables the functions read, and
//! the local JWT secret is never deployed. Offline: no AWS call.

use std::collections::BTreeSet;

use analytics_shared::store::table::{INDEXES, TABLE_KEY, TTL_ATTRIBUTE};
use integration_tests::root;
use yaml_rust2::{Yaml, YamlLoader};

fn template_text() -> String {
    std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml exists")
}

fn template() -> Yaml {
    YamlLoader::load_from_str(&template_text()).expect("the template is YAML").remove(0)
}

fn s(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("expected a string, found {y:?}"))
}

/// (hash, range) of a KeySchema list.
fn key_schema(y: &Yaml) -> (String, String) {
    let mut hash = String::new();
    let mut range = String::new();
    for k in y.as_vec().expect("KeySchema is a list") {
        match s(&k["KeyType"]) {
            "HASH" => hash = s(&k["AttributeName"]).to_owned(),
            "RANGE" => range = s(&k["AttributeName"]).to_owned(),
            other => panic!("unknown KeyType {other}"),
        }
    }
    (hash, range)
}

#[test]
fn the_table_is_the_code_table() {
    let t = template();
    let props = &t["Resources"]["Table"]["Properties"];
    assert_eq!(key_schema(&props["KeySchema"]), (TABLE_KEY.hash.to_owned(), TABLE_KEY.range.to_owned()));
    let gsis = props["GlobalSecondaryIndexes"].as_vec().expect("indexes");
    assert_eq!(gsis.len(), INDEXES.len());
    for want in INDEXES {
        let g = gsis.iter().find(|g| s(&g["IndexName"]) == want.name).unwrap_or_else(|| panic!("index {} missing", want.name));
        assert_eq!(key_schema(&g["KeySchema"]), (want.hash.to_owned(), want.range.to_owned()), "{}", want.name);
        assert_eq!(s(&g["Projection"]["ProjectionType"]), "ALL", "{}", want.name);
    }
    let defined: BTreeSet<(&str, &str)> =
        props["AttributeDefinitions"].as_vec().unwrap().iter().map(|a| (s(&a["AttributeName"]), s(&a["AttributeType"]))).collect();
    let keys: BTreeSet<(&str, &str)> = std::iter::once(TABLE_KEY).chain(INDEXES).flat_map(|k| [(k.hash, "S"), (k.range, "S")]).collect();
    assert_eq!(defined, keys, "exactly the key attributes are defined, all strings");
    assert_eq!(s(&props["TimeToLiveSpecification"]["AttributeName"]), TTL_ATTRIBUTE);
    assert_eq!(props["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true));
    assert_eq!(s(&props["BillingMode"]), "PAY_PER_REQUEST");
    assert_eq!(props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
}

/// (path, method, binary) of every HttpApi event in the template.
fn template_routes(t: &Yaml) -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    for (_, res) in t["Resources"].as_hash().unwrap() {
        if s(&res["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        let binary = s(&res["Metadata"]["BuildProperties"]["Binary"]).to_owned();
        if let Some(events) = res["Properties"]["Events"].as_hash() {
            for (_, e) in events {
                if s(&e["Type"]) == "HttpApi" {
                    let p = &e["Properties"];
                    routes.insert((s(&p["Path"]).to_owned(), s(&p["Method"]).to_owned(), binary.clone()));
                }
            }
        }
    }
    routes
}

#[test]
fn every_route_is_in_the_template_and_the_local_router_alike() {
    let t = template();
    let cargo: toml::Table = std::fs::read_to_string(root().join("Cargo.toml")).unwrap().parse().unwrap();
    let router = cargo["workspace"]["metadata"]["lambda"]["watch"]["router"].as_table().expect("cargo lambda router");
    let deployed = template_routes(&t);
    assert!(!deployed.is_empty());
    // A router entry is a function (every method) or per-method entries
    // (`[{ method = "GET", function = "query" }, ...]`, as cargo-lambda reads them).
    let local = |path: &str, method: &str| -> Option<String> {
        match router.get(path)? {
            toml::Value::String(f) => Some(f.clone()),
            toml::Value::Array(entries) => entries
                .iter()
                .find(|e| e["method"].as_str() == Some(method))
                .map(|e| e["function"].as_str().expect("an entry names its function").to_owned()),
            other => panic!("router entry {path} is neither a function nor per-method entries: {other}"),
        }
    };
    for (path, method, function) in &deployed {
        assert_eq!(local(path, method).as_ref(), Some(function), "{method} {path}: the template and Cargo.toml's router differ");
    }
    let deployed_paths: BTreeSet<&str> = deployed.iter().map(|(p, _, _)| p.as_str()).collect();
    let local_paths: BTreeSet<&str> = router.keys().map(String::as_str).collect();
    assert_eq!(deployed_paths, local_paths, "the template's paths and Cargo.toml's router's differ");
    assert!(deployed.contains(&(ingest::ROUTE.to_owned(), "POST".to_owned(), "ingest".to_owned())));
    // The query function's own route table, method included, is deployed as is.
    let table: BTreeSet<(String, String, String)> =
        query::ROUTES.iter().map(|d| (format!("{}{}", query::BASE, d.path), d.method.to_owned(), "query".to_owned())).collect();
    let deployed_query: BTreeSet<_> = deployed.iter().filter(|r| r.2 == "query").cloned().collect();
    assert_eq!(deployed_query, table, "the template's query routes and query::ROUTES differ");
    // Every function is protected by the JWT authorizer.
    assert_eq!(s(&t["Resources"]["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"]), "Jwt");
}

#[test]
fn the_environment_names_only_known_variables_and_never_the_local_secret() {
    let text = template_text();
    assert!(!text.contains("ANALYTICS_LOCAL_JWT_SECRET"), "the local verifier must never be deployed");
    let t = template();
    let mut envs = vec![&t["Globals"]["Function"]["Environment"]["Variables"]];
    for (_, res) in t["Resources"].as_hash().unwrap() {
        envs.push(&res["Properties"]["Environment"]["Variables"]);
    }
    let mut set = BTreeSet::new();
    for env in envs {
        if let Some(vars) = env.as_hash() {
            for (k, _) in vars {
                set.insert(s(k).to_owned());
            }
        }
    }
    for var in &set {
        assert!(analytics_shared::config::is_variable(var) || var == "RUST_LOG", "{var} is set in the template but no function reads it");
    }
    assert!(set.contains("ANALYTICS_TABLE"), "the functions must be told the table's name");
}

/// Every job is scheduled once, in UTC, with a retry policy and the
/// dead-letter queue, on the function that runs it, with the payload
/// naming it and the scheduled time.
#[test]
fn every_job_is_scheduled_on_its_function() {
    let t = template();
    let mut scheduled = Vec::new();
    for (_, res) in t["Resources"].as_hash().unwrap() {
        if s(&res["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        let binary = s(&res["Metadata"]["BuildProperties"]["Binary"]);
        for (_, e) in res["Properties"]["Events"].as_hash().into_iter().flatten() {
            if s(&e["Type"]) != "ScheduleV2" {
                continue;
            }
            let p = &e["Properties"];
            assert_eq!(s(&p["ScheduleExpressionTimezone"]), "UTC");
            assert!(p["RetryPolicy"]["MaximumRetryAttempts"].as_i64().is_some_and(|n| n > 0));
            assert!(!p["DeadLetterConfig"]["Arn"].is_badvalue(), "{binary}: a dead-letter queue");
            let input: serde_json::Value = serde_json::from_str(s(&p["Input"])).expect("Input is JSON");
            assert_eq!(input["scheduled_time"], "<aws.scheduler.scheduled-time>");
            let job = analytics_shared::jobs::Job::select(input["job"].as_str(), jobs::jobs_of(binary)).expect("a job of this function");
            scheduled.push((job.name(), s(&p["ScheduleExpression"]).to_owned()));
        }
        if jobs::FUNCTIONS.iter().any(|(f, _)| *f == binary) {
            assert!(!res["Properties"]["DeadLetterQueue"].is_badvalue(), "{binary}: failed invocations are kept");
        }
    }
    scheduled.sort();
    let want = [
        ("activity-cleanup", "cron(0 3 ? * SUN *)"),
        ("daily-metrics", "cron(0 2 * * ? *)"),
        ("dashboard-metrics", "cron(0 1 * * ? *)"),
        ("health-snapshot", "rate(5 minutes)"),
        ("metrics-cleanup", "cron(0 4 ? * SUN *)"),
        ("usage-rollup", "cron(5 * * * ? *)"),
        ("weekly-report", "cron(0 9 ? * MON *)"),
    ];
    let got: Vec<(&str, &str)> = scheduled.iter().map(|(j, e)| (*j, e.as_str())).collect();
    assert_eq!(got, want, "the contract's schedule table");
}

/// Every function has an errors alarm and a throttles alarm, asks for named
/// actions only (no wildcards), and only the publishers may publish.
#[test]
fn every_function_is_watched_and_least_privileged() {
    let t = template();
    let resources = t["Resources"].as_hash().unwrap();
    let alarmed: BTreeSet<(String, String)> = resources
        .values()
        .filter(|r| s(&r["Type"]) == "AWS::CloudWatch::Alarm" && r["Properties"]["Namespace"].as_str() == Some("AWS/Lambda"))
        .map(|r| {
            let p = &r["Properties"];
            (s(&p["Dimensions"][0]["Value"]).to_owned(), s(&p["MetricName"]).to_owned())
        })
        .collect();
    let mut functions = 0;
    for (name, res) in resources {
        if s(&res["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        functions += 1;
        let name = s(name);
        for metric in ["Errors", "Throttles"] {
            assert!(alarmed.contains(&(name.to_owned(), metric.to_owned())), "{name} has no {metric} alarm");
        }
        let binary = s(&res["Metadata"]["BuildProperties"]["Binary"]);
        let mut actions = Vec::new();
        for policy in res["Properties"]["Policies"].as_vec().expect("policies") {
            for st in policy["Statement"].as_vec().unwrap() {
                match &st["Action"] {
                    Yaml::Array(a) => actions.extend(a.iter().map(|x| s(x).to_owned())),
                    one => actions.push(s(one).to_owned()),
                }
            }
        }
        assert!(actions.iter().all(|a| !a.contains('*')), "{name}: {actions:?}");
        let publishes = actions.iter().any(|a| a == "events:PutEvents");
        assert_eq!(publishes, ["health", "weekly-report"].contains(&binary), "{name} publishes: {publishes}");
    }
    assert_eq!(functions, 2 + jobs::FUNCTIONS.len());
    let globals = &t["Globals"]["Function"];
    assert_eq!(s(&globals["LoggingConfig"]["LogFormat"]), "JSON");
    assert_eq!(s(&globals["Tracing"]), "Active");
    assert_eq!(s(&globals["Runtime"]), "provided.al2023");
}

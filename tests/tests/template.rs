//! `infra/template.yaml` and the code agree: the table's keys, indexes and
//! TTL are the code's table definition, the HTTP routes are the local
//! router's, the environment only names variables the functions read, and
//! the local JWT secret is never deployed. And what the SAM transform makes
//! of it (samtranslator, offline) is operable: no fixed physical names, every
//! alarm and alert on the stack's topic, a log group with a retention per
//! function. Offline: no AWS call.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use analytics_shared::store::table::{INDEXES, TABLE_KEY, TTL_ATTRIBUTE};
use integration_tests::root;
use serde_json::{Value, json};
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
        // The metrics namespace is read by the EMF set-up (shared::emf), not the config.
        let known = analytics_shared::config::is_variable(var) || var == "RUST_LOG";
        assert!(known, "{var} is set in the template but no function reads it");
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
        // Whoever writes events or reads a period keeps or reads hour deltas
        // (store::deltas): every call those make, DynamoDB Local checking no IAM.
        if ["ingest", "query", "rollup", "health", "weekly-report"].contains(&binary) {
            for call in ["GetItem", "Query", "PutItem", "UpdateItem", "BatchGetItem", "BatchWriteItem"] {
                assert!(actions.iter().any(|a| *a == format!("dynamodb:{call}")), "{name} may not call {call}: {actions:?}");
            }
        }
        if binary == "ingest" {
            // A refused item's identity is taken back (store::events::put).
            assert!(actions.iter().any(|a| a == "dynamodb:DeleteItem"), "{name}: {actions:?}");
        }
        let publishes = actions.iter().any(|a| a == "events:PutEvents");
        assert_eq!(publishes, ["health", "weekly-report"].contains(&binary), "{name} publishes: {publishes}");
    }
    assert_eq!(functions, 2 + jobs::FUNCTIONS.len());
    let globals = &t["Globals"]["Function"];
    assert_eq!(s(&globals["LoggingConfig"]["LogFormat"]), "JSON");
    assert_eq!(s(&globals["Tracing"]), "Active");
    assert_eq!(s(&globals["Runtime"]), "provided.al2023");
}

// ---------------------------------------------------------------------------
// What CloudFormation will create: the SAM transform's output, made offline
// by samtranslator (tests/sam/translate.py, from .local/venv), so SAM's own
// expansions (schedules, roles, the API's stage and OpenAPI body) are checked
// as they will be deployed, not as the template spells them.

/// The venv's Python, with samtranslator (and cfn-lint) installed, by
/// tests/stack/install.sh when they are missing.
fn python() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let python = root().join(".local/venv/bin/python");
            let ready = || {
                root().join(".local/venv/bin/cfn-lint").exists()
                    && Command::new(&python).args(["-c", "import samtranslator"]).output().is_ok_and(|o| o.status.success())
            };
            if !ready() {
                let status =
                    Command::new("bash").arg(root().join("tests/stack/install.sh")).status().expect("bash runs tests/stack/install.sh");
                assert!(status.success(), "tests/stack/install.sh failed; run it by hand to see why");
                assert!(ready(), "{} cannot import samtranslator (or cfn-lint is missing) after install.sh", python.display());
            }
            python
        })
        .clone()
}

/// The transformed template of `template` (a path), with parameter values `Name=Value`.
fn transform_file(template: &Path, params: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(root().join("tests/sam/translate.py"))
        .arg(template)
        .args(params)
        .output()
        .expect("the venv's python runs tests/sam/translate.py");
    assert!(out.status.success(), "the SAM transform refused {}:\n{}", template.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("translate.py prints JSON")
}

/// The transformed infra/template.yaml with its default parameters.
fn transformed() -> &'static Value {
    static CFN: OnceLock<Value> = OnceLock::new();
    CFN.get_or_init(|| transform_file(&root().join("infra/template.yaml"), &[]))
}

fn resources(cfn: &Value) -> &serde_json::Map<String, Value> {
    cfn["Resources"].as_object().expect("Resources")
}

/// (logical id, resource) of every resource of this type.
fn of_type<'a>(cfn: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    resources(cfn).iter().filter(move |(_, r)| r["Type"] == kind).map(|(id, r)| (id.as_str(), r))
}

/// The one resource of this type.
fn only<'a>(cfn: &'a Value, kind: &'a str) -> (&'a str, &'a Value) {
    let all: Vec<_> = of_type(cfn, kind).collect();
    assert_eq!(all.len(), 1, "exactly one {kind}: {:?}", all.iter().map(|(id, _)| id).collect::<Vec<_>>());
    all[0]
}

fn reference(id: &str) -> Value {
    json!({ "Ref": id })
}

/// Properties that name a resource in its account and region: two stacks
/// with a fixed value there collide.
const NAME_PROPERTIES: &[&str] = &[
    "Name",
    "FunctionName",
    "TopicName",
    "QueueName",
    "TableName",
    "RuleName",
    "ScheduleName",
    "GroupName",
    "LogGroupName",
    "AlarmName",
    "RoleName",
    "ManagedPolicyName",
    "BucketName",
    "StateMachineName",
    "SecretName",
    "ApiName",
];

/// Whether a value can only be this stack's: it mentions the stack name or
/// another resource of the template (whose own name is then unique).
fn stack_scoped(v: &Value, cfn: &Value) -> bool {
    let is_resource = |id: &str| resources(cfn).contains_key(id);
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("Ref") {
                return r == "AWS::StackName" || is_resource(r);
            }
            if let Some(sub) = o.get("Fn::Sub") {
                let text = sub.as_str().or_else(|| sub[0].as_str()).unwrap_or_default();
                let names_one = text
                    .split("${")
                    .skip(1)
                    .filter_map(|p| p.split_once('}'))
                    .any(|(var, _)| var == "AWS::StackName" || is_resource(var.split('.').next().unwrap_or_default()));
                return names_one || sub.get(1).is_some_and(|vars| stack_scoped(vars, cfn));
            }
            o.values().any(|x| stack_scoped(x, cfn))
        }
        Value::Array(a) => a.iter().any(|x| stack_scoped(x, cfn)),
        _ => false,
    }
}

/// "Resource.Property = value" of every name that is the same in every stack.
fn fixed_names(cfn: &Value) -> Vec<String> {
    let mut fixed = Vec::new();
    for (id, r) in resources(cfn) {
        // An HTTP API stage is named within its API ($default), not the account.
        if r["Type"] == "AWS::ApiGatewayV2::Stage" {
            continue;
        }
        for key in NAME_PROPERTIES {
            if let Some(v) = r["Properties"].get(*key).filter(|v| !stack_scoped(v, cfn)) {
                fixed.push(format!("{id}.{key} = {v}"));
            }
        }
    }
    fixed
}

#[test]
fn a_second_stack_deploys_beside_the_first_no_fixed_names() {
    let cfn = transformed();
    assert_eq!(fixed_names(cfn), Vec::<String>::new(), "fixed physical names: a second stack in the account would collide");
    // The check sees what it is for: SAM names every ScheduleV2 after its
    // function and event unless OmitName is set.
    let text = template_text();
    assert!(text.contains("OmitName: true"));
    let without = std::env::temp_dir().join(format!("analytics-template-{}.yaml", std::process::id()));
    std::fs::write(&without, text.replace("OmitName: true", "OmitName: false")).unwrap();
    let named = transform_file(&without, &[]);
    let _ = std::fs::remove_file(&without);
    let fixed = fixed_names(&named);
    assert_eq!(
        fixed.iter().filter(|f| f.contains(".Name = \"")).count(),
        of_type(cfn, "AWS::Scheduler::Schedule").count(),
        "without OmitName every schedule has a fixed name: {fixed:?}"
    );
    assert_eq!(of_type(cfn, "AWS::Scheduler::Schedule").count(), 7, "the seven jobs' schedules");
    assert!(!stack_scoped(&json!({"Fn::Sub": "/aws/lambda/ingest"}), cfn));
    assert!(stack_scoped(&json!({"Fn::Sub": "${AWS::StackName}-analytics"}), cfn));
}

/// One topic per stack, and every alarm, in ALARM and back to OK, on it.
#[test]
fn every_alarm_reaches_the_alert_topic() {
    let cfn = transformed();
    let (topic, t) = only(cfn, "AWS::SNS::Topic");
    assert!(t["Properties"].get("TopicName").is_none());
    let alarms: Vec<_> = of_type(cfn, "AWS::CloudWatch::Alarm").collect();
    assert!(alarms.len() >= 17, "the errors and throttles alarms, the dead-letter, 503, 5xx and throttling alarms: {}", alarms.len());
    for (id, a) in &alarms {
        for actions in ["AlarmActions", "OKActions"] {
            let list = a["Properties"][actions].as_array().unwrap_or_else(|| panic!("{id} has no {actions}"));
            assert_eq!(list, &vec![reference(topic)], "{id}.{actions}");
        }
        let description = a["Properties"]["AlarmDescription"].as_str().unwrap_or_default();
        assert!(description.len() > 20, "{id}: the mail says what the alarm means");
    }
    // CloudWatch (alarms of this account) and EventBridge (the health rule) may publish.
    let (_, policy) = only(cfn, "AWS::SNS::TopicPolicy");
    assert_eq!(policy["Properties"]["Topics"], json!([reference(topic)]));
    let statements = policy["Properties"]["PolicyDocument"]["Statement"].as_array().unwrap();
    for service in ["cloudwatch.amazonaws.com", "events.amazonaws.com"] {
        let st = statements.iter().find(|s| s["Principal"]["Service"] == service).unwrap_or_else(|| panic!("{service} may not publish"));
        assert_eq!((&st["Effect"], &st["Action"], &st["Resource"]), (&json!("Allow"), &json!("sns:Publish"), &reference(topic)));
        assert!(st["Condition"].is_object(), "{service}: only this account's alarms, only the stack's rule");
    }
    // AlertEmail subscribes a person, and only when it is set.
    let (_, sub) = only(cfn, "AWS::SNS::Subscription");
    assert_eq!(sub["Properties"]["TopicArn"], reference(topic));
    assert_eq!(sub["Properties"]["Protocol"], "email");
    assert_eq!(sub["Properties"]["Endpoint"], reference("AlertEmail"));
    let condition = sub["Condition"].as_str().expect("the subscription has a condition");
    assert_eq!(cfn["Conditions"][condition], json!({"Fn::Not": [{"Fn::Equals": [reference("AlertEmail"), ""]}]}));
    assert_eq!(cfn["Parameters"]["AlertEmail"]["Default"], "");
    assert_eq!(cfn["Outputs"]["AlertTopicArn"]["Value"], reference(topic));
}

/// The alarm of (namespace, metric, dimensions), which must exist.
fn alarm_on<'a>(cfn: &'a Value, namespace: &Value, metric: &str, dimensions: &Value) -> &'a Value {
    let found: Vec<_> = of_type(cfn, "AWS::CloudWatch::Alarm")
        .filter(|(_, a)| {
            let p = &a["Properties"];
            &p["Namespace"] == namespace && p["MetricName"] == metric && &p["Dimensions"] == dimensions
        })
        .collect();
    assert_eq!(found.len(), 1, "one alarm on {namespace} {metric} {dimensions}");
    &found[0].1["Properties"]
}

/// "At least one in 5 minutes", no data being fine.
fn assert_any_in_five_minutes(p: &Value, what: &str) {
    assert_eq!(p["Statistic"], "Sum", "{what}");
    assert_eq!(p["Period"], 300, "{what}");
    assert_eq!(p["EvaluationPeriods"], 1, "{what}");
    assert_eq!(p["Threshold"], 1, "{what}");
    assert_eq!(p["ComparisonOperator"], "GreaterThanOrEqualToThreshold", "{what}");
    assert_eq!(p["TreatMissingData"], "notBreaching", "{what}");
}

/// The outages Lambda's Errors never sees are alarmed: 503s (from the
/// functions' own metric), the API's 5xx, DynamoDB throttling, and every
/// job invocation that failed for good (the dead-letter queue).
#[test]
fn outages_and_failed_jobs_are_alarmed() {
    let cfn = transformed();
    // The functions' EMF namespace is the stack's, and the Unavailable alarms read it.
    let namespace = json!({"Fn::Sub": "Analytics/${AWS::StackName}"});
    for (id, f) in of_type(cfn, "AWS::Lambda::Function") {
        assert_eq!(f["Properties"]["Environment"]["Variables"]["ANALYTICS_METRICS_NAMESPACE"], namespace, "{id}");
    }
    for function in ["ingest", "query"] {
        let p = alarm_on(cfn, &namespace, "Unavailable", &json!([{"Name": "Function", "Value": function}]));
        assert_any_in_five_minutes(p, function);
    }
    let p = alarm_on(cfn, &json!("AWS/ApiGateway"), "5xx", &json!([{"Name": "ApiId", "Value": reference("HttpApi")}]));
    assert_any_in_five_minutes(p, "5xx");
    assert_eq!(only(cfn, "AWS::ApiGatewayV2::Api").0, "HttpApi");
    for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
        let p = alarm_on(cfn, &json!("AWS/DynamoDB"), metric, &json!([{"Name": "TableName", "Value": reference("Table")}]));
        assert_any_in_five_minutes(p, metric);
    }

    // The dead-letter queue: alarmed as soon as one message is in it ...
    let (queue, _) = only(cfn, "AWS::SQS::Queue");
    let queue_arn = json!({"Fn::GetAtt": [queue, "Arn"]});
    let p = alarm_on(
        cfn,
        &json!("AWS/SQS"),
        "ApproximateNumberOfMessagesVisible",
        &json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]),
    );
    assert_eq!((&p["Threshold"], &p["ComparisonOperator"]), (&json!(1), &json!("GreaterThanOrEqualToThreshold")));
    // ... and every way a job fails for good ends in it: a schedule that could
    // not invoke its function, and an invocation that failed Lambda's retries.
    let schedules: Vec<_> = of_type(cfn, "AWS::Scheduler::Schedule").collect();
    assert!(!schedules.is_empty());
    for (id, s) in &schedules {
        assert_eq!(s["Properties"]["Target"]["DeadLetterConfig"]["Arn"], queue_arn, "{id}");
        let function = s["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0].as_str().expect("a schedule invokes a function of the stack");
        let f = &resources(cfn)[function];
        assert_eq!(f["Properties"]["DeadLetterConfig"]["TargetArn"], queue_arn, "{function}: failed asynchronous invocations are kept");
    }
    let (_, queue_policy) = only(cfn, "AWS::SQS::QueuePolicy");
    assert!(queue_policy.to_string().contains("scheduler.amazonaws.com"), "the scheduler may drop failed invocations in the queue");
}

/// Every AnalyticsHealthAlert of the stack's bus lands on the topic, readable.
#[test]
fn health_alerts_reach_the_topic() {
    let cfn = transformed();
    let (topic, _) = only(cfn, "AWS::SNS::Topic");
    let (bus, _) = only(cfn, "AWS::Events::EventBus");
    let rules: Vec<_> = of_type(cfn, "AWS::Events::Rule")
        .filter(|(_, r)| r["Properties"]["EventPattern"]["detail-type"] == json!(["AnalyticsHealthAlert"]))
        .collect();
    assert_eq!(rules.len(), 1, "one rule for AnalyticsHealthAlert");
    let (rule, r) = rules[0];
    let p = &r["Properties"];
    assert_eq!(p["EventBusName"], reference(bus), "the rule is on the stack's bus, where the health job publishes");
    assert_eq!(p["EventPattern"]["source"], json!([analytics_shared::bus::SOURCE]));
    assert_eq!(p["State"], "ENABLED");
    let targets = p["Targets"].as_array().unwrap();
    let target = targets.iter().find(|t| t["Arn"] == reference(topic)).expect("the rule targets the alert topic");
    let transformer = &target["InputTransformer"];
    let paths = transformer["InputPathsMap"].as_object().expect("an input transformer makes the mail readable");
    for field in ["tenant", "condition", "value", "threshold"] {
        assert!(paths.values().any(|v| v == &json!(format!("$.detail.{field}"))), "the mail shows the alert's {field}");
    }
    let text = transformer["InputTemplate"].as_str().unwrap();
    for key in paths.keys() {
        assert!(text.contains(&format!("<{key}>")), "{key} is read and shown");
    }
    // The topic lets exactly this rule publish.
    let (_, policy) = only(cfn, "AWS::SNS::TopicPolicy");
    let events = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Principal"]["Service"] == "events.amazonaws.com")
        .expect("EventBridge may publish");
    assert_eq!(events["Condition"]["ArnEquals"]["aws:SourceArn"], json!({"Fn::GetAtt": [rule, "Arn"]}));
}

/// The retention values CloudWatch Logs accepts.
const LOG_RETENTIONS: [u32; 22] = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Every function logs JSON, at the LogLevel, into its own group with the
/// LogRetentionDays retention, named as Lambda would name it (so `sam logs`,
/// the console and every tool find it); the API's access log too.
#[test]
fn every_function_logs_to_its_own_group_with_a_retention() {
    let cfn = transformed();
    let retention = reference("LogRetentionDays");
    let groups: BTreeSet<&str> = of_type(cfn, "AWS::Logs::LogGroup").map(|(id, _)| id).collect();
    for (id, g) in of_type(cfn, "AWS::Logs::LogGroup") {
        assert_eq!(g["Properties"]["RetentionInDays"], retention, "{id} keeps its lines LogRetentionDays days");
    }
    let mut used = BTreeSet::new();
    let functions: Vec<_> = of_type(cfn, "AWS::Lambda::Function").collect();
    assert_eq!(functions.len(), 2 + jobs::FUNCTIONS.len());
    for (id, f) in functions {
        let logging = &f["Properties"]["LoggingConfig"];
        let group =
            logging["LogGroup"]["Ref"].as_str().unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is a log group of the stack"));
        assert!(groups.contains(group), "{id} logs to {group}, not a log group of the stack");
        assert!(used.insert(group), "{id} shares {group}");
        assert_eq!(logging["LogFormat"], "JSON", "{id}");
        assert_eq!(logging["ApplicationLogLevel"], reference("LogLevel"), "{id}");
        assert_eq!(logging["SystemLogLevel"], json!({"Fn::FindInMap": ["SystemLogLevel", reference("LogLevel"), "Level"]}), "{id}");
        let name = f["Properties"]["FunctionName"]["Fn::Sub"].as_str().unwrap_or_else(|| panic!("{id}: a stack-prefixed name"));
        assert!(name.starts_with("${AWS::StackName}-"), "{id}: {name}");
        assert_eq!(
            resources(cfn)[group]["Properties"]["LogGroupName"],
            json!({"Fn::Sub": format!("/aws/lambda/{name}")}),
            "{id}: the group Lambda would use"
        );
    }
    // Lambda's platform levels for every application level.
    let levels = cfn["Parameters"]["LogLevel"]["AllowedValues"].as_array().unwrap();
    assert_eq!(cfn["Parameters"]["LogLevel"]["Default"], "INFO");
    for level in levels {
        let system = &cfn["Mappings"]["SystemLogLevel"][level.as_str().unwrap()]["Level"];
        assert!(["DEBUG", "INFO", "WARN"].contains(&system.as_str().unwrap_or_default()), "{level}: {system}");
    }
    let p = &cfn["Parameters"]["LogRetentionDays"];
    assert_eq!(p["Default"], 30);
    let allowed: Vec<u32> = p["AllowedValues"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(allowed, LOG_RETENTIONS);

    // The API's access log: its own group, one JSON line per request with
    // what an operator looks for.
    let (_, stage) = only(cfn, "AWS::ApiGatewayV2::Stage");
    let access = &stage["Properties"]["AccessLogSettings"];
    let group = access["DestinationArn"]["Fn::GetAtt"][0].as_str().expect("the access log goes to a group of the stack");
    assert!(groups.contains(group) && !used.contains(group), "{group}: the API's own group");
    let format: Value = serde_json::from_str(access["Format"].as_str().unwrap()).expect("the access log format is JSON");
    for field in [
        "requestId",
        "ip",
        "requestTime",
        "httpMethod",
        "routeKey",
        "status",
        "responseLatency",
        "integrationErrorMessage",
        "authorizerError",
    ] {
        assert!(format[field].as_str().is_some_and(|v| v.starts_with("$context.")), "access log field {field}: {}", format[field]);
    }
}

/// CORS only for the AllowedOrigins; none by default.
#[test]
fn cors_follows_allowed_origins() {
    let cors = |cfn: &Value| cfn["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"].clone();
    let default = transformed();
    assert_eq!(default["Parameters"]["AllowedOrigins"]["Default"], "");
    let c = cors(default);
    let condition = c["Fn::If"][0].as_str().expect("CORS depends on a condition");
    assert_eq!(c["Fn::If"][2], reference("AWS::NoValue"), "no CORS configuration without AllowedOrigins");
    assert_eq!(
        default["Conditions"][condition],
        json!({"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", reference("AllowedOrigins")]}, ""]}]})
    );
    let origins = ["https://dashboard.example.com", "https://admin.example.com"];
    let set = transform_file(&root().join("infra/template.yaml"), &[&format!("AllowedOrigins={}", origins.join(","))]);
    let on = &cors(&set)["Fn::If"][1];
    assert_eq!(on["allowOrigins"], json!(origins));
    assert_eq!(on["allowHeaders"], json!(["authorization", "content-type"]));
    assert_eq!(on["allowMethods"], json!(["GET", "POST", "OPTIONS"]));
    assert_eq!(on["exposeHeaders"], json!(["x-request-id", "x-cache", "retry-after"]));
    assert!(on.get("allowCredentials").is_none(), "bearer tokens, no cookies");
}

/// IngestReservedConcurrency 0 (the default) leaves ingest unreserved.
#[test]
fn ingest_concurrency_is_reserved_only_when_asked() {
    let cfn = transformed();
    assert_eq!(cfn["Parameters"]["IngestReservedConcurrency"]["Default"], 0);
    let reserved = &cfn["Resources"]["IngestFunction"]["Properties"]["ReservedConcurrentExecutions"];
    let condition = reserved["Fn::If"][0].as_str().expect("reserved only under a condition");
    assert_eq!(reserved["Fn::If"][1], reference("IngestReservedConcurrency"));
    assert_eq!(reserved["Fn::If"][2], reference("AWS::NoValue"));
    assert_eq!(cfn["Conditions"][condition], json!({"Fn::Not": [{"Fn::Equals": [reference("IngestReservedConcurrency"), 0]}]}));
    for (id, f) in of_type(cfn, "AWS::Lambda::Function") {
        assert_eq!(f["Properties"].get("ReservedConcurrentExecutions").is_some(), id == "IngestFunction", "{id}");
    }
}

/// `sam sync --watch` builds as `sam build` does and updates the stack `sam deploy` does.
#[test]
fn sam_sync_is_configured_like_build_and_deploy() {
    let config: toml::Table = std::fs::read_to_string(root().join("samconfig.toml")).unwrap().parse().unwrap();
    let section =
        |cmd: &str| config["default"][cmd]["parameters"].as_table().unwrap_or_else(|| panic!("[default.{cmd}.parameters]")).clone();
    let (build, deploy, sync) = (section("build"), section("deploy"), section("sync"));
    assert!(config["default"]["global"]["parameters"]["stack_name"].is_str(), "one stack name for deploy and sync");
    assert_eq!(sync["template_file"], build["template_file"]);
    assert_eq!(sync["template_file"].as_str(), Some("infra/template.yaml"));
    assert_eq!(sync.get("beta_features"), build.get("beta_features"), "the rust-cargolambda build method is a beta feature");
    assert_eq!(sync["beta_features"].as_bool(), Some(true));
    let caps =
        |t: &toml::Table| t["capabilities"].as_str().unwrap_or_default().split_whitespace().map(str::to_owned).collect::<BTreeSet<_>>();
    assert!(caps(&sync).is_superset(&caps(&deploy)), "sync may create what deploy creates");
    assert!(caps(&sync).contains("CAPABILITY_AUTO_EXPAND"), "sync updates the stack without a change set: the SAM transform needs it");
}

/// cfn-lint passes the transformed template too (make lint checks the SAM
/// one): what SAM generates is valid CloudFormation, with every option on.
#[test]
fn the_transformed_template_lints_clean() {
    let cfn_lint = root().join(".local/venv/bin/cfn-lint");
    python(); // installs cfn-lint too when it is missing
    let all_on = ["AllowedOrigins=https://dashboard.example.com", "AlertEmail=oncall@example.com", "IngestReservedConcurrency=50"];
    let cases = [("defaults", transformed().clone()), ("every option set", transform_file(&root().join("infra/template.yaml"), &all_on))];
    for (i, (what, cfn)) in cases.into_iter().enumerate() {
        let file = std::env::temp_dir().join(format!("analytics-transformed-{}-{i}.json", std::process::id()));
        std::fs::write(&file, serde_json::to_vec_pretty(&cfn).unwrap()).unwrap();
        let out = Command::new(&cfn_lint).arg(&file).output().expect("cfn-lint runs");
        let _ = std::fs::remove_file(&file);
        assert!(out.status.success(), "cfn-lint on the transformed template ({what}):\n{}", String::from_utf8_lossy(&out.stdout));
    }
}

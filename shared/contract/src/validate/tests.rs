use super::*;
use crate::event::*;
use serde_json::{Map, Value, json};

fn now() -> DateTime<Utc> {
    parse_timestamp("2026-11-21T10:00:00Z").unwrap()
}

fn ctx() -> Context {
    Context { received_at: now(), sent_at: None, retention: Retention::default() }
}

fn check(v: Value) -> Result<Event, Vec<Problem>> {
    validate_event(&v.to_string(), &ctx())
}

fn problems(v: Value) -> Vec<Problem> {
    check(v.clone()).expect_err(&format!("expected problems for {v}"))
}

/// The single problem's path and whether its message contains `needle`.
fn assert_problem(v: Value, path: &str, needle: &str) {
    let p = problems(v);
    assert!(p.iter().any(|p| p.path == path && p.message.contains(needle)), "wanted {path}: ..{needle}.. in {p:?}");
}

fn activity() -> Value {
    json!({"kind": "activity", "event_id": "e-1", "occurred_at": "2026-11-21T09:59:00Z", "user_id": "u-1", "action": "login"})
}

fn api() -> Value {
    json!({"kind": "api_request", "endpoint": "/api/clients", "method": "get", "status_code": 200, "response_time_ms": 12.5})
}

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn a_full_activity_event_with_a_report_is_accepted() {
    let e = check(json!({
        "event_id": "01JD", "kind": "activity", "occurred_at": "2026-11-21T09:00:00Z", "user_id": "u-42",
        "action": "generate_report", "client_id": "c-7", "report_id": "r-9", "description": "Generated cost report",
        "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0", "metadata": {"source": "web"},
        "report": {"status": "completed", "processing_time_ms": 8421,
                   "categories": {"cost": 12, "security": 3, "reliability": 1, "operational_excellence": 0, "performance": 4},
                   "impact": {"high": 2, "medium": 9, "low": 9}, "estimated_monthly_savings": 1830.5}
    }))
    .unwrap();
    assert_eq!(e.event_id, "01JD");
    assert_eq!(e.user_id.as_deref(), Some("u-42"));
    let EventBody::Activity(a) = &e.body else { panic!("not an activity") };
    assert!(!a.custom);
    let r = a.report.as_ref().unwrap();
    assert_eq!(r.status, ReportStatus::Completed);
    assert_eq!(r.categories["cost"], 12);
    assert_eq!(r.impact, Some(Impact { high: 2, medium: 9, low: 9 }));
    assert_eq!(r.estimated_monthly_savings, Some(1830.5));
}

#[test]
fn each_kind_in_its_minimal_form_is_accepted() {
    assert!(check(activity()).is_ok());
    let e = check(api()).unwrap();
    let EventBody::ApiRequest(a) = e.body else { panic!() };
    assert_eq!(a.method, "GET", "methods are normalised to upper case");
    assert_eq!(a.sample_rate, 1.0, "sample_rate defaults to 1");
    assert!(check(json!({"kind": "auth", "event_type": "login_failed", "success": false})).is_ok());
    assert!(check(json!({"kind": "external_call", "service": "gemini", "endpoint": "https://x/v1", "response_time_ms": 900, "cost_estimate": 0.02})).is_ok());
}

#[test]
fn event_id_is_generated_as_uuid_v7_when_absent_and_checked_when_given() {
    let mut v = activity();
    v.as_object_mut().unwrap().remove("event_id");
    let e = check(v).unwrap();
    let id = uuid::Uuid::parse_str(&e.event_id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_problem(with(activity(), json!({"event_id": "has space"})), "event_id", "1 to 100 characters");
    assert_problem(with(activity(), json!({"event_id": ""})), "event_id", "1 to 100");
    assert_problem(with(activity(), json!({"event_id": "x".repeat(101)})), "event_id", "1 to 100");
    assert!(check(with(activity(), json!({"event_id": "a.b_c:d-E9"}))).is_ok());
    assert!(check(with(activity(), json!({"event_id": "x".repeat(100)}))).is_ok());
}

#[test]
fn kind_is_required_and_must_be_known() {
    let mut v = activity();
    v.as_object_mut().unwrap().remove("kind");
    assert_problem(v, "kind", "is required");
    assert_problem(with(activity(), json!({"kind": "pageview"})), "kind", "unknown kind `pageview`");
}

#[test]
fn unknown_and_foreign_fields_are_refused() {
    assert_problem(with(activity(), json!({"occured_at": "typo"})), "occured_at", "unknown field");
    assert_problem(with(activity(), json!({"status_code": 200})), "status_code", "not a field of kind activity");
    assert_problem(with(api(), json!({"action": "login"})), "action", "not a field of kind api_request");
}

#[test]
fn type_errors_carry_their_path() {
    assert_problem(with(api(), json!({"status_code": "200"})), "status_code", "invalid type");
    assert_problem(
        with(activity(), json!({"action": "generate_report", "report": {"status": "completed", "impact": {"high": "many"}}})),
        "report.impact.high",
        "invalid type",
    );
    let p = problems(with(activity(), json!({"action": "generate_report", "report": "done"})));
    assert_eq!(p[0].path, "report");
    assert_eq!(p[0].message, "invalid type: string \"done\", expected a report object");
    let p = problems(json!(["not", "an", "object"]));
    assert_eq!(p[0].path, "");
    assert!(p[0].message.contains("JSON object"), "{p:?}");
}

#[test]
fn occurred_at_must_be_rfc3339_and_defaults_to_receive_time() {
    assert_problem(with(activity(), json!({"occurred_at": "yesterday"})), "occurred_at", "RFC 3339");
    assert_problem(with(activity(), json!({"occurred_at": "2026-11-21 10:00:00"})), "occurred_at", "RFC 3339");
    let mut v = activity();
    v.as_object_mut().unwrap().remove("occurred_at");
    let e = check(v).unwrap();
    assert_eq!(e.occurred_at, now());
    assert_eq!(e.client_occurred_at, None);
    let e = check(with(activity(), json!({"occurred_at": "2026-11-21T11:30:00+02:00"}))).unwrap();
    assert_eq!(e.occurred_at, parse_timestamp("2026-11-21T09:30:00Z").unwrap(), "offsets are converted to UTC");
}

#[test]
fn clock_skew_is_corrected_and_the_original_kept() {
    // The sender's clock is 5 minutes fast: it stamped 10:04:00 and sent at 10:05:00, we got it at 10:00:00.
    let ctx = Context { sent_at: parse_timestamp("2026-11-21T10:05:00Z"), ..ctx() };
    let e = validate_event(&with(activity(), json!({"occurred_at": "2026-11-21T10:04:00Z"})).to_string(), &ctx).unwrap();
    assert_eq!(e.occurred_at, parse_timestamp("2026-11-21T09:59:00Z").unwrap());
    assert_eq!(e.client_occurred_at, parse_timestamp("2026-11-21T10:04:00Z"));
    assert_eq!(e.identity_time(), parse_timestamp("2026-11-21T10:04:00Z").unwrap());
    assert_eq!(correct_clock_skew(now(), None, now() + Duration::hours(1)), now(), "no sent_at, no correction");
}

#[test]
fn future_and_expired_events_are_refused() {
    assert_problem(with(activity(), json!({"occurred_at": "2026-11-22T09:30:00Z"})), "occurred_at", "in the future");
    assert!(check(with(activity(), json!({"occurred_at": "2026-11-22T08:30:00Z"}))).is_ok(), "22.5 h ahead is fine");
    // A clock a day fast is corrected first, then accepted.
    let ctx = Context { sent_at: parse_timestamp("2026-11-22T12:00:00Z"), ..ctx() };
    assert!(validate_event(&with(activity(), json!({"occurred_at": "2026-11-22T11:59:00Z"})).to_string(), &ctx).is_ok());
    // Retention: 90 days for activity, 30 for api_request.
    assert_problem(with(activity(), json!({"occurred_at": "2026-08-01T00:00:00Z"})), "occurred_at", "90-day retention");
    assert!(check(with(activity(), json!({"occurred_at": "2026-09-01T00:00:00Z"}))).is_ok());
    assert_problem(with(api(), json!({"occurred_at": "2026-10-01T00:00:00Z"})), "occurred_at", "30-day retention");
}

#[test]
fn activity_needs_user_and_a_well_formed_action() {
    let mut v = activity();
    v.as_object_mut().unwrap().remove("user_id");
    assert_problem(v, "user_id", "required for kind activity");
    let mut v = activity();
    v.as_object_mut().unwrap().remove("action");
    assert_problem(v, "action", "required");
    for bad in ["Login", "1login", "log-in", "", &"a".repeat(65)] {
        assert!(problems(with(activity(), json!({"action": bad}))).iter().any(|p| p.path == "action"), "{bad:?}");
    }
    let e = check(with(activity(), json!({"action": "export_pdf"}))).unwrap();
    let EventBody::Activity(a) = e.body else { panic!() };
    assert!(a.custom, "unknown actions are stored as custom");
    assert_eq!(a.action, "export_pdf");
    assert_problem(with(activity(), json!({"user_id": "u".repeat(129)})), "user_id", "at most 128");
    assert_problem(with(activity(), json!({"user_id": "  "})), "user_id", "must not be empty");
    assert_problem(with(activity(), json!({"description": "bell\u{7}"})), "description", "control characters");
}

#[test]
fn report_rules() {
    let rep = |r: Value| with(activity(), json!({"action": "generate_report", "report": r}));
    assert_problem(with(activity(), json!({"report": {"status": "completed"}})), "report", "only allowed with action generate_report");
    assert_problem(rep(json!({"status": "done"})), "report.status", "completed or failed");
    assert_problem(rep(json!({})), "report.status", "required");
    assert_problem(rep(json!({"status": "failed", "processing_time_ms": -1})), "report.processing_time_ms", "from 0 to");
    assert_problem(rep(json!({"status": "failed", "categories": {"cost": -2}})), "report.categories.cost", "from 0 to");
    assert_problem(rep(json!({"status": "failed", "categories": {"Cost!": 2}})), "report.categories.Cost!", "category names");
    assert_problem(rep(json!({"status": "failed", "impact": {"low": -1}})), "report.impact.low", "from 0 to");
    assert_problem(rep(json!({"status": "failed", "impact": {"huge": 1}})), "report.impact.huge", "unknown field");
    assert_problem(rep(json!({"status": "failed", "estimated_monthly_savings": -5.0})), "report.estimated_monthly_savings", "from 0 to");
    assert_problem(rep(json!({"status": "failed", "processing_time_ms": 1.5})), "report.processing_time_ms", "invalid type");
}

#[test]
fn api_request_rules() {
    for field in ["endpoint", "method", "status_code", "response_time_ms"] {
        let mut v = api();
        v.as_object_mut().unwrap().remove(field);
        assert_problem(v, field, "required for kind api_request");
    }
    assert_problem(with(api(), json!({"endpoint": "api/x"})), "endpoint", "starting with /");
    assert_problem(with(api(), json!({"endpoint": format!("/{}", "a".repeat(2048))})), "endpoint", "longer than 2048");
    assert_problem(with(api(), json!({"method": "FETCH"})), "method", "not an HTTP method");
    assert_problem(with(api(), json!({"status_code": 99})), "status_code", "must be 100..=599");
    assert_problem(with(api(), json!({"status_code": 600})), "status_code", "must be 100..=599");
    assert!(check(with(api(), json!({"status_code": 599}))).is_ok());
    assert_problem(with(api(), json!({"response_time_ms": -1})), "response_time_ms", "from 0 to");
    assert_problem(with(api(), json!({"request_size": -1})), "request_size", "from 0 to");
    assert_problem(with(api(), json!({"query_params": {"page": 2}})), "query_params.page", "invalid type");
    assert_problem(with(api(), json!({"sample_rate": 0})), "sample_rate", "from 0.0001 to 1");
    assert_problem(with(api(), json!({"sample_rate": 1.5})), "sample_rate", "from 0.0001 to 1");
    let e = check(with(api(), json!({"sample_rate": 0.25}))).unwrap();
    let EventBody::ApiRequest(a) = e.body else { panic!() };
    assert_eq!(a.sample_rate, 0.25);
}

#[test]
fn auth_rules() {
    assert_problem(json!({"kind": "auth", "success": true}), "event_type", "required");
    assert_problem(json!({"kind": "auth", "event_type": "sudo", "success": true}), "event_type", "not one of");
    assert_problem(json!({"kind": "auth", "event_type": "login"}), "success", "required");
    assert_problem(json!({"kind": "auth", "event_type": "login", "success": "yes"}), "success", "invalid type");
    for t in AuthEventType::ALL {
        assert!(check(json!({"kind": "auth", "event_type": t.as_str(), "success": true})).is_ok());
    }
}

#[test]
fn external_call_rules() {
    let base = json!({"kind": "external_call", "service": "brightdata", "endpoint": "/scrape", "response_time_ms": 10});
    for field in ["service", "endpoint", "response_time_ms"] {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(field);
        assert_problem(v, field, "required for kind external_call");
    }
    assert_problem(with(base.clone(), json!({"cost_estimate": -0.01})), "cost_estimate", "from 0 to");
    assert_problem(with(base.clone(), json!({"status_code": 42})), "status_code", "100..=599");
    assert_problem(with(base.clone(), json!({"service": "bad service"})), "service", "1 to 64 characters");
    assert_problem(with(base.clone(), json!({"method": "YELL"})), "method", "HTTP method");
    assert_problem(with(base.clone(), json!({"model": ""})), "model", "must not be empty");
    assert_problem(with(base.clone(), json!({"model": "m".repeat(129)})), "model", "at most 128");
    assert_problem(with(base.clone(), json!({"input_tokens": -1})), "input_tokens", "from 0 to");
    assert_problem(with(base.clone(), json!({"output_tokens": 1_000_000_000_001_i64})), "output_tokens", "from 0 to");
    assert_problem(with(base.clone(), json!({"input_tokens": 1.5})), "input_tokens", "");
    let e = check(with(
        base,
        json!({"model": "gemini-1.5-pro", "input_tokens": 1200, "output_tokens": 0,
               "endpoint": "https://generativelanguage.googleapis.com/v1/models/gemini:generate?key=AIzaSECRET#x"}),
    ))
    .unwrap();
    let EventBody::ExternalCall(c) = e.body else { panic!() };
    assert_eq!((c.model.as_deref(), c.input_tokens, c.output_tokens), (Some("gemini-1.5-pro"), Some(1200), Some(0)));
    assert_eq!(c.endpoint, "https://generativelanguage.googleapis.com/v1/models/gemini:generate", "the query string is dropped");
}

#[test]
fn an_api_requests_query_string_moves_into_its_redacted_query_params() {
    let e =
        check(with(api(), json!({"endpoint": "/reset?token=abc&page=2&q=from-url&flag#frag", "query_params": {"q": "explicit"}}))).unwrap();
    let EventBody::ApiRequest(a) = e.body else { panic!() };
    assert_eq!(a.endpoint, "/reset");
    let q = a.query_params.unwrap();
    let want: std::collections::BTreeMap<String, String> =
        [("token", REDACTED), ("page", "2"), ("q", "explicit"), ("flag", "")].map(|(k, v)| (k.into(), v.into())).into();
    assert_eq!(q, want);
    // The limits hold for the pairs of the URL as for explicit ones; the
    // 2048-character limit is the path's.
    let many: String = (0..60).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&");
    assert_problem(with(api(), json!({"endpoint": format!("/x?{many}")})), "query_params", "at most");
    let long_key = "k".repeat(65);
    assert_problem(with(api(), json!({"endpoint": format!("/x?{long_key}=1")})), &format!("query_params.{long_key}"), "1 to 64");
    let long_query = format!("/x?q={}", "v".repeat(900));
    assert!(check(with(api(), json!({"endpoint": format!("{}{long_query}", "/a".repeat(600))}))).is_ok());
    assert_problem(with(api(), json!({"endpoint": "reset?x=1"})), "endpoint", "starting with /");
}

proptest::proptest! {
    /// An address kept as sent is what its canonical form writes: an IPv4
    /// address parses in that one form only.
    #[test]
    fn ip_addresses_are_stored_in_canonical_form(ip in "[0-9.]{1,16}|[ ]?[0-9]{1,4}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}[ ]?") {
        if let Ok(e) = check(with(activity(), json!({"ip_address": ip.clone()}))) {
            let addr: std::net::IpAddr = ip.trim().parse().unwrap();
            proptest::prop_assert_eq!(e.ip_address, Some(addr.to_string()));
        }
    }
}

#[test]
fn envelope_rules() {
    assert_problem(with(activity(), json!({"ip_address": "300.1.1.1"})), "ip_address", "not an IPv4 or IPv6");
    let e = check(with(activity(), json!({"ip_address": "2001:DB8::1"}))).unwrap();
    assert_eq!(e.ip_address.as_deref(), Some("2001:db8::1"), "stored in canonical form");
    let long = "é".repeat(600);
    let e = check(with(activity(), json!({"user_agent": long}))).unwrap();
    assert_eq!(e.user_agent.as_ref().unwrap().chars().count(), 512, "cut at 512 characters, on a char boundary");
    assert!(e.user_agent_truncated);
    let e = check(with(activity(), json!({"user_agent": "x".repeat(512)}))).unwrap();
    assert!(!e.user_agent_truncated);
}

#[test]
fn metadata_limits() {
    let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_problem(with(activity(), json!({"metadata": many})), "metadata", "51 keys");
    let fifty: Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
    assert!(check(with(activity(), json!({"metadata": fifty}))).is_ok());
    let long_key = "k".repeat(65);
    assert_problem(with(activity(), json!({"metadata": {long_key.clone(): 1}})), &format!("metadata.{long_key}"), "1 to 64 characters");
    assert_problem(with(activity(), json!({"metadata": {"note": "n".repeat(1001)}})), "metadata.note", "longer than 1000");
    assert!(check(with(activity(), json!({"metadata": {"a": {"b": {"c": 1}}}}))).is_ok(), "three levels are fine");
    assert_problem(with(activity(), json!({"metadata": {"a": {"b": {"c": {"d": 1}}}}})), "metadata.a.b.c", "deeper than 3");
    assert!(check(with(activity(), json!({"metadata": {"a": {"b": [1]}}}))).is_ok(), "an array is a level too: 3 here");
    assert_problem(with(activity(), json!({"metadata": {"a": {"b": [[1]]}}})), "metadata.a.b[0]", "deeper than 3");
    assert_problem(with(activity(), json!({"metadata": "flat"})), "metadata", "invalid type");
}

#[test]
fn oversized_events_are_refused_whole() {
    let big = with(activity(), json!({"metadata": {"a": "x".repeat(1000), "b": "x".repeat(1000)}, "description": "d".repeat(2000)}));
    let mut v = big.clone();
    for i in 0..16 {
        v["metadata"][format!("p{i}")] = json!("y".repeat(1000));
    }
    v["metadata"]["q"] = json!({"r": "z".repeat(1000)});
    let raw = v.to_string();
    assert!(raw.len() < MAX_EVENT_BYTES && check(v).is_ok(), "{} bytes fit", raw.len());
    let mut v = big;
    for i in 0..40 {
        v["metadata"][format!("p{i}")] = json!("y".repeat(900));
    }
    let p = problems(v);
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("at most 32768 bytes"), "{p:?}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let p = problems(
        json!({"kind": "api_request", "endpoint": "x", "method": "NOPE", "status_code": 7, "response_time_ms": -3, "ip_address": "nope"}),
    );
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    for want in ["endpoint", "method", "status_code", "response_time_ms", "ip_address"] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
}

#[test]
fn sensitive_keys_are_redacted_in_metadata_and_query_params() {
    for k in [
        "password",
        "PASSWD",
        "client_secret",
        "access_token",
        "api_key",
        "ApiKey",
        "key",
        "Authorization",
        "x-signature",
        "sessionId",
        "credentials",
    ] {
        assert!(is_sensitive_key(k), "{k}");
    }
    for k in ["page", "source", "user", "email", "k", "monkey", "PassWD"] {
        assert!(!is_sensitive_key(k), "{k}");
    }
    let e = check(with(
        activity(),
        json!({"metadata": {"source": "web", "password": "hunter2", "nested": {"Api_Key": "abc"}, "list": [{"token": "t"}], "auth": {"a": 1}}}),
    ))
    .unwrap();
    let m = e.metadata.unwrap();
    assert_eq!(m["source"], "web");
    assert_eq!(m["password"], REDACTED);
    assert_eq!(m["nested"]["Api_Key"], REDACTED);
    assert_eq!(m["list"][0]["token"], REDACTED);
    assert_eq!(m["auth"], REDACTED, "a whole object under a sensitive key goes");
    let e = check(with(api(), json!({"query_params": {"page": "2", "access_token": "xyz", "Signature": "s"}}))).unwrap();
    let EventBody::ApiRequest(a) = e.body else { panic!() };
    let q = a.query_params.unwrap();
    assert_eq!(q["page"], "2");
    assert_eq!(q["access_token"], REDACTED);
    assert_eq!(q["Signature"], REDACTED);
}

#[test]
fn stored_events_serialize_with_utc_z_times_and_the_kind_tag() {
    let e = check(activity()).unwrap();
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["kind"], "activity");
    assert_eq!(v["occurred_at"], "2026-11-21T09:59:00Z");
    assert_eq!(v["received_at"], "2026-11-21T10:00:00Z");
    assert!(v.get("client_occurred_at").is_none());
    let back: Event = serde_json::from_value(v).unwrap();
    assert_eq!(back, e);
}

/// The contract's ranges: each value outside rejects the event with its
/// path; the edges themselves are accepted.
#[test]
fn every_number_is_checked_against_its_range() {
    let ext = json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "response_time_ms": 1});
    let rep = |r: Value| with(activity(), json!({"action": "generate_report", "report": r}));
    for (event, path) in [
        (with(api(), json!({"response_time_ms": 1e200})), "response_time_ms"),
        (with(api(), json!({"response_time_ms": 86_400_000.5})), "response_time_ms"),
        (with(api(), json!({"sample_rate": 1e-200})), "sample_rate"),
        (with(api(), json!({"sample_rate": 0.00009})), "sample_rate"),
        (with(api(), json!({"request_size": 1_000_000_000_001_i64})), "request_size"),
        (with(api(), json!({"response_size": i64::MAX})), "response_size"),
        (with(ext.clone(), json!({"cost_estimate": 1.5e9})), "cost_estimate"),
        (with(ext.clone(), json!({"response_time_ms": 1e300})), "response_time_ms"),
        (rep(json!({"status": "completed", "processing_time_ms": 9_000_000_000_000_000_i64})), "report.processing_time_ms"),
        (rep(json!({"status": "completed", "categories": {"cost": 4_611_686_018_427_387_904_i64}})), "report.categories.cost"),
        (rep(json!({"status": "completed", "impact": {"high": 1_000_000_000_001_i64}})), "report.impact.high"),
        (rep(json!({"status": "completed", "estimated_monthly_savings": 1e10})), "report.estimated_monthly_savings"),
        (with(activity(), json!({"metadata": {"big": 1e126}})), "metadata.big"),
        (with(activity(), json!({"metadata": {"tiny": -1e-130}})), "metadata.tiny"),
        (with(activity(), json!({"metadata": {"deep": {"x": [1e121]}}})), "metadata.deep.x[0]"),
        (with(activity(), json!({"metadata": {"": 1}})), "metadata."),
        (with(activity(), json!({"metadata": {"n": {"": "x"}}})), "metadata.n."),
        (with(api(), json!({"query_params": {"": "x"}})), "query_params."),
        (with(api(), json!({"query_params": {"k".repeat(65): "x"}})), &format!("query_params.{}", "k".repeat(65))),
    ] {
        let p = problems(event.clone());
        assert!(p.iter().any(|p| p.path == path), "{event}: wanted a problem at {path}, got {p:?}");
    }
    // The edges are in range.
    for ok in [
        with(api(), json!({"response_time_ms": 86_400_000, "sample_rate": 0.0001, "request_size": 1_000_000_000_000_i64})),
        with(ext.clone(), json!({"cost_estimate": 1e9})),
        with(activity(), json!({"metadata": {"a": 1e120, "b": -1e-120, "c": 0.0, "d": u64::MAX, "e": i64::MIN}})),
        rep(json!({"status": "completed", "processing_time_ms": 1_000_000_000_000_i64, "categories": {"cost": 1_000_000_000_000_i64},
            "estimated_monthly_savings": 1e9})),
    ] {
        assert!(check(ok.clone()).is_ok(), "{ok}: {:?}", check(ok.clone()).err());
    }
    let p = problems(with(api(), json!({"response_time_ms": 1e200})));
    assert!(p[0].message.ends_with("not 1e200"), "a short number in the message: {}", p[0].message);
    // A decimal finer than a nano-unit is stored as 0 (DynamoDB holds 38 digits).
    let e = check(with(api(), json!({"response_time_ms": 1e-300}))).unwrap();
    let EventBody::ApiRequest(a) = e.body else { panic!() };
    assert_eq!(a.response_time_ms, 0.0);
}

#[test]
fn a_corrected_time_before_1970_is_refused() {
    let ctx = Context { received_at: now(), sent_at: None, retention: Retention { events_days: 36_500, ..Retention::default() } };
    let e = validate_event(&with(activity(), json!({"occurred_at": "1969-12-31T23:59:59Z"})).to_string(), &ctx).unwrap_err();
    assert!(e.iter().any(|p| p.path == "occurred_at" && p.message.contains("1970")), "{e:?}");
    assert!(validate_event(&with(activity(), json!({"occurred_at": "1970-01-01T00:00:00Z"})).to_string(), &ctx).is_ok());
}

#[test]
fn each_kind_declares_its_fields_once_and_the_model_stores_no_other() {
    use super::wire::fields_of;
    assert!(fields_of(EventKind::ApiRequest).contains(&"sample_rate"));
    assert!(!fields_of(EventKind::Activity).contains(&"sample_rate"));
    // What a stored event of each kind holds, besides what the envelope and
    // validation add, is exactly what its kind accepts.
    let added = ["event_id", "kind", "occurred_at", "received_at", "user_id", "custom", "client_occurred_at"];
    let full = [
        (
            EventKind::Activity,
            with(
                activity(),
                json!({"action": "generate_report", "description": "d", "client_id": "c", "report_id": "r",
            "report": {"status": "completed"}}),
            ),
        ),
        (
            EventKind::ApiRequest,
            with(
                api(),
                json!({"request_size": 1, "response_size": 2, "query_params": {"q": "x"},
            "error_message": "e", "sample_rate": 0.5}),
            ),
        ),
        (EventKind::Auth, json!({"kind": "auth", "event_type": "login", "success": false, "error_message": "e"})),
        (
            EventKind::ExternalCall,
            json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "method": "POST",
            "status_code": 200, "response_time_ms": 3, "cost_estimate": 0.1, "request_size": 1, "response_size": 2, "error_message": "e",
            "model": "gemini-1.5-pro", "input_tokens": 10, "output_tokens": 20}),
        ),
    ];
    for (kind, v) in full {
        let stored = serde_json::to_value(check(v).unwrap()).unwrap();
        let mut got: Vec<&str> = stored.as_object().unwrap().keys().map(String::as_str).filter(|k| !added.contains(k)).collect();
        got.sort();
        let mut want = fields_of(kind).to_vec();
        want.sort();
        assert_eq!(got, want, "{kind:?}: the fields stored and the fields accepted differ");
    }
}

#[test]
fn a_field_sent_twice_and_a_field_of_no_kind_are_refused_by_name() {
    let dup = r#"{"kind": "activity", "user_id": "u", "action": "login", "action": "logout"}"#;
    let p = validate_event(dup, &ctx()).unwrap_err();
    assert!(p[0].message.contains("duplicate field `action`"), "{p:?}");
    let p = problems(with(activity(), json!({"colour": "red", "status_code": 200})));
    assert_eq!(p.len(), 2, "both named: {p:?}");
    assert!(p.iter().any(|p| p.path == "colour" && p.message.contains("unknown field") && p.message.contains("report_id")), "{p:?}");
    let p = problems(with(activity(), json!({"occurred_at": "soon", "status_code": 200})));
    assert_eq!(p.len(), 2, "a foreign field and an envelope problem are reported together: {p:?}");
}

#[test]
fn the_envelope_names_are_the_fields_read_into_the_envelope() {
    for name in super::wire::ENVELOPE {
        // Every envelope field is a string or an object, never a number.
        assert_problem(with(activity(), json!({name: 5})), name, "invalid type");
    }
    for kind in EventKind::ALL {
        assert!(wire::fields_of(kind).iter().all(|f| !wire::ENVELOPE.contains(f)), "{kind:?} redeclares an envelope field");
    }
}

#[test]
fn a_field_sent_twice_is_refused_whatever_its_values_and_escaped_names_are_names() {
    for dup in [
        r#"{"kind": "activity", "user_id": null, "user_id": "u", "action": "login"}"#,
        r#"{"kind": "activity", "user_id": "u", "user_id": null, "action": "login"}"#,
        r#"{"kind": "activity", "user_id": "u", "action": "login", "\u0061ction": "logout"}"#,
    ] {
        let p = validate_event(dup, &ctx()).unwrap_err();
        assert!(p[0].message.contains("duplicate field"), "{dup}: {p:?}");
    }
    let escaped = r#"{"\u006bind": "activity", "user_id": "u", "\u0061ction": "login"}"#;
    let EventBody::Activity(a) = validate_event(escaped, &ctx()).unwrap().body else { panic!("not an activity") };
    assert_eq!(a.action, "login");
}

/// Fields an event may send, each with a right value and a wrong one:
/// the envelope's, every kind's, a field of no kind, and null.
fn field_pool() -> Vec<(&'static str, Value)> {
    vec![
        ("event_id", json!("e-1")),
        ("event_id", json!("bad id!")),
        ("occurred_at", json!("2026-11-21T09:59:00Z")),
        ("occurred_at", json!("yesterday")),
        ("user_id", json!("u-1")),
        ("user_id", json!(5)),
        ("ip_address", json!("10.0.0.1")),
        ("user_agent", json!("curl/8")),
        ("metadata", json!({"plan": "pro", "password": "hunter2"})),
        ("metadata", json!("flat")),
        ("action", json!("login")),
        ("action", json!("generate_report")),
        ("report", json!({"status": "completed", "categories": {"tax": 2}, "impact": {"high": 1}})),
        ("report", json!({"impact": {"huge": 1}})),
        ("client_id", json!("c-1")),
        ("endpoint", json!("/api/clients?token=t")),
        ("method", json!("get")),
        ("status_code", json!(200)),
        ("status_code", json!("200")),
        ("response_time_ms", json!(12.5)),
        ("query_params", json!({"api_key": "k"})),
        ("sample_rate", json!(0.5)),
        ("event_type", json!("login_failed")),
        ("success", json!(false)),
        ("service", json!("openai")),
        ("cost_estimate", json!(0.002)),
        ("input_tokens", json!(10)),
        ("error_message", json!("boom")),
        ("colour", json!("blue")),
        ("description", Value::Null),
    ]
}

/// The fields of a right event of each kind.
fn right_fields(kind: &str) -> Vec<(&'static str, Value)> {
    let mut fields = vec![("event_id", json!("e-9")), ("user_id", json!("u-2")), ("metadata", json!({"token": "t", "n": 1}))];
    fields.extend(match kind {
        "activity" => vec![("action", json!("generate_report")), ("report", json!({"status": "completed"})), ("client_id", json!("c-2"))],
        "api_request" => vec![("endpoint", json!("/api/x?secret=s")), ("method", json!("post")), ("status_code", json!(503))],
        "auth" => vec![("event_type", json!("login")), ("success", json!(true))],
        _ => vec![("service", json!("stripe")), ("endpoint", json!("/v1/charges")), ("cost_estimate", json!(0.01))],
    });
    fields.push(("occurred_at", json!("2026-11-21T09:00:00Z")));
    fields.push(("user_agent", json!("app/1")));
    fields
}

/// The JSON text of an object with these fields, in this order (repeats kept).
fn object_text(fields: &[(&str, &Value)]) -> String {
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", Value::String((*k).to_owned()))).collect();
    format!("{{{}}}", parts.join(","))
}

proptest::proptest! {
    /// The order an event's fields come in never changes what is stored or
    /// whether it is refused: with `kind` first its fields are read straight
    /// into the kind's struct, with `kind` last they are kept raw and read
    /// after; both answer alike for any mix of right, wrong, foreign and
    /// repeated fields.
    #[test]
    fn field_order_never_changes_the_answer(
        kind in proptest::sample::select(vec!["activity", "api_request", "auth", "external_call", "nope"]),
        base in proptest::sample::subsequence((0..9usize).collect::<Vec<_>>(), 0..=9),
        picks in proptest::collection::vec(0..30usize, 0..3),
        shuffle in proptest::collection::vec(proptest::num::u32::ANY, 11),
    ) {
        let pool = field_pool();
        let kind_value = json!(kind);
        // Mostly a right event of the kind (some of its fields left out),
        // with a few fields of any sort added.
        let right = right_fields(kind);
        let mut fields: Vec<(&str, &Value)> = base.iter().filter_map(|i| right.get(*i)).map(|(k, v)| (*k, v)).collect();
        fields.extend(picks.iter().map(|i| (pool[*i].0, &pool[*i].1)));
        let picks: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        let mut order: Vec<usize> = (0..fields.len()).collect();
        order.sort_by_key(|i| shuffle[*i]);
        fields = order.iter().map(|i| fields[*i]).collect();
        let first: Vec<(&str, &Value)> = std::iter::once(("kind", &kind_value)).chain(fields.iter().copied()).collect();
        let last: Vec<(&str, &Value)> = fields.iter().copied().chain(std::iter::once(("kind", &kind_value))).collect();
        let with_id = |mut e: Event| {
            if !picks.contains(&"event_id") {
                e.event_id.clear();
            }
            e
        };
        let a = validate_event(&object_text(&first), &ctx()).map(with_id);
        let b = validate_event(&object_text(&last), &ctx()).map(with_id);
        match (&a, &b) {
            (Ok(x), Ok(y)) => proptest::prop_assert_eq!(x, y),
            (Err(x), Err(y)) => {
                let paths = |p: &[Problem]| p.iter().map(|p| p.path.clone()).collect::<std::collections::BTreeSet<_>>();
                proptest::prop_assert!(!x.is_empty() && !y.is_empty());
                // Where the first type error stops the read, either order
                // may meet a different one first; otherwise the same paths.
                if x.len() > 1 || y.len() > 1 { proptest::prop_assert_eq!(paths(x), paths(y)); }
            }
            _ => proptest::prop_assert!(false, "one order stored, the other refused: {a:?} / {b:?}"),
        }
    }
}

#[path = "tests/escapes.rs"]
mod escapes;

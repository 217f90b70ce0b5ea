//! Strategies for the property tests: JSON that looks like what callers
//! send and what a hostile or buggy one might (extreme numbers, far and
//! malformed dates, odd keys, wrong types), query strings for every route,
//! and DynamoDB's own rules for what an item may hold.

use aws_sdk_dynamodb::types::AttributeValue;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// How many cases a property runs: `default`, times
/// `ANALYTICS_PROPTEST_SCALE` when set (`make proptest` runs long).
pub fn cases(default: u32) -> u32 {
    let scale = std::env::var("ANALYTICS_PROPTEST_SCALE").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(1);
    default.saturating_mul(scale.max(1))
}

/// Numbers at and past every edge the contract names.
pub fn nasty_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1e200,
            -1e200,
            1e-200,
            1e-300,
            1e126,
            1e-130,
            1e120,
            1e-120,
            86_400_000.0,
            86_400_000.5,
            1e9,
            1e9 + 1.0,
            1e12,
            1e12 + 1.0,
            0.0001,
            0.00009,
            1.0,
            1.5,
            599.0,
            600.0,
            99.0,
            100.0,
            9.2e18,
            1.8e19,
        ])
        .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            i64::MAX,
            i64::MIN,
            1_000_000_000_000,
            1_000_000_000_001,
            -1,
            0,
            100,
            599,
            600,
            4_611_686_018_427_387_904
        ])
        .prop_map(Value::from),
    ]
}

/// Timestamps and dates near and past every bound, and junk.
pub fn nasty_time() -> impl Strategy<Value = String> {
    prop_oneof![
        (-200_000i64..200_000).prop_map(|m| (chrono::Utc::now() + chrono::Duration::minutes(m)).to_rfc3339()),
        prop::sample::select(vec![
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "+262142-12-31T00:00:00Z",
            "-262143-01-05T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2026-11-21T10:00:00+23:59",
            "2026-11-21",
            "2026-02-30T00:00:00Z",
            "yesterday",
            "",
            "10000-01-01T00:00:00Z",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Short strings, some of them keys and values that mean something.
pub fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[a-z_]{1,10}",
        prop::sample::select(vec![
            "",
            " ",
            "#",
            "T#other#E",
            "%",
            "&status_class=5xx",
            "\u{0}",
            "\u{1f}other",
            "other",
            "/x?token=abc&page=2",
            "generate_report",
            "login_failed",
            "GET",
            "gemini",
            "203.0.113.7",
            "::1",
            "[REDACTED]",
        ])
        .prop_map(str::to_owned),
        "x{60,70}",
        "u{500,1100}",
    ]
}

/// Any JSON, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        nasty_number(),
        nasty_string().prop_map(Value::from),
        nasty_time().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(nasty_string(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every field name any kind knows, and a few it does not.
const FIELDS: [&str; 30] = [
    "event_id",
    "kind",
    "occurred_at",
    "user_id",
    "ip_address",
    "user_agent",
    "metadata",
    "action",
    "description",
    "client_id",
    "report_id",
    "report",
    "endpoint",
    "method",
    "status_code",
    "response_time_ms",
    "request_size",
    "response_size",
    "query_params",
    "error_message",
    "sample_rate",
    "event_type",
    "success",
    "service",
    "cost_estimate",
    "model",
    "input_tokens",
    "output_tokens",
    "unknown_field",
    "",
];

/// A valid event of each kind, to be mutated.
fn base_event(kind: usize, id: u32) -> Value {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    match kind % 4 {
        0 => json!({"event_id": format!("p-{id}"), "kind": "activity", "occurred_at": at, "user_id": "u-1", "action": "generate_report",
            "client_id": "c-1", "metadata": {"source": "web", "n": 1.5},
            "report": {"status": "completed", "processing_time_ms": 10, "categories": {"cost": 1}, "impact": {"high": 1, "medium": 0, "low": 2},
                       "estimated_monthly_savings": 12.5}}),
        1 => {
            json!({"event_id": format!("p-{id}"), "kind": "api_request", "occurred_at": at, "endpoint": "/a", "method": "GET", "status_code": 200,
            "response_time_ms": 12.5, "query_params": {"page": "2"}, "sample_rate": 0.5})
        }
        2 => {
            json!({"event_id": format!("p-{id}"), "kind": "auth", "occurred_at": at, "event_type": "login", "success": false, "user_id": "u-2",
            "ip_address": "198.51.100.9"})
        }
        _ => json!({"event_id": format!("p-{id}"), "kind": "external_call", "occurred_at": at, "service": "gemini", "endpoint": "/v1",
            "response_time_ms": 300, "cost_estimate": 0.01}),
    }
}

/// An endpoint or URL with a query string and fragment of odd pairs:
/// empty, over-long and repeated names, broken percent escapes, `+`,
/// secrets, more pairs than `query_params` may hold, credentials.
fn nasty_endpoint() -> impl Strategy<Value = String> {
    let name = prop_oneof![Just(String::new()), "[a-zA-Z_%+.\\[\\]]{1,8}", "k{60,70}", Just("token".to_owned()), Just("%ZZ".to_owned())];
    let pair = (name, prop::option::of(nasty_string())).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={}", v.replace(['&', '#'], "")),
        None => k,
    });
    (
        prop::sample::select(vec!["/p", "", "p", "https://u:p@x.example/v1", "/a/b?", "//x"]),
        prop::collection::vec(pair, 0..60),
        prop::option::of("[#?=&a-z]{0,6}"),
    )
        .prop_map(|(path, pairs, fragment)| {
            let mut e = format!("{path}?{}", pairs.join("&"));
            if let Some(f) = fragment {
                e.push('#');
                e.push_str(&f);
            }
            e
        })
}

/// A value a field may be given: of any type, or a nasty one of the
/// types the fields take.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => nasty_endpoint().prop_map(Value::from),
        3 => nasty_number(),
        2 => nasty_string().prop_map(Value::from),
        2 => nasty_time().prop_map(Value::from),
        2 => any_json(),
        1 => prop::collection::btree_map(nasty_string(), nasty_number(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => prop::collection::btree_map(nasty_string(), nasty_string().prop_map(Value::from), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

/// An event: a valid one with up to four fields changed, added or
/// removed, or any JSON at all.
pub fn event() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (0usize..4, 0u32..40, prop::collection::vec((prop::sample::select(FIELDS.to_vec()), prop::option::of(field_value())), 0..5))
            .prop_map(|(kind, id, changes)| {
                let mut e = base_event(kind, id);
                let m = e.as_object_mut().expect("an object");
                for (field, v) in changes {
                    match v {
                        Some(v) => m.insert(field.to_owned(), v),
                        None => m.remove(field),
                    };
                }
                e
            }),
        1 => any_json(),
    ]
}

/// An event as JSON text with what a `Value` cannot hold: a field sent a
/// second time (any value), and names written with escapes.
pub fn event_text() -> impl Strategy<Value = String> {
    (event(), prop::sample::select(FIELDS.to_vec()), field_value(), any::<bool>()).prop_map(|(e, again, v, escape)| {
        let mut text = e.to_string();
        if e.is_object() {
            text.pop();
            let sep = if e.as_object().is_some_and(|m| m.is_empty()) { "" } else { "," };
            text.push_str(&format!("{sep}{}:{v}}}", Value::from(again)));
        }
        if escape {
            // `\u006b` is `k`, `\u0061` is `a`: the same names, escaped.
            text = text.replacen("\"kind\"", "\"\\u006bind\"", 1).replacen("\"action\"", "\"\\u0061ction\"", 1);
        }
        text
    })
}

/// A batch body: events, maybe a `sent_at`, sometimes not a batch at all.
pub fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(event_text(), 0..8).prop_map(|events| format!("{{\"events\": [{}]}}", events.join(","))),
        10 => (prop::option::of(nasty_time()), prop::collection::vec(event(), 0..12)).prop_map(|(sent, events)| {
            let mut b = json!({ "events": events });
            if let Some(s) = sent {
                b["sent_at"] = json!(s);
            }
            b.to_string()
        }),
        1 => any_json().prop_map(|v| v.to_string()),
        1 => ".{0,40}",
    ]
}

/// Query parameters for a route: its own names and others, with values
/// that are valid, extreme or junk.
pub fn query(accepted: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    let mut names: Vec<&'static str> = accepted.to_vec();
    names.extend(["limt", "tz", "period", "cursor", ""]);
    let value = prop_oneof![
        nasty_time(),
        nasty_string(),
        prop::sample::select(vec![
            "7d",
            "30d",
            "90d",
            "365d",
            "0d",
            "hour",
            "day",
            "week",
            "month",
            "year",
            "activities",
            "errors",
            "active_users",
            "user",
            "day",
            "activity_type",
            "5xx",
            "9xx",
            "1",
            "0",
            "500",
            "501",
            "-1",
            "99999999999999999999",
            "Asia/Kolkata",
            "Mars/Olympus",
            "UTC",
            "America/St_Johns",
            "true",
            "2026-W47",
            "eyJ0IjoiYSJ9.c2ln",
            "9999-12-31",
            "1970-01-01",
            "model",
            "service",
            "endpoint",
            "activity",
            "api_request",
            "auth",
            "external_call",
            "daily",
            "weekly",
            "monthly",
            "yearly",
            "1e308",
            "1e-320",
            "NaN",
            "-0",
            "599",
            "100",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec((prop::sample::select(names).prop_map(str::to_owned), value), 0..5)
}

/// Why DynamoDB would refuse an attribute (its documented limits), if it
/// would: numbers of at most 38 significant digits within 1e-130 and
/// 9.99e125, map keys not empty, nesting at most 32 levels.
pub fn unstorable(v: &AttributeValue, depth: usize) -> Option<String> {
    if depth > 32 {
        return Some("nested more than 32 levels".into());
    }
    match v {
        AttributeValue::N(n) => {
            let x: f64 = n.parse().ok()?;
            let digits = n.trim_start_matches('-').split(['e', 'E']).next().unwrap_or("").chars().filter(char::is_ascii_digit).count();
            let sig = n
                .trim_start_matches('-')
                .split(['e', 'E'])
                .next()
                .unwrap_or("")
                .trim_start_matches(['0', '.'])
                .chars()
                .filter(char::is_ascii_digit)
                .count();
            if !x.is_finite() || (x != 0.0 && !(1e-130..1e126).contains(&x.abs())) || sig > 38 || digits > 200 {
                return Some(format!("number {n}"));
            }
            None
        }
        AttributeValue::M(m) => {
            m.iter().find_map(|(k, v)| if k.is_empty() { Some("an empty map key".into()) } else { unstorable(v, depth + 1) })
        }
        AttributeValue::L(l) => l.iter().find_map(|v| unstorable(v, depth + 1)),
        _ => None,
    }
}

/// A number as a query parameter carries it: [`nasty_number`]'s extremes
/// as text, and texts that only look like numbers.
pub fn nasty_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        nasty_number().prop_map(|v| match v {
            Value::String(s) => s,
            v => v.to_string(),
        }),
        (0u16..1000).prop_map(|x| x.to_string()),
        prop::sample::select(vec!["NaN", "inf", "-inf", "1e-320", "-0", "0x10", "", " 5", "5 ", "1_000", "2e2"]).prop_map(str::to_owned),
    ]
}

/// A `GET /events` query whose `kind` (when set) names the kind its
/// filters apply to, so every filter reaches the explorer, with extreme
/// and odd values.
pub fn events_query() -> impl Strategy<Value = Vec<(String, String)>> {
    let kinds: [(&str, &[&str]); 5] = [
        ("", &["ip_address"]),
        ("activity", &["action", "ip_address"]),
        ("api_request", &["endpoint", "method", "status_code", "status_class", "min_response_time_ms", "ip_address"]),
        ("auth", &["event_type", "success", "ip_address"]),
        ("external_call", &["service", "model", "endpoint", "method", "status_code", "status_class", "min_response_time_ms"]),
    ];
    (0..kinds.len()).prop_flat_map(move |k| {
        let (kind, filters) = kinds[k];
        let numeric = |n: &str| matches!(n, "status_code" | "min_response_time_ms" | "limit");
        let names: Vec<&'static str> = filters.iter().copied().chain(["user_id", "date_from", "date_to", "limit"]).collect();
        let pair = prop::sample::select(names).prop_flat_map(move |name| {
            let value = if numeric(name) { nasty_number_text().boxed() } else { prop_oneof![nasty_string(), nasty_time()].boxed() };
            (Just(name.to_owned()), value)
        });
        prop::collection::vec(pair, 0..5).prop_map(move |pairs| {
            // One value per name: a repeated name is a 400 before any filter.
            let mut q: Vec<(String, String)> = Vec::new();
            for (k, v) in pairs {
                if !q.iter().any(|(n, _)| *n == k) {
                    q.push((k, v));
                }
            }
            if !kind.is_empty() {
                q.push(("kind".into(), kind.into()));
            }
            q
        })
    })
}

/// A key as code spells one, with a word of the redaction rule in it:
/// snake, kebab, dotted, spaced or camel case, any case.
pub fn sensitive_key() -> impl Strategy<Value = String> {
    use analytics_shared::validate::redact::{SENSITIVE_WORDS, is_sensitive_key};
    let plain = "[a-z]{1,6}".prop_filter("a plain word", |w| !is_sensitive_key(w));
    (prop::collection::vec(plain, 0..3), prop::sample::select(SENSITIVE_WORDS.to_vec()), 0..5usize, 0..3usize, any::<bool>()).prop_map(
        |(mut words, word, at, style, upper)| {
            let at = at.min(words.len());
            words.insert(at, if upper && style < 2 { word.to_uppercase() } else { word.to_owned() });
            match style {
                0 => words.join("_"),
                1 => words.join("-"),
                _ => words.iter().enumerate().map(|(i, w)| if i == 0 { w.clone() } else { w[..1].to_uppercase() + &w[1..] }).collect(),
            }
        },
    )
}

/// An event carrying `secret` where the contract says it must not
/// survive: under a sensitive key at some depth of metadata, in
/// query_params, in the endpoint's query string (api_request and
/// external_call), or as a Bearer credential or a JWT under a plain key.
/// Returns the event and what must never be found: the secret, and the
/// JWT's payload part when the secret travels inside one.
pub fn secret_event(id: u32, at: &str) -> impl Strategy<Value = (Value, Vec<String>)> {
    let at = at.to_owned();
    // At most one wrap: metadata nests at most three levels.
    ("SECRET[A-Z0-9]{10}", sensitive_key(), 0..7usize, 0..2usize).prop_map(move |(secret, key, place, depth)| {
        let jwt_payload = base64_url(&format!("{{\"sub\":\"{secret}\"}}"));
        let shaped = if depth % 2 == 0 { format!("Bearer {secret}") } else { format!("eyJhbGciOiJIUzI1NiJ9.{jwt_payload}.c2ln") };
        let mut meta = json!({ key.clone(): secret.clone() });
        if depth == 1 {
            meta = json!({"level": [meta]});
        }
        let api = |extra: Value| {
            let mut e = json!({"event_id": format!("s{id}"), "kind": "api_request", "occurred_at": at, "endpoint": "/p", "method": "GET",
                "status_code": 200, "response_time_ms": 5});
            e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            e
        };
        let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let event = match place {
            0 => json!({"event_id": format!("s{id}"), "kind": "activity", "occurred_at": at, "user_id": "u", "action": "login", "metadata": meta}),
            1 => api(json!({"query_params": { key.clone(): secret.clone() }})),
            2 => api(json!({"endpoint": format!("/p?{encoded}={secret}&page=1")})),
            3 => json!({"event_id": format!("s{id}"), "kind": "external_call", "occurred_at": at, "service": "gemini",
                "endpoint": format!("https://x.example/v1?{encoded}={secret}"), "response_time_ms": 5, "user_id": "u"}),
            4 => api(json!({"query_params": {"next": shaped}})),
            5 => api(json!({"metadata": {"list": ["x", {"note": shaped}]}})),
            _ => api(json!({"metadata": meta})),
        };
        let mut needles = vec![secret];
        if depth % 2 == 1 && matches!(place, 4 | 5) {
            needles.push(jwt_payload);
        }
        (event, needles)
    })
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

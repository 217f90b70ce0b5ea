//! The rules for what callers send: limits, validation, sanitizing and
//! clock-skew correction. Pure functions, so every rule is unit-tested here
//! and used unchanged by the ingest function, the seeder and the client.
//!
//! An event is first read into a loose wire form (a type error stops there,
//! reported with its JSON path), then every rule is checked and every
//! problem is reported, each with its path inside the event.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::Retention;
use crate::model::event::KNOWN_ACTIONS;
use crate::model::*;
use crate::time::parse_timestamp;

/// Every limit of the contract, in one place.
pub mod limits {
    /// Largest request body.
    pub const MAX_BODY_BYTES: usize = 1024 * 1024;
    /// Most events in one batch.
    pub const MAX_EVENTS: usize = 500;
    /// Largest single event, serialized.
    pub const MAX_EVENT_BYTES: usize = 32 * 1024;
    pub const MAX_EVENT_ID_CHARS: usize = 100;
    /// Longer user agents are cut to this and flagged.
    pub const MAX_USER_AGENT_CHARS: usize = 512;
    pub const MAX_METADATA_KEYS: usize = 50;
    pub const MAX_METADATA_KEY_CHARS: usize = 64;
    pub const MAX_METADATA_STRING_CHARS: usize = 1000;
    pub const MAX_METADATA_DEPTH: usize = 3;
    pub const MAX_ENDPOINT_CHARS: usize = 2048;
    /// user_id, client_id, report_id, service.
    pub const MAX_ID_CHARS: usize = 128;
    /// description, error_message.
    pub const MAX_TEXT_CHARS: usize = 2000;
    pub const MAX_QUERY_PARAMS: usize = 50;
    /// How far in the future (after skew correction) an event may be.
    pub const MAX_FUTURE_HOURS: i64 = 23;
    /// Counts and sizes: report categories and impact, request and
    /// response sizes, token counts, processing time.
    pub const MAX_COUNT: u64 = 1_000_000_000_000;
    /// `response_time_ms`: a day.
    pub const MAX_RESPONSE_TIME_MS: f64 = 86_400_000.0;
    /// `cost_estimate` and `estimated_monthly_savings` (USD).
    pub const MAX_AMOUNT: f64 = 1e9;
    pub const MIN_SAMPLE_RATE: f64 = 0.0001;
    /// Numbers inside metadata: 0, or a magnitude within these (what a
    /// DynamoDB number holds, with room to spare).
    pub const MIN_METADATA_MAGNITUDE: f64 = 1e-120;
    pub const MAX_METADATA_MAGNITUDE: f64 = 1e120;
    /// Typed decimal fields below this are stored as 0: a DynamoDB number
    /// holds at most 38 digits, and no duration or amount is finer.
    pub const FINEST_DECIMAL: f64 = 1e-9;
}
use limits::*;

/// One thing wrong with an event; `path` is relative to the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// What validation needs to know besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub received_at: DateTime<Utc>,
    /// The batch's `sent_at`, for clock-skew correction.
    pub sent_at: Option<DateTime<Utc>>,
    pub retention: Retention,
}

/// Retention in days of a kind of event.
pub fn retention_days(kind: EventKind, r: &Retention) -> u32 {
    match kind {
        EventKind::ApiRequest => r.api_log_days,
        EventKind::Activity | EventKind::Auth | EventKind::ExternalCall => r.events_days,
    }
}

/// The stored time: `received_at - (sent_at - occurred_at)`.
pub fn correct_clock_skew(occurred_at: DateTime<Utc>, sent_at: Option<DateTime<Utc>>, received_at: DateTime<Utc>) -> DateTime<Utc> {
    match sent_at {
        Some(sent) => received_at - (sent - occurred_at),
        None => occurred_at,
    }
}

/// Keys whose values are secrets, matched anywhere in the key, any case.
const SENSITIVE_WORDS: [&str; 11] =
    ["password", "passwd", "secret", "token", "api_key", "apikey", "key", "auth", "signature", "session", "credential"];

/// The value that replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// True when the key names something that must not be stored.
pub fn is_sensitive_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SENSITIVE_WORDS.iter().any(|w| lower.contains(w))
}

/// Replaces the values of sensitive keys, at any depth.
pub fn sanitize_json_map(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if is_sensitive_key(k) {
            *v = Value::String(REDACTED.into());
        } else {
            sanitize_json_value(v);
        }
    }
}

fn sanitize_json_value(v: &mut Value) {
    match v {
        Value::Object(m) => sanitize_json_map(m),
        Value::Array(items) => items.iter_mut().for_each(sanitize_json_value),
        _ => {}
    }
}

/// Replaces the values of sensitive query parameters.
pub fn sanitize_query_params(params: &mut BTreeMap<String, String>) {
    for (k, v) in params.iter_mut() {
        if is_sensitive_key(k) {
            *v = REDACTED.into();
        }
    }
}

/// `[A-Za-z0-9._:-]{1,100}`.
pub fn valid_event_id(id: &str) -> bool {
    (1..=MAX_EVENT_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `^[a-z][a-z0-9_]{0,63}$`: actions and report categories.
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len()) && b[0].is_ascii_lowercase() && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

const HTTP_METHODS: [&str; 9] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"];

/// An HTTP method, any case, returned upper-case.
fn http_method(s: &str) -> Option<&'static str> {
    HTTP_METHODS.into_iter().find(|m| m.eq_ignore_ascii_case(s))
}

/// The event as sent: loose types, every kind's fields, nothing unknown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    event_id: Option<String>,
    kind: Option<String>,
    occurred_at: Option<String>,
    user_id: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    metadata: Option<Map<String, Value>>,
    // activity
    action: Option<String>,
    description: Option<String>,
    client_id: Option<String>,
    report_id: Option<String>,
    report: Option<WireReport>,
    // api_request and external_call
    endpoint: Option<String>,
    method: Option<String>,
    status_code: Option<i64>,
    response_time_ms: Option<f64>,
    request_size: Option<i64>,
    response_size: Option<i64>,
    query_params: Option<BTreeMap<String, String>>,
    error_message: Option<String>,
    sample_rate: Option<f64>,
    // auth
    event_type: Option<String>,
    success: Option<bool>,
    // external_call
    service: Option<String>,
    cost_estimate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireReport {
    status: Option<String>,
    processing_time_ms: Option<i64>,
    categories: Option<BTreeMap<String, i64>>,
    impact: Option<WireImpact>,
    estimated_monthly_savings: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireImpact {
    high: Option<i64>,
    medium: Option<i64>,
    low: Option<i64>,
}

/// Collects problems while the event is checked.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn required<T>(&mut self, path: &str, v: Option<T>, kind: &str) -> Option<T> {
        if v.is_none() {
            self.fail(path, format!("is required for kind {kind}"));
        }
        v
    }

    /// A free-text or id field: not blank, within a length, no control chars.
    fn text(&mut self, path: &str, v: Option<String>, max: usize) -> Option<String> {
        let s = v?;
        let n = s.chars().count();
        if s.trim().is_empty() {
            self.fail(path, "must not be empty");
        } else if n > max {
            self.fail(path, format!("is {n} characters; at most {max} are allowed"));
        } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            self.fail(path, "must not contain control characters");
        }
        Some(s)
    }

    /// A count or size: an integer in 0..=10^12.
    fn count(&mut self, path: &str, v: Option<i64>) -> Option<u64> {
        let n = v?;
        match u64::try_from(n) {
            Ok(n) if n <= MAX_COUNT => Some(n),
            _ => {
                self.fail(path, format!("must be a whole number from 0 to {MAX_COUNT}, not {n}"));
                None
            }
        }
    }

    /// A decimal in `min..=max`, stored as 0 below [`FINEST_DECIMAL`].
    fn decimal(&mut self, path: &str, v: Option<f64>, min: f64, max: f64) -> Option<f64> {
        let x = v?;
        if !(x.is_finite() && x >= min && x <= max) {
            self.fail(path, format!("must be a number from {min} to {max}, not {}", shown_number(x)));
            return None;
        }
        Some(if x < FINEST_DECIMAL { 0.0 } else { x })
    }

    fn status_code(&mut self, path: &str, v: Option<i64>) -> Option<u16> {
        let n = v?;
        if !(100..=599).contains(&n) {
            self.fail(path, format!("must be 100..=599, not {n}"));
            return None;
        }
        Some(n as u16)
    }

    fn method(&mut self, path: &str, v: Option<String>) -> Option<String> {
        let m = v?;
        match http_method(&m) {
            Some(m) => Some(m.to_owned()),
            None => {
                self.fail(
                    path,
                    format!("`{}` is not an HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, CONNECT, TRACE)", clip(&m)),
                );
                None
            }
        }
    }

    fn metadata(&mut self, path: &str, map: &Map<String, Value>, depth: usize) {
        if depth > MAX_METADATA_DEPTH {
            self.fail(path, format!("nests deeper than {MAX_METADATA_DEPTH} levels"));
            return;
        }
        if map.len() > MAX_METADATA_KEYS {
            self.fail(path, format!("has {} keys; at most {MAX_METADATA_KEYS} are allowed", map.len()));
        }
        for (k, v) in map {
            let p = format!("{path}.{k}");
            self.key(&p, k);
            self.metadata_value(&p, v, depth);
        }
    }

    /// A key of metadata or query parameters: 1..=64 characters.
    fn key(&mut self, path: &str, k: &str) {
        let n = k.chars().count();
        if !(1..=MAX_METADATA_KEY_CHARS).contains(&n) {
            self.fail(path, format!("keys must be 1 to {MAX_METADATA_KEY_CHARS} characters, not {n}"));
        }
    }

    fn metadata_value(&mut self, path: &str, v: &Value, depth: usize) {
        match v {
            Value::String(s) if s.chars().count() > MAX_METADATA_STRING_CHARS => {
                self.fail(path, format!("string is longer than {MAX_METADATA_STRING_CHARS} characters"));
            }
            Value::Number(n) => {
                // Integers are exact and at most 20 digits; a float has at
                // most 17 significant digits, so only its magnitude can be
                // beyond what DynamoDB stores.
                if let Some(x) = n.as_f64().filter(|_| n.is_f64())
                    && !(x == 0.0 || (MIN_METADATA_MAGNITUDE..=MAX_METADATA_MAGNITUDE).contains(&x.abs()))
                {
                    self.fail(
                        path,
                        format!("numbers must be 0 or of magnitude {MIN_METADATA_MAGNITUDE:e} to {MAX_METADATA_MAGNITUDE:e}, not {n}"),
                    );
                }
            }
            Value::Object(m) => self.metadata(path, m, depth + 1),
            Value::Array(items) => {
                if depth + 1 > MAX_METADATA_DEPTH {
                    self.fail(path, format!("nests deeper than {MAX_METADATA_DEPTH} levels"));
                    return;
                }
                for (i, item) in items.iter().enumerate() {
                    self.metadata_value(&format!("{path}[{i}]"), item, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// A number as a person reads it in a message: `1e200`, not 200 digits.
fn shown_number(x: f64) -> String {
    if x != 0.0 && !(1e-6..1e15).contains(&x.abs()) { format!("{x:e}") } else { format!("{x}") }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Cuts a string to at most `max` characters; true when it was cut.
pub fn truncate_chars(s: &mut String, max: usize) -> bool {
    match s.char_indices().nth(max) {
        Some((idx, _)) => {
            s.truncate(idx);
            true
        }
        None => false,
    }
}

/// Strips serde_json's " at line L column C" suffix: positions inside one
/// event of a batch mean little to a caller, the path says where.
/// Internal type names are replaced by what the caller sent.
fn serde_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => &s,
    };
    s.replace("struct WireEvent", "an event object")
        .replace("struct WireReport", "a report object")
        .replace("struct WireImpact", "an impact object")
}

/// Validates and sanitizes one event given as raw JSON.
pub fn validate_event(raw: &str, ctx: &Context) -> Result<Event, Vec<Problem>> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(vec![Problem::new("", format!("the event is {} bytes; at most {MAX_EVENT_BYTES} bytes are allowed", raw.len()))]);
    }
    if !raw.trim_start().starts_with('{') {
        return Err(vec![Problem::new("", "each event must be a JSON object")]);
    }
    // The fast path parses plainly; only a failure is parsed again with
    // path tracking, which costs more than the whole parse.
    let w: WireEvent = match serde_json::from_str(raw) {
        Ok(w) => w,
        Err(_) => {
            let de = &mut serde_json::Deserializer::from_str(raw);
            let e = match serde_path_to_error::deserialize::<_, WireEvent>(de) {
                Ok(w) => return validate_wire(w, ctx),
                Err(e) => e,
            };
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            return Err(vec![Problem::new(path, serde_message(e.inner()))]);
        }
    };
    validate_wire(w, ctx)
}

/// Which optional fields belong to which kind; a field of another kind is
/// refused rather than silently dropped.
fn foreign_fields(w: &WireEvent, kind: EventKind) -> Vec<&'static str> {
    let present: [(&'static str, bool, &[EventKind]); 18] = [
        ("action", w.action.is_some(), &[EventKind::Activity]),
        ("description", w.description.is_some(), &[EventKind::Activity]),
        ("client_id", w.client_id.is_some(), &[EventKind::Activity]),
        ("report_id", w.report_id.is_some(), &[EventKind::Activity]),
        ("report", w.report.is_some(), &[EventKind::Activity]),
        ("endpoint", w.endpoint.is_some(), &[EventKind::ApiRequest, EventKind::ExternalCall]),
        ("method", w.method.is_some(), &[EventKind::ApiRequest, EventKind::ExternalCall]),
        ("status_code", w.status_code.is_some(), &[EventKind::ApiRequest, EventKind::ExternalCall]),
        ("response_time_ms", w.response_time_ms.is_some(), &[EventKind::ApiRequest, EventKind::ExternalCall]),
        ("request_size", w.request_size.is_some(), &[EventKind::ApiRequest, EventKind::ExternalCall]),
        ("response_size", w.response_size.is_some(), &[EventKind::ApiRequest, EventKind::ExternalCall]),
        ("query_params", w.query_params.is_some(), &[EventKind::ApiRequest]),
        ("error_message", w.error_message.is_some(), &[EventKind::ApiRequest, EventKind::Auth, EventKind::ExternalCall]),
        ("sample_rate", w.sample_rate.is_some(), &[EventKind::ApiRequest]),
        ("event_type", w.event_type.is_some(), &[EventKind::Auth]),
        ("success", w.success.is_some(), &[EventKind::Auth]),
        ("service", w.service.is_some(), &[EventKind::ExternalCall]),
        ("cost_estimate", w.cost_estimate.is_some(), &[EventKind::ExternalCall]),
    ];
    present.iter().filter(|(_, here, kinds)| *here && !kinds.contains(&kind)).map(|(name, _, _)| *name).collect()
}

fn validate_wire(w: WireEvent, ctx: &Context) -> Result<Event, Vec<Problem>> {
    let mut c = Checker::default();

    let kind = match w.kind.as_deref() {
        None => {
            c.fail("kind", "is required: one of activity, api_request, auth, external_call");
            return Err(c.problems);
        }
        Some(k) => match EventKind::parse(k) {
            Some(k) => k,
            None => {
                c.fail("kind", format!("unknown kind `{}`: expected one of activity, api_request, auth, external_call", clip(k)));
                return Err(c.problems);
            }
        },
    };
    for f in foreign_fields(&w, kind) {
        c.fail(f, format!("is not a field of kind {}", kind.as_str()));
    }

    let event_id = match w.event_id {
        Some(id) if valid_event_id(&id) => id,
        Some(_) => {
            c.fail("event_id", "must be 1 to 100 characters of A-Z a-z 0-9 . _ : -");
            String::new()
        }
        None => uuid::Uuid::now_v7().to_string(),
    };

    // Time: parse, correct the sender's skew, then bound it.
    let client_time = match w.occurred_at.as_deref() {
        Some(s) => match parse_timestamp(s) {
            Some(t) => Some(t),
            None => {
                c.fail("occurred_at", "must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z");
                None
            }
        },
        None => None,
    };
    let occurred_at = match client_time {
        Some(t) => correct_clock_skew(t, ctx.sent_at, ctx.received_at),
        None => ctx.received_at,
    };
    let ahead = occurred_at - ctx.received_at;
    if ahead > Duration::hours(MAX_FUTURE_HOURS) {
        c.fail(
            "occurred_at",
            format!("is {} h in the future (after clock-skew correction); at most {MAX_FUTURE_HOURS} h is accepted", ahead.num_hours()),
        );
    }
    let days = retention_days(kind, &ctx.retention);
    if ctx.received_at - occurred_at > Duration::days(i64::from(days)) {
        c.fail("occurred_at", format!("is older than the {days}-day retention of kind {}", kind.as_str()));
    } else if !crate::time::in_range(occurred_at) {
        c.fail("occurred_at", format!("must lie within {} after clock-skew correction", crate::time::RANGE_TEXT));
    }
    let client_occurred_at = client_time.filter(|t| *t != occurred_at);

    // The envelope.
    let user_id = c.text("user_id", w.user_id, MAX_ID_CHARS);
    let ip_address = w.ip_address.and_then(|ip| match ip.trim().parse::<IpAddr>() {
        Ok(addr) => Some(addr.to_string()),
        Err(_) => {
            c.fail("ip_address", format!("`{}` is not an IPv4 or IPv6 address", clip(&ip)));
            None
        }
    });
    let mut user_agent_truncated = false;
    let user_agent = w.user_agent.map(|mut ua| {
        user_agent_truncated = truncate_chars(&mut ua, MAX_USER_AGENT_CHARS);
        ua
    });
    let metadata = w.metadata.map(|mut m| {
        c.metadata("metadata", &m, 1);
        sanitize_json_map(&mut m);
        m
    });

    let body = match kind {
        EventKind::Activity => {
            if user_id.is_none() {
                c.fail("user_id", "is required for kind activity");
            }
            let action = c.required("action", w.action, "activity");
            if action.as_deref().is_some_and(|a| !valid_name(a)) {
                c.fail("action", "must match ^[a-z][a-z0-9_]{0,63}$ (e.g. generate_report)");
            }
            let action = action.unwrap_or_default();
            let report = match w.report {
                Some(_) if action != "generate_report" => {
                    c.fail("report", "is only allowed with action generate_report");
                    None
                }
                Some(r) => validate_report(&mut c, r),
                None => None,
            };
            EventBody::Activity(Activity {
                custom: !KNOWN_ACTIONS.contains(&action.as_str()),
                action,
                description: c.text("description", w.description, MAX_TEXT_CHARS),
                client_id: c.text("client_id", w.client_id, MAX_ID_CHARS),
                report_id: c.text("report_id", w.report_id, MAX_ID_CHARS),
                report,
            })
        }
        EventKind::ApiRequest => {
            let endpoint = c.required("endpoint", w.endpoint, "api_request");
            if let Some(e) = &endpoint {
                if !e.starts_with('/') {
                    c.fail("endpoint", "must be a path starting with /");
                } else if e.chars().count() > MAX_ENDPOINT_CHARS {
                    c.fail("endpoint", format!("is longer than {MAX_ENDPOINT_CHARS} characters"));
                }
            }
            let method = c.required("method", w.method, "api_request");
            let method = c.method("method", method);
            let status = c.required("status_code", w.status_code, "api_request");
            let rt = c.required("response_time_ms", w.response_time_ms, "api_request");
            let mut query_params = w.query_params;
            if let Some(q) = &mut query_params {
                if q.len() > MAX_QUERY_PARAMS {
                    c.fail("query_params", format!("has {} keys; at most {MAX_QUERY_PARAMS} are allowed", q.len()));
                }
                for (k, v) in q.iter() {
                    c.key(&format!("query_params.{k}"), k);
                    if v.chars().count() > MAX_METADATA_STRING_CHARS {
                        c.fail(format!("query_params.{k}"), format!("is longer than {MAX_METADATA_STRING_CHARS} characters"));
                    }
                }
                sanitize_query_params(q);
            }
            let sample_rate = match w.sample_rate {
                Some(r) if !(MIN_SAMPLE_RATE..=1.0).contains(&r) => {
                    c.fail("sample_rate", format!("must be from {MIN_SAMPLE_RATE} to 1, not {r}"));
                    1.0
                }
                Some(r) => r,
                None => 1.0,
            };
            EventBody::ApiRequest(ApiRequest {
                endpoint: endpoint.unwrap_or_default(),
                method: method.unwrap_or_default(),
                status_code: c.status_code("status_code", status).unwrap_or_default(),
                response_time_ms: c.decimal("response_time_ms", rt, 0.0, MAX_RESPONSE_TIME_MS).unwrap_or_default(),
                request_size: c.count("request_size", w.request_size),
                response_size: c.count("response_size", w.response_size),
                query_params,
                error_message: c.text("error_message", w.error_message, MAX_TEXT_CHARS),
                sample_rate,
            })
        }
        EventKind::Auth => {
            let event_type = c.required("event_type", w.event_type, "auth").and_then(|t| {
                let parsed = AuthEventType::parse(&t);
                if parsed.is_none() {
                    c.fail(
                        "event_type",
                        format!("`{}` is not one of signup, login, login_failed, logout, reset_password, token_refresh", clip(&t)),
                    );
                }
                parsed
            });
            let success = c.required("success", w.success, "auth");
            EventBody::Auth(AuthEvent {
                event_type: event_type.unwrap_or(AuthEventType::Login),
                success: success.unwrap_or_default(),
                error_message: c.text("error_message", w.error_message, MAX_TEXT_CHARS),
            })
        }
        EventKind::ExternalCall => {
            let service = c.required("service", w.service, "external_call");
            if let Some(s) = &service
                && !(s.len() <= 64 && !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
            {
                c.fail("service", "must be 1 to 64 characters of A-Z a-z 0-9 . _ - (e.g. gemini)");
            }
            let endpoint = c.required("endpoint", w.endpoint, "external_call");
            let endpoint = c.text("endpoint", endpoint, MAX_ENDPOINT_CHARS);
            let rt = c.required("response_time_ms", w.response_time_ms, "external_call");
            EventBody::ExternalCall(ExternalCall {
                service: service.unwrap_or_default(),
                endpoint: endpoint.unwrap_or_default(),
                method: c.method("method", w.method),
                status_code: c.status_code("status_code", w.status_code),
                response_time_ms: c.decimal("response_time_ms", rt, 0.0, MAX_RESPONSE_TIME_MS).unwrap_or_default(),
                cost_estimate: c.decimal("cost_estimate", w.cost_estimate, 0.0, MAX_AMOUNT),
                request_size: c.count("request_size", w.request_size),
                response_size: c.count("response_size", w.response_size),
                error_message: c.text("error_message", w.error_message, MAX_TEXT_CHARS),
            })
        }
    };

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Event {
        event_id,
        occurred_at,
        client_occurred_at,
        received_at: ctx.received_at,
        user_id,
        ip_address,
        user_agent,
        user_agent_truncated,
        metadata,
        body,
    })
}

fn validate_report(c: &mut Checker, r: WireReport) -> Option<ReportOutcome> {
    let status = match r.status.as_deref() {
        Some("completed") => Some(ReportStatus::Completed),
        Some("failed") => Some(ReportStatus::Failed),
        Some(other) => {
            c.fail("report.status", format!("`{}` is not completed or failed", clip(other)));
            None
        }
        None => {
            c.fail("report.status", "is required: completed or failed");
            None
        }
    };
    let processing_time_ms = c.count("report.processing_time_ms", r.processing_time_ms);
    let mut categories = BTreeMap::new();
    for (name, n) in r.categories.unwrap_or_default() {
        let path = format!("report.categories.{name}");
        if !valid_name(&name) {
            c.fail(&path, "category names must match ^[a-z][a-z0-9_]{0,63}$");
        }
        if let Some(n) = c.count(&path, Some(n)) {
            categories.insert(name, n);
        }
    }
    if categories.len() > 20 {
        c.fail("report.categories", "has more than 20 categories");
    }
    let impact = r.impact.map(|i| Impact {
        high: c.count("report.impact.high", i.high).unwrap_or(0),
        medium: c.count("report.impact.medium", i.medium).unwrap_or(0),
        low: c.count("report.impact.low", i.low).unwrap_or(0),
    });
    let estimated_monthly_savings = c.decimal("report.estimated_monthly_savings", r.estimated_monthly_savings, 0.0, MAX_AMOUNT);
    Some(ReportOutcome { status: status?, processing_time_ms, categories, impact, estimated_monthly_savings })
}

#[cfg(test)]
mod tests;

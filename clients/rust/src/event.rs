//! Events as the client holds them between the caller's record and the
//! send, and their wire form.
//!
//! The kind-specific bodies are the backend's own model types
//! ([`analytics_contract::event`]), so a field added there is a field
//! the client can send. Work that is not needed to capture a fact (parsing
//! and sanitizing the query string, cutting over-long text, serializing) is
//! done by the flusher, off the caller's path.

use std::collections::BTreeMap;
use std::net::IpAddr;

use analytics_contract::event::EventBody;
use analytics_contract::validate::{self, limits, redact};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One recorded event, waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    /// A UUIDv7, set when recorded: every resend carries the same id, so
    /// the backend stores it once.
    pub event_id: Uuid,
    /// Set when recorded and never changed: the backend's de-duplication
    /// key includes it.
    pub occurred_at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub body: EventBody,
    /// The raw query string of an API request, parsed and sanitized into
    /// `query_params` by [`PendingEvent::normalize`].
    pub raw_query: Option<String>,
}

impl PendingEvent {
    /// An event of the given body, now.
    pub fn new(body: EventBody) -> Self {
        let now = Utc::now();
        Self {
            event_id: uuid_v7(now),
            occurred_at: now,
            user_id: None,
            ip_address: None,
            user_agent: None,
            metadata: None,
            body,
            raw_query: None,
        }
    }

    /// Applies the contract's rules the sender can apply itself, so an event
    /// is not refused for what could be fixed here: secrets in query
    /// parameters and metadata are redacted (the backend's own rule), text
    /// longer than the backend accepts is cut. Idempotent.
    pub fn normalize(&mut self) {
        if let Some(raw) = self.raw_query.take()
            && let EventBody::ApiRequest(a) = &mut self.body
        {
            a.query_params = parse_query(&raw);
        }
        if let Some(ua) = &mut self.user_agent {
            validate::truncate_chars(ua, limits::MAX_USER_AGENT_CHARS);
        }
        if let Some(u) = &mut self.user_id {
            validate::truncate_chars(u, limits::MAX_ID_CHARS);
        }
        if let Some(m) = &mut self.metadata {
            validate::sanitize_json_map(m);
        }
        let text = limits::MAX_TEXT_CHARS;
        match &mut self.body {
            EventBody::ApiRequest(a) => {
                redact::move_query_into_params(&mut a.endpoint, &mut a.query_params);
                validate::truncate_chars(&mut a.endpoint, limits::MAX_ENDPOINT_CHARS);
                if let Some(q) = &mut a.query_params {
                    // Redacted before it is cut: a cut JWT no longer looks like one.
                    validate::sanitize_query_params(q);
                    fit_query(q);
                }
                if let Some(e) = &mut a.error_message {
                    validate::truncate_chars(e, text);
                }
            }
            EventBody::ExternalCall(c) => {
                c.endpoint = redact::external_endpoint(&c.endpoint);
                validate::truncate_chars(&mut c.endpoint, limits::MAX_ENDPOINT_CHARS);
                if let Some(m) = &mut c.model {
                    validate::truncate_chars(m, limits::MAX_MODEL_CHARS);
                }
                if let Some(e) = &mut c.error_message {
                    validate::truncate_chars(e, text);
                }
            }
            EventBody::Auth(a) => {
                if let Some(e) = &mut a.error_message {
                    validate::truncate_chars(e, text);
                }
            }
            EventBody::Activity(a) => {
                if let Some(d) = &mut a.description {
                    validate::truncate_chars(d, text);
                }
            }
        }
    }

    /// The event as the backend reads it (normalize first).
    pub fn to_json(&self) -> String {
        let wire = WireEvent {
            event_id: &self.event_id,
            occurred_at: &self.occurred_at,
            user_id: self.user_id.as_deref(),
            ip_address: self.ip_address.as_ref(),
            user_agent: self.user_agent.as_deref(),
            metadata: self.metadata.as_ref(),
            body: &self.body,
        };
        // Serializing plain data into a String cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

/// A UUIDv7 for an event at `at`: its millisecond and 74 random bits.
/// `Uuid::now_v7` takes a process-wide lock and asks the OS for random
/// bytes on every call; on the request path that was the largest cost of
/// recording (BENCHMARKS.md), and event ids need uniqueness, not secrecy.
pub fn uuid_v7(at: DateTime<Utc>) -> Uuid {
    let mut random = [0u8; 10];
    fastrand::fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &random).into_uuid()
}

#[derive(Serialize)]
struct WireEvent<'a> {
    #[serde(serialize_with = "display")]
    event_id: &'a Uuid,
    #[serde(serialize_with = "rfc3339")]
    occurred_at: &'a DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_display")]
    ip_address: Option<&'a IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    #[serde(flatten)]
    body: &'a EventBody,
}

fn display<S: Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn opt_display<S: Serializer, T: std::fmt::Display>(v: &Option<&T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Microseconds are plenty and keep the value identical on every resend.
fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// A query string as a map, read as the backend reads an endpoint's query
/// string ([`redact::query_pairs`]).
pub fn parse_query(raw: &str) -> Option<BTreeMap<String, String>> {
    let mut out = redact::query_pairs(raw);
    fit_query(&mut out);
    (!out.is_empty()).then_some(out)
}

/// Keeps query parameters within what the backend accepts, so one long
/// URL does not get its request log refused: keys too long are left out,
/// values cut, and the first `MAX_QUERY_PARAMS` names (by name) kept.
fn fit_query(q: &mut BTreeMap<String, String>) {
    q.retain(|k, _| k.chars().count() <= limits::MAX_METADATA_KEY_CHARS);
    while q.len() > limits::MAX_QUERY_PARAMS {
        q.pop_last();
    }
    for v in q.values_mut() {
        validate::truncate_chars(v, limits::MAX_METADATA_STRING_CHARS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_contract::event::ApiRequest;

    fn api(raw_query: &str) -> PendingEvent {
        let mut e = PendingEvent::new(EventBody::ApiRequest(ApiRequest {
            endpoint: "/items/{id}".into(),
            method: "GET".into(),
            status_code: 200,
            response_time_ms: 1.5,
            request_size: None,
            response_size: Some(10),
            query_params: None,
            error_message: None,
            sample_rate: 0.5,
        }));
        e.raw_query = Some(raw_query.into());
        e
    }

    #[test]
    fn query_parameters_are_parsed_and_secrets_redacted_by_the_backends_rule() {
        let mut e = api("q=a%20b&api_key=s3cr3t&Session_Id=x&q=second&page=2");
        e.normalize();
        let EventBody::ApiRequest(a) = &e.body else { unreachable!() };
        let q = a.query_params.as_ref().unwrap();
        assert_eq!(q["q"], "second", "decoded, the last value wins, as the backend reads an endpoint's query");
        assert_eq!(q["api_key"], validate::REDACTED);
        assert_eq!(q["Session_Id"], validate::REDACTED);
        assert_eq!(q["page"], "2");
        assert!(e.raw_query.is_none());
    }

    #[test]
    fn an_endpoint_given_with_its_query_string_is_split_before_sending() {
        let mut e = api("");
        e.raw_query = None;
        let EventBody::ApiRequest(a) = &mut e.body else { unreachable!() };
        a.endpoint = "/reset?token=abc&page=2#top".into();
        e.normalize();
        let EventBody::ApiRequest(a) = &e.body else { unreachable!() };
        assert_eq!(a.endpoint, "/reset");
        let q = a.query_params.as_ref().unwrap();
        assert_eq!((q["token"].as_str(), q["page"].as_str()), (validate::REDACTED, "2"));
        assert!(!e.to_json().contains("abc"));
    }

    #[test]
    fn query_limits_are_applied_before_sending() {
        let raw: Vec<String> = (0..80).map(|i| format!("k{i:02}={}", "v".repeat(if i == 0 { 3000 } else { 1 }))).collect();
        let q = parse_query(&raw.join("&")).unwrap();
        assert_eq!(q.len(), limits::MAX_QUERY_PARAMS);
        assert_eq!(q["k00"].chars().count(), limits::MAX_METADATA_STRING_CHARS);
        assert!(parse_query("").is_none());
    }

    #[test]
    fn event_ids_are_version_7_unique_and_carry_the_time() {
        let at = Utc::now();
        let ids: std::collections::HashSet<Uuid> = (0..10_000).map(|_| uuid_v7(at)).collect();
        assert_eq!(ids.len(), 10_000);
        let id = uuid_v7(at);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs as i64 * 1000 + nanos as i64 / 1_000_000, at.timestamp_millis());
        assert!(validate::valid_event_id(&id.to_string()));
    }

    #[test]
    fn the_wire_form_is_what_the_backend_validates() {
        let mut e = api("token=abc");
        e.user_id = Some("u-1".into());
        e.ip_address = Some("203.0.113.7".parse().unwrap());
        e.user_agent = Some("x".repeat(600));
        e.normalize();
        let json = e.to_json();
        let ctx = validate::Context { received_at: Utc::now(), sent_at: None, retention: Default::default() };
        let stored = validate::validate_event(&json, &ctx).expect("the backend accepts what the client sends");
        assert_eq!(stored.event_id, e.event_id.to_string());
        assert_eq!(stored.ip_address.as_deref(), Some("203.0.113.7"));
        assert_eq!(stored.user_agent.as_deref().map(str::len), Some(limits::MAX_USER_AGENT_CHARS));
        let EventBody::ApiRequest(a) = stored.body else { unreachable!() };
        assert_eq!(a.sample_rate, 0.5);
        assert_eq!(a.query_params.unwrap()["token"], validate::REDACTED);
        assert_eq!(e.to_json(), json, "the same bytes on every resend");
    }
}

//! Events written as items attribute by attribute, without a generic
//! serializer on the hot path (serde_dynamo's costs ~7x the whole JSON
//! serialization of an event), and read back the same way by
//! [`read_event`] where the roll-up and period reads fold raw events;
//! `store::events` tests round-trip every kind and optional field, and a
//! property test holds the hand reader to what serde_dynamo reads of any
//! item, whole, projected or damaged, so the directions cannot drift apart.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::{Attrs, Item, n, s};
use crate::model::{Event, EventBody, ReportStatus};

/// When the request that wrote the event arrived.
pub(super) const RECEIVED_AT: &str = "received_at";

pub(super) fn time(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Attributes of an event item, or of a map inside it (the SDK's own map).
trait Put {
    fn put(&mut self, name: &'static str, v: AttributeValue);
}

impl Put for Attrs {
    fn put(&mut self, name: &'static str, v: AttributeValue) {
        self.push(name, v);
    }
}

impl Put for Item {
    fn put(&mut self, name: &'static str, v: AttributeValue) {
        self.insert(name.to_owned(), v);
    }
}

fn put(item: &mut impl Put, name: &'static str, v: AttributeValue) {
    item.put(name, v);
}

fn put_opt_s(item: &mut impl Put, name: &'static str, v: Option<String>) {
    if let Some(v) = v {
        put(item, name, AttributeValue::S(v));
    }
}

fn put_opt_n(item: &mut impl Put, name: &'static str, v: Option<impl super::Number>) {
    if let Some(v) = v {
        put(item, name, n(v));
    }
}

/// A JSON value as an attribute (metadata is free-form).
fn json(v: Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::String(x) => AttributeValue::S(x),
        Value::Array(items) => AttributeValue::L(items.into_iter().map(json).collect()),
        Value::Object(m) => json_map(m),
    }
}

fn json_map(m: Map<String, Value>) -> AttributeValue {
    AttributeValue::M(m.into_iter().map(|(k, v)| (k, json(v))).collect())
}

/// Adds the event's own attributes to an item that holds its keys, moving
/// its strings rather than copying them; `received`, the batch's receive
/// time written once, when there is one.
pub(super) fn put_event(item: &mut Attrs, e: Event, received: Option<&super::events::Received>) {
    let kind = e.kind();
    put(item, "event_id", AttributeValue::S(e.event_id));
    put(item, "occurred_at", time(e.occurred_at));
    if let Some(t) = e.client_occurred_at {
        put(item, "client_occurred_at", time(t));
    }
    put(item, RECEIVED_AT, super::events::Received::attribute(received, e.received_at));
    put_opt_s(item, "user_id", e.user_id);
    put_opt_s(item, "ip_address", e.ip_address);
    put_opt_s(item, "user_agent", e.user_agent);
    if e.user_agent_truncated {
        put(item, "user_agent_truncated", AttributeValue::Bool(true));
    }
    if let Some(m) = e.metadata {
        put(item, "metadata", json_map(m));
    }
    put(item, "kind", s(kind.as_str()));
    match e.body {
        EventBody::Activity(a) => {
            put(item, "action", AttributeValue::S(a.action));
            if a.custom {
                put(item, "custom", AttributeValue::Bool(true));
            }
            put_opt_s(item, "description", a.description);
            put_opt_s(item, "client_id", a.client_id);
            put_opt_s(item, "report_id", a.report_id);
            if let Some(r) = a.report {
                let mut m = Item::with_capacity(5);
                let status = match r.status {
                    ReportStatus::Completed => "completed",
                    ReportStatus::Failed => "failed",
                };
                put(&mut m, "status", s(status));
                put_opt_n(&mut m, "processing_time_ms", r.processing_time_ms);
                if !r.categories.is_empty() {
                    put(&mut m, "categories", AttributeValue::M(r.categories.into_iter().map(|(k, v)| (k, n(v))).collect()));
                }
                if let Some(i) = &r.impact {
                    let impact = [("high", i.high), ("medium", i.medium), ("low", i.low)];
                    put(&mut m, "impact", AttributeValue::M(impact.iter().map(|(k, v)| ((*k).to_owned(), n(*v))).collect()));
                }
                put_opt_n(&mut m, "estimated_monthly_savings", r.estimated_monthly_savings);
                put(item, "report", AttributeValue::M(m));
            }
        }
        EventBody::ApiRequest(a) => {
            put(item, "endpoint", AttributeValue::S(a.endpoint));
            put(item, "method", AttributeValue::S(a.method));
            put(item, "status_code", n(a.status_code));
            put(item, "response_time_ms", n(a.response_time_ms));
            put_opt_n(item, "request_size", a.request_size);
            put_opt_n(item, "response_size", a.response_size);
            if let Some(q) = a.query_params {
                put(item, "query_params", AttributeValue::M(q.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect()));
            }
            put_opt_s(item, "error_message", a.error_message);
            put(item, "sample_rate", n(a.sample_rate));
        }
        EventBody::Auth(a) => {
            put(item, "event_type", s(a.event_type.as_str()));
            put(item, "success", AttributeValue::Bool(a.success));
            put_opt_s(item, "error_message", a.error_message);
        }
        EventBody::ExternalCall(c) => {
            put(item, "service", AttributeValue::S(c.service));
            put(item, "endpoint", AttributeValue::S(c.endpoint));
            put_opt_s(item, "method", c.method);
            put_opt_n(item, "status_code", c.status_code);
            put(item, "response_time_ms", n(c.response_time_ms));
            put_opt_n(item, "cost_estimate", c.cost_estimate);
            put_opt_n(item, "request_size", c.request_size);
            put_opt_n(item, "response_size", c.response_size);
            put_opt_s(item, "error_message", c.error_message);
            put_opt_s(item, "model", c.model);
            put_opt_n(item, "input_tokens", c.input_tokens);
            put_opt_n(item, "output_tokens", c.output_tokens);
        }
    }
}

/// Reads an event back from its item, attribute by attribute: the mirror
/// of [`put_event`], at a third of serde_dynamo's cost (its flattened,
/// tagged body buffers every attribute before reading it again;
/// BENCHMARKS.md, "Ingest CPU path"). An item this does not read as
/// written here (free-form metadata, a type it does not expect) goes
/// through serde_dynamo, which reads it the same or words the error.
pub fn read_event(item: Item) -> Result<Event, serde_dynamo::Error> {
    match by_hand(&item) {
        Some(e) => Ok(e),
        None => serde_dynamo::from_item(item),
    }
}

/// `None`: absent; `Some(None)`: present but not what this reads.
fn attr<'a, T>(item: &'a Item, name: &str, f: impl FnOnce(&'a AttributeValue) -> Option<T>) -> Option<Option<T>> {
    item.get(name).map(f)
}

fn text(v: &AttributeValue) -> Option<String> {
    v.as_s().ok().cloned()
}

fn num<T: std::str::FromStr>(v: &AttributeValue) -> Option<T> {
    v.as_n().ok()?.parse().ok()
}

fn flag(v: &AttributeValue) -> Option<bool> {
    v.as_bool().ok().copied()
}

fn stamp(v: &AttributeValue) -> Option<DateTime<Utc>> {
    v.as_s().ok()?.parse().ok()
}

/// An optional attribute: absent is `None`; present and unreadable fails.
fn opt<'a, T>(item: &'a Item, name: &str, f: impl FnOnce(&'a AttributeValue) -> Option<T>) -> Option<Option<T>> {
    match attr(item, name, f) {
        None => Some(None),
        Some(Some(v)) => Some(Some(v)),
        Some(None) => None,
    }
}

pub(super) fn by_hand(item: &Item) -> Option<Event> {
    use crate::model::{Activity, ApiRequest, AuthEvent, AuthEventType, ExternalCall, Impact, ReportOutcome};
    if item.contains_key("metadata") {
        return None;
    }
    let body = match item.get("kind")?.as_s().ok()?.as_str() {
        "activity" => EventBody::Activity(Activity {
            action: attr(item, "action", text)??,
            custom: opt(item, "custom", flag)?.unwrap_or(false),
            description: opt(item, "description", text)?,
            client_id: opt(item, "client_id", text)?,
            report_id: opt(item, "report_id", text)?,
            report: match item.get("report") {
                None => None,
                Some(r) => {
                    let m = r.as_m().ok()?;
                    let status = match m.get("status")?.as_s().ok()?.as_str() {
                        "completed" => ReportStatus::Completed,
                        "failed" => ReportStatus::Failed,
                        _ => return None,
                    };
                    let categories = match m.get("categories") {
                        None => Default::default(),
                        Some(c) => c.as_m().ok()?.iter().map(|(k, v)| Some((k.clone(), num(v)?))).collect::<Option<_>>()?,
                    };
                    let impact = match m.get("impact") {
                        None => None,
                        Some(i) => {
                            let i = i.as_m().ok()?;
                            let part = |k: &str| i.get(k).map_or(Some(0), num);
                            Some(Impact { high: part("high")?, medium: part("medium")?, low: part("low")? })
                        }
                    };
                    Some(ReportOutcome {
                        status,
                        processing_time_ms: opt(m, "processing_time_ms", num)?,
                        categories,
                        impact,
                        estimated_monthly_savings: opt(m, "estimated_monthly_savings", num)?,
                    })
                }
            },
        }),
        "api_request" => EventBody::ApiRequest(ApiRequest {
            endpoint: attr(item, "endpoint", text)??,
            method: attr(item, "method", text)??,
            status_code: attr(item, "status_code", num)??,
            response_time_ms: attr(item, "response_time_ms", num)??,
            request_size: opt(item, "request_size", num)?,
            response_size: opt(item, "response_size", num)?,
            query_params: match item.get("query_params") {
                None => None,
                Some(q) => Some(q.as_m().ok()?.iter().map(|(k, v)| Some((k.clone(), text(v)?))).collect::<Option<_>>()?),
            },
            error_message: opt(item, "error_message", text)?,
            sample_rate: opt(item, "sample_rate", num)?.unwrap_or(1.0),
        }),
        "auth" => EventBody::Auth(AuthEvent {
            event_type: AuthEventType::parse(item.get("event_type")?.as_s().ok()?)?,
            success: attr(item, "success", flag)??,
            error_message: opt(item, "error_message", text)?,
        }),
        "external_call" => EventBody::ExternalCall(ExternalCall {
            service: attr(item, "service", text)??,
            endpoint: attr(item, "endpoint", text)??,
            method: opt(item, "method", text)?,
            status_code: opt(item, "status_code", num)?,
            response_time_ms: attr(item, "response_time_ms", num)??,
            cost_estimate: opt(item, "cost_estimate", num)?,
            request_size: opt(item, "request_size", num)?,
            response_size: opt(item, "response_size", num)?,
            error_message: opt(item, "error_message", text)?,
            model: opt(item, "model", text)?,
            input_tokens: opt(item, "input_tokens", num)?,
            output_tokens: opt(item, "output_tokens", num)?,
        }),
        _ => return None,
    };
    Some(Event {
        event_id: attr(item, "event_id", text)??,
        occurred_at: attr(item, "occurred_at", stamp)??,
        client_occurred_at: opt(item, "client_occurred_at", stamp)?,
        received_at: attr(item, RECEIVED_AT, stamp)??,
        user_id: opt(item, "user_id", text)?,
        ip_address: opt(item, "ip_address", text)?,
        user_agent: opt(item, "user_agent", text)?,
        user_agent_truncated: opt(item, "user_agent_truncated", flag)?.unwrap_or(false),
        metadata: None,
        body,
    })
}

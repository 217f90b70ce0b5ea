//! Events written as items attribute by attribute, without a generic
//! serializer on the hot path (serde_dynamo's costs ~7x the whole JSON
//! serialization of an event). Items are read back with serde_dynamo into
//! [`crate::model::Event`]; `store::events` tests round-trip every kind and
//! optional field, so the two directions cannot drift apart.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::{Item, n, s};
use crate::model::{Event, EventBody, ReportStatus};

/// When the request that wrote the event arrived.
pub(super) const RECEIVED_AT: &str = "received_at";

pub(super) fn time(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn put(item: &mut Item, name: &str, v: AttributeValue) {
    item.insert(name.to_owned(), v);
}

fn put_opt_s(item: &mut Item, name: &str, v: Option<String>) {
    if let Some(v) = v {
        put(item, name, AttributeValue::S(v));
    }
}

fn put_opt_n(item: &mut Item, name: &str, v: Option<impl super::Number>) {
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
/// its strings rather than copying them.
pub(super) fn put_event(item: &mut Item, e: Event) {
    let kind = e.kind();
    put(item, "event_id", AttributeValue::S(e.event_id));
    put(item, "occurred_at", time(e.occurred_at));
    if let Some(t) = e.client_occurred_at {
        put(item, "client_occurred_at", time(t));
    }
    put(item, RECEIVED_AT, time(e.received_at));
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

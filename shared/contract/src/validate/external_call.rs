//! Kind `external_call`: a call the caller's service made to a paid
//! external API (an LLM, a data provider), with its cost.

use serde::Deserialize;

use super::checker::Checker;
use super::limits::*;
use super::redact::external_endpoint;
use crate::event::{EventBody, ExternalCall};

/// The fields of kind external_call, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    service: Option<String>,
    endpoint: Option<String>,
    method: Option<String>,
    status_code: Option<i64>,
    response_time_ms: Option<f64>,
    cost_estimate: Option<f64>,
    request_size: Option<i64>,
    response_size: Option<i64>,
    error_message: Option<String>,
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
}

/// `[A-Za-z0-9._-]{1,64}`: a service is a name to group by.
fn valid_service(s: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(super) fn check(w: Fields, c: &mut Checker) -> EventBody {
    const KIND: &str = "external_call";
    let service = c.required("service", w.service, KIND);
    if service.as_deref().is_some_and(|s| !valid_service(s)) {
        c.fail("service", "must be 1 to 64 characters of A-Z a-z 0-9 . _ - (e.g. gemini)");
    }
    // A URL's query string, fragment and credentials are dropped: secrets
    // travel there (`?key=...`, `user:pass@`), and the path is what calls
    // are grouped on.
    let endpoint = c.required("endpoint", w.endpoint, KIND).map(|e| external_endpoint(&e));
    let endpoint = c.text("endpoint", endpoint, MAX_ENDPOINT_CHARS);
    let rt = c.required("response_time_ms", w.response_time_ms, KIND);
    EventBody::ExternalCall(ExternalCall {
        service: service.unwrap_or_default(),
        endpoint: endpoint.unwrap_or_default(),
        method: c.method("method", w.method),
        status_code: c.status_code("status_code", w.status_code),
        response_time_ms: c.response_time("response_time_ms", rt).unwrap_or_default(),
        cost_estimate: c.decimal("cost_estimate", w.cost_estimate, 0.0, MAX_AMOUNT),
        request_size: c.count("request_size", w.request_size),
        response_size: c.count("response_size", w.response_size),
        error_message: c.text("error_message", w.error_message, MAX_TEXT_CHARS),
        model: c.text("model", w.model, MAX_MODEL_CHARS),
        input_tokens: c.count("input_tokens", w.input_tokens),
        output_tokens: c.count("output_tokens", w.output_tokens),
    })
}

//! Kind `api_request`: one request served by a caller's API, as its
//! middleware logs it (possibly sampled).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::checker::{At, Checker};
use super::limits::*;
use super::redact::{move_query_into_params, sanitize_query_params};
use crate::event::{ApiRequest, EventBody};

/// The fields of kind api_request, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    endpoint: Option<String>,
    method: Option<String>,
    status_code: Option<i64>,
    response_time_ms: Option<f64>,
    request_size: Option<i64>,
    response_size: Option<i64>,
    query_params: Option<BTreeMap<String, String>>,
    error_message: Option<String>,
    sample_rate: Option<f64>,
}

pub(super) fn check(w: Fields, c: &mut Checker) -> EventBody {
    const KIND: &str = "api_request";
    let mut endpoint = c.required("endpoint", w.endpoint, KIND);
    let mut query_params = w.query_params;
    if let Some(e) = &mut endpoint {
        move_query_into_params(e, &mut query_params);
        if !e.starts_with('/') {
            c.fail("endpoint", "must be a path starting with /");
        } else if e.chars().count() > MAX_ENDPOINT_CHARS {
            c.fail("endpoint", format!("is longer than {MAX_ENDPOINT_CHARS} characters"));
        }
    }
    let method = c.required("method", w.method, KIND);
    let method = c.method("method", method);
    let status = c.required("status_code", w.status_code, KIND);
    let rt = c.required("response_time_ms", w.response_time_ms, KIND);
    if let Some(q) = &mut query_params {
        if q.len() > MAX_QUERY_PARAMS {
            c.fail("query_params", format!("has {} keys; at most {MAX_QUERY_PARAMS} are allowed", q.len()));
        }
        for (k, v) in q.iter() {
            let path = At::Key(&At::Field("query_params"), k);
            c.key(path, k);
            if v.chars().count() > MAX_METADATA_STRING_CHARS {
                c.fail(path.to_string(), format!("is longer than {MAX_METADATA_STRING_CHARS} characters"));
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
        response_time_ms: c.response_time("response_time_ms", rt).unwrap_or_default(),
        request_size: c.count("request_size", w.request_size),
        response_size: c.count("response_size", w.response_size),
        query_params,
        error_message: c.text("error_message", w.error_message, MAX_TEXT_CHARS),
        sample_rate,
    })
}

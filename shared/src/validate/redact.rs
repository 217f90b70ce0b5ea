//! Secrets never reach storage: the values of keys that name one
//! (`password`, `token`, `api_key`, ...) are replaced, at any depth of
//! metadata and in query parameters.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

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

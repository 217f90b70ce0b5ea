//! Secrets never reach storage, and nothing else is lost on their account.
//!
//! A key is split into words (at `_`, `-`, `.`, spaces and lower-to-upper
//! case changes: `accessToken` is access, token) and is sensitive when one
//! of its words names a secret ([`SENSITIVE_WORDS`], or `key`): so
//! `refresh_token`, `X-Api-Key` and `sessionId` are redacted while
//! `prompt_tokens`, `keyword` and `author` are kept. A value shaped like a
//! secret (a `Bearer ` credential, a JWT) is redacted under any key. Both
//! apply to query parameters and, at any depth, to metadata. An endpoint's
//! query string is split out first ([`split_endpoint`], [`query_pairs`]), so
//! a secret in a URL meets the same rule.
//!
//! The ingest function, the seeder and the client all call these.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

/// The words of a key that name a secret, compared case-insensitively.
/// `key` is one as well, as a whole word ([`is_sensitive_key`]).
pub const SENSITIVE_WORDS: [&str; 18] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "credential",
    "credentials",
    "signature",
    "session",
    "sessionid",
    "auth",
    "authorization",
    "cookie",
    "jwt",
    "bearer",
    "otp",
    "apikey",
    "key",
];

/// The value that replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// The words of a key: split at `_`, `-`, `.`, whitespace (and, beyond the
/// contract's list, at `[`, `]`, `:` and `/`, so `user[password]` and
/// `auth:token` are words too), wherever a
/// lower-case letter or a digit is followed by an upper-case one, and
/// before the last capital of an upper-case run that starts a word
/// (`APIKey` is API, Key).
pub fn key_words(key: &str) -> impl Iterator<Item = &str> {
    let mut words = Vec::new();
    each_word(key, |w| {
        words.push(w);
        false
    });
    words.into_iter()
}

/// Calls `f` on each non-empty word of `key` (as [`key_words`] splits it)
/// until it returns true; returns whether it did. No allocation: every
/// metadata key and query parameter of every event goes through it.
fn each_word<'k>(key: &'k str, mut f: impl FnMut(&'k str) -> bool) -> bool {
    let mut emit = |w: &'k str| !w.is_empty() && f(w);
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut chars = key.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        if matches!(ch, '_' | '-' | '.' | '[' | ']' | ':' | '/') || ch.is_whitespace() {
            if emit(&key[start..i]) {
                return true;
            }
            start = i + ch.len_utf8();
            prev = None;
            continue;
        }
        if ch.is_uppercase() {
            let next_lower = chars.peek().is_some_and(|(_, n)| n.is_lowercase());
            let camel = prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit());
            let after_acronym = prev.is_some_and(char::is_uppercase) && next_lower;
            if (camel || after_acronym) && emit(&key[start..i]) {
                return true;
            }
            if camel || after_acronym {
                start = i;
            }
        }
        prev = Some(ch);
    }
    emit(&key[start..])
}

/// The longest of [`SENSITIVE_WORDS`].
const LONGEST_WORD: usize = 13;

/// True when `word` is one of [`SENSITIVE_WORDS`], in any ASCII case.
fn is_sensitive_word(word: &str) -> bool {
    if word.len() > LONGEST_WORD {
        return false;
    }
    let mut lower = [0u8; LONGEST_WORD];
    let lower = &mut lower[..word.len()];
    lower.copy_from_slice(word.as_bytes());
    lower.make_ascii_lowercase();
    SENSITIVE_WORDS.iter().any(|s| s.as_bytes() == lower)
}

/// True when one of the key's words names a secret.
pub fn is_sensitive_key(key: &str) -> bool {
    each_word(key, is_sensitive_word)
}

/// True when a value has the shape of a credential whatever its key: a
/// `Bearer ` authorization (any case), or a JWT (three base64url parts
/// joined by dots, the first decoding to a JSON object).
pub fn is_secret_value(value: &str) -> bool {
    let v = value.trim();
    let bearer = v.as_bytes().get(..7).is_some_and(|p| p.eq_ignore_ascii_case(b"bearer "));
    bearer || is_jwt(v)
}

fn is_jwt(v: &str) -> bool {
    let mut parts = v.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='));
    if header.is_empty() || payload.is_empty() || ![header, payload, signature].into_iter().all(b64url) {
        return false;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .is_some_and(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).is_ok())
}

/// Replaces the values of sensitive keys and secret-shaped strings, at any
/// depth (a whole object or array under a sensitive key goes).
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
        Value::String(s) if is_secret_value(s) => *s = REDACTED.into(),
        _ => {}
    }
}

/// Replaces the values of sensitive query parameters and secret-shaped
/// values.
pub fn sanitize_query_params(params: &mut BTreeMap<String, String>) {
    for (k, v) in params.iter_mut() {
        if is_sensitive_key(k) || is_secret_value(v) {
            *v = REDACTED.into();
        }
    }
}

/// An endpoint cut at its query string: the path (before `?` or `#`), and
/// the query string (between `?` and `#`) when there is one. The fragment
/// is dropped.
pub fn split_endpoint(endpoint: &str) -> (&str, Option<&str>) {
    let (before_fragment, _) = endpoint.split_once('#').unwrap_or((endpoint, ""));
    match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    }
}

/// An external call's URL as it is kept: the path without its query string
/// or fragment, and without credentials in its authority
/// (`https://user:pass@host/x` is `https://host/x`).
pub fn external_endpoint(endpoint: &str) -> String {
    let path = split_endpoint(endpoint).0;
    let Some((scheme, rest)) = path.split_once("://") else { return path.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => path.to_owned(),
    }
}

/// A query string's pairs: percent-decoded, `+` as a space, a name without
/// `=` valued `""`, a repeated name keeping its last value. Pairs without a
/// name carry nothing to look up and are left out.
pub fn query_pairs(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Splits an endpoint's query string into its query parameters: `endpoint`
/// keeps the path, and the pairs join `params` (an entry already there
/// wins). Returns whether the endpoint changed.
pub fn move_query_into_params(endpoint: &mut String, params: &mut Option<BTreeMap<String, String>>) -> bool {
    let (path, query) = split_endpoint(endpoint);
    if path.len() == endpoint.len() {
        return false;
    }
    let pairs = query.map(query_pairs).unwrap_or_default();
    *endpoint = path.to_owned();
    if !pairs.is_empty() {
        let into = params.get_or_insert_with(BTreeMap::new);
        for (k, v) in pairs {
            into.entry(k).or_insert(v);
        }
    }
    true
}

#[cfg(test)]
mod tests;

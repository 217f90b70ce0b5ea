//! The rules of single fields, shared by every kind: text, counts,
//! decimals, status codes, methods, names and metadata. Each records a
//! problem with its path and goes on, so an event's every problem is
//! reported at once.

use std::fmt::{self, Display};

use serde_json::{Map, Value};

use super::Problem;
use super::limits::*;

/// A field's path inside its event, written out only when it has a
/// problem: `parent.key` or `parent[i]`, nested as deep as the value.
#[derive(Clone, Copy)]
pub(super) enum At<'a> {
    Field(&'a str),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Field(name) => f.write_str(name),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Collects problems while an event is checked.
#[derive(Default)]
pub(super) struct Checker {
    pub problems: Vec<Problem>,
}

const HTTP_METHODS: [&str; 9] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"];

/// An HTTP method, any case, returned upper-case.
pub fn http_method(s: &str) -> Option<&'static str> {
    HTTP_METHODS.into_iter().find(|m| m.eq_ignore_ascii_case(s))
}

/// A number as a person reads it in a message: `1e200`, not 200 digits.
fn shown_number(x: f64) -> String {
    if x != 0.0 && !(1e-6..1e15).contains(&x.abs()) { format!("{x:e}") } else { format!("{x}") }
}

/// The start of what was sent, for a message.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

impl Checker {
    pub fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    pub fn required<T>(&mut self, path: &str, v: Option<T>, kind: &str) -> Option<T> {
        if v.is_none() {
            self.fail(path, format!("is required for kind {kind}"));
        }
        v
    }

    /// A free-text or id field: not blank, within a length, no control chars.
    pub fn text(&mut self, path: &str, v: Option<String>, max: usize) -> Option<String> {
        let s = v?;
        if let Some(problem) = text_problem(&s, max) {
            self.fail(path, problem);
        }
        Some(s)
    }

    /// A count or size: an integer in 0..=10^12.
    pub fn count(&mut self, path: impl Display, v: Option<i64>) -> Option<u64> {
        let n = v?;
        match u64::try_from(n) {
            Ok(n) if n <= MAX_COUNT => Some(n),
            _ => {
                self.fail(path.to_string(), format!("must be a whole number from 0 to {MAX_COUNT}, not {n}"));
                None
            }
        }
    }

    /// A decimal in `min..=max`, stored as 0 below [`FINEST_DECIMAL`].
    pub fn decimal(&mut self, path: &str, v: Option<f64>, min: f64, max: f64) -> Option<f64> {
        let x = v?;
        if !(x.is_finite() && x >= min && x <= max) {
            self.fail(path, format!("must be a number from {min} to {max}, not {}", shown_number(x)));
            return None;
        }
        Some(if x < FINEST_DECIMAL { 0.0 } else { x })
    }

    /// A response time in milliseconds: at most a day.
    pub fn response_time(&mut self, path: &str, v: Option<f64>) -> Option<f64> {
        self.decimal(path, v, 0.0, MAX_RESPONSE_TIME_MS)
    }

    pub fn status_code(&mut self, path: &str, v: Option<i64>) -> Option<u16> {
        let n = v?;
        if !(100..=599).contains(&n) {
            self.fail(path, format!("must be 100..=599, not {n}"));
            return None;
        }
        Some(n as u16)
    }

    pub fn method(&mut self, path: &str, v: Option<String>) -> Option<String> {
        let m = v?;
        match http_method(&m) {
            // Sent as written: kept, not copied.
            Some(canonical) if canonical == m => Some(m),
            Some(canonical) => Some(canonical.to_owned()),
            None => {
                self.fail(
                    path,
                    format!("`{}` is not an HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, CONNECT, TRACE)", clip(&m)),
                );
                None
            }
        }
    }

    /// Metadata: bounded keys, strings, numbers and depth.
    pub fn metadata(&mut self, path: At<'_>, map: &Map<String, Value>, depth: usize) {
        if depth > MAX_METADATA_DEPTH {
            self.fail(path.to_string(), format!("nests deeper than {MAX_METADATA_DEPTH} levels"));
            return;
        }
        if map.len() > MAX_METADATA_KEYS {
            self.fail(path.to_string(), format!("has {} keys; at most {MAX_METADATA_KEYS} are allowed", map.len()));
        }
        for (k, v) in map {
            let p = At::Key(&path, k);
            self.key(p, k);
            self.metadata_value(p, v, depth);
        }
    }

    /// A key of metadata or query parameters: 1..=64 characters.
    pub fn key(&mut self, path: impl Display, k: &str) {
        let n = k.chars().count();
        if !(1..=MAX_METADATA_KEY_CHARS).contains(&n) {
            self.fail(path.to_string(), format!("keys must be 1 to {MAX_METADATA_KEY_CHARS} characters, not {n}"));
        }
    }

    fn metadata_value(&mut self, path: At<'_>, v: &Value, depth: usize) {
        match v {
            Value::String(s) if s.chars().count() > MAX_METADATA_STRING_CHARS => {
                self.fail(path.to_string(), format!("string is longer than {MAX_METADATA_STRING_CHARS} characters"));
            }
            Value::Number(n) => {
                // Integers are exact and at most 20 digits; a float has at
                // most 17 significant digits, so only its magnitude can be
                // beyond what DynamoDB stores.
                if let Some(x) = n.as_f64().filter(|_| n.is_f64())
                    && !(x == 0.0 || (MIN_METADATA_MAGNITUDE..=MAX_METADATA_MAGNITUDE).contains(&x.abs()))
                {
                    self.fail(
                        path.to_string(),
                        format!("numbers must be 0 or of magnitude {MIN_METADATA_MAGNITUDE:e} to {MAX_METADATA_MAGNITUDE:e}, not {n}"),
                    );
                }
            }
            Value::Object(m) => self.metadata(path, m, depth + 1),
            Value::Array(items) => {
                if depth + 1 > MAX_METADATA_DEPTH {
                    self.fail(path.to_string(), format!("nests deeper than {MAX_METADATA_DEPTH} levels"));
                    return;
                }
                for (i, item) in items.iter().enumerate() {
                    self.metadata_value(At::Index(&path, i), item, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// What is wrong with a text field of at most `max` characters, if anything:
/// blank, too long, or holding control characters other than line breaks and tabs.
pub fn text_problem(s: &str, max: usize) -> Option<String> {
    // The common case in one pass over the bytes: printable ASCII, line
    // breaks and tabs (one character a byte, none of them a control
    // character to refuse), within `max`, and not only whitespace.
    let b = s.as_bytes();
    let plain = |c: &u8| (0x20..0x7f).contains(c) || matches!(c, b'\t' | b'\n' | b'\r');
    if b.len() <= max && b.iter().all(plain) && b.iter().any(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    text_problem_by_chars(s, max)
}

/// [`text_problem`] character by character, for any text.
fn text_problem_by_chars(s: &str, max: usize) -> Option<String> {
    let n = s.chars().count();
    if s.trim().is_empty() {
        Some("must not be empty".into())
    } else if n > max {
        Some(format!("is {n} characters; at most {max} are allowed"))
    } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        Some("must not contain control characters".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The byte-wise common case decides exactly as the character-wise
        /// rule, for any text (controls, Unicode spaces, any length).
        #[test]
        fn text_checked_by_bytes_as_by_characters(s in "(\\PC|[\\x00-\\x20\\x7f\\u{85}\\u{a0}\\u{2028}\\u{3000}]){0,12}", max in 0usize..14) {
            proptest::prop_assert_eq!(text_problem(&s, max), text_problem_by_chars(&s, max));
        }
    }
}

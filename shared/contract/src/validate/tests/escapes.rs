//! Strings read borrowed when they can be and copied when they hold an
//! escape: either way an event reads alike, and a value of the wrong JSON
//! type is a problem at its path, never a panic.

use super::*;
use std::fmt::Write;

/// `v` as JSON text with the characters of its strings and keys picked by
/// `mask` (in turn, cycling) written as `\u` escapes.
fn escaped(v: &Value, mask: &[bool], at: &mut usize, out: &mut String) {
    let text = |s: &str, at: &mut usize, out: &mut String| {
        out.push('"');
        for c in s.chars() {
            let pick = mask[*at % mask.len()];
            *at += 1;
            if pick || c == '"' || c == '\\' || c.is_control() {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            } else {
                out.push(c);
            }
        }
        out.push('"');
    };
    match v {
        Value::String(s) => text(s, at, out),
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                text(k, at, out);
                out.push(':');
                escaped(v, mask, at, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                escaped(v, mask, at, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What a `kind` or `occurred_at` may be sent as: right, wrong, odd,
/// extreme, or of another JSON type.
fn odd_values(right: Value) -> Vec<Value> {
    vec![
        right,
        json!(""),
        json!("é\u{1F600}"),
        json!(5),
        json!(-1e308),
        json!(null),
        json!(true),
        json!([]),
        json!({"a": 1}),
        json!("9999-12-31T23:59:59.999999999Z"),
        json!("0000-01-01T00:00:00Z"),
        json!("2026-11-21T09:00:00+14:00"),
    ]
}

proptest::proptest! {
    /// Any event of any kind, with its `kind` and `occurred_at` of any JSON
    /// type and value, reads the same whether its strings and keys are sent
    /// plain or written with escapes, and is stored or refused without a
    /// panic.
    #[test]
    fn escapes_never_change_the_answer(
        kind in proptest::sample::select(vec!["activity", "api_request", "auth", "external_call"]),
        kind_value in 0usize..12,
        time_value in 0usize..12,
        mask in proptest::collection::vec(proptest::bool::ANY, 1..9),
    ) {
        // The event as drawn, and the right one of its kind beside it.
        for (kind_value, time_value) in [(kind_value, time_value), (0, 0)] {
            let mut event: Map<String, Value> = right_fields(kind).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if kind == "api_request" || kind == "external_call" {
                event.insert("response_time_ms".into(), json!(12.5));
            }
            event.insert("kind".into(), odd_values(json!(kind))[kind_value].clone());
            event.insert("occurred_at".into(), odd_values(json!("2026-11-21T09:30:00.250Z"))[time_value].clone());
            let plain = Value::Object(event);
            let mut text = String::new();
            escaped(&plain, &mask, &mut 0, &mut text);
            proptest::prop_assert_eq!(serde_json::from_str::<Value>(&text).ok(), Some(plain.clone()), "the escaped text is the same JSON");
            let a = validate_event(&plain.to_string(), &ctx());
            let b = validate_event(&text, &ctx());
            proptest::prop_assert_eq!(&a, &b);
            if kind_value == 0 && time_value == 0 {
                proptest::prop_assert!(a.is_ok(), "{:?}", a);
            }
            // A wrong kind is named (when no type error elsewhere stopped the
            // read first: the time's is met before the kind's fields).
            if (1..=8).contains(&kind_value) && time_value == 0 {
                let problems = a.clone().unwrap_err();
                proptest::prop_assert!(problems.iter().any(|p| p.path == "kind"), "{:?}", problems);
            }
        }
    }
}

use super::*;
use crate::config::Retention;
use crate::time::parse_timestamp;
use crate::validate::validate_event;
use proptest::prelude::*;
use serde_json::json;
use serde_json::value::RawValue;

fn ctx() -> Context {
    let at = |s| parse_timestamp(s).unwrap();
    Context { received_at: at("2026-11-21T10:00:00Z"), sent_at: Some(at("2026-11-21T10:00:02Z")), retention: Retention::default() }
}

/// Each event of `text` validated the usual way: split raw, read alone.
fn each(text: &str) -> Vec<Result<Event, Vec<Problem>>> {
    #[derive(Deserialize)]
    struct Split<'a> {
        #[serde(borrow)]
        events: Vec<&'a RawValue>,
    }
    let split: Split = serde_json::from_str(text).unwrap();
    split.events.iter().map(|raw| validate_event(raw.get(), &ctx())).collect()
}

fn once(text: &str) -> Option<Vec<Result<Event, Vec<Problem>>>> {
    read_once(text).map(|b| b.events(&ctx()).collect())
}

fn auth(id: &str) -> serde_json::Value {
    json!({"event_id": id, "kind": "auth", "event_type": "login", "success": true, "occurred_at": "2026-11-21T09:59:00Z"})
}

#[test]
fn a_well_formed_batch_reads_as_each_event_alone() {
    let events = json!([
        auth("a"),
        // The kind after the kind's fields, metadata to redact, query
        // parameters, an escaped value.
        {"event_id": "b", "endpoint": "/api/x", "method": "get", "status_code": 200, "response_time_ms": 3.5, "kind": "api_request",
         "query_params": {"token": "s3cret", "page": "2"}, "metadata": {"password": "p", "n": 1}, "user_agent": "a\"b\u{e9}"},
        {"kind": "activity", "event_id": "c", "user_id": "u-1", "action": "generate_report",
         "report": {"status": "completed", "categories": {"tax": 2}}, "occurred_at": "2026-11-21T09:00:00Z"},
    ]);
    for text in [
        json!({"sent_at": "2026-11-21T10:00:02Z", "events": events}).to_string(),
        serde_json::to_string_pretty(&json!({"events": events})).unwrap(),
    ] {
        let read = once(&text).expect("read in one pass");
        assert_eq!(read.len(), 3);
        assert!(read.iter().all(Result::is_ok), "{read:?}");
        assert_eq!(read, each(&text));
    }
}

#[test]
fn what_one_pass_cannot_vouch_for_is_left_to_the_usual_way() {
    let big = |n: usize| json!({"event_id": "x", "kind": "auth", "event_type": "login", "success": true, "user_agent": "u".repeat(n)});
    let cases = [
        // The first name escaped: the event cannot be placed in the body.
        r#"{"events": [{"\u006bind": "auth", "event_type": "login", "success": true}]}"#.to_string(),
        // No field at all, or not an object.
        r#"{"events": [{}]}"#.to_string(),
        r#"{"events": [7]}"#.to_string(),
        // A type error inside an event, an unknown batch field, trailing text.
        r#"{"events": [{"kind": "auth", "success": "yes"}]}"#.to_string(),
        r#"{"events": [], "extra": 1}"#.to_string(),
        format!("{} x", json!({"events": [auth("a")]})),
        // Over the per-event limit, as the last event or before another.
        json!({"events": [big(limits::MAX_EVENT_BYTES)]}).to_string(),
        json!({"events": [big(limits::MAX_EVENT_BYTES), auth("a")]}).to_string(),
        // More events than a batch holds.
        json!({"events": vec![auth("a"); limits::MAX_EVENTS + 1]}).to_string(),
    ];
    for text in cases {
        assert!(read_once(&text).is_none(), "{}", &text[..text.len().min(120)]);
    }
    // Well under the limit, near the body's end: read in one pass.
    assert!(once(&json!({"events": [auth("a"), big(limits::MAX_EVENT_BYTES - 200)]}).to_string()).is_some());
    // No events field, or an empty one: read, and told apart.
    assert_eq!(read_once(r#"{"sent_at": null}"#).unwrap().count(), None);
    assert_eq!(read_once(r#"{"events": []}"#).unwrap().count(), Some(0));
}

proptest! {
    /// An event read in one pass is never longer than the per-event
    /// limit, whatever its size, place and the whitespace around it; and
    /// each reads as it would alone.
    #[test]
    fn one_pass_never_takes_an_event_over_the_limit(
        sizes in proptest::collection::vec(limits::MAX_EVENT_BYTES - 300..limits::MAX_EVENT_BYTES + 20, 1..4),
        gaps in proptest::collection::vec("[ \n\t\r]{0,40}", 8),
    ) {
        let events: Vec<String> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let head = format!(r#"{{{}"event_id": "e{i}", "kind": "auth", "event_type": "login", "success": true, "user_agent": ""#, gaps[i % 8]);
                let pad = n.saturating_sub(head.len() + 2 + gaps[(i + 1) % 8].len());
                format!(r#"{head}{}"{}}}"#, "u".repeat(pad), gaps[(i + 1) % 8])
            })
            .collect();
        let text = format!(r#"{{"events":{}[{}]{}}}"#, gaps[3], events.join(&format!("{},{}", gaps[4], gaps[5])), gaps[6]);
        let alone = each(&text);
        if let Some(read) = once(&text) {
            for e in &events {
                prop_assert!(e.len() <= limits::MAX_EVENT_BYTES, "an event of {} bytes was read in one pass", e.len());
            }
            prop_assert_eq!(read, alone);
        } else {
            // Left to the usual way, which measures each event exactly.
            prop_assert_eq!(alone.iter().filter(|r| r.is_err()).count(), events.iter().filter(|e| e.len() > limits::MAX_EVENT_BYTES).count());
        }
    }
}

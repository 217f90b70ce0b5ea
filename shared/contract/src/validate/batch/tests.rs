use super::*;
use crate::validate::{Problem, validate_event};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

fn received() -> DateTime<Utc> {
    parse_timestamp("2026-11-21T10:00:00Z").unwrap()
}

/// Each event of `text` validated the usual way: split raw, read alone.
fn each(text: &str) -> Vec<Result<Event, Vec<Problem>>> {
    #[derive(Deserialize)]
    struct Split<'a> {
        sent_at: Option<String>,
        #[serde(borrow)]
        events: Vec<&'a RawValue>,
    }
    let split: Split = serde_json::from_str(text).unwrap();
    let sent_at = split.sent_at.map(|s| parse_timestamp(&s).unwrap());
    let ctx = Context { received_at: received(), sent_at, retention: Retention::default() };
    split.events.iter().map(|raw| validate_event(raw.get(), &ctx)).collect()
}

fn once(text: &str) -> Option<Vec<Event>> {
    let mut events = Vec::new();
    read_once(text, received(), Retention::default(), &mut |e| events.push(e)).ok().map(|()| events)
}

fn auth(id: &str) -> serde_json::Value {
    json!({"event_id": id, "kind": "auth", "event_type": "login", "success": true, "occurred_at": "2026-11-21T09:59:00Z"})
}

/// What the usual way makes of a batch that every event of passes.
fn all_valid(text: &str) -> Vec<Event> {
    each(text).into_iter().map(|r| r.expect("valid")).collect()
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
    let sent = "2026-11-21T10:00:02Z";
    let texts = [
        // sent_at first (each event validated as the next is read), last
        // (all kept until the end), absent, null; compact or pretty.
        format!(r#"{{"sent_at":"{sent}","events":{events}}}"#),
        format!(r#"{{"events":{events},"sent_at":"{sent}"}}"#),
        serde_json::to_string_pretty(&json!({"events": events})).unwrap(),
        serde_json::to_string_pretty(&json!({"sent_at": sent, "events": events})).unwrap(),
        format!(r#"{{"sent_at":null,"events":{events}}}"#),
    ];
    for text in texts {
        let read = once(&text).expect("read in one pass");
        assert_eq!(read.len(), 3);
        assert_eq!(read, all_valid(&text), "{text}");
    }
    // The skew correction used the batch's sent_at, wherever it came.
    let first = |t: &str| once(t).unwrap()[0].occurred_at;
    assert_eq!(first(&format!(r#"{{"events":{events},"sent_at":"{sent}"}}"#)), parse_timestamp("2026-11-21T09:58:58Z").unwrap());
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
        // A type error inside an event, a refused event, after a valid one.
        json!({"sent_at": "2026-11-21T10:00:00Z", "events": [auth("a"), {"kind": "auth", "success": "yes"}]}).to_string(),
        json!({"sent_at": "2026-11-21T10:00:00Z", "events": [auth("a"), {"kind": "auth", "event_type": "login"}, auth("b")]}).to_string(),
        // The batch itself: no events, none, null, twice; a bad, repeated
        // or unknown field; trailing text.
        r#"{"events": []}"#.to_string(),
        r#"{"sent_at": null}"#.to_string(),
        r#"{"events": null}"#.to_string(),
        format!(r#"{{"events": [{}], "events": [{}]}}"#, auth("a"), auth("b")),
        format!(r#"{{"sent_at": "soon", "events": [{}]}}"#, auth("a")),
        format!(r#"{{"sent_at": null, "sent_at": null, "events": [{}]}}"#, auth("a")),
        format!(r#"{{"events": [{}], "extra": 1}}"#, auth("a")),
        format!("{} x", json!({"events": [auth("a")]})),
        // Over the per-event limit, as the last event or before another.
        json!({"events": [big(limits::MAX_EVENT_BYTES)]}).to_string(),
        json!({"sent_at": "2026-11-21T10:00:00Z", "events": [big(limits::MAX_EVENT_BYTES), auth("a")]}).to_string(),
        // More events than a batch holds.
        json!({"events": vec![auth("a"); limits::MAX_EVENTS + 1]}).to_string(),
    ];
    for text in cases {
        assert!(once(&text).is_none(), "{}", &text[..text.len().min(120)]);
    }
    // Well under the limit, near the body's end: read in one pass.
    assert!(once(&json!({"events": [auth("a"), big(limits::MAX_EVENT_BYTES - 200)]}).to_string()).is_some());
    assert_eq!(once(&json!({"events": vec![auth("a"); limits::MAX_EVENTS]}).to_string()).map(|e| e.len()), Some(limits::MAX_EVENTS));
}

proptest! {
    /// An event read in one pass is never longer than the per-event
    /// limit, whatever its size, place and the whitespace around it, and
    /// wherever `sent_at` is; and each reads as it would alone.
    #[test]
    fn one_pass_never_takes_an_event_over_the_limit(
        sizes in proptest::collection::vec(limits::MAX_EVENT_BYTES - 300..limits::MAX_EVENT_BYTES + 20, 1..4),
        gaps in proptest::collection::vec("[ \n\t\r]{0,40}", 8),
        sent_first in any::<bool>(),
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
        let list = format!("{}[{}]{}", gaps[3], events.join(&format!("{},{}", gaps[4], gaps[5])), gaps[6]);
        let sent = r#""sent_at": "2026-11-21T10:00:01Z""#;
        let text = if sent_first { format!(r#"{{{sent},"events":{list}}}"#) } else { format!(r#"{{"events":{list},{sent}}}"#) };
        let alone = each(&text);
        if let Some(read) = once(&text) {
            for e in &events {
                prop_assert!(e.len() <= limits::MAX_EVENT_BYTES, "an event of {} bytes was read in one pass", e.len());
            }
            prop_assert_eq!(read, all_valid(&text));
        } else {
            // Left to the usual way, which measures each event exactly.
            prop_assert_eq!(alone.iter().filter(|r| r.is_err()).count(), events.iter().filter(|e| e.len() > limits::MAX_EVENT_BYTES).count());
        }
    }
}

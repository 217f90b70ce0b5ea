use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    time::parse_timestamp("2026-11-21T10:00:00Z").unwrap()
}

fn prep(body: serde_json::Value) -> Result<PreparedBatch, ApiError> {
    prepare(body.to_string().as_bytes(), "t", now(), &Retention::default(), 8)
}

#[test]
fn repeats_inside_a_batch_are_written_once_keeping_the_first() {
    let ev = |id: &str, ok: bool| json!({"event_id": id, "kind": "auth", "event_type": "login", "success": ok, "occurred_at": "2026-11-21T09:00:00Z"});
    let p = prep(json!({"events": [ev("a", true), ev("b", true), ev("a", false), ev("a", false), ev("c", true)]})).unwrap();
    assert_eq!(p.repeated, 2);
    let kept: Vec<usize> = p.writes.iter().map(|(i, _)| *i).collect();
    assert_eq!(kept, vec![0, 1, 4], "the first of each, in request order");
}

proptest::proptest! {
    /// Whatever mix of ids and times a batch repeats, exactly the first
    /// event of each identity (id and sender's time) is kept, in
    /// request order, and the rest are counted as repeats.
    #[test]
    fn only_the_first_of_each_identity_is_kept(sent in proptest::collection::vec((0..6u8, 0..3u8), 1..60)) {
        let events: Vec<_> = sent
            .iter()
            .map(|(id, minute)| json!({"event_id": format!("e-{id}"), "kind": "auth", "event_type": "login", "success": true,
                "occurred_at": format!("2026-11-21T09:0{minute}:00Z")}))
            .collect();
        let p = prep(json!({"events": events})).unwrap();
        let mut firsts = Vec::new();
        for (i, key) in sent.iter().enumerate() {
            if !sent[..i].contains(key) {
                firsts.push(i);
            }
        }
        let kept: Vec<usize> = p.writes.iter().map(|(i, _)| *i).collect();
        proptest::prop_assert_eq!(p.repeated, sent.len() - firsts.len());
        proptest::prop_assert_eq!(kept, firsts);
    }
}

#[test]
fn batch_shape_errors() {
    let e = prep(json!({"events": (0..501).map(|_| json!({})).collect::<Vec<_>>()})).unwrap_err();
    assert_eq!(e.code, crate::error::ErrorCode::PayloadTooLarge);
    let e = prep(json!({"sent_at": "soon", "events": [{}]})).unwrap_err();
    assert_eq!(e.details[0]["path"], "sent_at");
    let e = prepare(&vec![b' '; limits::MAX_BODY_BYTES + 1], "t", now(), &Retention::default(), 8).unwrap_err();
    assert_eq!(e.code, crate::error::ErrorCode::PayloadTooLarge);
    let e = prepare(&[0xff, 0xfe], "t", now(), &Retention::default(), 8).unwrap_err();
    assert_eq!(e.code, crate::error::ErrorCode::BadRequest);
}

#[test]
fn rejections_carry_the_sent_event_id_and_paths() {
    let p = prep(json!({"events": [{"event_id": "x-1", "kind": "auth", "success": "no"}, 7]})).unwrap();
    assert_eq!(p.rejected[0].event_id.as_deref(), Some("x-1"));
    assert_eq!(p.rejected[0].problems[0].path, "events[0].success");
    assert_eq!(p.rejected[1].event_id, None);
    assert_eq!(p.rejected[1].problems[0].path, "events[1]");
}

/// A batch read the usual way only: split raw, each event read alone.
fn usual(text: &str) -> Result<PreparedBatch, ApiError> {
    prepare_each_alone(text.as_bytes(), "t", now(), &Retention::default(), 8)
}

type Answer<'a> = Result<(Vec<(usize, DateTime<Utc>, &'a crate::store::Attrs, &'a crate::store::Attrs)>, &'a [Rejection], usize), String>;

/// What a prepared batch holds, comparable (the items' nested maps are
/// `HashMap`s, whose order differs from one map to the next).
fn answer(p: &Result<PreparedBatch, ApiError>) -> Answer<'_> {
    match p {
        Ok(p) => Ok((p.writes.iter().map(|(i, w)| (*i, w.placed_at, &w.identity, &w.item)).collect(), &p.rejected, p.repeated)),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// Events as sent, written by hand so that the order of their fields,
/// escapes and whitespace vary: valid ones of every kind, and ones that
/// are malformed, refused or out of range.
fn event_text(shape: u8, id: u8, gap: &str) -> String {
    let id = format!("e-{id}");
    match shape {
        0 => {
            format!(r#"{{{gap}"event_id":"{id}","kind":"auth","event_type":"login","success":true,"occurred_at":"2026-11-21T09:59:00Z"}}"#)
        }
        1 => format!(
            r#"{{"endpoint":"/api/x",{gap}"method":"get","status_code":200,"response_time_ms":3.5,"kind":"api_request","event_id":"{id}",
            "query_params":{{"token":"s","page":"2"}},"metadata":{{"password":"p","n":[1,2.5e3]}},"user_agent":"a\"b\u00e9"}}"#
        ),
        2 => format!(
            r#"{{"kind":"activity","event_id":"{id}","user_id":"u-1","action":"generate_report",{gap}
            "report":{{"status":"completed","categories":{{"tax":2}},"impact":{{"high":1}}}},"occurred_at":"2026-11-21T09:00:00Z"}}"#
        ),
        3 => format!(
            r#"{{"event_id":"{id}","kind":"external_call","service":"gemini","endpoint":"/v1","method":"POST","status_code":200,"response_time_ms":9.0,"cost_estimate":0.01{gap}}}"#
        ),
        // The first name escaped.
        4 => format!(r#"{{"\u0065vent_id":"{id}","kind":"auth","event_type":"logout","success":true}}"#),
        // A type error, an unknown field, a field of another kind.
        5 => format!(r#"{{"event_id":"{id}","kind":"auth","event_type":"login","success":"yes"}}"#),
        6 => format!(r#"{{"event_id":"{id}","kind":"auth","event_type":"login","success":true,"colour":1}}"#),
        7 => format!(r#"{{"event_id":"{id}","kind":"auth","event_type":"login","success":true,"endpoint":"/x"}}"#),
        // No kind, older than retention, not an object, empty.
        8 => format!(r#"{{"event_id":"{id}","event_type":"login","success":true}}"#),
        9 => format!(r#"{{"event_id":"{id}","kind":"auth","event_type":"login","success":true,"occurred_at":"1999-01-01T00:00:00Z"}}"#),
        10 => "[1]".to_string(),
        11 => "{}".to_string(),
        // Over the per-event limit.
        _ => format!(
            r#"{{"event_id":"{id}","kind":"auth","event_type":"login","success":true,"user_agent":"{}"}}"#,
            "u".repeat(limits::MAX_EVENT_BYTES)
        ),
    }
}

proptest::proptest! {
    /// Whatever a batch holds, `prepare` answers exactly as the usual
    /// way does: the same writes (items and identities), the same
    /// rejections with their paths, the same repeats, the same errors;
    /// with the one-pass read taken for batches it can vouch for.
    #[test]
    fn prepare_answers_as_each_event_read_alone(
        events in proptest::collection::vec((0..13u8, 0..4u8), 0..12),
        weights in 0..4u8,
        sent_at in 0..4u8,
        gap in "[ \n]{0,3}",
    ) {
        let events: Vec<(u8, u8)> = events.into_iter().map(|(s, id)| (if weights == 0 { s } else { s % 4 }, id)).collect();
        let list = events.iter().map(|(s, id)| event_text(*s, *id, &gap)).collect::<Vec<_>>().join(&format!(",{gap}"));
        let text = match sent_at {
            0 => format!(r#"{{"events":[{list}]}}"#),
            1 => format!(r#"{{"sent_at":"2026-11-21T10:00:02Z",{gap}"events":[{list}]}}"#),
            2 => format!(r#"{{"events":[{list}],"sent_at":"2026-11-21T09:59:58Z"}}"#),
            _ => format!(r#"{{"sent_at":"soon","events":[{list}]}}"#),
        };
        let fast = prepare(text.as_bytes(), "t", now(), &Retention::default(), 8);
        let each = usual(&text);
        proptest::prop_assert_eq!(answer(&fast), answer(&each));
        if let Ok(p) = &fast {
            proptest::prop_assert_eq!(p.writes.len() + p.rejected.len() + p.repeated, events.len());
        }
    }
}

#[test]
fn a_well_formed_batch_is_read_in_one_pass_and_a_malformed_one_the_usual_way_from_where_it_failed() {
    let r = Retention::default();
    let read = |text: &str| {
        let mut n = 0;
        validate::read_once(text, now(), r, &mut |_| n += 1).map(|()| n)
    };
    let good = format!(r#"{{"events":[{},{}]}}"#, event_text(0, 1, ""), event_text(2, 2, " "));
    assert_eq!(read(&good), Ok(2));
    // sent_at first: the events before the refused one stand; after the
    // events, none was validated yet.
    let sent = r#""sent_at":"2026-11-21T10:00:02Z""#;
    let events = [event_text(0, 1, ""), event_text(3, 2, ""), event_text(8, 3, ""), event_text(0, 4, "")].join(",");
    assert_eq!(read(&format!(r#"{{{sent},"events":[{events}]}}"#)), Err(2));
    assert_eq!(read(&format!(r#"{{"events":[{events}],{sent}}}"#)), Err(2));
    assert_eq!(read(&format!(r#"{{{sent},"events":[{events}],"events":[]}}"#)), Err(2), "the usual way refuses the batch");
    // One that does not even read: where the one before it ends is not
    // known, so that one is read again too.
    let unread = [event_text(0, 1, ""), event_text(3, 2, ""), event_text(5, 3, ""), event_text(0, 4, "")].join(",");
    assert_eq!(read(&format!(r#"{{{sent},"events":[{unread}]}}"#)), Err(1));
    assert_eq!(read(&format!(r#"{{"events":[{unread}],{sent}}}"#)), Err(0));
    // An event found too long when the next one starts does not stand.
    let long = format!(
        r#"{{"event_id":"l","kind":"auth","event_type":"login","success":true,"user_agent":"{}"}}"#,
        "u".repeat(limits::MAX_EVENT_BYTES)
    );
    assert_eq!(read(&format!(r#"{{{sent},"events":[{},{long},{}]}}"#, event_text(0, 1, ""), event_text(0, 2, ""))), Err(1));

    let p = prep(serde_json::from_str(&format!(r#"{{{sent},"events":[{events}]}}"#)).unwrap()).unwrap();
    assert_eq!((p.writes.len(), p.rejected.len()), (3, 1), "the refused event sinks only itself");
    assert_eq!(p.rejected[0].problems[0].path, "events[2].kind");
    assert_eq!(p.writes.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 3]);
}

use super::*;

#[test]
fn live_hours_are_the_receipts_the_one_before_and_later() {
    let t = |s: &str| crate::time::parse_timestamp(s).unwrap();
    let received = t("2026-12-07T10:20:00Z");
    assert!(is_live(t("2026-12-07T10:00:00Z"), received));
    assert!(is_live(t("2026-12-07T09:00:00Z"), received));
    assert!(is_live(t("2026-12-08T09:00:00Z"), received));
    assert!(!is_live(t("2026-12-07T08:00:00Z"), received));
    assert!(trusted_at(t("2026-12-07T09:00:00Z"), t("2026-12-07T10:58:59Z")));
    assert!(!trusted_at(t("2026-12-07T09:00:00Z"), t("2026-12-07T10:59:00Z")));
}

mod bodies {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Retention;
    use crate::time::parse_timestamp;
    use crate::validate::{Context, validate_event};

    fn ev(kind: u8, second: u32, ms: u32) -> Event {
        let at = parse_timestamp("2026-11-21T10:00:00Z").unwrap() + Duration::seconds(i64::from(second));
        let t = at.to_rfc3339();
        let v = match kind % 3 {
            0 => serde_json::json!({"kind": "activity", "occurred_at": t, "user_id": format!("u{}", ms % 5), "action": "login"}),
            1 => serde_json::json!({"kind": "external_call", "occurred_at": t, "service": "s", "endpoint": "/v1",
                "status_code": 200, "response_time_ms": ms}),
            _ => serde_json::json!({"kind": "api_request", "occurred_at": t, "endpoint": "/a", "method": "GET",
                "status_code": if ms.is_multiple_of(4) { 500 } else { 200 }, "response_time_ms": ms}),
        };
        let now = parse_timestamp("2026-11-21T12:00:00Z").unwrap();
        validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
    }

    fn stored(events: &[Event]) -> (Body, Item) {
        let keys: Vec<ItemKey> = (0..events.len()).map(|i| ItemKey { pk: "p".into(), sk: format!("s{i}") }).collect();
        // Received at the hour's 50th minute: later events are placed ahead.
        let at = parse_timestamp("2026-11-21T10:50:00Z").unwrap().timestamp_millis();
        let body = Body::of(at, keys.iter().zip(events));
        let mut item = Item::new();
        body.attributes(&mut item).unwrap();
        (body, item)
    }

    proptest! {
        /// A delta reads back the rollup, the fives and the events placed
        /// ahead it was written with, whether its fives are written out or
        /// named as its rollup.
        #[test]
        fn a_delta_body_reads_back_as_written(
            events in proptest::collection::vec((0u8..3, 0u32..3600, 0u32..5000), 0..40),
            one_five in any::<bool>(),
        ) {
            let events: Vec<Event> = events.into_iter().map(|(k, s, ms)| ev(k, if one_five { 600 + s % 300 } else { s }, ms)).collect();
            let (body, item) = stored(&events);
            let read = Body::read(&item).unwrap();
            prop_assert_eq!(&read.rollup, &body.rollup);
            prop_assert_eq!(&read.recent, &body.recent);
            prop_assert_eq!(read.recent_from, body.recent_from);
            prop_assert_eq!(&read.ahead, &body.ahead);
        }
    }

    /// A batch of events in one five writes its rollup once.
    #[test]
    fn one_fives_requests_are_not_written_twice() {
        let requests: Vec<Event> = (0..20).map(|i| ev(2, 600 + i, 100 + i)).collect();
        let (_, item) = stored(&requests);
        assert_eq!(item.num::<u8>(RECENT), Some(2), "the five named");
        let mut with_call = requests.clone();
        with_call.push(ev(1, 610, 50));
        let (_, item) = stored(&with_call);
        assert_eq!(item.num::<u8>(RECENT), Some(2), "an external call is not in the fives: the five still named");
        with_call.push(ev(2, 1200, 7));
        let (_, item) = stored(&with_call);
        assert!(item.get(RECENT).is_some_and(AttributeValue::is_b), "events in two fives: written out");
        assert!(matches!(Body::read(&[(RECENT.to_owned(), n(12))].into()), Err(StoreError::Corrupt(_))), "no such five");
    }
}

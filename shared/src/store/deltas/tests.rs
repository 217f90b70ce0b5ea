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
        let v = match kind % 4 {
            0 => serde_json::json!({"kind": "activity", "occurred_at": t, "user_id": format!("u{}", ms % 5), "action": "login"}),
            3 => serde_json::json!({"kind": "auth", "occurred_at": t, "user_id": format!("u{}", ms % 3), "event_type": "login",
                "success": ms.is_multiple_of(2), "ip_address": "198.51.100.7"}),
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
            events in proptest::collection::vec((0u8..4, 0u32..3600, 0u32..5000), 0..40),
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
        let rollup = (ROLLUP.to_owned(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"{}".to_vec())));
        let named = |five: u8| Body::read(&[(RECENT.to_owned(), n(five)), (RECENT_FROM.to_owned(), n(0)), rollup.clone()].into()).unwrap();
        assert_eq!(named(3).recent_from, Some(0));
        assert_eq!(named(12).recent_from, None, "no such five: the fives cannot say");
        let apart = Body::read(&[(RECENT.to_owned(), n(3)), (RECENT_FROM.to_owned(), n(0))].into()).unwrap();
        assert_eq!(apart.recent_from, None, "a five named away from its rollup (a partial in parts) cannot say");
        let bad = Body::read(
            &[
                (RECENT.to_owned(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"{".to_vec()))),
                (RECENT_FROM.to_owned(), n(0)),
            ]
            .into(),
        );
        assert_eq!(bad.unwrap().recent_from, None, "fives that do not read: the body still does");
    }

    fn at(s: &str) -> i64 {
        parse_timestamp(s).unwrap().timestamp_millis()
    }

    /// A partial keeps the fives ending after its cut less 75 minutes, and
    /// when it has none to keep (dropped, too heavy, written before fives)
    /// starts them again from the first five after its cut.
    #[test]
    fn a_partial_keeps_its_last_fives_and_starts_them_again_after_a_drop() {
        let hour = "2026-11-21T10";
        let mut body = Body::default();
        for five in 0..12 {
            body.recent.insert(five, Rollup::default());
        }
        body.keep_recent(hour, at("2026-11-21T10:55:00Z"));
        assert_eq!(body.recent_from, Some(0), "a cut inside the hour keeps every five");
        body.keep_recent(hour, at("2026-11-21T11:20:00Z"));
        assert_eq!(body.recent_from, Some(1), "10:05 to 10:10 ends after 10:05");
        assert_eq!(body.recent.keys().next(), Some(&1));
        body.keep_recent(hour, at("2026-11-21T11:20:00.001Z"));
        assert_eq!(body.recent_from, Some(1), "10:05:00.001 is in the five 1");
        body.recent_from = None;
        body.keep_recent(hour, at("2026-11-21T10:40:00Z"));
        assert_eq!((body.recent_from, body.recent.len()), (Some(9), 0), "an event at 10:40:00.000 is in the five 8, at or before the cut");
        body.recent_from = None;
        body.keep_recent(hour, at("2026-11-21T09:59:00Z"));
        assert_eq!(body.recent_from, Some(0), "a cut before the hour: every five");
        let mut heavy = Body::default();
        heavy.recent.insert(2, many_users(3000, 600));
        heavy.keep_recent(hour, at("2026-11-21T10:14:00Z"));
        assert_eq!((heavy.recent_from, heavy.recent.len()), (Some(3), 0), "past 96 KB: again from 10:15");
        // The oldest go first: the newest fives that weigh 96 KB stay.
        let mut four = Body::default();
        for five in 0..4u8 {
            four.recent.insert(five, many_users(650, 300 * u32::from(five)));
        }
        let one = serde_json::to_vec(&four.recent[&0]).unwrap().len();
        assert!(one * 4 > 96 * 1024 && one < 48 * 1024, "{one} bytes a five");
        four.keep_recent(hour, at("2026-11-21T10:20:00Z"));
        let kept: Vec<u8> = four.recent.keys().copied().collect();
        assert_eq!(kept.last(), Some(&3), "the newest kept");
        assert_eq!(four.recent_from, kept.first().copied(), "from the oldest kept");
        assert!(kept.len() >= 2 && serde_json::to_vec(&four.recent).unwrap().len() <= 96 * 1024, "{kept:?}");
    }

    fn user_event(i: usize, second: u32) -> Event {
        let at = parse_timestamp("2026-11-21T10:00:00Z").unwrap() + Duration::seconds(i64::from(second));
        let v = serde_json::json!({"kind": "activity", "occurred_at": at.to_rfc3339(), "user_id": format!("user-{i:06}-of-a-tenant"), "action": "login"});
        let now = parse_timestamp("2026-11-21T12:00:00Z").unwrap();
        validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
    }

    fn many_users(users: usize, second: u32) -> Rollup {
        let mut r = Rollup::default();
        (0..users).for_each(|i| r.add(&user_event(i, second)));
        r
    }

    /// A body too large for an item with its fives drops them, and is
    /// raw only when its rollup alone outgrows one.
    #[test]
    fn a_body_too_large_with_its_fives_drops_them_before_going_raw() {
        let size = |users: usize| {
            let events: Vec<Event> = (0..users).map(|i| user_event(i, if i % 2 == 0 { 60 } else { 900 })).collect();
            let (_, item) = stored(&events);
            crate::store::events::item_size(&item)
        };
        // Users to fill about 200 KB of rollup: over the limit with the fives, under it without.
        let per_user = size(2000) / 2 / 2000;
        let users = 200 * 1024 / per_user;
        let events: Vec<Event> = (0..users).map(|i| user_event(i, if i % 2 == 0 { 60 } else { 900 })).collect();
        let keys: Vec<ItemKey> = (0..events.len()).map(|i| ItemKey { pk: "p".into(), sk: format!("s{i}") }).collect();
        let body = Body::of(at("2026-11-21T10:50:00Z"), keys.iter().zip(&events));
        let (values, raw) = super::super::write::settled_values(&body).unwrap();
        assert!(!raw, "the rollup alone fits");
        assert!(values.contains_key(ROLLUP) && !values.contains_key(RECENT) && !values.contains_key(RECENT_FROM));
        assert_eq!(Body::read(&values).unwrap().rollup, body.rollup);
        let small = Body::of(at("2026-11-21T10:50:00Z"), keys.iter().zip(&events).take(10));
        assert!(super::super::write::settled_values(&small).unwrap().0.contains_key(RECENT), "a small body keeps them");
        let events: Vec<Event> = (0..users * 2).map(|i| user_event(i, 60)).collect();
        let keys: Vec<ItemKey> = (0..events.len()).map(|i| ItemKey { pk: "p".into(), sk: format!("s{i}") }).collect();
        let huge = Body::of(at("2026-11-21T10:50:00Z"), keys.iter().zip(&events));
        assert!(super::super::write::settled_values(&huge).unwrap().1, "a rollup of 400 KB is raw");
    }
}

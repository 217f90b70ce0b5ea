use super::*;
use crate::time::parse_timestamp;
use crate::validate::{Context, validate_event};

fn event(v: serde_json::Value) -> Event {
    let now = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
    validate_event(&v.to_string(), &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap()
}

/// The contract's example event: a report outcome, metadata, an IP and a
/// user agent. It must stay under 1 KB so that it costs one write unit on
/// the table and one on each index: 3 in all.
#[test]
fn a_typical_report_event_costs_at_most_three_write_units() {
    let e = event(serde_json::json!({
        "event_id": "01JDAZ3K7Q9V2M4N6P8R0S2T4V", "kind": "activity", "occurred_at": "2026-11-21T09:59:58Z",
        "user_id": "u-42", "action": "generate_report", "client_id": "c-7", "report_id": "r-9",
        "description": "Generated cost report", "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "metadata": {"source": "web"},
        "report": {"status": "completed", "processing_time_ms": 8421,
                   "categories": {"cost": 12, "security": 3, "reliability": 1, "operational_excellence": 0, "performance": 4},
                   "impact": {"high": 2, "medium": 9, "low": 9}, "estimated_monthly_savings": 1830.5}
    }));
    let mut w = event_write("tenant-1", e, 8, &Retention::default());
    w.item.insert(WRITER, s(writer_id()));
    w.identity.insert(WRITER, s(writer_id()));
    assert!(item_size(&w.item) < 1024, "{} bytes", item_size(&w.item));
    assert!(w.item.contains_key(GSI1_PK) && !w.item.contains_key("gsi2pk"), "the action partition is the table's own");
    assert_eq!((write_units(&w.identity), write_units(&w.item)), (1, 2));
    assert_eq!(w.write_units(), 3, "identity, item, user index");
    assert!(!w.journal);
}

#[test]
fn api_request_logs_cost_two_units_identity_included() {
    let e = event(serde_json::json!({"kind": "api_request", "endpoint": "/api/clients/{id}", "method": "GET", "status_code": 200,
        "response_time_ms": 12.5, "query_params": {"page": "2"}, "ip_address": "203.0.113.7"}));
    let w = event_write("tenant-1", e, 8, &Retention::default());
    assert!(!w.item.contains_key("gsi1pk") && !w.item.contains_key("gsi2pk"));
    assert_eq!(w.write_units(), 2);
}

/// A skewed sender's event is placed at its corrected time; its
/// identity keeps the sender's own time, which a resend repeats.
#[test]
fn items_are_placed_at_the_corrected_time_and_identified_by_the_senders() {
    let now = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
    let ctx = |sent: &str| Context { received_at: now, sent_at: parse_timestamp(sent), retention: Retention::default() };
    let raw = serde_json::json!({"event_id": "e-1", "kind": "auth", "occurred_at": "1970-01-01T00:00:00Z", "event_type": "login", "success": true})
        .to_string();
    let first = event_write("t", validate_event(&raw, &ctx("1970-01-01T00:00:05Z")).unwrap(), 8, &Retention::default());
    assert_eq!(first.placed_at, parse_timestamp("2026-11-21T09:59:55Z").unwrap());
    assert!(first.pk().starts_with("T#t#E#2026-11-21T09#"), "{}", first.pk());
    assert_eq!(first.identity_key().pk, format!("T#t#I#1970-01-01T00#{}", keys::shard_of("e-1", 8)));
    // The resend: another sent_at, another delay; the same identity.
    let resend = event_write("t", validate_event(&raw, &ctx("1970-01-01T00:01:07Z")).unwrap(), 8, &Retention::default());
    assert_ne!(resend.key(), first.key());
    assert_eq!(resend.identity_key(), first.identity_key());
    let mut moved = resend.clone();
    moved.move_to(&first.key());
    assert_eq!((moved.key(), moved.placed_at), (first.key(), first.placed_at));
    let back: StoredEvent = serde_dynamo::from_item(moved.item.into_item()).unwrap();
    assert_eq!(back.event.occurred_at, first.placed_at);
    assert_eq!(back.event.client_occurred_at, parse_timestamp("1970-01-01T00:00:00Z"));
    assert_eq!(back.expires_at, (first.placed_at + Duration::days(90)).timestamp());
}

#[test]
fn an_event_a_quarter_of_its_retention_late_is_journaled() {
    let ev = |age_days: i64| {
        let at = (parse_timestamp("2026-11-21T10:00:00Z").unwrap() - Duration::days(age_days)).to_rfc3339();
        event(
            serde_json::json!({"kind": "api_request", "occurred_at": at, "endpoint": "/a", "method": "GET", "status_code": 200, "response_time_ms": 1}),
        )
    };
    assert!(!event_write("t", ev(7), 8, &Retention::default()).journal, "7 of 30 days");
    let w = event_write("t", ev(8), 8, &Retention::default());
    assert!(w.journal, "8 of 30 days");
    let copy = w.journal_copy("t");
    assert_eq!(copy[PK].as_s().unwrap(), &keys::journal_pk("t", &time::hour_label(w.placed_at)));
    assert_eq!(copy[SK], w.item[SK]);
    assert_eq!(w.write_units(), 3);
}

/// Every kind with every optional field: what `item::put_event` writes
/// is what serde_dynamo reads back as the same event.
#[test]
fn items_round_trip_through_serde_dynamo() {
    let now = crate::time::parse_timestamp("2026-11-21T10:00:00Z").unwrap();
    let skewed = Context { received_at: now, sent_at: parse_timestamp("2026-11-21T10:02:00.5Z"), retention: Retention::default() };
    let envelope = serde_json::json!({"occurred_at": "2026-11-21T10:01:59.250Z", "user_id": "u-1", "ip_address": "::1",
        "user_agent": "u".repeat(600), "metadata": {"n": 1, "neg": -3, "f": 1.5, "list": ["a", 2, true], "none": null, "deep": {"x": {"y": "z"}}}});
    let kinds = [
        serde_json::json!({"kind": "activity", "action": "generate_report", "description": "d", "client_id": "c", "report_id": "r",
            "report": {"status": "failed", "processing_time_ms": 7, "categories": {"cost": 1, "security": 0},
                       "impact": {"high": 1, "medium": 2, "low": 3}, "estimated_monthly_savings": 0.1}}),
        serde_json::json!({"kind": "activity", "action": "my_custom_thing"}),
        serde_json::json!({"kind": "api_request", "endpoint": "/a", "method": "delete", "status_code": 503, "response_time_ms": 0.25,
            "request_size": 1, "response_size": 2, "query_params": {"q": "v", "token": "t"}, "error_message": "boom", "sample_rate": 0.1}),
        serde_json::json!({"kind": "auth", "event_type": "reset_password", "success": false, "error_message": "nope"}),
        serde_json::json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "method": "POST", "status_code": 429,
            "response_time_ms": 900, "cost_estimate": 0.0125, "request_size": 10, "response_size": 20, "error_message": "slow down"}),
    ];
    for body in kinds {
        let mut v = envelope.clone();
        v.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        let e = validate_event(&v.to_string(), &skewed).unwrap();
        assert!(e.client_occurred_at.is_some() && e.user_agent_truncated);
        let w = event_write("t", e.clone(), 8, &Retention::default());
        let back: StoredEvent = serde_dynamo::from_item(w.item.to_item()).unwrap();
        assert_eq!(back.event, e, "{}", e.kind().as_str());
        assert_eq!((back.pk.as_str(), back.sk.as_str()), (w.pk(), w.sk()));
        assert_eq!(back.expires_at, expires_at(&e, &Retention::default()));
    }
    let e = event(serde_json::json!({"kind": "external_call", "service": "gemini", "endpoint": "/v1", "response_time_ms": 1}));
    let back: StoredEvent = serde_dynamo::from_item(event_write("t", e.clone(), 8, &Retention::default()).item.into_item()).unwrap();
    assert_eq!(back.event, e, "the minimal form too");
    assert_eq!(back.gsi2pk, None);
}

mod retries {
    use super::super::*;
    use std::collections::BTreeSet;

    use crate::config::StoreConfig;
    use crate::store::{Table, client_config};
    use crate::time::parse_timestamp;
    use crate::validate::{Context, validate_event};
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::config::{Credentials, Region, SharedCredentialsProvider};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;

    const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
    const REFUSED: &str =
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}"#;
    const SERVER: &str = r#"{"__type":"InternalServerError"}"#;
    const WRITER_ID: &str = "0123456789abcdef";

    /// A store whose HTTP client answers with the given (status, body) in order.
    fn store(answers: &[(u16, &str)]) -> (Table, StaticReplayClient) {
        let events = answers
            .iter()
            .map(|(status, body)| {
                ReplayEvent::new(
                    http::Request::builder().uri("http://localhost:8000/").body(SdkBody::empty()).unwrap(),
                    http::Response::builder()
                        .status(*status)
                        .header("content-type", "application/x-amz-json-1.0")
                        .body(SdkBody::from(*body))
                        .unwrap(),
                )
            })
            .collect();
        let http = StaticReplayClient::new(events);
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(crate::store::behavior_version())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("a", "b", None, None, "test")))
            .endpoint_url("http://localhost:8000")
            .http_client(http.clone())
            .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().unwrap())
            .build();
        let cfg = StoreConfig { max_attempts: 4, ..StoreConfig::default() };
        (Table::new(Client::from_conf(client_config(&shared, &cfg)), cfg), http)
    }

    fn write() -> EventWrite {
        let now = parse_timestamp("2026-11-30T10:00:00Z").unwrap();
        let raw = r#"{"event_id": "e-1", "kind": "auth", "occurred_at": "2026-11-30T09:59:00Z", "event_type": "login", "success": true}"#;
        let e = validate_event(raw, &Context { received_at: now, sent_at: None, retention: Retention::default() }).unwrap();
        event_write("t", e, 8, &Retention::default())
    }

    async fn put(store: &Table) -> Result<Vec<PutOutcome>, StoreError> {
        let marked: BTreeSet<String> = ["2026-11-30T09".to_string()].into();
        store.events().put("t", vec![write()], WRITER_ID, &marked, None).await
    }

    /// A condition failure carrying the item there (ALL_OLD): written by
    /// `writer`, an identity pointing at the write's own item.
    fn exists(writer: &str) -> String {
        let w = write();
        format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"exists","Item":{{"pk":{{"S":"p"}},"sk":{{"S":"s"}},"w":{{"S":"{writer}"}},"ek":{{"S":"{}"}},"es":{{"S":"{}"}}}}}}"#,
            w.pk(),
            w.sk()
        )
    }

    #[tokio::test]
    async fn throttled_writes_are_retried_then_stored() {
        let (store, http) = store(&[(400, THROTTLED), (400, THROTTLED), (200, "{}"), (200, "{}")]);
        assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
        assert_eq!(http.actual_requests().count(), 4, "the identity three times, then the item");
    }

    #[tokio::test]
    async fn throttling_that_never_ends_is_bounded_and_reported() {
        let (store, http) = store(&[(400, THROTTLED); 6]);
        let e = put(&store).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
        assert!(e.to_string().contains("ThrottlingException"), "the log names the cause: {e}");
        assert_eq!(http.actual_requests().count(), 4, "max_attempts bounds the retries");
    }

    #[tokio::test]
    async fn an_existing_identity_and_item_is_a_duplicate_and_not_retried() {
        let other = exists("another-request");
        let (store, http) = store(&[(400, &other), (400, &other)]);
        assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Duplicate]);
        assert_eq!(http.actual_requests().count(), 2);
    }

    #[tokio::test]
    async fn a_resend_whose_first_request_never_wrote_the_item_stores_it() {
        let other = exists("another-request");
        let (store, http) = store(&[(400, &other), (200, "{}")]);
        assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
        let sent: Vec<String> =
            http.actual_requests().map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned()).collect();
        assert!(sent[1].contains(&format!(r#""sk":{{"S":"{}"}}"#, write().sk())), "written where the identity points: {}", sent[1]);
    }

    #[tokio::test]
    async fn a_retry_that_finds_its_own_write_reports_it_stored() {
        // The identity's first attempt landed but its answer did not;
        // the item's first attempt too.
        let own = exists(WRITER_ID);
        let (store, http) = store(&[(500, SERVER), (400, &own), (500, SERVER), (400, &own)]);
        assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
        assert_eq!(http.actual_requests().count(), 4);
        let sent = http.actual_requests().next().unwrap().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned());
        assert!(sent.unwrap().contains(r#""ReturnValuesOnConditionCheckFailure":"ALL_OLD""#));
    }

    #[tokio::test]
    async fn an_item_storage_refuses_is_unstorable_and_its_identity_taken_back() {
        let (store, http) = store(&[(200, "{}"), (400, REFUSED), (200, "{}")]);
        let out = put(&store).await.unwrap();
        assert!(matches!(&out[0], PutOutcome::Unstorable(why) if why.contains("maximum allowed size")), "{out:?}");
        assert_eq!(http.actual_requests().count(), 3, "identity, item (refused, not retried), identity deleted");
        let sent = http.actual_requests().nth(2).unwrap().headers().get("x-amz-target").map(str::to_owned);
        assert_eq!(sent.as_deref(), Some("DynamoDB_20120810.DeleteItem"));
    }

    #[tokio::test]
    async fn server_errors_are_retried_too() {
        let (store, http) = store(&[(500, SERVER), (200, "{}"), (200, "{}")]);
        assert_eq!(put(&store).await.unwrap(), vec![PutOutcome::Stored]);
        assert_eq!(http.actual_requests().count(), 3);
    }
}

/// Reading an item back by hand agrees with serde_dynamo on every item,
/// whole, projected, or with attributes of the wrong type: where the hand
/// reader reads it, serde_dynamo reads the same event; where it does not,
/// serde_dynamo answers (an event or an error).
mod read_back {
    use super::super::super::item::by_hand;
    use super::*;
    use crate::store::read_event;
    use aws_sdk_dynamodb::types::AttributeValue;
    use proptest::prelude::*;

    fn body(kind: u8, opts: u16) -> serde_json::Value {
        let on = |bit: u16| opts & (1 << bit) != 0;
        let mut v = match kind % 4 {
            0 => serde_json::json!({"kind": "activity", "action": if on(0) { "generate_report" } else { "my_thing" }}),
            1 => {
                serde_json::json!({"kind": "api_request", "endpoint": "/a/{id}", "method": "GET", "status_code": 404, "response_time_ms": 12.5})
            }
            2 => {
                let types = ["signup", "login", "login_failed", "logout", "reset_password", "token_refresh"];
                serde_json::json!({"kind": "auth", "event_type": types[usize::from(opts >> 10) % types.len()], "success": on(1)})
            }
            _ => serde_json::json!({"kind": "external_call", "service": "openai", "endpoint": "/v1/chat", "response_time_ms": 900}),
        };
        let o = v.as_object_mut().unwrap();
        let common: [(&str, serde_json::Value); 4] = [
            ("user_id", "u-1".into()),
            ("ip_address", "203.0.113.9".into()),
            ("user_agent", "u".repeat(if on(13) { 600 } else { 20 }).into()),
            ("metadata", serde_json::json!({"n": 1, "list": ["a", 2]})),
        ];
        let own: Vec<(&str, serde_json::Value)> = match kind % 4 {
            0 => vec![("client_id", "c-1".into()), ("description", "d".into()), ("report_id", "r-1".into())],
            1 => vec![
                ("request_size", 10.into()),
                ("response_size", 20.into()),
                ("query_params", serde_json::json!({"q": "v"})),
                ("error_message", "boom".into()),
                ("sample_rate", 0.25.into()),
            ],
            2 => vec![("error_message", "nope".into())],
            _ => vec![
                ("method", "POST".into()),
                ("status_code", 429.into()),
                ("cost_estimate", 0.0125.into()),
                ("request_size", 10.into()),
                ("response_size", 20.into()),
                ("error_message", "slow".into()),
                ("model", "gpt".into()),
                ("input_tokens", 5.into()),
                ("output_tokens", 7.into()),
            ],
        };
        for (i, (k, x)) in common.into_iter().chain(own).enumerate() {
            if on(i as u16 + 2) {
                o.insert(k.to_owned(), x);
            }
        }
        if kind.is_multiple_of(4) && on(0) && on(15) {
            o.insert(
                "report".into(),
                serde_json::json!({"status": if on(14) { "completed" } else { "failed" }, "processing_time_ms": 7, "categories": {"cost": 2},
                "impact": {"high": 1}, "estimated_monthly_savings": 1.5}),
            );
        }
        v
    }

    proptest! {
        #[test]
        fn the_hand_reader_agrees_with_serde_dynamo(kind in 0u8..4, opts in any::<u16>(), drop in any::<u32>(), retype in any::<u32>()) {
            let now = parse_timestamp("2026-11-21T10:00:00Z").unwrap();
            // A sender's clock ahead of ours, half the time: the event is
            // corrected and keeps the time it was sent with.
            let sent_at = (drop >> 31 == 1).then(|| now + chrono::Duration::minutes(2));
            let ctx = Context { received_at: now, sent_at, retention: Retention::default() };
            let mut v = body(kind, opts);
            v["occurred_at"] = "2026-11-21T09:59:00Z".into();
            if kind.is_multiple_of(4) {
                v["user_id"] = "u-1".into(); // activity names its user
            }
            // A body the contract refuses is no item to read back.
            let e = validate_event(&v.to_string(), &ctx).unwrap_or_else(|p| panic!("{v}: {p:?}"));
            let whole = event_write("t", e.clone(), 8, &Retention::default()).item.into_item();
            if e.metadata.is_none() {
                prop_assert_eq!(by_hand(&whole), Some(e.clone()), "every attribute put_event writes is read back by hand");
            }
            prop_assert_eq!(read_event(whole.clone()).unwrap(), e);
            // Projected and damaged items: the same answer either way.
            let mut item = whole;
            // Sorted: the damage depends on the case, not on the map's order.
            let mut names: Vec<String> = item.keys().cloned().collect();
            names.sort();
            for (i, name) in names.iter().enumerate() {
                if drop & (1 << (i % 32)) != 0 && i % 3 == 0 {
                    item.remove(name);
                } else if retype & (1 << (i % 32)) != 0 && i % 5 == 0 {
                    let swapped = match &item[name] {
                        // DynamoDB holds only numbers in N.
                        AttributeValue::S(x) if x.parse::<f64>().is_ok() => AttributeValue::N(x.clone()),
                        AttributeValue::S(_) => AttributeValue::Bool(true),
                        AttributeValue::N(x) => AttributeValue::S(x.clone()),
                        _ => AttributeValue::Null(true),
                    };
                    item.insert(name.clone(), swapped);
                }
            }
            let serde: Result<Event, _> = serde_dynamo::from_item(item.clone());
            if let Some(hand) = by_hand(&item) {
                prop_assert_eq!(Some(hand), serde.as_ref().ok().cloned(), "the hand reader read what serde_dynamo reads: {:?} {:?}", serde.as_ref().err(), item);
            }
            prop_assert_eq!(read_event(item).ok(), serde.ok());
        }
    }
}

/// A batch's receive time written once gives the item what writing it
/// per event gives; an event received at another instant keeps its own.
#[test]
fn the_batch_receive_time_is_the_events_own() {
    let e = event(serde_json::json!({"event_id": "r-1", "kind": "auth", "event_type": "login", "success": true}));
    let own = event_write("t", e.clone(), 8, &Retention::default()).item;
    let batch = Received::new(e.received_at);
    assert_eq!(event_write_received("t", e.clone(), 8, &Retention::default(), Some(&batch)).item, own);
    let other = Received::new(e.received_at + Duration::seconds(1));
    let w = event_write_received("t", e.clone(), 8, &Retention::default(), Some(&other));
    assert_eq!(w.item.str("received_at"), own.str("received_at"));
    assert!(own.str("received_at").is_some());
}

proptest::proptest! {
    /// The expiry in seconds is chrono's sum read as a timestamp, for any
    /// time and retention chrono can add.
    #[test]
    fn expiry_is_the_time_plus_the_days(ms in -8_000_000_000_000_000i64..8_000_000_000_000_000i64, days in 0u32..2_000_000) {
        let Some(t) = DateTime::from_timestamp_millis(ms) else { return Ok(()) };
        let sum = t.checked_add_signed(Duration::days(i64::from(days)));
        // Only where the sum is out of chrono's range does chrono have no answer.
        proptest::prop_assume!(sum.is_some());
        proptest::prop_assert_eq!(expiry(t, days), sum.map(|s| s.timestamp()).unwrap_or_default());
    }
}

//! The pure rules of sending: how events are cut into batches the backend
//! accepts, how a batch body is written, and what an answer means.

use std::ops::Range;
use std::time::Duration;

use analytics_contract::validate::{PERMANENT_REJECTIONS, limits};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::transport::Reply;

/// Bytes of `{"sent_at":"…","events":[` and `]}` around the events, with
/// room to spare.
const ENVELOPE_BYTES: usize = 96;

/// Cuts events (given by their serialized sizes) into consecutive ranges
/// that each stay within the contract's 413 limits: at most
/// [`limits::MAX_EVENTS`] events and [`limits::MAX_BODY_BYTES`] bytes.
/// Every size must already be at most [`limits::MAX_EVENT_BYTES`].
pub fn split(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, ENVELOPE_BYTES);
    for (i, &size) in sizes.iter().enumerate() {
        let add = size + 1; // the comma
        if i > start && (i - start == limits::MAX_EVENTS || bytes + add > limits::MAX_BODY_BYTES) {
            out.push(start..i);
            start = i;
            bytes = ENVELOPE_BYTES;
        }
        bytes += add;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// The request body: the batch's `sent_at` (the send time of this very
/// attempt, so the backend's clock-skew correction measures this attempt's
/// delay) and the events, already serialized.
pub fn body<'a>(events: impl ExactSizeIterator<Item = &'a str>, sent_at: DateTime<Utc>) -> Bytes {
    let mut b = String::with_capacity(ENVELOPE_BYTES + events.len() * 320);
    b.push_str("{\"sent_at\":\"");
    b.push_str(&sent_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    b.push_str("\",\"events\":[");
    for (i, e) in events.enumerate() {
        if i > 0 {
            b.push(',');
        }
        b.push_str(e);
    }
    b.push_str("]}");
    Bytes::from(b)
}

/// What an answer means for the batch that got it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Stored (at least partly). `invalid` lists the events the backend
    /// refused for good (by index in the batch), `again` those it did not
    /// store for another reason: only those are sent again.
    Stored { accepted: usize, duplicates: usize, invalid: Vec<(usize, String)>, again: Vec<usize> },
    /// A 400: nothing in the batch can be stored; resending cannot help.
    Invalid(String),
    /// A 413: split the batch and send the halves.
    TooLarge,
    /// 503, another 5xx, 429, 408, 401/403 (a token may rotate), other
    /// unexpected answers and network errors: the same batch is safe to
    /// send again later.
    Retry { retry_after: Option<Duration>, reason: String },
}

#[derive(Deserialize)]
struct Outcome {
    accepted: usize,
    #[serde(default)]
    duplicates: usize,
    #[serde(default)]
    rejected: Vec<Rejected>,
}

#[derive(Deserialize)]
struct Rejected {
    index: usize,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads an answer to a batch of `len` events.
pub fn classify(reply: &Reply, len: usize) -> Verdict {
    let text = || String::from_utf8_lossy(&reply.body).chars().take(300).collect::<String>();
    match reply.status {
        200..=299 => match serde_json::from_slice::<Outcome>(&reply.body) {
            Ok(o) => {
                let (mut invalid, mut again) = (Vec::new(), Vec::new());
                for r in o.rejected.into_iter().filter(|r| r.index < len) {
                    // Wrong in itself or unstorable: the same bytes would
                    // get the same answer, so they are dropped and counted.
                    if r.code.is_empty() || PERMANENT_REJECTIONS.contains(&r.code.as_str()) {
                        invalid.push((r.index, r.message));
                    } else {
                        again.push(r.index);
                    }
                }
                Verdict::Stored { accepted: o.accepted, duplicates: o.duplicates, invalid, again }
            }
            // A 2xx means the backend took the batch; an unreadable body is
            // a proxy's doing, not a reason to send it all again.
            Err(_) => Verdict::Stored { accepted: len, duplicates: 0, invalid: vec![], again: vec![] },
        },
        400 => Verdict::Invalid(text()),
        413 => Verdict::TooLarge,
        status => Verdict::Retry { retry_after: reply.retry_after, reason: format!("HTTP {status}: {}", text()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply { status, retry_after: None, body: Bytes::from(body.to_owned()) }
    }

    #[test]
    fn batches_stay_within_the_event_count() {
        let ranges = split(&[100; 1234]);
        assert_eq!(ranges, vec![0..500, 500..1000, 1000..1234]);
    }

    #[test]
    fn batches_stay_within_the_body_size() {
        let sizes = vec![limits::MAX_EVENT_BYTES; 100];
        let ranges = split(&sizes);
        assert!(ranges.len() >= 4);
        for r in &ranges {
            let total: usize = sizes[r.clone()].iter().map(|s| s + 1).sum::<usize>() + ENVELOPE_BYTES;
            assert!(total <= limits::MAX_BODY_BYTES, "{r:?} is {total} bytes");
        }
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 100, "every event in exactly one batch");
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn a_body_is_json_with_sent_at() {
        let now = Utc::now();
        let b = body(["{\"a\":1}", "{\"b\":2}"].into_iter(), now);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["events"].as_array().unwrap().len(), 2);
        let sent = DateTime::parse_from_rfc3339(v["sent_at"].as_str().unwrap()).unwrap();
        assert!((sent.with_timezone(&Utc) - now).num_microseconds().unwrap().abs() <= 1);
    }

    #[test]
    fn answers_are_read_by_the_contract() {
        let ok = reply(
            202,
            r#"{"accepted":2,"duplicates":1,"rejected":[{"index":3,"code":"validation_failed","message":"bad"},{"index":4,"code":"unavailable","message":"later"},{"index":1,"code":"unstorable","message":"item too large"}],"received_at":"x"}"#,
        );
        assert_eq!(
            classify(&ok, 5),
            Verdict::Stored { accepted: 2, duplicates: 1, invalid: vec![(3, "bad".into()), (1, "item too large".into())], again: vec![4] },
            "validation_failed and unstorable are dropped, the rest resent"
        );
        assert!(matches!(classify(&reply(400, "{}"), 5), Verdict::Invalid(_)));
        assert_eq!(classify(&reply(413, ""), 5), Verdict::TooLarge);
        for s in [503, 500, 502, 429, 401, 404] {
            assert!(matches!(classify(&reply(s, ""), 5), Verdict::Retry { .. }), "{s}");
        }
        let mut r = reply(503, "");
        r.retry_after = Some(Duration::from_secs(2));
        assert!(matches!(classify(&r, 1), Verdict::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(2)));
        assert!(matches!(classify(&reply(202, "not json"), 3), Verdict::Stored { accepted: 3, .. }));
    }
}

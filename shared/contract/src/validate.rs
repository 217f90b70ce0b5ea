//! The rules for what callers send: limits, validation, sanitizing and
//! clock-skew correction. Pure functions, so every rule is unit-tested here
//! and used unchanged by the ingest function, the seeder and the client.
//!
//! An event is read as sent ([`wire`]: a type error stops there, reported
//! with its JSON path), its envelope checked here, then its kind's fields
//! by that kind's validator (`activity`, `api_request`, `auth`,
//! `external_call`: each next to its field list); every problem is
//! reported, each with its path inside the event. The single-field rules
//! are in `checker`, the limits in [`limits`], the secrets' redaction in
//! [`redact`].

mod activity;
mod api_request;
mod auth;
mod checker;
pub use checker::http_method;
mod batch;
mod external_call;
pub mod limits;
pub use batch::read_once;
pub mod redact;
pub mod wire;

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::config::Retention;
use crate::event::{Event, EventKind};
use crate::time::parse_timestamp;
use checker::{Checker, clip};
use limits::*;
pub use redact::{REDACTED, is_sensitive_key, sanitize_json_map, sanitize_query_params};

/// The code of a rejected event that is wrong in itself (its problems listed).
pub const VALIDATION_FAILED: &str = "validation_failed";
/// The code of an event DynamoDB refused for what it holds.
pub const UNSTORABLE: &str = "unstorable";
/// The codes of events refused for good: a sender drops and counts them
/// instead of sending them again, since the same bytes get the same answer.
pub const PERMANENT_REJECTIONS: [&str; 2] = [VALIDATION_FAILED, UNSTORABLE];

/// True for a value the validator takes as an id (`user_id`, `client_id`,
/// `report_id`, ...): senders that derive ids (from a path, a header) keep
/// only those, rather than have the whole event refused.
pub fn is_valid_id(s: &str) -> bool {
    checker::text_problem(s, MAX_ID_CHARS).is_none()
}

/// One thing wrong with an event; `path` is relative to the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// What validation needs to know besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub received_at: DateTime<Utc>,
    /// The batch's `sent_at`, for clock-skew correction.
    pub sent_at: Option<DateTime<Utc>>,
    pub retention: Retention,
}

/// Retention in days of a kind of event.
pub fn retention_days(kind: EventKind, r: &Retention) -> u32 {
    match kind {
        EventKind::ApiRequest => r.api_log_days,
        EventKind::Activity | EventKind::Auth | EventKind::ExternalCall => r.events_days,
    }
}

/// The stored time: `received_at - (sent_at - occurred_at)`.
pub fn correct_clock_skew(occurred_at: DateTime<Utc>, sent_at: Option<DateTime<Utc>>, received_at: DateTime<Utc>) -> DateTime<Utc> {
    match sent_at {
        Some(sent) => received_at - (sent - occurred_at),
        None => occurred_at,
    }
}

/// `[A-Za-z0-9._:-]{1,100}`.
pub fn valid_event_id(id: &str) -> bool {
    (1..=MAX_EVENT_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `^[a-z][a-z0-9_]{0,63}$`: actions and report categories.
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=MAX_NAME_CHARS).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// Cuts a string to at most `max` characters; true when it was cut.
pub fn truncate_chars(s: &mut String, max: usize) -> bool {
    match s.char_indices().nth(max) {
        Some((idx, _)) => {
            s.truncate(idx);
            true
        }
        None => false,
    }
}

/// The kind named by `kind`, or the problem with it.
fn kind_of(kind: Option<&str>) -> Result<EventKind, Problem> {
    const KINDS: &str = "activity, api_request, auth, external_call";
    match kind {
        None => Err(Problem::new("kind", format!("is required: one of {KINDS}"))),
        Some(k) => EventKind::parse(k).ok_or_else(|| Problem::new("kind", format!("unknown kind `{}`: expected one of {KINDS}", clip(k)))),
    }
}

/// The event's time: the sender's, corrected for its clock's skew, within
/// the kind's retention, at most [`MAX_FUTURE_HOURS`] ahead and within
/// the supported dates; and the sender's own time when the correction
/// changed it.
fn event_time(sent: Option<&str>, kind: EventKind, ctx: &Context, c: &mut Checker) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let client_time = sent.and_then(|s| {
        let t = parse_timestamp(s);
        if t.is_none() {
            c.fail("occurred_at", "must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z");
        }
        t
    });
    let occurred_at = match client_time {
        Some(t) => correct_clock_skew(t, ctx.sent_at, ctx.received_at),
        None => ctx.received_at,
    };
    let ahead = occurred_at - ctx.received_at;
    if ahead > Duration::hours(MAX_FUTURE_HOURS) {
        c.fail(
            "occurred_at",
            format!("is {} h in the future (after clock-skew correction); at most {MAX_FUTURE_HOURS} h is accepted", ahead.num_hours()),
        );
    }
    let days = retention_days(kind, &ctx.retention);
    // How long before the receive time: the same difference, negated
    // (chrono's differences are antisymmetric, leap seconds included).
    if -ahead > Duration::days(i64::from(days)) {
        c.fail("occurred_at", format!("is older than the {days}-day retention of kind {}", kind.as_str()));
    } else if !crate::time::in_range(occurred_at) {
        c.fail("occurred_at", format!("must lie within {} after clock-skew correction", crate::time::RANGE_TEXT));
    }
    (occurred_at, client_time.filter(|t| *t != occurred_at))
}

/// Validates and sanitizes one event given as raw JSON.
pub fn validate_event(raw: &str, ctx: &Context) -> Result<Event, Vec<Problem>> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(vec![Problem::new("", format!("the event is {} bytes; at most {MAX_EVENT_BYTES} bytes are allowed", raw.len()))]);
    }
    if !raw.trim_start().starts_with('{') {
        return Err(vec![Problem::new("", "each event must be a JSON object")]);
    }
    validate_fields(wire::Fields::parse(raw).map_err(|p| vec![p])?, ctx)
}

/// Validates and sanitizes one event once its JSON is read.
fn validate_fields(fields: wire::Fields<'_>, ctx: &Context) -> Result<Event, Vec<Problem>> {
    let wire::Fields { envelope: env, parsed, rest, .. } = fields;
    let kind = kind_of(env.kind.as_deref()).map_err(|p| vec![p])?;
    let mut c = Checker::default();

    let event_id = match env.event_id {
        Some(id) if valid_event_id(&id) => id,
        Some(_) => {
            c.fail("event_id", "must be 1 to 100 characters of A-Z a-z 0-9 . _ : -");
            String::new()
        }
        None => uuid::Uuid::now_v7().to_string(),
    };
    let (occurred_at, client_occurred_at) = event_time(env.occurred_at.as_deref(), kind, ctx, &mut c);
    let user_id = c.text("user_id", env.user_id, MAX_ID_CHARS);
    let ip_address = env.ip_address.and_then(|ip| match ip.trim().parse::<IpAddr>() {
        // An IPv4 address parses only in its one written form (no leading
        // zeros, no spaces once trimmed): kept as sent, not written again.
        Ok(IpAddr::V4(_)) if ip.trim().len() == ip.len() => Some(ip),
        Ok(addr) => Some(addr.to_string()),
        Err(_) => {
            c.fail("ip_address", format!("`{}` is not an IPv4 or IPv6 address", clip(&ip)));
            None
        }
    });
    let mut user_agent_truncated = false;
    let user_agent = env.user_agent.map(|mut ua| {
        user_agent_truncated = truncate_chars(&mut ua, MAX_USER_AGENT_CHARS);
        ua
    });
    let metadata = env.metadata.map(|mut m| {
        c.metadata(checker::At::Field("metadata"), &m, 1);
        sanitize_json_map(&mut m);
        m
    });

    use wire::KindFields as K;
    let fields = match parsed {
        Some(fields) => Ok(fields),
        None => match kind {
            EventKind::Activity => wire::kind_fields(kind, &rest).map(K::Activity),
            EventKind::ApiRequest => wire::kind_fields(kind, &rest).map(K::ApiRequest),
            EventKind::Auth => wire::kind_fields(kind, &rest).map(K::Auth),
            EventKind::ExternalCall => wire::kind_fields(kind, &rest).map(K::ExternalCall),
        },
    };
    let body = fields.map(|fields| match fields {
        K::Activity(f) => activity::check(f, user_id.as_deref(), &mut c),
        K::ApiRequest(f) => api_request::check(f, &mut c),
        K::Auth(f) => auth::check(f, &mut c),
        K::ExternalCall(f) => external_call::check(f, &mut c),
    });
    let body = match body {
        Ok(body) if c.problems.is_empty() => body,
        Ok(_) => return Err(c.problems),
        Err(mut kind_problems) => {
            c.problems.append(&mut kind_problems);
            return Err(c.problems);
        }
    };
    Ok(Event {
        event_id,
        occurred_at,
        client_occurred_at,
        received_at: ctx.received_at,
        user_id,
        ip_address,
        user_agent,
        user_agent_truncated,
        metadata,
        body,
    })
}

#[cfg(test)]
mod tests;

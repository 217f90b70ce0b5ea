//! The instants an input may name: anything outside
//! 1970-01-01..10000-01-01 is refused where it enters (event times, query
//! parameters, job payloads), so the date arithmetic behind it never
//! overflows; and the one timestamp parser every input goes through.

use chrono::{DateTime, NaiveDate, Utc};

/// Parses an RFC 3339 timestamp with any offset into UTC (four-digit years
/// only, unlike chrono's `FromStr`).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The first instant an input may name.
pub fn earliest() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// The first instant an input may no longer name (exclusive bound).
pub fn end_of_range() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(10_000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc()).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// True for 1970-01-01T00:00:00Z <= t < 10000-01-01T00:00:00Z.
pub fn in_range(t: DateTime<Utc>) -> bool {
    t >= earliest() && t < end_of_range()
}

/// What a refused date is told: the accepted span.
pub const RANGE_TEXT: &str = "1970-01-01 (included) to 10000-01-01 (excluded)";

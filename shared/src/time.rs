//! Time bounds shared by every input that carries a date: query parameters,
//! job payloads and event times. Anything outside 1970-01-01..10000-01-01 is
//! refused where it enters, so the date arithmetic behind it (buckets, ISO
//! weeks, months, key labels) never overflows.

use chrono::{DateTime, NaiveDate, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_is_1970_to_year_10000() {
        assert!(in_range(earliest()));
        assert!(!in_range(earliest() - chrono::Duration::milliseconds(1)));
        assert!(!in_range(end_of_range()));
        assert!(in_range(end_of_range() - chrono::Duration::milliseconds(1)));
        assert_eq!(chrono::Datelike::year(&end_of_range()), 10_000);
    }
}

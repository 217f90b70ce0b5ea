//! Time, in one place: the clock, the labels of hours, days and ISO weeks
//! (in keys, documents and answers) and their parsers, the starts of hours,
//! days and months, and the bounds every input that carries a date is held
//! to (query parameters, job payloads, event times). Anything outside
//! 1970-01-01..10000-01-01 is refused where it enters, so the date
//! arithmetic behind it never overflows.

use chrono::{DateTime, Datelike, Duration, DurationRound, NaiveDate, NaiveDateTime, SubsecRound, Timelike, Utc, Weekday};

/// The bounds and the timestamp parser are the contract's (senders check them too).
pub use analytics_contract::time::{RANGE_TEXT, earliest, end_of_range, in_range, parse_timestamp};

/// The receive time of a request, to the millisecond (what is stored and
/// returned; finer digits only add noise).
pub fn receive_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// The start of the hour a time falls in.
pub fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// The start of the UTC day a time falls in.
pub fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::days(1)).unwrap_or(t)
}

/// Midnight UTC of a day.
pub fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The first instant of the UTC month after the one `t` falls in.
pub fn next_month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).map(midnight).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `yyyy-mm-ddThh`: the hour a time belongs to.
pub fn hour_label(t: DateTime<Utc>) -> String {
    let mut label = String::with_capacity(13);
    push_hour_label(&mut label, t);
    label
}

/// Appends [`hour_label`] to `out`: what the key builders of ingest's hot
/// path write in place (`format!` cost ~1,800 instructions a label). A
/// batch's events mostly fall in one hour and each writes two labels, so
/// the last label written is kept (per thread, with its hour) and copied
/// when the hour is the same.
pub fn push_hour_label(out: &mut String, t: DateTime<Utc>) {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let year = t.year();
    match u32::try_from(year) {
        Ok(y) if y <= 9999 => LAST.with_borrow_mut(|(hour, label)| {
            let this = t.timestamp().div_euclid(3600);
            if *hour != this {
                let mut digits = *b"0000-00-00T00";
                put_digits(&mut digits[0..4], y);
                put_digits(&mut digits[5..7], t.month());
                put_digits(&mut digits[8..10], t.day());
                put_digits(&mut digits[11..13], t.hour());
                label.clear();
                label.push_str(std::str::from_utf8(&digits).unwrap_or_default());
                *hour = this;
            }
            out.push_str(label);
        }),
        // Outside the range every input is held to, kept as it always read.
        _ => {
            use std::fmt::Write;
            let _ = write!(out, "{year:04}-{:02}-{:02}T{:02}", t.month(), t.day(), t.hour());
        }
    }
}

/// Writes the last `out.len()` decimal digits of `v` into `out`, zero-padded.
fn put_digits(out: &mut [u8], mut v: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `yyyy-mm-dd`: the UTC day a time falls in.
pub fn day_label(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

/// Parses `yyyy-mm-ddThh`.
pub fn parse_hour(label: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(&format!("{label}:00"), "%Y-%m-%dT%H:%M").ok().map(|t| t.and_utc())
}

/// Parses `yyyy-mm-dd` as the start of that UTC day.
pub fn parse_day(label: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(label, "%Y-%m-%d").ok().map(midnight)
}

/// `2026-W47`: the ISO week a day belongs to.
pub fn week_label(day: NaiveDate) -> String {
    let w = day.iso_week();
    format!("{:04}-W{:02}", w.year(), w.week())
}

/// The Monday of an ISO week label; `None` unless it is `yyyy-Www` and
/// that week exists.
pub fn parse_week(label: &str) -> Option<NaiveDate> {
    let (y, w) = label.split_once("-W")?;
    if y.len() != 4 || w.len() != 2 || !y.bytes().chain(w.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, Weekday::Mon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_their_parsers_agree() {
        let t = parse_timestamp("2026-11-21T10:04:05.123Z").unwrap();
        assert_eq!(hour_label(t), "2026-11-21T10");
        assert_eq!(parse_hour(&hour_label(t)), Some(hour_start(t)));
        assert_eq!(day_label(t), "2026-11-21");
        assert_eq!(parse_day(&day_label(t)), Some(day_start(t)));
        assert_eq!(crate::time::next_month_start(t), parse_timestamp("2026-12-01T00:00:00Z").unwrap());
        assert_eq!(
            crate::time::next_month_start(parse_timestamp("2026-12-31T23:00:00Z").unwrap()),
            parse_timestamp("2027-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(week_label(t.date_naive()), "2026-W47");
        assert_eq!(parse_week("2026-W47"), NaiveDate::from_ymd_opt(2026, 11, 16));
        assert_eq!(parse_week("2026-W54"), None);
        assert_eq!(parse_timestamp("+262142-12-31T00:00:00Z"), None, "extended years are not RFC 3339");
    }

    #[test]
    fn the_span_is_1970_to_year_10000() {
        assert!(in_range(earliest()));
        assert!(!in_range(earliest() - chrono::Duration::milliseconds(1)));
        assert!(!in_range(end_of_range()));
        assert!(in_range(end_of_range() - chrono::Duration::milliseconds(1)));
        assert_eq!(chrono::Datelike::year(&end_of_range()), 10_000);
    }
}

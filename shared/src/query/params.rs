//! Query-string parameters: every route says which it accepts; anything else,
//! a repeated name or a value that does not parse is a 400 that names the
//! parameter.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::period::{DateRange, MAX_RANGE_DAYS, local_midnight};
use super::zone::Zone;
use crate::error::ApiError;

/// Default and bounds of `limit`.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// The parameters of one request, checked against what its route accepts.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Refuses unknown and repeated parameters.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, accepted: &[&str]) -> Result<Self, ApiError> {
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !accepted.contains(&name) {
                let allowed = if accepted.is_empty() { "none".to_owned() } else { accepted.join(", ") };
                return Err(ApiError::bad_request(format!("unknown query parameter `{name}`; this route accepts: {allowed}")));
            }
            if values.insert(name.to_owned(), value.to_owned()).is_some() {
                return Err(ApiError::bad_request(format!("query parameter `{name}` is given more than once")));
            }
        }
        Ok(Params { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A non-empty text value of at most `max` characters.
    pub fn text(&self, name: &str, max: usize) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.is_empty() || v.chars().count() > max => {
                Err(ApiError::bad_request(format!("`{name}` must be 1 to {max} characters")))
            }
            Some(v) => Ok(Some(v)),
        }
    }

    /// `limit`: 1..=500, default 50 (or the route's own default).
    pub fn limit(&self, default: usize) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!("`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{v}`"))),
            },
        }
    }

    /// A number within `range`; `what` says what it is in the 400's
    /// message (`a whole number from 100 to 599`). NaN and infinities fail
    /// the range.
    pub fn number<T>(&self, name: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr + PartialOrd,
    {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<T>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::bad_request(format!("`{name}` must be {what}, not `{v}`"))),
            },
        }
    }

    /// One of a fixed set of values.
    pub fn choice<T: Copy>(&self, name: &str, options: &[(&str, T)], default: T) -> Result<T, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => options.iter().find(|(k, _)| *k == v).map(|(_, t)| *t).ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
                ApiError::bad_request(format!("`{name}` must be one of {}, not `{v}`", names.join(", ")))
            }),
        }
    }

    /// `tz`: an IANA zone name, UTC by default.
    pub fn tz(&self) -> Result<Zone, ApiError> {
        match self.get("tz") {
            None => Ok(Zone::UTC),
            Some(v) => Zone::named(v).ok_or_else(|| {
                ApiError::bad_request(format!("`tz` must be an IANA time zone name such as Europe/Paris or Asia/Kolkata, not `{v}`"))
            }),
        }
    }

    /// `date_from` and `date_to` (a date, read as local midnight in `tz`,
    /// or an RFC 3339 timestamp); `date_to` is exclusive. Without them: the
    /// last `default_days` days, today included.
    pub fn range(&self, now: DateTime<Utc>, tz: &Zone, default_days: i64) -> Result<DateRange, ApiError> {
        self.range_within(now, tz, default_days, MAX_RANGE_DAYS)
    }

    /// [`Params::range`] with another longest range than 400 days.
    pub fn range_within(&self, now: DateTime<Utc>, tz: &Zone, default_days: i64, max_days: i64) -> Result<DateRange, ApiError> {
        let to = match self.get("date_to") {
            Some(v) => parse_instant("date_to", v, tz)?,
            None => now,
        };
        let from = match self.get("date_from") {
            Some(v) => parse_instant("date_from", v, tz)?,
            None => {
                let today = tz.local(to - Duration::nanoseconds(1)).date();
                local_midnight(tz, today - Duration::days(default_days - 1))
            }
        };
        if from >= to {
            return Err(ApiError::bad_request("`date_from` must be before `date_to` (which is exclusive)"));
        }
        if to - from > Duration::days(max_days) {
            return Err(ApiError::bad_request(format!("the date range is longer than {max_days} days; narrow date_from..date_to")));
        }
        Ok(DateRange { from, to })
    }

    /// The parameters in a canonical, unambiguous form (a JSON object of
    /// the sorted pairs, so a value holding `&` or `=` cannot pass for
    /// another parameter list), `cursor` left out: what a cache entry and a
    /// cursor are bound to.
    pub fn normalized(&self) -> String {
        let kept: BTreeMap<&str, &str> =
            self.values.iter().filter(|(k, _)| *k != "cursor").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        serde_json::to_string(&kept).unwrap_or_default()
    }
}

fn parse_instant(name: &str, v: &str, tz: &Zone) -> Result<DateTime<Utc>, ApiError> {
    // A date is bounded by its calendar year (its local midnight may lie a
    // few hours before 1970 in a zone east of UTC), a timestamp by itself.
    let (t, ok) = match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => (Some(local_midnight(tz, d)), (1970..10_000).contains(&chrono::Datelike::year(&d))),
        Err(_) => {
            let t = crate::time::parse_timestamp(v);
            (t, t.is_some_and(crate::time::in_range))
        }
    };
    match t {
        Some(t) if ok => Ok(t),
        Some(_) => Err(ApiError::bad_request(format!("`{name}` must lie within {}, not `{v}`", crate::time::RANGE_TEXT))),
        None => Err(ApiError::bad_request(format!(
            "`{name}` must be a date (2026-11-01) or an RFC 3339 timestamp (2026-11-01T10:00:00Z), not `{v}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_name_themselves() {
        let e = Params::new([("limt", "5")], &["limit"]).unwrap_err();
        assert!(e.message.contains("`limt`") && e.message.contains("limit"), "{}", e.message);
        let e = Params::new([("limit", "5"), ("limit", "6")], &["limit"]).unwrap_err();
        assert!(e.message.contains("`limit`"));
        for bad in ["0", "501", "ten", "-1"] {
            let e = Params::new([("limit", bad)], &["limit"]).unwrap().limit(50).unwrap_err();
            assert!(e.message.contains("`limit`"), "{}", e.message);
        }
        assert_eq!(Params::new([("limit", "500")], &["limit"]).unwrap().limit(50).unwrap(), 500);
        let p = Params::new([("tz", "Mars/Olympus")], &["tz"]).unwrap();
        assert!(p.tz().unwrap_err().message.contains("`tz`"));
        let p = Params::new([("group_by", "week")], &["group_by"]).unwrap();
        assert!(p.choice("group_by", &[("day", 1), ("user", 2)], 1).unwrap_err().message.contains("day, user"));
    }

    #[test]
    fn date_ranges() {
        let now = at("2026-11-21T10:00:00Z");
        let p = Params::new([("date_from", "2026-11-01"), ("date_to", "2026-11-02T06:00:00Z")], &["date_from", "date_to"]).unwrap();
        let r = p.range(now, &Zone::UTC, 30).unwrap();
        assert_eq!((r.from, r.to), (at("2026-11-01T00:00:00Z"), at("2026-11-02T06:00:00Z")));
        let r = p.range(now, &Zone::named("Asia/Kolkata").unwrap(), 30).unwrap();
        assert_eq!(r.from, at("2026-10-31T18:30:00Z"), "a date is local midnight in tz");
        let r = Params::default().range(now, &Zone::UTC, 30).unwrap();
        assert_eq!((r.from, r.to), (at("2026-10-23T00:00:00Z"), now), "30 days, today included");
        let e = Params::new([("date_from", "2025-01-01")], &["date_from"]).unwrap().range(now, &Zone::UTC, 30).unwrap_err();
        assert!(e.message.contains("400 days"));
        let e = Params::new([("date_from", "2026-11-22")], &["date_from"]).unwrap().range(now, &Zone::UTC, 30).unwrap_err();
        assert!(e.message.contains("before"));
        let e = Params::new([("date_to", "yesterday")], &["date_to"]).unwrap().range(now, &Zone::UTC, 30).unwrap_err();
        assert!(e.message.contains("`date_to`"));
    }

    #[test]
    fn normalized_form_ignores_order_and_cursor() {
        let a = Params::new([("b", "2"), ("a", "1"), ("cursor", "x")], &["a", "b", "cursor"]).unwrap();
        let b = Params::new([("a", "1"), ("b", "2")], &["a", "b", "cursor"]).unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }

    /// `endpoint=/x&status_class=5xx` as one value is not the two parameters.
    #[test]
    fn a_value_holding_separators_cannot_pass_for_other_parameters() {
        let names = ["endpoint", "status_class"];
        let forged = Params::new([("endpoint", "/x&status_class=5xx")], &names).unwrap();
        let real = Params::new([("endpoint", "/x"), ("status_class", "5xx")], &names).unwrap();
        assert_ne!(forged.normalized(), real.normalized());
        let quoted = Params::new([("endpoint", "/x\",\"status_class\":\"5xx")], &names).unwrap();
        assert_ne!(quoted.normalized(), real.normalized());
    }

    #[test]
    fn dates_outside_1970_to_9999_are_a_400_naming_the_parameter() {
        let now = at("2026-11-21T10:00:00Z");
        for (name, v) in [
            ("date_to", "-262143-01-05"),
            ("date_to", "+262142-12-31"),
            ("date_from", "0000-01-01"),
            ("date_from", "1969-12-31"),
            ("date_to", "10000-01-01"),
            ("date_from", "1969-12-31T23:59:59Z"),
            ("date_to", "+10000-01-01T00:00:00Z"),
            ("date_to", "99999-01-01"),
        ] {
            let e = Params::new([(name, v)], &["date_from", "date_to"]).unwrap().range(now, &Zone::UTC, 30).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::BadRequest, "{name}={v}");
            assert!(e.message.contains(&format!("`{name}`")), "{name}={v}: {}", e.message);
        }
        let p = Params::new([("date_from", "9999-12-01"), ("date_to", "9999-12-31T23:59:59Z")], &["date_from", "date_to"]).unwrap();
        assert!(p.range(now, &Zone::named("Asia/Kolkata").unwrap(), 30).is_ok(), "the last days are fine");
        let p = Params::new([("date_from", "1970-01-01"), ("date_to", "1970-01-02")], &["date_from", "date_to"]).unwrap();
        assert!(p.range(now, &Zone::UTC, 30).is_ok());
    }
}

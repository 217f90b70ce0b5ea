//! Time zones for the `tz` parameter: the IANA database as jiff bundles it,
//! behind the chrono types the rest of the crate uses.
//!
//! jiff keeps each zone in its compiled TZif form with the POSIX rule that
//! extends it past its last transition, about 0.5 MB in the binary where a
//! database of expanded transition tables costs 1.9 MB; the bundled copy
//! makes every function answer the same whatever the host has installed.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// An IANA time zone.
#[derive(Debug, Clone)]
pub struct Zone(TimeZone);

/// How a local wall-clock time maps to instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTime {
    /// One instant.
    Single(DateTime<Utc>),
    /// Clocks went back: the earlier and the later instant.
    Ambiguous(DateTime<Utc>, DateTime<Utc>),
    /// Clocks jumped over it (or it is out of range).
    None,
}

impl Zone {
    pub const UTC: Zone = Zone(TimeZone::UTC);

    /// The zone of an IANA name (`Europe/Paris`, `Asia/Kolkata`, `UTC`),
    /// matched without regard to case.
    pub fn named(name: &str) -> Option<Zone> {
        TimeZone::get(name).ok().map(Zone)
    }

    /// The IANA name, in the database's spelling.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The offset from UTC in force at `t`.
    pub fn offset_at(&self, t: DateTime<Utc>) -> Duration {
        let seconds = jiff::Timestamp::from_second(t.timestamp()).map(|ts| self.0.to_offset(ts).seconds()).unwrap_or(0);
        Duration::seconds(seconds.into())
    }

    /// The wall-clock time at `t`.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.naive_utc() + self.offset_at(t)
    }

    /// The instants a wall-clock time names.
    pub fn from_local(&self, naive: NaiveDateTime) -> LocalTime {
        let Some(civil) = civil(naive) else { return LocalTime::None };
        let at = |offset: jiff::tz::Offset| naive.and_utc() - Duration::seconds(offset.seconds().into());
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => LocalTime::Single(at(offset)),
            AmbiguousOffset::Fold { before, after } => LocalTime::Ambiguous(at(before), at(after)),
            AmbiguousOffset::Gap { .. } => LocalTime::None,
        }
    }
}

fn civil(n: NaiveDateTime) -> Option<jiff::civil::DateTime> {
    let small = |v: u32| i8::try_from(v).ok();
    jiff::civil::DateTime::new(
        i16::try_from(n.year()).ok()?,
        small(n.month())?,
        small(n.day())?,
        small(n.hour())?,
        small(n.minute())?,
        small(n.second())?,
        i32::try_from(n.nanosecond()).ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn wall(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn names_resolve_without_regard_to_case_and_unknown_names_do_not() {
        assert_eq!(Zone::named("asia/kolkata").unwrap().name(), "Asia/Kolkata");
        assert_eq!(Zone::UTC.name(), "UTC");
        assert!(Zone::named("Asia/Calcutta").is_some(), "links of the database resolve too");
        assert!(Zone::named("UTC").is_some());
        for bad in ["", "Mars/Olympus", "+05:30", "EST5EDT,M3.2.0,M11.1.0", "../../etc/passwd"] {
            assert!(Zone::named(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn offsets_follow_the_rules_past_the_last_listed_transition() {
        let ny = Zone::named("America/New_York").unwrap();
        assert_eq!(ny.offset_at(at("2026-07-01T12:00:00Z")), Duration::hours(-4));
        assert_eq!(ny.offset_at(at("2026-12-01T12:00:00Z")), Duration::hours(-5));
        // Daylight saving in 2050 comes from the zone's POSIX rule.
        assert_eq!(ny.offset_at(at("2050-07-01T12:00:00Z")), Duration::hours(-4));
        let kathmandu = Zone::named("Asia/Kathmandu").unwrap();
        assert_eq!(kathmandu.local(at("2026-11-21T00:00:00Z")), wall(2026, 11, 21, 5, 45));
        assert_eq!(Zone::UTC.local(at("2026-11-21T00:00:00Z")), wall(2026, 11, 21, 0, 0));
    }

    #[test]
    fn wall_clock_times_map_to_one_two_or_no_instants() {
        let ny = Zone::named("America/New_York").unwrap();
        assert_eq!(ny.from_local(wall(2026, 11, 21, 9, 0)), LocalTime::Single(at("2026-11-21T14:00:00Z")));
        // 1 November 2026: 01:30 happens twice.
        assert_eq!(ny.from_local(wall(2026, 11, 1, 1, 30)), LocalTime::Ambiguous(at("2026-11-01T05:30:00Z"), at("2026-11-01T06:30:00Z")));
        // 8 March 2026: 02:30 never happens.
        assert_eq!(ny.from_local(wall(2026, 3, 8, 2, 30)), LocalTime::None);
    }
}

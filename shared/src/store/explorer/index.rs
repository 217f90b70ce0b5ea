//! The hour index: per rolled-up hour, one small item saying which kinds
//! of event it holds (and which API status classes, and whether logins
//! failed), written by the roll-up, one write per tenant-hour, not per
//! event. A page of the explorer reads it for its range and queries only
//! the hours that can hold a match, plus the hours still waiting for the
//! roll-up (their dirty markers): a sparse filter over 30 days costs the
//! hours that have such events, not every hour.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};

use super::Explorer;
use crate::rollup::{Rollup, split_api_key};
use crate::store::table::{PK, SK, TTL_ATTRIBUTE};
use crate::store::{Item, ItemExt, StoreError, keys, n, s};
use crate::time;

/// What an hour holds, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HourMask(pub u32);

impl HourMask {
    pub const ACTIVITY: u32 = 1;
    pub const API: u32 = 1 << 1;
    pub const AUTH: u32 = 1 << 2;
    pub const AUTH_FAILED: u32 = 1 << 3;
    pub const EXTERNAL: u32 = 1 << 4;
    /// API requests of status class `c` (1..=5): bit `8 + c`.
    pub fn api_class(c: u16) -> u32 {
        1 << (8 + u32::from(c.min(9)))
    }
    /// Every bit: what an hour not yet rolled up may hold.
    pub const ANY: HourMask = HourMask(u32::MAX);

    /// The mask of an hour's rollup. A merged `other` API entry (its class
    /// unknown) counts as every class, so the index never hides a match.
    pub fn of(r: &Rollup) -> HourMask {
        let mut m = 0;
        if r.activities() > 0 {
            m |= Self::ACTIVITY;
        }
        for (key, stats) in &r.api {
            if stats.received == 0 && stats.count <= 0.0 {
                continue;
            }
            m |= Self::API;
            match split_api_key(key).0 {
                c @ 1..=5 => m |= Self::api_class(c),
                _ => m |= (1..=5).map(Self::api_class).fold(0, |a, b| a | b),
            }
        }
        for o in r.auth.values() {
            if o.success + o.failure > 0 {
                m |= Self::AUTH;
            }
            if o.failure > 0 {
                m |= Self::AUTH_FAILED;
            }
        }
        if r.external.values().any(|x| x.calls > 0) {
            m |= Self::EXTERNAL;
        }
        HourMask(m)
    }

    /// Whether an hour with this mask can hold an event `need` asks for
    /// (any of its bits).
    pub fn may_hold(self, need: u32) -> bool {
        self.0 & need != 0
    }
}

impl Explorer<'_> {
    /// Records what a rolled-up hour holds; kept as long as the longest
    /// raw retention, after which the hour has nothing left to find.
    pub async fn index_hour(self, tenant: &str, hour: DateTime<Utc>, mask: HourMask, keep_days: u32) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(keys::hour_index_pk(tenant, hour.year()))),
            (SK.to_owned(), s(time::hour_label(hour))),
            ("k".to_owned(), n(mask.0)),
            (TTL_ATTRIBUTE.to_owned(), n((hour + Duration::days(i64::from(keep_days))).timestamp())),
        ]
        .into();
        self.t.put(item).await
    }

    /// The hours of `[from, to)` that may hold events, with what they hold:
    /// the indexed hours, and every dirty hour (not rolled up yet) as
    /// holding anything. Newest first.
    pub(super) async fn hours(
        self,
        tenant: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, HourMask)>, StoreError> {
        let (first, last) = (time::hour_label(from), time::hour_label(to - Duration::milliseconds(1)));
        let mut out: BTreeMap<String, HourMask> = BTreeMap::new();
        for year in from.year()..=(to - Duration::milliseconds(1)).year() {
            let query = self
                .t
                .query()
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":p", s(keys::hour_index_pk(tenant, year)))
                .expression_attribute_values(":a", s(&first))
                .expression_attribute_values(":b", s(&last));
            let rows = self.t.collect(query, |i| Ok(i.str(SK).map(|h| (h.to_owned(), HourMask(i.num::<u32>("k").unwrap_or(0)))))).await?;
            out.extend(rows);
        }
        for hour in self.t.markers().dirty_hours_between(tenant, Some((&first, &last))).await?.into_keys() {
            out.insert(hour, HourMask::ANY);
        }
        Ok(out.into_iter().rev().filter_map(|(h, m)| time::parse_hour(&h).map(|t| (t, m))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::{ApiStats, Outcomes, api_key};

    #[test]
    fn the_mask_says_what_an_hour_holds_and_never_hides_a_merged_entry() {
        let mut r = Rollup::default();
        assert_eq!(HourMask::of(&r), HourMask(0));
        r.api.insert(api_key(503, "GET", "/x"), ApiStats { received: 1, count: 1.0, ..Default::default() });
        r.auth.insert("login".into(), Outcomes { success: 2, failure: 0 });
        let m = HourMask::of(&r);
        assert!(m.may_hold(HourMask::api_class(5)) && m.may_hold(HourMask::AUTH));
        assert!(!m.may_hold(HourMask::api_class(2) | HourMask::AUTH_FAILED | HourMask::ACTIVITY | HourMask::EXTERNAL));
        r.api.insert(crate::rollup::OTHER.into(), ApiStats { received: 5, count: 5.0, ..Default::default() });
        assert!(HourMask::of(&r).may_hold(HourMask::api_class(2)), "a merged entry may hold any class");
        assert!(HourMask::ANY.may_hold(HourMask::EXTERNAL));
    }
}

//! Key layout of the single table. Every key starts with `T#{tenant}#`, so
//! no query built from these functions can cross a tenant boundary.

use chrono::{DateTime, Utc};

use crate::time::hour_label;

/// The shard an event is written to.
pub fn shard_of(event_id: &str, shards: u16) -> u16 {
    (crate::hash::fnv1a(event_id) % u64::from(shards.max(1))) as u16
}

/// Raw events of one hour and shard: `T#{tenant}#E#{yyyy-mm-ddThh}#{shard}`.
pub fn event_pk(tenant: &str, hour: &str, shard: u16) -> String {
    event_pk_with(tenant, shard, |pk| pk.push_str(hour))
}

/// [`event_pk`] of the hour `t` falls in, its label written in place.
pub fn event_pk_at(tenant: &str, t: DateTime<Utc>, shard: u16) -> String {
    event_pk_with(tenant, shard, |pk| crate::time::push_hour_label(pk, t))
}

fn event_pk_with(tenant: &str, shard: u16, hour: impl FnOnce(&mut String)) -> String {
    let mut pk = String::with_capacity(tenant.len() + 23);
    pk.push_str("T#");
    pk.push_str(tenant);
    pk.push_str("#E#");
    hour(&mut pk);
    pk.push('#');
    push_int(&mut pk, shard);
    pk
}

/// `{13-digit epoch ms}#{event_id}`: sorts by time within a partition and
/// is the sort key of both indexes too.
pub fn event_sk(t: DateTime<Utc>, event_id: &str) -> String {
    let mut sk = String::with_capacity(event_id.len() + 16);
    let mut digits = itoa::Buffer::new();
    let ms = digits.format(t.timestamp_millis().max(0));
    sk.extend(std::iter::repeat_n('0', 13usize.saturating_sub(ms.len())));
    sk.push_str(ms);
    sk.push('#');
    sk.push_str(event_id);
    sk
}

/// Keys are built piece by piece: through `format!` they were a tenth of
/// ingest's CPU time per event (BENCHMARKS.md, "Ingest CPU path").
fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// The time a sort key (or a position between them) stands for.
pub fn time_of_sk(sk: &str) -> Option<DateTime<Utc>> {
    sk.split('#').next()?.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis)
}

/// The smallest sort key of an event placed at or after `t`.
pub fn sk_from(t: DateTime<Utc>) -> String {
    format!("{:013}#", t.timestamp_millis().max(0))
}

/// The largest sort key of an event placed before `t` (`~` sorts after
/// every character an event id may hold).
pub fn sk_before(t: DateTime<Utc>) -> String {
    format!("{:013}#~", (t.timestamp_millis() - 1).max(0))
}

/// The identity of an event, what tells a resend apart: the tenant, the
/// `occurred_at` the sender stated and the `event_id`, whatever the skew
/// correction made of the time. `T#{tenant}#I#{sender's hour}#{shard}` /
/// `{sender's epoch ms, signed}#{event_id}`: a resend carries exactly these
/// again, while its corrected time moves with each send's network delay.
pub fn identity_pk(tenant: &str, sent_time: DateTime<Utc>, shard: u16) -> String {
    let mut pk = String::with_capacity(tenant.len() + 23);
    pk.push_str("T#");
    pk.push_str(tenant);
    pk.push_str("#I#");
    crate::time::push_hour_label(&mut pk, sent_time);
    pk.push('#');
    push_int(&mut pk, shard);
    pk
}

pub fn identity_sk(sent_time: DateTime<Utc>, event_id: &str) -> String {
    let mut sk = String::with_capacity(event_id.len() + 16);
    push_int(&mut sk, sent_time.timestamp_millis());
    sk.push('#');
    sk.push_str(event_id);
    sk
}

/// Activity events of one action (or all custom actions) and month, at
/// their corrected time: the tenant's feed reads a fixed set of these per
/// month, and an hour's roll-up reads their slice of the hour.
pub fn activity_pk(tenant: &str, name: &str, t: DateTime<Utc>) -> String {
    name_pk(tenant, "activity", name, t)
}

/// Copies of the events written into an hour long after they happened
/// (the roll-up's journal of late events, kept like the rollups).
pub fn journal_pk(tenant: &str, hour: &str) -> String {
    format!("T#{tenant}#J#{hour}")
}

/// An hour's deltas and partial (`store::deltas`): sort keys `D#{writer}`
/// and `#P`.
pub fn deltas_pk(tenant: &str, hour: &str) -> String {
    format!("T#{tenant}#HD#{hour}")
}

/// Every partition holding raw events of the hour starting at `hour`:
/// its shards of API requests, auth events and external calls, and the
/// month's activity partitions (each read with the hour's sort-key range).
pub fn raw_partitions(tenant: &str, hour: DateTime<Utc>, shards: u16) -> Vec<String> {
    let label = hour_label(hour);
    (0..shards.max(1))
        .map(|shard| event_pk(tenant, &label, shard))
        .chain(crate::model::KNOWN_ACTIONS.iter().chain([&crate::model::CUSTOM_ACTIONS]).map(|a| activity_pk(tenant, a, hour)))
        .collect()
}

/// gsi1, a user's events: `T#{tenant}#U#{user_id}`.
pub fn user_pk(tenant: &str, user_id: &str) -> String {
    ["T#", tenant, "#U#", user_id].concat()
}

/// gsi2, events by name within a kind and month: `T#{tenant}#A#{kind}:{name}#{yyyy-mm}`.
pub fn name_pk(tenant: &str, kind: &str, name: &str, t: DateTime<Utc>) -> String {
    let mut pk = String::with_capacity(tenant.len() + kind.len() + name.len() + 20);
    for part in ["T#", tenant, "#A#", kind, ":", name, "#"] {
        pk.push_str(part);
    }
    // The hour's label less its `-ddThh`: the month, `yyyy-mm`.
    crate::time::push_hour_label(&mut pk, t);
    pk.truncate(pk.len() - 6);
    pk
}

/// The tenant's hours written since their last rollup: one marker item per
/// hour (sort key: the hour label).
pub fn dirty_pk(tenant: &str) -> String {
    format!("T#{tenant}#DIRTY")
}

/// The tenant of a dirty-marker partition key.
pub fn tenant_of_dirty_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("T#")?.strip_suffix("#DIRTY")
}

/// The gsi1 partition every dirty marker is also indexed under, so the
/// rollup job finds the tenants with work without a scan.
pub const DIRTY_INDEX_PK: &str = "DIRTY";

/// Rollups of one resolution (`hour` or `day`); the sort key is the bucket
/// label and the part number (`2026-11-21T10#0`).
pub fn rollup_pk(tenant: &str, resolution: &str) -> String {
    format!("T#{tenant}#R#{resolution}")
}

/// Cached query results of a tenant.
pub fn cache_pk(tenant: &str) -> String {
    format!("T#{tenant}#C")
}

/// Health snapshots of a tenant's day.
pub fn health_pk(tenant: &str, day: &str) -> String {
    format!("T#{tenant}#H#{day}")
}

/// The registry of tenants with data: one item per tenant (sort key: the
/// tenant), kept by the roll-up, read by the jobs that visit every tenant.
pub const TENANTS_PK: &str = "TENANTS";

/// The hour index of a tenant's year: one small item per rolled-up hour
/// (sort key: the hour label) saying which kinds it holds.
pub fn hour_index_pk(tenant: &str, year: i32) -> String {
    format!("T#{tenant}#P#{year:04}")
}

/// Stored period metrics (`day`, `week`, `month`, `year`); the sort key is
/// the period's first day (`yyyy-mm-dd`).
pub fn metrics_pk(tenant: &str, period: &str) -> String {
    format!("T#{tenant}#M#{period}")
}

/// Weekly reports of a tenant; the sort key is the ISO week (`2026-W47`).
pub fn report_pk(tenant: &str) -> String {
    format!("T#{tenant}#W")
}

/// Health alerts sent for a tenant, one item per condition and subject,
/// holding the window of the last alert.
pub fn alert_pk(tenant: &str) -> String {
    format!("T#{tenant}#ALERT")
}

/// How far each cleanup has swept a tenant (sort key: the sweep's name).
pub fn sweep_pk(tenant: &str) -> String {
    format!("T#{tenant}#SWEEP")
}

/// The bookkeeping of a tenant's dashboard windows (`store::windows`): the
/// day epoch and what was last built. The windows themselves are stored
/// like rollups, under `T#{tenant}#R#window` (labelled `{as_of}L{days}`).
pub fn windows_pk(tenant: &str) -> String {
    format!("T#{tenant}#R#window-state")
}

/// The label of the window of `days` days (today included) as of the
/// completed day `as_of`.
pub fn window_label(as_of: &str, days: u32) -> String {
    format!("{as_of}L{days:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::day_label;

    #[test]
    fn keys_have_the_documented_shape() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T10:04:05.123Z").unwrap().to_utc();
        assert_eq!(hour_label(t), "2026-11-21T10");
        assert_eq!(event_pk("acme", &hour_label(t), 3), "T#acme#E#2026-11-21T10#3");
        assert_eq!(event_sk(t, "e1"), "1795255445123#e1");
        assert!(sk_from(t) <= event_sk(t, "e1") && event_sk(t, "e1") < sk_from(t + chrono::Duration::milliseconds(1)));
        assert!(event_sk(t, "zz") <= sk_before(t + chrono::Duration::milliseconds(1)) && event_sk(t, "e1") > sk_before(t));
        assert_eq!(user_pk("acme", "u-1"), "T#acme#U#u-1");
        assert_eq!(name_pk("acme", "activity", "login", t), "T#acme#A#activity:login#2026-11");
        assert_eq!(dirty_pk("acme"), "T#acme#DIRTY");
        assert_eq!(tenant_of_dirty_pk("T#acme#DIRTY"), Some("acme"));
        assert_eq!(rollup_pk("acme", "day"), "T#acme#R#day");
        // Its own partition: `T#{tenant}#W` holds the weekly reports.
        assert_eq!(windows_pk("acme"), "T#acme#R#window-state");
        assert_eq!(window_label("2026-12-03", 7), "2026-12-03L007");
        assert_eq!(day_label(t), "2026-11-21");
        assert_eq!(identity_pk("acme", t, 3), "T#acme#I#2026-11-21T10#3");
        assert_eq!(identity_sk(t, "e1"), "1795255445123#e1");
        let before_1970 = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(identity_sk(before_1970, "e1"), "-62135596800000#e1", "a sender's clock before 1970 keeps its own identity");
        assert_eq!(journal_pk("acme", "2026-11-21T10"), "T#acme#J#2026-11-21T10");
        let parts = raw_partitions("acme", t, 2);
        assert_eq!(parts.len(), 2 + 12);
        assert!(parts.contains(&"T#acme#E#2026-11-21T10#1".to_string()) && parts.contains(&"T#acme#A#activity:custom#2026-11".to_string()));
    }

    proptest::proptest! {
        /// The keys built piece by piece read exactly as the `format!`
        /// strings they replaced, for any time chrono holds and any id.
        #[test]
        fn keys_built_in_place_match_their_format(ms in -8_000_000_000_000_000i64..8_000_000_000_000_000i64, id in "\\PC{0,12}", shard in 0u16..512) {
            use chrono::{Datelike, Timelike};
            let Some(t) = DateTime::from_timestamp_millis(ms) else { return Ok(()) };
            let label = format!("{:04}-{:02}-{:02}T{:02}", t.year(), t.month(), t.day(), t.hour());
            proptest::prop_assert_eq!(hour_label(t), label.clone());
            // Again, and at the hour's start: from the last label kept.
            proptest::prop_assert_eq!(hour_label(t), label.clone());
            if let Some(start) = DateTime::from_timestamp(t.timestamp().div_euclid(3600) * 3600, 0) {
                proptest::prop_assert_eq!(hour_label(start), label.clone());
            }
            proptest::prop_assert_eq!(event_pk_at("acme", t, shard), format!("T#acme#E#{label}#{shard}"));
            proptest::prop_assert_eq!(event_pk("acme", &label, shard), format!("T#acme#E#{label}#{shard}"));
            proptest::prop_assert_eq!(event_sk(t, &id), format!("{:013}#{id}", t.timestamp_millis().max(0)));
            proptest::prop_assert_eq!(identity_pk("acme", t, shard), format!("T#acme#I#{label}#{shard}"));
            proptest::prop_assert_eq!(identity_sk(t, &id), format!("{}#{id}", t.timestamp_millis()));
            proptest::prop_assert_eq!(name_pk("acme", "activity", &id, t), format!("T#acme#A#activity:{id}#{:04}-{:02}", t.year(), t.month()));
            proptest::prop_assert_eq!(user_pk("acme", &id), format!("T#acme#U#{id}"));
        }
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("abc", 8), shard_of("abc", 8));
        let mut seen = [0u32; 8];
        for i in 0..8000 {
            seen[shard_of(&format!("event-{i}"), 8) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(shard_of("x", 1), 0);
    }
}

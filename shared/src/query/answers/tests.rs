use super::*;
use crate::rollup::{ApiStats, SlotCounters, UserActivity};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[test]
fn shares_and_orderings() {
    let mut r = ReportStats::default();
    r.categories.insert("cost".into(), 3);
    r.categories.insert("security".into(), 1);
    let c = categories(&r);
    assert_eq!(c.total, 4);
    assert_eq!((c.categories[0].category.as_str(), c.categories[0].percentage), ("cost", 75.0));
    r.impact_high = 1;
    r.impact_low = 2;
    let b = business_impact(&r);
    assert_eq!((b.high.percentage, b.low.percentage, b.medium.count), (33.33, 66.67, 0));
    assert_eq!(business_impact(&ReportStats::default()).high.percentage, 0.0, "no division by zero");
}

#[test]
fn api_requests_filter_by_class_and_endpoint() {
    let mut r = Rollup::default();
    for (code, ms) in [(200, 10.0), (200, 30.0), (503, 100.0)] {
        let s = r.api.entry(crate::rollup::api_key(code, "GET", "/a")).or_insert_with(ApiStats::default);
        s.count += 2.0;
        s.received += 1;
        s.time_ms += 2.0 * ms;
        s.latency.record(ms, 2.0);
    }
    let all = api_requests(&r, None, None);
    assert_eq!((all[0].count, all[0].error_count), (6.0, 2.0));
    let ok = api_requests(&r, Some("/a"), Some(2));
    assert_eq!((ok[0].count, ok[0].error_count), (4.0, 0.0));
    assert!(api_requests(&r, Some("/b"), None).is_empty());
    let json = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(json["count"], serde_json::json!(6), "whole counts are integers");
}

#[test]
fn buckets_split_hours_at_quarter_edges_and_count_users_once() {
    let mut r = Rollup::default();
    r.users.insert("u1".into(), UserActivity { actions: [("login".to_string(), 2)].into(), slots: 0b0011 });
    r.users.insert("u2".into(), UserActivity { actions: [("login".to_string(), 1)].into(), slots: 0b1000 });
    r.slots = vec![
        SlotCounters { activities: 1, ..Default::default() },
        SlotCounters { activities: 1, ..Default::default() },
        SlotCounters::default(),
        SlotCounters { activities: 1, ..Default::default() },
    ];
    let p = Piece { start: at("2026-11-21T18:00:00Z"), end: at("2026-11-21T19:00:00Z"), rollup: r };
    let bounds = [at("2026-11-20T18:30:00Z"), at("2026-11-21T18:30:00Z"), at("2026-11-22T18:30:00Z")];
    let b = buckets(std::slice::from_ref(&p), &bounds);
    assert_eq!((b[0].activities, b[0].active_users), (2, 1));
    assert_eq!((b[1].activities, b[1].active_users), (1, 1));
}

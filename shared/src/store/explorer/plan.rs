//! What a page of the explorer asks for and which partitions hold it: the
//! kinds, the conditions, the budget, and the time slices a page walks
//! with each slice's partitions.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Datelike, Duration, Utc};

use crate::model::{CUSTOM_ACTIONS, KNOWN_ACTIONS};
use crate::store::events::StoredEvent;
use crate::store::keys;
use crate::store::s;
use crate::store::table::{GSI1, GSI1_PK, PK};
use crate::time::hour_start;

use super::index::HourMask;

/// What one page may cost: items read from storage (scanned, before
/// filters) and queries sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudget {
    pub items: usize,
    pub queries: usize,
}

/// The contract's bound (2,000 items), and at most 400 queries (an
/// hour of every kind is 20 partitions: a page walks at least 20 hours).
pub const PAGE_BUDGET: ReadBudget = ReadBudget { items: 2000, queries: 400 };

/// A value a condition compares an attribute with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Flag(bool),
}

impl Value {
    pub(super) fn attribute(&self) -> AttributeValue {
        match self {
            Value::Text(t) => s(t),
            Value::Number(x) => AttributeValue::N(x.to_string()),
            Value::Flag(b) => AttributeValue::Bool(*b),
        }
    }
}

/// A condition on an attribute of the stored event.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Eq(&'static str, Value),
    AtLeast(&'static str, Value),
    Between(&'static str, Value, Value),
}

/// Which kinds a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub activity: bool,
    pub api_request: bool,
    pub auth: bool,
    pub external_call: bool,
}

impl Kinds {
    pub const ALL: Kinds = Kinds { activity: true, api_request: true, auth: true, external_call: true };
    pub const ACTIVITY: Kinds = Kinds { activity: true, api_request: false, auth: false, external_call: false };

    /// The kinds stored in the hour shards that are asked for.
    fn sharded(self) -> Vec<&'static str> {
        [(self.api_request, "api_request"), (self.auth, "auth"), (self.external_call, "external_call")]
            .into_iter()
            .filter_map(|(on, k)| on.then_some(k))
            .collect()
    }
}

/// What a page asks for.
#[derive(Debug, Clone)]
pub struct ExploreQuery<'a> {
    pub tenant: &'a str,
    pub kinds: Kinds,
    /// One user's events, or the whole tenant's.
    pub user: Option<&'a str>,
    /// One action (activity only).
    pub action: Option<&'a str>,
    /// Every other condition, all of which must hold.
    pub conds: Vec<Cond>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Continue below this position (exclusive).
    pub before: Option<String>,
    pub limit: usize,
    pub budget: ReadBudget,
}

/// A page of events and, when more may follow, the position to continue from.
#[derive(Debug, Clone)]
pub struct ExplorePage {
    pub items: Vec<StoredEvent>,
    pub next: Option<String>,
    /// What the page read (scanned items), for the logs and the tests.
    pub items_read: usize,
    pub queries: usize,
    /// Hour-index and dirty-marker items read to plan the page (small
    /// items, one per hour of the range at most), outside the budget.
    pub index_read: usize,
}

/// A partition to read, and what of it.
pub(super) struct Source {
    pub(super) index: Option<&'static str>,
    pub(super) attr: &'static str,
    pub(super) pk: String,
    /// `kind IN (...)` on the hour shards when not every kind is asked for.
    pub(super) kinds: Vec<&'static str>,
    /// `action = ...` on the shared `custom` partition and on gsi1.
    pub(super) action: Option<String>,
    /// `user_id = ...` where the partition is not already the user's.
    pub(super) user: Option<String>,
}

fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let day = crate::time::day_start(t);
    day - Duration::days(i64::from(day.day()) - 1)
}

/// The slice starts, newest first: hours, months or the whole range.
pub(super) fn slice_starts(from: DateTime<Utc>, to: DateTime<Utc>, step: Step) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let last = to - Duration::milliseconds(1);
    match step {
        Step::Whole => out.push((from, to)),
        Step::Hour => {
            let mut h = hour_start(last);
            while h + Duration::hours(1) > from {
                out.push((h.max(from), (h + Duration::hours(1)).min(to)));
                h -= Duration::hours(1);
            }
        }
        Step::Month => {
            let mut m = month_start(last);
            while crate::time::next_month_start(m) > from {
                out.push((m.max(from), crate::time::next_month_start(m).min(to)));
                m = month_start(m - Duration::days(1));
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
pub(super) enum Step {
    Whole,
    Hour,
    Month,
}

impl ExploreQuery<'_> {
    pub(super) fn step(&self) -> Step {
        match (self.kinds.sharded().is_empty(), self.user) {
            (false, _) => Step::Hour,
            (true, Some(_)) => Step::Whole,
            (true, None) => Step::Month,
        }
    }

    /// The hour-index bits of the sharded kinds this query can match: a
    /// status class of API requests alone, failed logins alone, or the kinds.
    pub(super) fn sharded_need(&self) -> u32 {
        let k = self.kinds;
        let only = |n: usize| k.sharded().len() == n && !k.activity;
        let class = self.conds.iter().find_map(|c| match c {
            Cond::Between("status_code", Value::Number(lo), _) => Some((*lo / 100.0) as u16),
            _ => None,
        });
        let failed = self.conds.contains(&Cond::Eq("success", Value::Flag(false)));
        let mut need = 0;
        if k.api_request {
            need |= match class {
                Some(c) if only(1) => HourMask::api_class(c),
                _ => HourMask::API,
            };
        }
        if k.auth {
            need |= if failed && only(1) { HourMask::AUTH_FAILED } else { HourMask::AUTH };
        }
        if k.external_call {
            need |= HourMask::EXTERNAL;
        }
        need
    }

    /// The partitions of the slice starting at `start` that can hold a
    /// match, by what the hour index says the hour holds.
    pub(super) fn sources(&self, start: DateTime<Utc>, shards: u16, holds: HourMask) -> Vec<Source> {
        let mut out = Vec::new();
        let user = self.user.map(str::to_owned);
        let sharded = self.kinds.sharded();
        if !sharded.is_empty() && holds.may_hold(self.sharded_need()) {
            let label = crate::time::hour_label(start);
            let kinds = if sharded.len() == 3 { Vec::new() } else { sharded };
            for shard in 0..shards.max(1) {
                let pk = keys::event_pk(self.tenant, &label, shard);
                out.push(Source { index: None, attr: PK, pk, kinds: kinds.clone(), action: None, user: user.clone() });
            }
        }
        if self.kinds.activity && holds.may_hold(HourMask::ACTIVITY) {
            match self.user {
                Some(u) => out.push(Source {
                    index: Some(GSI1),
                    attr: GSI1_PK,
                    pk: keys::user_pk(self.tenant, u),
                    kinds: Vec::new(),
                    action: self.action.map(str::to_owned),
                    user: None,
                }),
                None => {
                    let names: Vec<(&str, Option<String>)> = match self.action {
                        Some(a) if KNOWN_ACTIONS.contains(&a) => vec![(a, None)],
                        Some(a) => vec![(CUSTOM_ACTIONS, Some(a.to_owned()))],
                        None => KNOWN_ACTIONS.iter().map(|a| (*a, None)).chain([(CUSTOM_ACTIONS, None)]).collect(),
                    };
                    for (name, action) in names {
                        let pk = keys::activity_pk(self.tenant, name, start);
                        out.push(Source { index: None, attr: PK, pk, kinds: Vec::new(), action, user: None });
                    }
                }
            }
        }
        out
    }
}

/// The item and query budget is what makes a page's cost independent of
/// the tenant's events; these check the slicing it relies on.
#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn hours_run_back_and_are_clipped_to_the_range() {
        let s = slice_starts(at("2026-11-30T22:30:00Z"), at("2026-12-01T01:15:00Z"), Step::Hour);
        let got: Vec<(String, String)> = s.iter().map(|(a, b)| (a.to_rfc3339(), b.to_rfc3339())).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (at("2026-12-01T01:00:00Z").to_rfc3339(), at("2026-12-01T01:15:00Z").to_rfc3339()));
        assert_eq!(got[3], (at("2026-11-30T22:30:00Z").to_rfc3339(), at("2026-11-30T23:00:00Z").to_rfc3339()));
    }

    #[test]
    fn months_run_back_across_a_year_and_date_to_is_exclusive() {
        let m = slice_starts(at("2025-11-15T00:00:00Z"), at("2026-02-01T00:00:00Z"), Step::Month);
        let labels: Vec<String> = m.iter().map(|(t, _)| t.format("%Y-%m-%d").to_string()).collect();
        assert_eq!(labels, ["2026-01-01", "2025-12-01", "2025-11-15"]);
        assert_eq!(m[0].1, at("2026-02-01T00:00:00Z"));
    }

    #[test]
    fn a_slice_reads_the_partitions_of_the_kinds_asked_for() {
        let q = |kinds, user, action| ExploreQuery {
            tenant: "t",
            kinds,
            user,
            action,
            conds: Vec::new(),
            from: at("2026-11-01T00:00:00Z"),
            to: at("2026-12-01T00:00:00Z"),
            before: None,
            limit: 10,
            budget: PAGE_BUDGET,
        };
        let start = at("2026-11-30T10:00:00Z");
        let all = q(Kinds::ALL, None, None).sources(start, 8, HourMask::ANY);
        assert!(q(Kinds::ALL, None, None).sources(start, 8, HourMask(HourMask::AUTH)).len() == 8, "no activity in the hour");
        assert!(q(Kinds::ACTIVITY, None, None).sources(start, 8, HourMask(HourMask::API)).is_empty());
        assert_eq!(all.len(), 8 + KNOWN_ACTIONS.len() + 1, "8 shards and every action partition");
        assert!(all[..8].iter().all(|s| s.kinds.is_empty() && s.pk.starts_with("T#t#E#2026-11-30T10#")));
        let auth = Kinds { activity: false, api_request: false, auth: true, external_call: false };
        let one = q(auth, Some("u1"), None).sources(start, 8, HourMask::ANY);
        assert_eq!(one.len(), 8);
        assert!(one.iter().all(|s| s.kinds == ["auth"] && s.user.as_deref() == Some("u1")));
        let mine = q(Kinds::ACTIVITY, Some("u1"), Some("login")).sources(start, 8, HourMask::ANY);
        assert_eq!(mine.len(), 1);
        assert_eq!((mine[0].index, mine[0].action.as_deref()), (Some(GSI1), Some("login")));
        let custom = q(Kinds::ACTIVITY, None, Some("my_action")).sources(start, 8, HourMask::ANY);
        assert_eq!((custom.len(), custom[0].action.as_deref()), (1, Some("my_action")));
        assert!(custom[0].pk.contains(CUSTOM_ACTIONS));
        assert!(matches!(q(Kinds::ACTIVITY, None, None).step(), Step::Month));
        assert!(matches!(q(Kinds::ACTIVITY, Some("u"), None).step(), Step::Whole));
        assert!(matches!(q(auth, None, None).step(), Step::Hour));
    }
}

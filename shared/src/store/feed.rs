//! Activity feeds, newest first, a page at a time: a user's events through
//! gsi1, a tenant's through the per-action partitions of the table (a fixed
//! set per month: the known actions and `custom`). A page reads at most
//! `limit + 1` items from each partition it touches and at most
//! [`FEED_READ_BUDGET`] items in all, however many events the tenant has;
//! the position is the sort key of the last item returned, or where the
//! budget ran out.

use crate::store::ItemExt;
use chrono::{DateTime, Datelike, Duration, Utc};

use super::events::StoredEvent;
use super::keys;
use super::table::{GSI1, GSI1_PK, PK, SK, Table, UNEXPIRED};
use super::{StoreError, s};
use crate::model::{CUSTOM_ACTIONS, KNOWN_ACTIONS};

/// What a feed page asks for.
#[derive(Debug, Clone)]
pub struct FeedQuery<'a> {
    pub tenant: &'a str,
    /// One user's events (gsi1), or the whole tenant's.
    pub user: Option<&'a str>,
    /// One action only.
    pub action: Option<&'a str>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Continue below this sort key (exclusive).
    pub before: Option<String>,
    pub limit: usize,
}

/// A page of events and, when more follow, the position to continue from.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub items: Vec<StoredEvent>,
    pub next: Option<String>,
}

/// Items a feed page may read from storage: a filter that matches little
/// (one custom action among many) ends the page early, with a cursor,
/// instead of reading on.
pub const FEED_READ_BUDGET: usize = 2000;

/// A partition to read: index (or the table), partition key, and an action
/// filter for the shared `custom` partition.
struct Source {
    index: Option<&'static str>,
    attr: &'static str,
    pk: String,
    action: Option<String>,
}

/// The sort-key window of a read: `low <= sk <= high`, the `exclude`
/// position itself left out.
#[derive(Clone, Copy)]
struct Window<'a> {
    low: &'a str,
    high: &'a str,
    exclude: Option<&'a str>,
}

/// The first day of each month from `to`'s back to `from`'s.
fn months_desc(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let first_of = |t: DateTime<Utc>| t.with_day(1).unwrap_or(t);
    let mut m = first_of(to - Duration::milliseconds(1));
    let stop = first_of(from);
    let mut out = Vec::new();
    while m.year() > stop.year() || (m.year() == stop.year() && m.month() >= stop.month()) {
        out.push(m);
        m = first_of(m - Duration::days(1));
    }
    out
}

/// Activity feeds: a tenant's or a user's events, a page at a time.
#[derive(Clone, Copy)]
pub struct Feed<'t> {
    pub(super) t: &'t Table,
}

impl Feed<'_> {
    /// One page of activity events, newest first, unexpired.
    pub async fn page(self, q: &FeedQuery<'_>, now: DateTime<Utc>) -> Result<FeedPage, StoreError> {
        let low = keys::sk_from(q.from);
        let high = match &q.before {
            Some(b) if *b < keys::sk_before(q.to) => b.clone(),
            _ => keys::sk_before(q.to),
        };
        let want = q.limit + 1;
        let mut found: Vec<StoredEvent> = Vec::new();
        let groups: Vec<Vec<Source>> = match q.user {
            Some(user) => {
                vec![vec![Source {
                    index: Some(GSI1),
                    attr: GSI1_PK,
                    pk: keys::user_pk(q.tenant, user),
                    action: q.action.map(str::to_owned),
                }]]
            }
            None => months_desc(q.from, q.to)
                .into_iter()
                .map(|month| {
                    let names: Vec<(&str, Option<String>)> = match q.action {
                        Some(a) if KNOWN_ACTIONS.contains(&a) => vec![(a, None)],
                        Some(a) => vec![(CUSTOM_ACTIONS, Some(a.to_owned()))],
                        None => KNOWN_ACTIONS.iter().map(|a| (*a, None)).chain([(CUSTOM_ACTIONS, None)]).collect(),
                    };
                    names
                        .into_iter()
                        .map(|(name, action)| Source { index: None, attr: PK, pk: keys::activity_pk(q.tenant, name, month), action })
                        .collect()
                })
                .collect(),
        };
        // The highest position at which a source ran out of budget: what
        // lies below it is not known yet, so the page ends there.
        let mut cut: Option<String> = None;
        for group in groups {
            let budget = (FEED_READ_BUDGET / group.len().max(1)).max(1);
            let window = Window { low: &low, high: &high, exclude: q.before.as_deref() };
            let reads = group.iter().map(|src| self.read_source(src, window, want, budget, now));
            for (items, stopped) in futures::future::try_join_all(reads).await? {
                found.extend(items);
                if let Some(at) = stopped
                    && cut.as_ref().is_none_or(|c| at > *c)
                {
                    cut = Some(at);
                }
            }
            // Later groups (older months) hold only older events.
            if found.len() >= want || cut.is_some() {
                break;
            }
        }
        if let Some(c) = &cut {
            found.retain(|e| e.sk > *c);
        }
        found.sort_by(|a, b| b.sk.cmp(&a.sk));
        let more = found.len() > q.limit;
        found.truncate(q.limit);
        let next = if more { found.last().map(|e| e.sk.clone()) } else { cut };
        Ok(FeedPage { items: found, next })
    }

    /// Up to `want` items of one partition within the window, newest first,
    /// reading at most `budget` items; when the budget ends the read first,
    /// also the sort key it stopped at.
    async fn read_source(
        self,
        src: &Source,
        Window { low, high, exclude }: Window<'_>,
        want: usize,
        budget: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<StoredEvent>, Option<String>), StoreError> {
        let mut filter = String::from(UNEXPIRED);
        let mut query = self
            .t
            .query_unexpired(now)
            .set_index_name(src.index.map(str::to_owned))
            .key_condition_expression("#k = :p AND #sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#k", src.attr)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":p", s(&src.pk))
            .expression_attribute_values(":lo", s(low))
            .expression_attribute_values(":hi", s(high))
            .scan_index_forward(false);
        if let Some(a) = &src.action {
            filter.push_str(" AND #action = :action");
            query = query.expression_attribute_names("#action", "action").expression_attribute_values(":action", s(a));
        }
        let query = query.filter_expression(filter);
        let mut out = Vec::new();
        let mut read = 0;
        let mut start = None;
        loop {
            let page_limit = (want + 1).min(budget - read).max(1);
            let page = query
                .clone()
                .limit(i32::try_from(page_limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            let scanned = usize::try_from(page.scanned_count).unwrap_or(page_limit);
            read += scanned;
            // A filtered read costs what it scanned, not what it returned.
            self.t.count_read(scanned);
            let items = page.items.unwrap_or_default();
            for item in items {
                let e: StoredEvent = serde_dynamo::from_item(item)?;
                if Some(e.sk.as_str()) != exclude {
                    out.push(e);
                }
            }
            start = page.last_evaluated_key;
            let Some(last) = &start else { return Ok((out, None)) };
            if out.len() >= want {
                return Ok((out, None));
            }
            if read >= budget {
                let at = last.str(SK).map(str::to_owned);
                return Ok((out, at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_back_across_a_year() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let m = months_desc(at("2025-11-15T00:00:00Z"), at("2026-02-01T00:00:00Z"));
        let labels: Vec<String> = m.iter().map(|t| t.format("%Y-%m").to_string()).collect();
        assert_eq!(labels, ["2026-01", "2025-12", "2025-11"], "date_to is exclusive");
    }
}

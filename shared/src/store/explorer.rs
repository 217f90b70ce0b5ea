//! Stored events of every kind, newest first, a page at a time, at a
//! bounded cost: what `GET /events` and the activity feeds read.
//!
//! The events of a tenant lie in partitions by time: activity in its
//! action's month partition (and, per user, in gsi1), every other kind in
//! its hour's shards. A page walks time slices newest first (hours when a
//! kind other than activity is asked for, else months, or the whole range
//! for one user's activity), reads the slice's partitions in parallel, at
//! most `limit + 1` items from each, and stops when `limit` items matched,
//! or when its [`ReadBudget`] is spent: then the page holds what matched
//! so far and the position where reading stopped, so the next page
//! resumes exactly there. Filters run in DynamoDB (a filtered read costs
//! what it scanned, which is what the budget counts).

use chrono::{DateTime, Utc};

use super::events::StoredEvent;
use super::keys;
use super::table::{SK, Table, UNEXPIRED};
use super::{StoreError, s};
use crate::store::ItemExt;

pub mod index;
mod plan;
use index::HourMask;
pub use plan::{Cond, ExplorePage, ExploreQuery, Kinds, PAGE_BUDGET, ReadBudget, Value};
use plan::{Source, Step, slice_starts};

/// The sort-key window of a read: `low <= sk <= high`, `exclude` left out.
#[derive(Clone, Copy)]
struct Window<'a> {
    low: &'a str,
    high: &'a str,
    exclude: Option<&'a str>,
}

/// What one source gave: its items, where its budget stopped it, and
/// what it cost.
struct Read {
    items: Vec<StoredEvent>,
    stopped_at: Option<String>,
    scanned: usize,
    queries: usize,
}

/// Stored events of every kind, a page at a time.
#[derive(Clone, Copy)]
pub struct Explorer<'t> {
    pub(super) t: &'t Table,
}

impl Explorer<'_> {
    /// The start of the tenant's earliest hour with events: the tenant
    /// registry's first hour (kept by the roll-up) or the oldest hour still
    /// waiting for it, whichever is earlier; `None` when the tenant never
    /// stored an event. Two one-item reads: what keeps a page of a new or
    /// sparse tenant from walking its whole retention.
    async fn earliest(self, tenant: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let registered = self.t.tenants().first_hour(tenant).await?;
        let dirty = self.t.markers().oldest_dirty_hour(tenant).await?;
        Ok(registered.into_iter().chain(dirty).min())
    }

    /// One page, newest first, unexpired, within the budget.
    pub async fn page(self, q: &ExploreQuery<'_>, now: DateTime<Utc>) -> Result<ExplorePage, StoreError> {
        let index_before = self.t.items_read();
        // The slices to walk: the hours that may hold a match (the hour
        // index), or months (or the whole range) of activity from the
        // tenant's earliest hour on.
        let slices: Vec<(DateTime<Utc>, DateTime<Utc>, HourMask)> = match q.step() {
            Step::Hour => {
                // Hours above the cursor are done: the index is read below it.
                let below = q.before.as_deref().and_then(keys::time_of_sk).map(|t| t + chrono::Duration::milliseconds(1));
                let to = below.map_or(q.to, |b| b.min(q.to));
                let hours = if to > q.from { self.hours(q.tenant, q.from, to).await? } else { Vec::new() };
                let need = q.sharded_need() | if q.kinds.activity { HourMask::ACTIVITY } else { 0 };
                hours
                    .into_iter()
                    .filter(|(_, m)| m.may_hold(need))
                    .map(|(h, m)| (h.max(q.from), (h + chrono::Duration::hours(1)).min(q.to), m))
                    .collect()
            }
            step => match self.earliest(q.tenant).await? {
                Some(earliest) => slice_starts(q.from.max(earliest), q.to, step).into_iter().map(|(a, b)| (a, b, HourMask::ANY)).collect(),
                None => Vec::new(),
            },
        };
        let index_read = (self.t.items_read() - index_before) as usize;
        let top = match &q.before {
            Some(b) if *b < keys::sk_before(q.to) => b.clone(),
            _ => keys::sk_before(q.to),
        };
        let want = q.limit + 1;
        let (mut items_left, mut queries_left) = (q.budget.items, q.budget.queries);
        let mut found: Vec<StoredEvent> = Vec::new();
        // The highest position below which something is still unread.
        let mut cut: Option<String> = None;
        for (from, to, holds) in slices {
            let (low, high) = (keys::sk_from(from), keys::sk_before(to).min(top.clone()));
            if low > high {
                continue;
            }
            let sources = q.sources(from, self.t.config().shards, holds);
            let n = sources.len().max(1);
            if items_left < n || queries_left < n {
                cut = Some(high);
                break;
            }
            let window = Window { low: &low, high: &high, exclude: q.before.as_deref() };
            let each = ReadBudget { items: items_left / n, queries: queries_left / n };
            let reads = sources.iter().map(|src| self.read(src, &q.conds, window, want, each, now));
            for r in futures::future::try_join_all(reads).await? {
                found.extend(r.items);
                items_left -= r.scanned.min(items_left);
                queries_left -= r.queries.min(queries_left);
                if let Some(at) = r.stopped_at
                    && cut.as_ref().is_none_or(|c| at > *c)
                {
                    cut = Some(at);
                }
            }
            // Older slices hold only older events.
            if found.len() >= want || cut.is_some() {
                break;
            }
        }
        if let Some(c) = &cut {
            // The item at the cut itself was read (a read stops after it).
            found.retain(|e| e.sk >= *c);
        }
        found.sort_by(|a, b| b.sk.cmp(&a.sk));
        let more = found.len() > q.limit;
        found.truncate(q.limit);
        let next = if more { found.last().map(|e| e.sk.clone()) } else { cut };
        let (items_read, queries) = (q.budget.items - items_left, q.budget.queries - queries_left);
        Ok(ExplorePage { items: found, next, items_read, queries, index_read })
    }

    /// Up to `want` matching items of one partition within the window,
    /// newest first, within its share of the budget; when the budget ends the read first, also the position it
    /// stopped at.
    async fn read(
        self,
        src: &Source,
        conds: &[Cond],
        Window { low, high, exclude }: Window<'_>,
        want: usize,
        ReadBudget { items, queries }: ReadBudget,
        now: DateTime<Utc>,
    ) -> Result<Read, StoreError> {
        let mut filter = vec![UNEXPIRED.to_owned()];
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
        let mut all: Vec<Cond> = conds.to_vec();
        if let Some(a) = &src.action {
            all.push(Cond::Eq("action", Value::Text(a.clone())));
        }
        if let Some(u) = &src.user {
            all.push(Cond::Eq("user_id", Value::Text(u.clone())));
        }
        for (i, c) in all.iter().enumerate() {
            let (name, expr) = match c {
                Cond::Eq(a, v) => {
                    query = query.expression_attribute_values(format!(":c{i}"), v.attribute());
                    (a, format!("#c{i} = :c{i}"))
                }
                Cond::AtLeast(a, v) => {
                    query = query.expression_attribute_values(format!(":c{i}"), v.attribute());
                    (a, format!("#c{i} >= :c{i}"))
                }
                Cond::Between(a, lo, hi) => {
                    query = query
                        .expression_attribute_values(format!(":c{i}"), lo.attribute())
                        .expression_attribute_values(format!(":d{i}"), hi.attribute());
                    (a, format!("#c{i} BETWEEN :c{i} AND :d{i}"))
                }
            };
            query = query.expression_attribute_names(format!("#c{i}"), *name);
            filter.push(expr);
        }
        if !src.kinds.is_empty() {
            let names: Vec<String> = (0..src.kinds.len()).map(|i| format!(":k{i}")).collect();
            for (i, k) in src.kinds.iter().enumerate() {
                query = query.expression_attribute_values(format!(":k{i}"), s(*k));
            }
            query = query.expression_attribute_names("#kind", "kind");
            filter.push(format!("#kind IN ({})", names.join(", ")));
        }
        let query = query.filter_expression(filter.join(" AND "));
        let mut out = Read { items: Vec::new(), stopped_at: None, scanned: 0, queries: 0 };
        let mut start = None;
        loop {
            let page_limit = (want + 1).min(items - out.scanned).max(1);
            let page = query
                .clone()
                .limit(i32::try_from(page_limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            out.queries += 1;
            let scanned = usize::try_from(page.scanned_count).unwrap_or(page_limit);
            out.scanned += scanned;
            // A filtered read costs what it scanned, not what it returned.
            self.t.count_read(scanned);
            for item in page.items.unwrap_or_default() {
                let e: StoredEvent = serde_dynamo::from_item(item)?;
                if Some(e.sk.as_str()) != exclude {
                    out.items.push(e);
                }
            }
            start = page.last_evaluated_key;
            let Some(last) = &start else { return Ok(out) };
            if out.items.len() >= want {
                return Ok(out);
            }
            if out.scanned >= items || out.queries >= queries {
                out.stopped_at = last.str(SK).map(str::to_owned);
                return Ok(out);
            }
        }
    }
}

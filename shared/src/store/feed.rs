//! Activity feeds, newest first, a page at a time: a user's events through
//! gsi1, a tenant's through the per-action partitions of the table (a fixed
//! set per month: the known actions and `custom`). A page reads at most
//! `limit + 1` items from each partition it touches and at most
//! [`PAGE_BUDGET`] items in all, however many events the tenant has;
//! the position is the sort key of the last item returned, or where the
//! budget ran out.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::events::StoredEvent;
use super::explorer::{ExploreQuery, Explorer, Kinds, PAGE_BUDGET};
use super::table::Table;

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

/// Activity feeds: a tenant's or a user's events, a page at a time.
#[derive(Clone, Copy)]
pub struct Feed<'t> {
    pub(super) t: &'t Table,
}

impl Feed<'_> {
    /// One page of activity events, newest first, unexpired: the
    /// explorer's page of activity alone.
    pub async fn page(self, q: &FeedQuery<'_>, now: DateTime<Utc>) -> Result<FeedPage, StoreError> {
        let q = ExploreQuery {
            tenant: q.tenant,
            kinds: Kinds::ACTIVITY,
            user: q.user,
            action: q.action,
            conds: Vec::new(),
            from: q.from,
            to: q.to,
            before: q.before.clone(),
            limit: q.limit,
            budget: PAGE_BUDGET,
        };
        let page = Explorer { t: self.t }.page(&q, now).await?;
        Ok(FeedPage { items: page.items, next: page.next })
    }
}

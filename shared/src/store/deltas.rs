//! Hour deltas: what each ingest request stored in a live hour, kept by
//! ingest itself, so that a read of the current hour (or of the hour just
//! ended, before the roll-up stored it) costs a number of items that does
//! not grow with the events of the hour.
//!
//! A request that writes into a live hour (the hour of its receipt, the one
//! before, or a later one) keeps one delta item per such hour:
//!
//! 1. after its identity phase, before any event item, a **pending** delta
//!    listing the keys of the items it is about to write there;
//! 2. after its items, the delta is confirmed (**done**, on condition that
//!    it is still pending) with the rollup of the events it actually stored;
//!    the response goes out only after, so every acknowledged event is in a
//!    done delta, and an item is stored by one request only (its
//!    conditional put), so no event is in two;
//! 3. a reader that meets a **pending** delta (in flight, or its writer
//!    failed or died after some of its items) reads its keys back and
//!    counts the items its writer stored, as a raw read would; one older
//!    than any request can live ([`STALE`]: its writer is gone) it also
//!    confirms, as its writer would have;
//! 4. **compaction** folds up to 99 done deltas into the hour's partial: a
//!    put on condition that the partial's version did not move, naming the
//!    deltas it folded, which are deleted after it; readers skip the deltas
//!    the partial names, and the next compaction deletes any still there
//!    before it writes (once the partial stops naming them they must be
//!    gone). Run by ingest once in 64 requests and by a reader that met
//!    many deltas. A partial too large for one item (thousands of distinct
//!    endpoints, users or IPs in the hour) keeps its rollup in parts, each
//!    written under a key of its own compaction (the version it writes and
//!    a random id) before the conditional put that names them: a losing or
//!    dying compaction never touches the parts the partial names, and a
//!    reader takes only those. The parts of older versions go after the
//!    put, or with the next compaction;
//! 5. a reader reads the partial and the deltas, then the partial's version
//!    again: if it moved, a compaction ran meanwhile and the read is taken
//!    again; else it counts the partial, the done deltas and the pending
//!    ones read back.
//!
//! Each delta's rollup holds the events placed at or before its writer's
//! receive time; the few placed later (a sender's time ahead of the
//! receipt) are listed by key and time, so a read that ends now counts
//! those of them placed before its end, read by key. A read ending now
//! skips the deltas of requests received at or after its end, exactly as
//! their items would be missing from a raw read taken at that instant.
//!
//! Hours are read from deltas only when every write into them kept one:
//! from [`since`](HourDeltas::since), the time from which every ingest
//! request keeps deltas (a table created by this code, `create_table`, has
//! them from its start; on any other table, the SAM template's included, the
//! first request that keeps deltas records its receipt plus a day and an
//! hour, later than any event an earlier request could have placed ahead),
//! and while the hour is live for every request that can still write into
//! it. An hour with a request whose own rollup outgrew an item is read raw.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::events::{ItemKey, WRITER};
use super::keys::deltas_pk;
use super::table::{PK, SK, Table};
use super::{Item, ItemExt, StoreError, n, s};
use crate::model::Event;
use crate::rollup::Rollup;
use crate::time::hour_start;
use body::{Body, in_recent};

/// How old a pending delta must be before a reader resolves it: longer
/// than any Lambda invocation can run (15 minutes), so its writer is gone.
pub const STALE: Duration = Duration::minutes(16);
/// How long before an hour stops being live that readers stop trusting its
/// deltas: host clocks differ by far less.
const CLOCK_MARGIN: Duration = Duration::seconds(60);
/// A reader that met more done deltas than this compacts the hour.
pub const COMPACT_AFTER: usize = 32;
/// Ingest compacts an hour it confirmed a delta of once in this many
/// requests, on average: each compaction then folds about as many deltas,
/// so its partial's write is shared by them (readers compact too).
const COMPACT_ODDS: u32 = 64;
/// Deltas folded per compaction: the partial names them (about 2 KB).
const PER_COMPACTION: usize = 99;
/// The largest partial kept in one item (an item holds 400 KB); a larger
/// one keeps its rollup in parts of [`PART_BYTES`].
const MAX_PARTIAL_BYTES: usize = 300 * 1024;
const PART_BYTES: usize = 350 * 1024;
/// The most parts a partial has (11 MB of rollup: past any hour the
/// rollups keep, `rollup_max_keys` being 1,000 keys a breakdown by
/// default); beyond, the hour's deltas stay as they are.
const MAX_PARTS: usize = 32;
/// A partial of several items is rewritten whole by each compaction, so a
/// compaction writing `n` parts folds at least `FOLD_PER_PART * n` deltas
/// (at most [`PER_COMPACTION`]): its write is shared by as many requests.
const FOLD_PER_PART: usize = 16;
/// The most events placed ahead a partial lists.
const MAX_AHEAD: usize = 2_000;
/// How long deltas are kept: the hour is rolled up long before.
const KEEP: Duration = Duration::days(2);
/// Reads taken again when a compaction moved the partial meanwhile.
const READ_ATTEMPTS: usize = 3;

const PARTIAL_SK: &str = "#P";
const DELTA_PREFIX: &str = "D#";
const STATE: &str = "st";
const PENDING: &str = "p";
const DONE: &str = "d";
const AT: &str = "at";
const KEYS: &str = "k";
const ROLLUP: &str = "r";
const AHEAD: &str = "a";
const RECENT: &str = "r5";
const RECENT_FROM: &str = "rf";
/// How long before the newest receipt a partial keeps its fives: the hour
/// (the health snapshot reads its live hour from five 0 on) and a health
/// run at most 15 minutes late.
const RECENT_KEEP: Duration = Duration::minutes(75);
/// The most a partial's fives weigh; beyond, it drops them (the alert
/// window of the hour is read raw).
const MAX_RECENT_BYTES: usize = 96 * 1024;
const VERSION: &str = "v";
const CUT: &str = "cut";
const FOLDED: &str = "f";
/// A partial in parts: their count and the key of their compaction.
const PARTS: &str = "np";
const PARTS_OF: &str = "pp";
const PART_PREFIX: &str = "#P#";
const DATA: &str = "data";
/// Set on a done delta whose rollup outgrew an item: its hour is read raw.
const RAW: &str = "x";
/// The largest rollup a delta holds (an item holds 400 KB).
const MAX_BODY_BYTES: usize = 350 * 1024;
const SINCE_PK: &str = "DELTAS";
const SINCE_SK: &str = "since";
const SINCE: &str = "t";

/// Whether a request received at `received` keeps deltas for the hour
/// starting at `hour`: the hour of its receipt, the one before, or later.
pub fn is_live(hour: DateTime<Utc>, received: DateTime<Utc>) -> bool {
    hour + Duration::hours(1) >= hour_start(received)
}

/// Whether at `now` every request that can still write into the hour
/// keeps deltas for it (with a margin for clocks).
fn trusted_at(hour: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < hour + Duration::hours(2) - CLOCK_MARGIN
}

/// An event placed after its request's receipt: its time (ms) and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Ahead(i64, String, String);

/// One delta as read.
#[derive(Debug, Clone)]
struct Delta {
    sk: String,
    done: bool,
    /// Its writer's receive time (ms).
    at: i64,
    writer: String,
    keys: Vec<(String, String)>,
    body: Body,
    /// Its rollup outgrew an item: the hour is read raw.
    raw: bool,
}

/// The hour's partial: the folded deltas.
#[derive(Debug, Clone, Default)]
struct Partial {
    version: i64,
    /// Every event of the rollup is placed at or before this (ms).
    cut: i64,
    body: Body,
    /// The deltas the compaction that wrote this version folded: deleted
    /// after it, so until then readers skip them, and the next compaction
    /// deletes any still there before it writes.
    folded: BTreeSet<String>,
    /// Its rollup in parts: their compaction's key and their count.
    parts: Option<(String, usize)>,
}

/// Done deltas a compaction writing a partial of `items` items folds at
/// least.
fn fold_at_least(items: usize) -> usize {
    if items <= 1 { 1 } else { (FOLD_PER_PART * items).min(PER_COMPACTION) }
}

/// What one read of an hour's partition found.
#[derive(Clone)]
struct Snapshot {
    partial: Partial,
    /// The deltas not in the partial.
    deltas: Vec<Delta>,
    /// Deltas the partial holds already, not deleted yet.
    leftovers: Vec<String>,
    /// Parts no partial will name again: of an older version than the
    /// partial's, or of a compaction that lost the race to write it.
    dead_parts: Vec<String>,
}

/// The item recording `since` (ms): written once, at table creation
/// (`store::table::create_table`) or by the first request keeping deltas.
pub(super) fn since_item(at: i64) -> [(&'static str, AttributeValue); 3] {
    [(PK, s(SINCE_PK)), (SK, s(SINCE_SK)), (SINCE, n(at))]
}

/// Each table's `since`, once known (it never changes once written).
fn since_cache() -> &'static Mutex<HashMap<String, i64>> {
    static CACHE: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// What a read of an hour from its deltas cost and found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaRead {
    pub deltas: usize,
    /// Pending deltas read back by key.
    pub resolved: usize,
    pub ahead_read: usize,
}

/// The hour deltas of the table.
#[derive(Clone, Copy)]
pub struct HourDeltas<'t> {
    pub(super) t: &'t Table,
}

impl HourDeltas<'_> {
    fn table(&self) -> &str {
        &self.t.config().table
    }

    /// The time (ms) from which every ingest request keeps deltas, if
    /// recorded.
    pub async fn since(self) -> Result<Option<i64>, StoreError> {
        if let Some(t) = since_cache().lock().expect("since cache").get(self.table()) {
            return Ok(Some(*t));
        }
        let out = self
            .t
            .client()
            .get_item()
            .table_name(self.table())
            .key(PK, s(SINCE_PK))
            .key(SK, s(SINCE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        self.t.count_read(usize::from(out.item.is_some()));
        let t = out.item.as_ref().and_then(|i| i.num::<i64>(SINCE));
        if let Some(t) = t {
            since_cache().lock().expect("since cache").insert(self.table().to_owned(), t);
        }
        Ok(t)
    }

    /// Records `since` unless it is recorded: `at` (ms) for a table
    /// created by this code (every write keeps deltas), else the caller's
    /// receipt plus a day and an hour.
    pub async fn record_since(self, at: i64) -> Result<(), StoreError> {
        if self.since().await?.is_some() {
            return Ok(());
        }
        let res = self
            .t
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(since_item(at).map(|(k, v)| (k.to_owned(), v)).into()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        super::table::condition_held(res)?;
        since_cache().lock().expect("since cache").remove(self.table());
        self.since().await.map(drop)
    }

    /// The partial's version as it is now.
    async fn version(self, tenant: &str, hour: &str) -> Result<i64, StoreError> {
        let out = self
            .t
            .client()
            .get_item()
            .table_name(self.table())
            .key(PK, s(deltas_pk(tenant, hour)))
            .key(SK, s(PARTIAL_SK))
            .projection_expression("#v")
            .expression_attribute_names("#v", VERSION)
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        self.t.count_read(usize::from(out.item.is_some()));
        Ok(out.item.and_then(|i| i.num(VERSION)).unwrap_or(0))
    }

    /// The stored events of `keys` (those that exist, strongly consistent).
    async fn events_of(self, keys: &[ItemKey]) -> Result<Vec<(ItemKey, Event, Option<String>)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let items = self.t.events().batch_get(keys, None).await?;
        self.t.count_read(items.len());
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let key = ItemKey { pk: item.str(PK).unwrap_or_default().to_owned(), sk: item.str(SK).unwrap_or_default().to_owned() };
            let writer = item.str(WRITER).map(str::to_owned);
            out.push((key, super::read_event(item)?, writer));
        }
        Ok(out)
    }
}

/// The key of a writer's delta in an hour.
fn delta_key(tenant: &str, hour: &str, writer: &str) -> Item {
    [(PK.to_owned(), s(deltas_pk(tenant, hour))), (SK.to_owned(), s(format!("{DELTA_PREFIX}{writer}")))].into()
}

/// When an hour's deltas expire.
fn expiry(hour: &str) -> i64 {
    crate::time::parse_hour(hour).map_or(0, |h| (h + KEEP).timestamp())
}

mod body;
mod read;
mod snapshot;
mod write;
pub use write::request_write_units;

#[cfg(test)]
mod tests;

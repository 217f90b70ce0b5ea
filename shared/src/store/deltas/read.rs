//! The read side of hour deltas: an hour's figures from them, stale
//! pendings resolved, and compaction.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::store::events::ItemKey;
use crate::store::keys::deltas_pk;
use crate::store::table::{PK, SK, TTL_ATTRIBUTE};
use crate::store::{Item, StoreError, n, s};
use crate::time::{hour_label, hour_start};

impl HourDeltas<'_> {
    /// A pending delta read back: the items its writer stored so far,
    /// rolled up as its writer confirms them, which is what a raw read of
    /// the hour finds of them. A stale one (its writer is gone) is also
    /// confirmed so: `None` when someone else settled it meanwhile (the
    /// read is then taken again).
    async fn resolve(self, tenant: &str, hour: &str, d: &Delta, settle: bool) -> Result<Option<Body>, StoreError> {
        let keys: Vec<ItemKey> = d.keys.iter().map(|(pk, sk)| ItemKey { pk: pk.clone(), sk: sk.clone() }).collect();
        let found = self.events_of(&keys).await?;
        let mine = found.iter().filter(|(_, _, w)| w.as_deref() == Some(d.writer.as_str())).map(|(k, e, _)| (k, e));
        let body = Body::of(d.at, mine);
        if settle && !self.settle(tenant, hour, &d.writer, &body).await? {
            return Ok(None);
        }
        Ok(Some(body))
    }

    /// The figures of `[hour, to)` made from the hour's deltas, as a raw
    /// read at `now` would make them; `None` when the deltas cannot say
    /// (the hour is not covered by them, or a read raced a compaction
    /// again and again): the caller reads the hour raw.
    pub async fn figures(
        self,
        tenant: &str,
        hour: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(Rollup, DeltaRead)>, StoreError> {
        let end = hour + Duration::hours(1);
        let whole = to >= end;
        if !(whole || to >= now) || !is_live(hour, now) || !trusted_at(hour, now) || hour_start(hour) != hour {
            return Ok(None);
        }
        match self.since().await? {
            Some(since) if since <= hour.timestamp_millis() => {}
            _ => return Ok(None),
        }
        let label = hour_label(hour);
        let to_ms = to.timestamp_millis();
        let stale_before = (now - STALE).timestamp_millis();
        for _ in 0..READ_ATTEMPTS {
            let snap = self.snapshot(tenant, &label).await?;
            if self.version(tenant, &label).await? != snap.partial.version {
                continue;
            }
            if !whole && snap.partial.cut >= to_ms {
                return Ok(None);
            }
            let mut read = DeltaRead { deltas: snap.deltas.len(), ..DeltaRead::default() };
            let mut rollup = snap.partial.body.rollup;
            let mut ahead: Vec<Ahead> = snap.partial.body.ahead;
            let mut done = 0;
            let mut raced = false;
            for d in &snap.deltas {
                if !whole && d.at >= to_ms {
                    // Received at or after the read's end: not in it.
                    done += usize::from(d.done);
                    continue;
                }
                let body = if d.done {
                    if d.raw {
                        return Ok(None);
                    }
                    done += 1;
                    d.body.clone()
                } else {
                    // In flight, or its writer failed or died after some of
                    // its items: what it stored is read back by key.
                    read.resolved += 1;
                    match self.resolve(tenant, &label, d, d.at < stale_before).await? {
                        Some(body) => body,
                        None => {
                            raced = true;
                            break;
                        }
                    }
                };
                rollup.merge(&body.rollup);
                ahead.extend(body.ahead);
            }
            if raced {
                continue;
            }
            let keys: Vec<ItemKey> =
                ahead.into_iter().filter(|a| whole || a.0 < to_ms).map(|Ahead(_, pk, sk)| ItemKey { pk, sk }).collect();
            let events = self.events_of(&keys).await?;
            read.ahead_read = events.len();
            for (_, e, _) in &events {
                rollup.add(e);
            }
            if done > COMPACT_AFTER {
                self.compact_quietly(tenant, &label).await;
            }
            // Bounded as the raw read bounds it (`store::hours`).
            rollup.compact(self.t.config().rollup_max_keys);
            return Ok(Some((rollup, read)));
        }
        Ok(None)
    }

    /// Folds up to 99 done deltas of the hour into its partial: first the
    /// deltas the partial folded already are deleted (what the compaction
    /// that wrote it left), then the partial is written on condition its
    /// version did not move, naming the deltas it folds, and those are
    /// deleted. False when there was nothing to fold, the partial would be
    /// too large, or another compaction won the race.
    pub async fn compact(self, tenant: &str, hour: &str) -> Result<bool, StoreError> {
        let snap = self.snapshot(tenant, hour).await?;
        // Gone before the partial stops naming them, or they would count twice.
        self.delete(tenant, hour, &snap.leftovers).await?;
        let mut done: Vec<&Delta> = snap.deltas.iter().filter(|d| d.done).collect();
        if done.is_empty() || done.iter().any(|d| d.raw) {
            return Ok(false);
        }
        done.sort_by_key(|d| d.at);
        done.truncate(PER_COMPACTION);
        let mut partial = snap.partial;
        let version = partial.version;
        for d in &done {
            partial.body.rollup.merge(&d.body.rollup);
            partial.body.ahead.extend(d.body.ahead.iter().cloned());
            partial.cut = partial.cut.max(d.at);
        }
        // Events placed ahead that the cut has reached join the rollup.
        let (reached, left): (Vec<Ahead>, Vec<Ahead>) = partial.body.ahead.drain(..).partition(|a| a.0 <= partial.cut);
        let keys: Vec<ItemKey> = reached.into_iter().map(|Ahead(_, pk, sk)| ItemKey { pk, sk }).collect();
        for (_, e, _) in self.events_of(&keys).await? {
            partial.body.rollup.add(&e);
        }
        partial.body.ahead = left;
        if partial.body.ahead.len() > MAX_AHEAD {
            return Ok(false);
        }
        let mut item: Item = [
            (PK.to_owned(), s(deltas_pk(tenant, hour))),
            (SK.to_owned(), s(PARTIAL_SK)),
            (VERSION.to_owned(), n(version + 1)),
            (CUT.to_owned(), n(partial.cut)),
            (TTL_ATTRIBUTE.to_owned(), n(expiry(hour))),
        ]
        .into();
        partial.body.attributes(&mut item)?;
        let folded: Vec<String> = done.iter().map(|d| d.sk.clone()).collect();
        item.insert(FOLDED.into(), s(serde_json::to_string(&folded).map_err(StoreError::corrupt)?));
        if crate::store::events::item_size(&item) > MAX_PARTIAL_BYTES {
            tracing::warn!(hour = %hour, "the hour's partial would be too large: its deltas stay");
            return Ok(false);
        }
        let res = self
            .t
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #v = :v")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        if !crate::store::table::condition_held(res)? {
            return Ok(false);
        }
        // Best effort: what is left is deleted by the next compaction.
        if let Err(e) = self.delete(tenant, hour, &folded).await {
            tracing::warn!(hour = %hour, error = %e, "folded hour deltas left for the next compaction");
        }
        Ok(true)
    }

    /// A compaction whose failure only costs the next reads: logged.
    pub(super) async fn compact_quietly(self, tenant: &str, hour: &str) {
        if let Err(e) = self.compact(tenant, hour).await {
            tracing::warn!(hour = %hour, error = %e, "hour deltas not compacted");
        }
    }

    /// Deletes deltas of the hour by sort key.
    async fn delete(self, tenant: &str, hour: &str, sks: &[String]) -> Result<(), StoreError> {
        if sks.is_empty() {
            return Ok(());
        }
        let keys = sks.iter().map(|sk| [(PK.to_owned(), s(deltas_pk(tenant, hour))), (SK.to_owned(), s(sk))].into()).collect();
        let cfg = self.t.config();
        let deadline = tokio::time::Instant::now() + cfg.deadline;
        crate::store::batch::batch_delete(self.t.client(), self.table(), keys, cfg.write_concurrency, cfg.max_attempts, deadline)
            .await
            .map(drop)
    }
}

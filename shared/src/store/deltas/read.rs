//! The read side of hour deltas: an hour's figures from them, stale
//! pendings resolved, and compaction.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::snapshot::{part_key, parts_of};
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
        self.read(tenant, hour, None, to, now).await
    }

    /// The activity, API requests and auth events of `[the five minutes
    /// `five` of the hour start, to)`, made from the deltas' fives
    /// ([`Body::recent`]) as a raw read at `now` would make them: what the
    /// health job's alert window reads of a live hour it starts inside.
    /// `None` when the deltas cannot say (as [`figures`](Self::figures),
    /// or the partial dropped those fives).
    pub async fn recent_figures(
        self,
        tenant: &str,
        hour: DateTime<Utc>,
        five: u8,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(Rollup, DeltaRead)>, StoreError> {
        if five >= crate::rollup::FIVES {
            return Ok(None);
        }
        self.read(tenant, hour, Some(five), to, now).await
    }

    /// Reads the hour from its deltas: whole (`five` `None`) or its fives
    /// from `five`.
    async fn read(
        self,
        tenant: &str,
        hour: DateTime<Utc>,
        five: Option<u8>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(Rollup, DeltaRead)>, StoreError> {
        let end = hour + Duration::hours(1);
        let from_ms = (hour + Duration::minutes(5 * i64::from(five.unwrap_or(0)))).timestamp_millis();
        // Fives ending at `to`: they split the events by their time, so every
        // delta counts, whenever received, as a raw read at `now` counts.
        let to_five = if to >= end { Some(crate::rollup::FIVES) } else { five_mark(hour, to) };
        let by_five = five.is_some() && to_five.is_some();
        let last = to_five.unwrap_or(crate::rollup::FIVES);
        // The body's figures the read takes: all of them, or its fives from `five`.
        let take = |b: &Body| -> Option<Rollup> {
            match five {
                None => Some(b.rollup.clone()),
                Some(k) if b.recent_from.is_some_and(|f| f <= k) => {
                    let mut r = Rollup::default();
                    b.recent.range(k..last.max(k)).for_each(|(_, x)| r.merge(x));
                    Some(r)
                }
                Some(_) => None,
            }
        };
        let whole = to >= end;
        if !(whole || by_five || to >= now) || !is_live(hour, now) || !trusted_at(hour, now) || hour_start(hour) != hour {
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
            let Some(snap) = self.snapshot(tenant, &label).await? else { continue };
            if self.version(tenant, &label).await? != snap.partial.version {
                continue;
            }
            // A reader that met many done deltas folds them, from what it read.
            let done_deltas = snap.deltas.iter().filter(|d| d.done).count();
            let fold = (done_deltas > COMPACT_AFTER.max(fold_at_least(snap.partial.items()))).then(|| snap.clone());
            if !whole && !by_five && snap.partial.cut >= to_ms {
                return Ok(None);
            }
            let mut read = DeltaRead { deltas: snap.deltas.len(), ..DeltaRead::default() };
            let Some(mut rollup) = take(&snap.partial.body) else { return Ok(None) };
            let mut ahead: Vec<Ahead> = snap.partial.body.ahead;
            let mut raced = false;
            for d in &snap.deltas {
                if !whole && !by_five && d.at >= to_ms {
                    // Received at or after the read's end: not in it.
                    continue;
                }
                let body = if d.done {
                    if d.raw {
                        return Ok(None);
                    }
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
                let Some(part) = take(&body) else { return Ok(None) };
                rollup.merge(&part);
                ahead.extend(body.ahead);
            }
            if raced {
                continue;
            }
            let keys: Vec<ItemKey> =
                ahead.into_iter().filter(|a| (whole || a.0 < to_ms) && a.0 >= from_ms).map(|Ahead(_, pk, sk)| ItemKey { pk, sk }).collect();
            let events = self.events_of(&keys).await?;
            read.ahead_read = events.len();
            for (_, e, _) in events.iter().filter(|(_, e, _)| five.is_none() || in_recent(e)) {
                rollup.add(e);
            }
            if let Some(snap) = fold
                && let Err(e) = self.fold(tenant, &label, snap).await
            {
                tracing::warn!(hour = %label, error = %e, "hour deltas not compacted");
            }
            // Bounded as the raw read bounds it (`store::hours`).
            rollup.compact(self.t.config().rollup_max_keys);
            return Ok(Some((rollup, read)));
        }
        Ok(None)
    }

    /// Folds up to 99 done deltas of the hour into its partial: first the
    /// deltas the partial folded already are deleted (what the compaction
    /// that wrote it left), and the parts no partial names, then the
    /// partial is written on condition its version did not move, naming
    /// the deltas it folds (and its own parts, written before it), and
    /// those deltas and the parts it replaced are deleted. False when there
    /// was nothing to fold, the partial would be too large, or another
    /// compaction won the race.
    pub async fn compact(self, tenant: &str, hour: &str) -> Result<bool, StoreError> {
        match self.snapshot(tenant, hour).await? {
            Some(snap) => self.fold(tenant, hour, snap).await,
            None => Ok(false),
        }
    }

    /// [`compact`](Self::compact) from a snapshot of the hour.
    async fn fold(self, tenant: &str, hour: &str, snap: Snapshot) -> Result<bool, StoreError> {
        // Gone before the partial stops naming them, or they would count twice.
        self.delete(tenant, hour, &snap.leftovers).await?;
        self.delete(tenant, hour, &snap.dead_parts).await?;
        let mut done: Vec<&Delta> = snap.deltas.iter().filter(|d| d.done).collect();
        if done.is_empty() || done.iter().any(|d| d.raw) {
            return Ok(false);
        }
        done.sort_by_key(|d| d.at);
        done.truncate(PER_COMPACTION);
        let mut partial = snap.partial.clone();
        let version = partial.version;
        for d in &done {
            partial.body.rollup.merge(&d.body.rollup);
            partial.body.ahead.extend(d.body.ahead.iter().cloned());
            partial.cut = partial.cut.max(d.at);
            partial.body.recent_from = partial.body.recent_from.zip(d.body.recent_from).map(|(a, b)| a.max(b));
            for (five, r) in &d.body.recent {
                partial.body.recent.entry(*five).or_default().merge(r);
            }
        }
        // Events placed ahead that the cut has reached join the rollup.
        let (reached, left): (Vec<Ahead>, Vec<Ahead>) = partial.body.ahead.drain(..).partition(|a| a.0 <= partial.cut);
        let keys: Vec<ItemKey> = reached.into_iter().map(|Ahead(_, pk, sk)| ItemKey { pk, sk }).collect();
        for (_, e, _) in self.events_of(&keys).await? {
            partial.body.add(&e);
        }
        partial.body.ahead = left;
        partial.body.keep_recent(hour, partial.cut);
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
        partial.body.ahead_attribute(&mut item)?;
        partial.body.recent_attributes(&mut item)?;
        let folded: Vec<String> = done.iter().map(|d| d.sk.clone()).collect();
        item.insert(FOLDED.into(), s(serde_json::to_string(&folded).map_err(StoreError::corrupt)?));
        let data = serde_json::to_vec(&partial.body.rollup).map_err(StoreError::corrupt)?;
        let mut parts = Vec::new();
        if crate::store::events::item_size(&item) + ROLLUP.len() + data.len() <= MAX_PARTIAL_BYTES {
            item.insert(ROLLUP.into(), AttributeValue::B(Blob::new(data)));
        } else {
            if crate::store::events::item_size(&item) > MAX_PARTIAL_BYTES {
                // The fives give way before the partial does (the alert
                // window of the hour is read raw until they start again).
                item.remove(RECENT);
                item.remove(RECENT_FROM);
            }
            let chunks: Vec<&[u8]> = data.chunks(PART_BYTES).collect();
            if chunks.len() > MAX_PARTS || crate::store::events::item_size(&item) > MAX_PARTIAL_BYTES {
                tracing::warn!(hour = %hour, bytes = data.len(), "the hour's partial would be too large: its deltas stay");
                return Ok(false);
            }
            if done.len() < fold_at_least(1 + chunks.len()) {
                return Ok(false);
            }
            let of = parts_of(version + 1);
            item.insert(PARTS_OF.into(), s(&of));
            item.insert(PARTS.into(), n(chunks.len()));
            let puts = chunks.iter().enumerate().map(|(i, chunk)| {
                let part: Item = [
                    (PK.to_owned(), s(deltas_pk(tenant, hour))),
                    (SK.to_owned(), s(part_key(&of, i))),
                    (DATA.to_owned(), AttributeValue::B(Blob::new(*chunk))),
                    (TTL_ATTRIBUTE.to_owned(), n(expiry(hour))),
                ]
                .into();
                self.t.put(part)
            });
            parts = (0..chunks.len()).map(|i| part_key(&of, i)).collect();
            futures::future::try_join_all(puts).await?;
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
            // Lost the race: no partial names these (else the next compaction deletes them).
            if let Err(e) = self.delete(tenant, hour, &parts).await {
                tracing::warn!(hour = %hour, error = %e, "a losing compaction's parts left for the next");
            }
            return Ok(false);
        }
        // Best effort: what is left is deleted by the next compaction.
        let gone: Vec<String> = folded.into_iter().chain(snap.partial.part_keys()).collect();
        if let Err(e) = self.delete(tenant, hour, &gone).await {
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

/// The five minutes of `hour` that `t` starts, when it starts one after
/// the hour's start.
fn five_mark(hour: DateTime<Utc>, t: DateTime<Utc>) -> Option<u8> {
    (t > hour && t < hour + Duration::hours(1) && crate::rollup::at_five(t)).then(|| crate::rollup::five_of(t))
}

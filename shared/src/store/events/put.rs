//! Writing events: identity first, then the item (and a late event's
//! journal copy), each conditionally; and what a dry run reads instead.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use futures::StreamExt;
use tokio::time::Instant;

use super::{EVENT_PK, EVENT_SK, EventWrite, Events, ItemKey, JOURNALED, PutOutcome, WRITER};
use crate::backoff::Backoff;
use crate::model::Event;
use crate::store::deltas::is_live;
use crate::store::table::{PK, SK, condition_held};
use crate::store::{Item, ItemExt, Put, StoreError, put_once, s};
use crate::time;
use chrono::{DateTime, Utc};

/// Runs `f` unless the deadline passes first (then storage is unavailable).
async fn within<T>(deadline: Instant, f: impl Future<Output = T>) -> Result<T, StoreError> {
    tokio::time::timeout_at(deadline, f).await.map_err(|_| StoreError::unavailable("the write deadline passed"))
}

/// Where the first phase left an event.
enum Placed {
    /// Its item is to be written (a new event, or a resend whose first
    /// request never wrote the item); `owned` when this request wrote the
    /// identity.
    Write {
        owned: bool,
    },
    Refused(String),
}

impl Events<'_> {
    /// Writes each event once. First its identity, conditionally: the first
    /// request of an event wins, and a resend finds the identity and with
    /// it where the event was placed. Then its item, conditionally too, at
    /// that place: a resend whose first request failed before writing the
    /// item writes it (stored), one that finds the item is a duplicate, and
    /// of two requests racing, one stores and the other counts a duplicate.
    ///
    /// Both writes carry this request's `writer` id, so a retried attempt
    /// that finds its own earlier write knows it (the `w` attribute).
    /// With `received` (the request's receipt), each live hour it writes
    /// keeps a delta (`store::deltas`): pending before the items, confirmed
    /// with what was stored after them.
    /// An item DynamoDB refuses for its content is that event's
    /// `Unstorable`; a resend moved to an earlier place whose hour is not
    /// in `marked` has that hour marked dirty before its item is written and
    /// again after.
    /// Writes run in parallel up to the configured concurrency, bounded by
    /// the deadline; any failure still left fails the call, and nothing is
    /// reported stored.
    pub async fn put(
        self,
        tenant: &str,
        mut writes: Vec<EventWrite>,
        writer: &str,
        marked: &BTreeSet<String>,
        received: Option<DateTime<Utc>>,
    ) -> Result<Vec<PutOutcome>, StoreError> {
        let deadline = Instant::now() + self.t.config().deadline;
        for w in &mut writes {
            w.identity.insert(WRITER, s(writer));
            w.item.insert(WRITER, s(writer));
        }
        // The futures are collected first: a lazy `map` over borrowed writes
        // makes a future the compiler cannot prove `Send` for every lifetime.
        let identities: Vec<_> = writes.iter().map(|w| self.put_identity(w.identity.to_item())).collect();
        let placed =
            within(deadline, futures::stream::iter(identities).buffered(self.t.config().write_concurrency).collect::<Vec<_>>()).await?;
        let mut extra = BTreeSet::new();
        let mut plan = Vec::with_capacity(writes.len());
        for (w, p) in writes.iter_mut().zip(placed) {
            let p = match p? {
                (Placed::Write { owned: false }, Some((earlier, journaled))) => {
                    w.move_to(&earlier);
                    w.journal = journaled;
                    let hour = time::hour_label(w.placed_at);
                    if !marked.contains(&hour) {
                        extra.insert(hour);
                    }
                    Placed::Write { owned: false }
                }
                (p, _) => p,
            };
            plan.push(p);
        }
        if !extra.is_empty() {
            within(deadline, self.t.markers().mark(tenant, &extra)).await??;
        }
        // The live hours' pending deltas, with the items' final keys.
        let mut live: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        if let Some(at) = received {
            for (i, (w, p)) in writes.iter().zip(&plan).enumerate() {
                if matches!(p, Placed::Write { .. }) && is_live(time::hour_start(w.placed_at), at) {
                    live.entry(time::hour_label(w.placed_at)).or_default().push(i);
                }
            }
            let keys: BTreeMap<String, Vec<ItemKey>> =
                live.iter().map(|(h, ix)| (h.clone(), ix.iter().map(|i| writes[*i].key()).collect())).collect();
            within(deadline, self.t.deltas().begin(tenant, writer, at, &keys)).await??;
        }
        let items: Vec<_> = writes.iter().zip(plan).map(|(w, p)| self.place(tenant, w, p)).collect();
        let outcomes: Result<Vec<PutOutcome>, StoreError> =
            within(deadline, futures::stream::iter(items).buffered(self.t.config().write_concurrency).collect::<Vec<_>>())
                .await?
                .into_iter()
                .collect();
        if !extra.is_empty() {
            // And after, as for the caller's own hours (store::rollups).
            within(deadline, self.t.markers().mark(tenant, &extra)).await??;
        }
        let outcomes = outcomes?;
        if let Some(at) = received.filter(|_| !live.is_empty()) {
            // What this request stored, confirmed before it answers.
            let mut stored: BTreeMap<String, Vec<(ItemKey, Event)>> = BTreeMap::new();
            for (hour, ix) in live {
                let mut events = Vec::with_capacity(ix.len());
                for i in ix.into_iter().filter(|i| outcomes[*i] == PutOutcome::Stored) {
                    events.push((writes[i].key(), crate::store::read_event(writes[i].item.to_item())?));
                }
                stored.insert(hour, events);
            }
            within(deadline, self.t.deltas().confirm(tenant, writer, at, &stored)).await??;
        }
        Ok(outcomes)
    }

    /// The identity write: `Write { owned: true }` when this request wrote
    /// it; else the place the earlier request recorded, and whether it
    /// journaled the event.
    async fn put_identity(self, identity: Item) -> Result<(Placed, Option<(ItemKey, bool)>), StoreError> {
        let request = self
            .t
            .client()
            .put_item()
            .table_name(&self.t.config().table)
            .set_item(Some(identity))
            .condition_expression("attribute_not_exists(pk)");
        Ok(match put_once(request, WRITER).await? {
            Put::Written => (Placed::Write { owned: true }, None),
            Put::Refused(why) => (Placed::Refused(why), None),
            Put::Exists(old) => {
                let get = |k: &str| old.str(k).map(str::to_owned);
                let journaled = old.flag(JOURNALED).unwrap_or(false);
                match (get(EVENT_PK), get(EVENT_SK)) {
                    (Some(pk), Some(sk)) => (Placed::Write { owned: false }, Some((ItemKey { pk, sk }, journaled))),
                    _ => return Err(StoreError::corrupt("an identity item without its event's key")),
                }
            }
        })
    }

    async fn place(self, tenant: &str, w: &EventWrite, p: Placed) -> Result<PutOutcome, StoreError> {
        match p {
            Placed::Refused(why) => Ok(PutOutcome::Unstorable(why)),
            Placed::Write { owned } => self.put_item_of(tenant, w, owned).await,
        }
    }

    /// The item write, after its journal copy for an event journaled by its
    /// first request. The copy is written once (conditionally): a resend
    /// finds it when the first request wrote it, and that request wrote it
    /// before the item, so the item is never there without it.
    async fn put_item_of(self, tenant: &str, w: &EventWrite, owned_identity: bool) -> Result<PutOutcome, StoreError> {
        if w.journal {
            let copy = w.journal_copy(tenant);
            let request = self
                .t
                .client()
                .put_item()
                .table_name(&self.t.config().table)
                .set_item(Some(copy.into_item()))
                .condition_expression("attribute_not_exists(pk)");
            match put_once(request, WRITER).await? {
                Put::Written | Put::Exists(_) => {}
                Put::Refused(why) => return self.refuse(w, owned_identity, why).await,
            }
        }
        let request = self
            .t
            .client()
            .put_item()
            .table_name(&self.t.config().table)
            .set_item(Some(w.item.to_item()))
            .condition_expression("attribute_not_exists(pk)");
        Ok(match put_once(request, WRITER).await? {
            Put::Written => PutOutcome::Stored,
            Put::Exists(_) => PutOutcome::Duplicate,
            Put::Refused(why) => return self.refuse(w, owned_identity, why).await,
        })
    }

    /// An item DynamoDB refused: the identity this request wrote for it is
    /// taken back, so a corrected resend is stored rather than deemed a
    /// duplicate.
    async fn refuse(self, w: &EventWrite, owned_identity: bool, why: String) -> Result<PutOutcome, StoreError> {
        if owned_identity {
            let key = w.identity_key();
            let res = self
                .t
                .client()
                .delete_item()
                .table_name(&self.t.config().table)
                .set_key(Some(key.to_item()))
                .condition_expression("#w = :w")
                .expression_attribute_names("#w", WRITER)
                .expression_attribute_values(":w", w.identity.get(WRITER).cloned().unwrap_or(AttributeValue::Null(true)))
                .send()
                .await;
            condition_held(res)?;
        }
        Ok(PutOutcome::Unstorable(why))
    }

    /// Which of the events were stored already, as a write would find
    /// them: their identity exists and so does the item it points to.
    /// Keys only, strongly consistent: a dry run reports duplicates
    /// exactly as a real write would.
    pub async fn existing(self, writes: &[EventWrite]) -> Result<HashSet<ItemKey>, StoreError> {
        let identities: Vec<ItemKey> = writes.iter().map(EventWrite::identity_key).collect();
        let found = self.batch_get(&identities, Some(&format!("{PK}, {SK}, {EVENT_PK}, {EVENT_SK}"))).await?;
        let mut pointed: Vec<(ItemKey, ItemKey)> = Vec::new();
        for item in found {
            let get = |k: &str| item.str(k).map(str::to_owned).unwrap_or_default();
            pointed.push((ItemKey { pk: get(PK), sk: get(SK) }, ItemKey { pk: get(EVENT_PK), sk: get(EVENT_SK) }));
        }
        let targets: Vec<ItemKey> = pointed.iter().map(|(_, e)| e.clone()).collect();
        let present: HashSet<ItemKey> = self
            .batch_get(&targets, Some(&format!("{PK}, {SK}")))
            .await?
            .into_iter()
            .map(|i| {
                let get = |k: &str| i.str(k).map(str::to_owned).unwrap_or_default();
                ItemKey { pk: get(PK), sk: get(SK) }
            })
            .collect();
        Ok(pointed.into_iter().filter(|(_, e)| present.contains(e)).map(|(id, _)| id).collect())
    }

    /// The items of the keys that exist (projected, or whole), strongly
    /// consistent, 100 keys a call, unprocessed keys retried.
    pub(crate) async fn batch_get(self, keys: &[ItemKey], projection: Option<&str>) -> Result<Vec<Item>, StoreError> {
        let deadline = Instant::now() + self.t.config().deadline;
        let mut found = Vec::new();
        let unique: BTreeSet<&ItemKey> = keys.iter().collect();
        let unique: Vec<&ItemKey> = unique.into_iter().collect();
        for chunk in unique.chunks(100) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| k.to_item()).collect()))
                .set_projection_expression(projection.map(str::to_owned))
                .consistent_read(true)
                .build()
                .map_err(StoreError::corrupt)?;
            let mut backoff = Backoff::new(self.t.config().max_attempts, deadline);
            loop {
                let out = self
                    .t
                    .client()
                    .batch_get_item()
                    .request_items(&self.t.config().table, request)
                    .send()
                    .await
                    .map_err(StoreError::sdk)?;
                found.extend(out.responses.and_then(|mut r| r.remove(&self.t.config().table)).unwrap_or_default());
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.t.config().table)) {
                    Some(left) if !left.keys.is_empty() => {
                        request = left;
                        if !crate::backoff::wait(&mut backoff).await {
                            return Err(StoreError::unavailable("keys still unprocessed after retries"));
                        }
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}

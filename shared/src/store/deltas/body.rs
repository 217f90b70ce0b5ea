//! What a delta (or the partial) holds: the rollup of the events its
//! request stored, those placed ahead of the receipt, and the five-minute
//! rollups the alert window reads.

use std::collections::BTreeMap;

use super::*;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

/// What a request stored in one hour: the rollup of the events placed at
/// or before its receipt, and the keys of those placed after; and the same
/// events but external calls by five minutes of the hour ([`Body::recent`]),
/// for the health job's 15-minute alert window.
#[derive(Debug, Clone)]
pub(super) struct Body {
    pub(super) rollup: Rollup,
    pub(super) ahead: Vec<Ahead>,
    /// The rollup of each five minutes of the hour (its activity, API
    /// requests and auth events: what the alert conditions read).
    pub(super) recent: BTreeMap<u8, Rollup>,
    /// The first five minutes from which `recent` holds every event of the
    /// body's rollup: a partial drops the fives no alert window can still
    /// ask for; `None`, it cannot say (written before deltas kept fives).
    pub(super) recent_from: Option<u8>,
}

impl Default for Body {
    fn default() -> Body {
        Body { rollup: Rollup::default(), ahead: Vec::new(), recent: BTreeMap::new(), recent_from: Some(0) }
    }
}

/// Whether an event counts in [`Body::recent`]: what health reads
/// ([`Rollup::health_part`]).
pub(super) fn in_recent(e: &Event) -> bool {
    crate::rollup::HEALTH_KINDS.contains(&e.kind())
}

impl Body {
    pub(super) fn of<'a>(at_ms: i64, events: impl IntoIterator<Item = (&'a ItemKey, &'a Event)>) -> Body {
        let mut body = Body::default();
        for (key, e) in events {
            let ms = e.occurred_at.timestamp_millis();
            if ms <= at_ms {
                body.rollup.add(e);
                if in_recent(e) {
                    body.recent.entry(crate::rollup::five_of(e.occurred_at)).or_default().add(e);
                }
            } else {
                body.ahead.push(Ahead(ms, key.pk.clone(), key.sk.clone()));
            }
        }
        body
    }

    /// Adds an event that joins the body later (placed ahead, reached).
    pub(super) fn add(&mut self, e: &Event) {
        self.rollup.add(e);
        let five = crate::rollup::five_of(e.occurred_at);
        if in_recent(e) && self.recent_from.is_some_and(|f| five >= f) {
            self.recent.entry(five).or_default().add(e);
        }
    }

    pub(super) fn attributes(&self, item: &mut Item) -> Result<(), StoreError> {
        item.insert(ROLLUP.into(), AttributeValue::B(Blob::new(serde_json::to_vec(&self.rollup).map_err(StoreError::corrupt)?)));
        match (self.recent_is_rollup(), self.recent_from) {
            // Most requests' events of an hour fall in one five: their
            // rollup is not written twice, the five is named instead.
            (Some(five), Some(from)) => {
                item.insert(RECENT.into(), n(five));
                item.insert(RECENT_FROM.into(), n(from));
            }
            _ => self.recent_attributes(item)?,
        }
        self.ahead_attribute(item)
    }

    /// The five whose rollup is the body's rollup less its external calls,
    /// if one is (every other event of the body in that five).
    fn recent_is_rollup(&self) -> Option<u8> {
        let mut fives = self.recent.iter();
        match (fives.next(), fives.next()) {
            (Some((five, r)), None) if *r == self.rollup.health_part() => Some(*five),
            _ => None,
        }
    }

    /// Drops the fives of the hour that end before `cut` (ms, the newest
    /// receipt folded) less [`RECENT_KEEP`]: no alert window asks for them.
    /// The oldest of them while they weigh more than [`MAX_RECENT_BYTES`]
    /// (the fives after the last dropped hold every event of theirs). When
    /// they cannot say: every event of the body is placed at or before
    /// `cut`, so the fives starting after it are empty and complete, and
    /// the body keeps its fives from there.
    pub(super) fn keep_recent(&mut self, hour: &str, cut: i64) {
        let Some(start) = crate::time::parse_hour(hour) else { return };
        // The five holding `ms` (0 before the hour), and the first starting after it.
        let five_at = |ms: i64| (ms.saturating_sub(start.timestamp_millis()).max(0) / 300_000).min(i64::from(crate::rollup::FIVES)) as u8;
        let after_cut = if cut < start.timestamp_millis() { 0 } else { (five_at(cut) + 1).min(crate::rollup::FIVES) };
        let Some(from) = self.recent_from else {
            self.recent.clear();
            self.recent_from = Some(after_cut);
            return;
        };
        // The first five ending after `cut - RECENT_KEEP`: the one holding it.
        let keep_after = cut.saturating_sub(RECENT_KEEP.num_milliseconds());
        let first = five_at(keep_after).max(from);
        self.recent.retain(|k, _| *k >= first);
        self.recent_from = Some(first);
        // Past the weight kept, the oldest fives go first: an alert window
        // asks for the newest.
        let sizes: Vec<(u8, usize)> =
            self.recent.iter().map(|(k, r)| (*k, serde_json::to_vec(r).map_or(MAX_RECENT_BYTES + 1, |b| b.len() + 8))).collect();
        let mut bytes = sizes.iter().fold(0usize, |a, s| a.saturating_add(s.1));
        for (five, size) in sizes {
            if bytes <= MAX_RECENT_BYTES {
                break;
            }
            self.recent.remove(&five);
            bytes = bytes.saturating_sub(size);
            self.recent_from = Some(five + 1);
        }
    }

    pub(super) fn recent_attributes(&self, item: &mut Item) -> Result<(), StoreError> {
        if let Some(from) = self.recent_from {
            item.insert(RECENT.into(), AttributeValue::B(Blob::new(serde_json::to_vec(&self.recent).map_err(StoreError::corrupt)?)));
            item.insert(RECENT_FROM.into(), n(from));
        }
        Ok(())
    }

    pub(super) fn ahead_attribute(&self, item: &mut Item) -> Result<(), StoreError> {
        item.insert(AHEAD.into(), s(serde_json::to_string(&self.ahead).map_err(StoreError::corrupt)?));
        Ok(())
    }

    pub(super) fn read(item: &Item) -> Result<Body, StoreError> {
        let rollup = match item.get(ROLLUP).and_then(|v| v.as_b().ok()) {
            Some(b) => serde_json::from_slice(b.as_ref()).map_err(StoreError::corrupt)?,
            None => Rollup::default(),
        };
        let ahead = match item.str(AHEAD) {
            Some(a) => serde_json::from_str(a).map_err(StoreError::corrupt)?,
            None => Vec::new(),
        };
        // Fives that do not read as written cannot say (the alert window
        // is then read raw): they never fail the body.
        let from = item.num::<u8>(RECENT_FROM).filter(|f| *f <= crate::rollup::FIVES);
        let (recent, recent_from) = match (item.get(RECENT), from) {
            (Some(AttributeValue::B(b)), Some(from)) => match serde_json::from_slice::<BTreeMap<u8, Rollup>>(b.as_ref()) {
                Ok(recent) => (recent, Some(from)),
                Err(_) => (BTreeMap::new(), None),
            },
            // A delta whose fives are its rollup less its external calls,
            // all in the five named: only beside that rollup (a partial's
            // may be in parts, not read here).
            (Some(AttributeValue::N(_)), Some(from)) if item.contains_key(ROLLUP) => match item.num::<u8>(RECENT) {
                Some(five) if five < crate::rollup::FIVES => (BTreeMap::from([(five, rollup.health_part())]), Some(from)),
                _ => (BTreeMap::new(), None),
            },
            _ => (BTreeMap::new(), None),
        };
        Ok(Body { rollup, ahead, recent, recent_from })
    }
}

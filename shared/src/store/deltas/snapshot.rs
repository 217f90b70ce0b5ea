//! Reading an hour's delta partition whole: the partial (from its parts
//! when it has them), the deltas it does not hold, and what is left to
//! delete.

use std::collections::BTreeSet;

use super::*;
use crate::store::keys::deltas_pk;
use crate::store::table::SK;
use crate::store::{Item, ItemExt, StoreError, s};

impl Partial {
    /// The sort keys of its parts.
    pub(super) fn part_keys(&self) -> Vec<String> {
        self.parts.as_ref().map_or_else(Vec::new, |(of, n)| (0..*n).map(|i| part_key(of, i)).collect())
    }

    /// How many items it takes.
    pub(super) fn items(&self) -> usize {
        1 + self.parts.as_ref().map_or(0, |(_, n)| *n)
    }
}

/// The key of a compaction's parts: the version it writes and a random id.
pub(super) fn parts_of(version: i64) -> String {
    format!("{version:012}#{:08x}", fastrand::u32(..))
}

pub(super) fn part_key(of: &str, i: usize) -> String {
    format!("{PART_PREFIX}{of}#{i:03}")
}

/// A part's compaction key, version and index, from its sort key.
fn split_part_key(sk: &str) -> Option<(&str, i64, usize)> {
    let (of, i) = sk.strip_prefix(PART_PREFIX)?.rsplit_once('#')?;
    let version = of.split_once('#')?.0.parse().ok()?;
    Some((of, version, i.parse().ok()?))
}

impl HourDeltas<'_> {
    /// The hour's partial and deltas, strongly consistent, the partial
    /// first (its sort keys sort before the deltas'); `None` when its parts
    /// are not all there (a compaction replaced them meanwhile: the read is
    /// taken again).
    pub(super) async fn snapshot(self, tenant: &str, hour: &str) -> Result<Option<Snapshot>, StoreError> {
        let query = self
            .t
            .query()
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(deltas_pk(tenant, hour)))
            .consistent_read(true);
        let mut snap = Snapshot { partial: Partial::default(), deltas: Vec::new(), leftovers: Vec::new(), dead_parts: Vec::new() };
        let items = self.t.collect(query, |item| Ok(Some(item))).await?;
        let mut parts: Vec<Item> = Vec::new();
        for item in items {
            let sk = item.str(SK).unwrap_or_default().to_owned();
            if sk == PARTIAL_SK {
                let folded = match item.str(FOLDED) {
                    Some(f) => serde_json::from_str(f).map_err(StoreError::corrupt)?,
                    None => BTreeSet::new(),
                };
                let parts = match (item.str(PARTS_OF), item.num::<usize>(PARTS)) {
                    (Some(of), Some(n)) if n > 0 => Some((of.to_owned(), n)),
                    _ => None,
                };
                snap.partial = Partial {
                    version: item.num(VERSION).unwrap_or(0),
                    cut: item.num(CUT).unwrap_or(i64::MIN),
                    body: Body::read(&item)?,
                    folded,
                    parts,
                };
            } else if sk.starts_with(PART_PREFIX) {
                parts.push(item);
            } else if let Some(writer) = sk.strip_prefix(DELTA_PREFIX) {
                let keys = match item.get(KEYS).and_then(|v| v.as_b().ok()) {
                    Some(b) => {
                        let by_pk: std::collections::BTreeMap<String, Vec<String>> =
                            serde_json::from_slice(b.as_ref()).map_err(StoreError::corrupt)?;
                        by_pk.into_iter().flat_map(|(pk, sks)| sks.into_iter().map(move |sk| (pk.clone(), sk))).collect()
                    }
                    None => Vec::new(),
                };
                snap.deltas.push(Delta {
                    writer: writer.to_owned(),
                    done: item.str(STATE) == Some(DONE),
                    at: item.num(AT).unwrap_or(0),
                    keys,
                    body: Body::read(&item)?,
                    raw: item.flag(RAW).unwrap_or(false),
                    sk,
                });
            }
        }
        // The partial's rollup from its parts, in order; the others are
        // of older versions (dead), of a losing compaction (dead), or of
        // one still writing (a later version: left alone).
        let mine = snap.partial.parts.clone();
        let mut chunks: Vec<Option<Vec<u8>>> = vec![None; mine.as_ref().map_or(0, |(_, n)| *n)];
        for item in parts {
            let sk = item.str(SK).unwrap_or_default().to_owned();
            let Some((of, version, i)) = split_part_key(&sk) else { continue };
            match &mine {
                Some((m, _)) if m == of => {
                    if let (Some(slot), Some(b)) = (chunks.get_mut(i), item.get(DATA).and_then(|v| v.as_b().ok())) {
                        *slot = Some(b.as_ref().to_vec());
                    }
                }
                _ if version <= snap.partial.version => snap.dead_parts.push(sk),
                _ => {}
            }
        }
        if mine.is_some() {
            let Some(chunks) = chunks.into_iter().collect::<Option<Vec<Vec<u8>>>>() else { return Ok(None) };
            snap.partial.body.rollup = serde_json::from_slice(&chunks.concat()).map_err(StoreError::corrupt)?;
        }
        // The partial sorts first: what it folded is known by now.
        let folded = &snap.partial.folded;
        let (left, deltas): (Vec<Delta>, Vec<Delta>) = snap.deltas.into_iter().partition(|d| folded.contains(&d.sk));
        snap.deltas = deltas;
        snap.leftovers = left.into_iter().map(|d| d.sk).collect();
        Ok(Some(snap))
    }
}

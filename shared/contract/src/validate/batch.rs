//! A batch read in one pass: the envelope and every event's fields read
//! together, where the usual way splits the body into raw events first and
//! reads each again. It is the fast path for a well-formed batch only:
//! anything it cannot vouch for (an error anywhere, an event it cannot
//! place in the body, one that may exceed the per-event limit, one that is
//! refused) sends the caller back to the usual way, which reads each event
//! alone, so one malformed event still sinks only itself and every problem
//! is reported as before.

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::wire::{Fields, FieldsSeed};
use super::{Context, Problem, limits};
use crate::event::Event;

/// A batch whose events were all read, each placed in the body and within
/// the per-event limit; [`OnePass::events`] validates them.
pub struct OnePass<'a> {
    /// The batch's `sent_at` as sent, checked by the caller as for a
    /// batch read the usual way.
    pub sent_at: Option<String>,
    /// `None` when the batch has no `events` field.
    events: Option<Vec<Fields<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    sent_at: Option<String>,
    #[serde(borrow)]
    events: Option<Events<'a>>,
}

/// The events, each read into its fields; a batch over the limit stops
/// the read at the first event too many.
struct Events<'a>(Vec<Fields<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Events<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Events<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of events")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Events<'de>, A::Error> {
                let mut events = Vec::with_capacity(limits::MAX_EVENTS);
                while let Some(fields) = seq.next_element_seed(FieldsSeed { direct: true })? {
                    if events.len() == limits::MAX_EVENTS {
                        return Err(de::Error::custom("too many events"));
                    }
                    events.push(fields);
                }
                Ok(Events(events))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Reads a batch in one pass, or `None` when it is to be read the usual
/// way: an error anywhere in it, more than [`limits::MAX_EVENTS`] events,
/// an event whose first field's name holds an escape or that has none
/// (it cannot be placed in the body), or one that may be longer than
/// [`limits::MAX_EVENT_BYTES`].
pub fn read_once(text: &str) -> Option<OnePass<'_>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let wire = Wire::deserialize(&mut de).ok()?;
    de.end().ok()?;
    let events = wire.events.map(|e| e.0);
    if let Some(events) = &events {
        within_limit(text, events)?;
    }
    Some(OnePass { sent_at: wire.sent_at, events })
}

/// Whether every event is at most [`limits::MAX_EVENT_BYTES`] long, from
/// where each starts: its `{`, found back from its first field's name.
/// An event is bounded by the start of the next (the last by the end of
/// the body), which counts the separators after it too: an upper bound,
/// so an event it cannot clear is measured exactly the usual way.
fn within_limit(text: &str, events: &[Fields<'_>]) -> Option<()> {
    let b = text.as_bytes();
    let base = text.as_ptr() as usize;
    let mut previous: Option<usize> = None;
    for fields in events {
        let key = fields.first_key?.checked_sub(base).filter(|k| (1..b.len()).contains(k))?;
        // The name's opening quote, whitespace, then the object's brace.
        let mut at = key - 1;
        (b[at] == b'"').then_some(())?;
        at = b[..at].iter().rposition(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))?;
        (b[at] == b'{').then_some(())?;
        if let Some(start) = previous {
            (at - start <= limits::MAX_EVENT_BYTES).then_some(())?;
        }
        previous = Some(at);
    }
    match previous {
        Some(start) if b.len() - start > limits::MAX_EVENT_BYTES => None,
        _ => Some(()),
    }
}

impl<'a> OnePass<'a> {
    /// How many events the batch holds; `None` when it has no `events`.
    pub fn count(&self) -> Option<usize> {
        self.events.as_ref().map(Vec::len)
    }

    /// Each event validated and sanitized in order, as
    /// [`super::validate_event`] would from its raw JSON.
    pub fn events(self, ctx: &Context) -> impl Iterator<Item = Result<Event, Vec<Problem>>> + use<'a, '_> {
        self.events.into_iter().flatten().map(move |fields| super::validate_fields(fields, ctx))
    }
}

#[cfg(test)]
mod tests;

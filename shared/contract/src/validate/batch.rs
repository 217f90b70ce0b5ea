//! A batch read in one pass: the envelope and every event's fields read
//! together, where the usual way splits the body into raw events first and
//! reads each again. It is the fast path for a well-formed batch only:
//! anything it cannot vouch for (an error anywhere, an event it cannot
//! place in the body, one that may exceed the per-event limit, one that is
//! refused) sends the caller back to the usual way, which reads each event
//! alone, so one malformed event still sinks only itself and every problem
//! is reported as before.

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::wire::{Fields, FieldsSeed, Text};
use super::{Context, limits};
use crate::config::Retention;
use crate::event::Event;
use crate::time::parse_timestamp;

/// Reads a batch in one pass and hands each event, validated and
/// sanitized as [`super::validate_event`] would from its raw JSON, to
/// `each`, in order.
///
/// `Err(n)` when the batch is to be read the usual way instead: an error
/// anywhere in it, no events or more than [`limits::MAX_EVENTS`], a
/// `sent_at` that is not a timestamp, an event whose first field's name
/// holds an escape or that has none (it cannot be placed in the body), one
/// that may be longer than [`limits::MAX_EVENT_BYTES`], or one refused.
/// The first `n` events handed to `each` stand as they are (each read
/// whole, within the limit, validated with the batch's `sent_at`): the
/// usual way goes on from the next, so a refused event near the end does
/// not cost the batch twice. What `each` was given after them is dropped.
///
/// When `sent_at` comes before the events (as the clients send it), each
/// event is validated as soon as it is read; when it comes after them or
/// not at all, the events are kept read until the end.
pub fn read_once(text: &str, received_at: DateTime<Utc>, retention: Retention, each: &mut dyn FnMut(Event)) -> Result<(), usize> {
    let mut stream = Stream { text, received_at, retention, sent_at: None, last: None, waiting: Vec::new(), handed: 0, stand: 0, each };
    let mut de = serde_json::Deserializer::from_str(text);
    if de.deserialize_map(BatchSeed(&mut stream)).is_err() || de.end().is_err() {
        return Err(stream.stand);
    }
    stream.finish().ok_or(stream.stand)
}

/// What is known of the batch while it is read.
struct Stream<'a, 'f> {
    text: &'a str,
    received_at: DateTime<Utc>,
    retention: Retention,
    /// `Some` once `sent_at` is read (`Some(None)`: sent as `null`).
    sent_at: Option<Option<DateTime<Utc>>>,
    /// Where the last event read starts: its end is not known yet.
    last: Option<usize>,
    /// Events read before `sent_at` was known.
    waiting: Vec<Fields<'a>>,
    /// Events handed to `each`, and how many of them are known to end
    /// within the limit.
    handed: usize,
    stand: usize,
    each: &'f mut dyn FnMut(Event),
}

impl<'a> Stream<'a, '_> {
    fn validate(&mut self, fields: Fields<'a>) -> Option<()> {
        let ctx = Context { received_at: self.received_at, sent_at: self.sent_at.flatten(), retention: self.retention };
        match super::validate_fields(fields, &ctx) {
            Ok(event) => {
                (self.each)(event);
                self.handed += 1;
                Some(())
            }
            Err(_) => None,
        }
    }

    /// An event read: the one before it now ends before this one starts.
    /// With `sent_at` known it is validated at once (should it turn out
    /// too long when the next one starts, it does not stand).
    fn push(&mut self, fields: Fields<'a>) -> Option<()> {
        // Every event read so far was handed on or is waiting.
        (self.handed + self.waiting.len() < limits::MAX_EVENTS).then_some(())?;
        let start = start_of(self.text, &fields)?;
        if let Some(before) = self.last.replace(start) {
            (start - before <= limits::MAX_EVENT_BYTES).then_some(())?;
            self.stand = self.handed;
        }
        match self.sent_at {
            Some(_) => self.validate(fields),
            None => {
                self.waiting.push(fields);
                Some(())
            }
        }
    }

    /// The batch read whole: the last event ends before the body does.
    fn finish(&mut self) -> Option<()> {
        let start = self.last?;
        (self.text.len() - start <= limits::MAX_EVENT_BYTES).then_some(())?;
        self.stand = self.handed;
        for fields in std::mem::take(&mut self.waiting) {
            self.validate(fields)?;
            self.stand = self.handed;
        }
        Some(())
    }
}

/// Where an event starts: its `{`, found back from its first field's name
/// (whitespace between). An event is bounded by the start of the next
/// (the last by the end of the body), which counts the separators after
/// it too: an upper bound, so an event it cannot clear is measured
/// exactly the usual way.
fn start_of(text: &str, fields: &Fields<'_>) -> Option<usize> {
    let b = text.as_bytes();
    let key = fields.first_key?.checked_sub(text.as_ptr() as usize).filter(|k| (1..b.len()).contains(k))?;
    (b[key - 1] == b'"').then_some(())?;
    let at = b[..key - 1].iter().rposition(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))?;
    (b[at] == b'{').then_some(at)
}

/// The batch object: `sent_at` and `events`, once each, nothing else.
struct BatchSeed<'s, 'a, 'f>(&'s mut Stream<'a, 'f>);

impl<'de: 'a, 'a> Visitor<'de> for BatchSeed<'_, 'a, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a batch object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut events = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "sent_at" if self.0.sent_at.is_none() => {
                    let sent: Option<Text<'de>> = map.next_value()?;
                    let at = sent.map(|s| parse_timestamp(&s).ok_or_else(|| de::Error::custom("sent_at"))).transpose()?;
                    self.0.sent_at = Some(at);
                }
                "events" if !events => {
                    events = true;
                    map.next_value_seed(EventsSeed(&mut *self.0))?;
                }
                _ => return Err(de::Error::custom("not read in one pass")),
            }
        }
        if !events {
            return Err(de::Error::custom("no events"));
        }
        Ok(())
    }
}

/// The events array, each event pushed as it is read.
struct EventsSeed<'s, 'a, 'f>(&'s mut Stream<'a, 'f>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for EventsSeed<'_, 'a, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for EventsSeed<'_, 'a, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(fields) = seq.next_element_seed(FieldsSeed { direct: true })? {
            self.0.push(fields).ok_or_else(|| de::Error::custom("not read in one pass"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

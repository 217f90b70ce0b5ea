//! Reading an event as sent, in one pass over its JSON: the envelope's
//! fields are read into [`Envelope`], the others kept as borrowed raw JSON
//! until the kind is known, then read into the field struct of that kind.
//! Which field belongs to which kind is read off those structs
//! ([`fields_of`]), so a field is declared in one place: its kind's struct.
//! A type error is reported with its path inside the event.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_aux::serde_introspection::serde_introspect;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Problem, activity, api_request, auth, external_call};
use crate::event::EventKind;

/// The fields every kind shares.
#[derive(Default)]
pub(super) struct Envelope {
    pub event_id: Option<String>,
    pub kind: Option<String>,
    pub occurred_at: Option<String>,
    pub user_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// The envelope's field names (tested to be the ones [`Fields`] reads
/// into the envelope).
pub const ENVELOPE: [&str; 7] = ["event_id", "kind", "occurred_at", "user_id", "ip_address", "user_agent", "metadata"];

/// A field's name as sent (borrowed unless it holds an escape).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

type Field<'a> = (Cow<'a, str>, &'a RawValue);

/// An event object: its envelope read, the other fields in the order sent,
/// each value unparsed until the kind is known.
pub(super) struct Fields<'a> {
    pub envelope: Envelope,
    pub rest: Vec<Field<'a>>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut env = Envelope::default();
                let mut rest: Vec<Field<'de>> = Vec::with_capacity(12);
                // Every name sent, envelope's too: a field sent twice is
                // refused whatever its values (`null` included). The
                // envelope's are told by a bit each, the others by `rest`.
                let mut seen = 0u8;
                let duplicate = |k: &str| de::Error::custom(format!("duplicate field `{k}`"));
                macro_rules! once {
                    ($bit:expr, $field:expr, $k:expr) => {{
                        if seen & $bit != 0 {
                            return Err(duplicate($k));
                        }
                        seen |= $bit;
                        $field = map.next_value()?;
                    }};
                }
                while let Some(Key(k)) = map.next_key()? {
                    match k.as_ref() {
                        "event_id" => once!(1, env.event_id, &k),
                        "kind" => once!(2, env.kind, &k),
                        "occurred_at" => once!(4, env.occurred_at, &k),
                        "user_id" => once!(8, env.user_id, &k),
                        "ip_address" => once!(16, env.ip_address, &k),
                        "user_agent" => once!(32, env.user_agent, &k),
                        "metadata" => once!(64, env.metadata, &k),
                        _ if rest.iter().any(|(r, _)| *r == k) => return Err(duplicate(&k)),
                        _ => rest.push((k, map.next_value()?)),
                    }
                }
                Ok(Fields { envelope: env, rest })
            }
        }
        d.deserialize_map(V)
    }
}

/// Each kind's field names, read off its field struct.
static KINDS: LazyLock<[(EventKind, &'static [&'static str]); 4]> = LazyLock::new(|| {
    [
        (EventKind::Activity, serde_introspect::<activity::Fields>()),
        (EventKind::ApiRequest, serde_introspect::<api_request::Fields>()),
        (EventKind::Auth, serde_introspect::<auth::Fields>()),
        (EventKind::ExternalCall, serde_introspect::<external_call::Fields>()),
    ]
});

/// The fields of a kind, besides the envelope's.
pub fn fields_of(kind: EventKind) -> &'static [&'static str] {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f).unwrap_or_default()
}

/// Strips serde_json's " at line L column C" suffix: positions inside one
/// event of a batch mean little to a caller, the path says where.
/// Internal type names are replaced by what the caller sent.
pub(super) fn serde_message(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => &s,
    };
    s.replace("struct Report", "a report object").replace("struct Impact", "an impact object")
}

/// A problem at the path serde_path_to_error tracked.
fn at_path<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> Problem {
    let path = e.path().to_string();
    Problem::new(if path == "." { String::new() } else { path }, serde_message(e.inner()))
}

impl<'a> Fields<'a> {
    /// Reads an event object, its envelope typed and its other fields raw.
    pub fn parse(raw: &'a str) -> Result<Self, Problem> {
        serde_json::from_str(raw).or_else(|_| {
            let de = &mut serde_json::Deserializer::from_str(raw);
            serde_path_to_error::deserialize(de).map_err(at_path)
        })
    }
}

/// The kind's own fields read into its struct, once every field sent is
/// known to be one of the kind's: a field of another kind is refused
/// rather than silently dropped, and one of no kind is unknown.
pub(super) fn kind_fields<'a, T: Deserialize<'a>>(kind: EventKind, rest: &[Field<'a>]) -> Result<T, Vec<Problem>> {
    // Each kind's struct refuses a field it does not declare, so a plain
    // read that succeeds had only the kind's own fields; the names are
    // looked at only when it fails.
    let map = || de::value::MapDeserializer::<_, serde_json::Error>::new(rest.iter().cloned());
    if let Ok(fields) = T::deserialize(map()) {
        return Ok(fields);
    }
    let own = fields_of(kind);
    let mut problems = Vec::new();
    for (k, _) in rest.iter().filter(|(k, _)| !own.contains(&k.as_ref())) {
        let message = if KINDS.iter().any(|(_, f)| f.contains(&k.as_ref())) {
            format!("is not a field of kind {}", kind.as_str())
        } else {
            format!("unknown field `{k}`: an event has {} and the fields of its kind: {}", ENVELOPE.join(", "), own.join(", "))
        };
        problems.push(Problem::new(k.as_ref(), message));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    serde_path_to_error::deserialize(map()).map_err(|e| vec![at_path(e)])
}

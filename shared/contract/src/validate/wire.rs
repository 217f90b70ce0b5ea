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

/// The fields every kind shares; those only read, never stored as sent
/// (the kind, the time), borrowed from the request.
#[derive(Default)]
pub(super) struct Envelope<'a> {
    pub event_id: Option<String>,
    pub kind: Option<Text<'a>>,
    pub occurred_at: Option<Text<'a>>,
    pub user_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// The envelope's field names (tested to be the ones [`Fields`] reads
/// into the envelope).
pub const ENVELOPE: [&str; 7] = ["event_id", "kind", "occurred_at", "user_id", "ip_address", "user_agent", "metadata"];

/// A string value or a field's name, borrowed unless it holds an escape:
/// read as `String` reads it (the same errors), without its allocation.
pub(super) struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

type Field<'a> = (Cow<'a, str>, &'a RawValue);

/// A kind's own fields, read straight into its struct.
pub(super) enum KindFields {
    Activity(activity::Fields),
    ApiRequest(api_request::Fields),
    Auth(auth::Fields),
    ExternalCall(external_call::Fields),
}

/// An event object: its envelope read, and its kind's fields either read
/// already (`kind` came before them, the common case) or kept in the
/// order sent, each value unparsed until the kind is known.
pub(super) struct Fields<'a> {
    pub envelope: Envelope<'a>,
    pub parsed: Option<KindFields>,
    pub rest: Vec<Field<'a>>,
    /// The address of the first field's name when it was borrowed from
    /// the request (no escape in it): where the event sits in a batch
    /// read in one pass (`batch`).
    pub first_key: Option<usize>,
}

/// Reads the value of an envelope field into `env` and returns true, or
/// returns false for any other name. A field sent twice is refused
/// whatever its values (`null` included): told by a bit each.
fn envelope_field<'de, A: MapAccess<'de>>(k: &str, map: &mut A, env: &mut Envelope<'de>, seen: &mut u8) -> Result<bool, A::Error> {
    macro_rules! once {
        ($bit:expr, $field:expr) => {{
            if *seen & $bit != 0 {
                return Err(de::Error::custom(format!("duplicate field `{k}`")));
            }
            *seen |= $bit;
            $field = map.next_value()?;
        }};
    }
    match k {
        "event_id" => once!(1, env.event_id),
        "kind" => once!(2, env.kind),
        "occurred_at" => once!(4, env.occurred_at),
        "user_id" => once!(8, env.user_id),
        "ip_address" => once!(16, env.ip_address),
        "user_agent" => once!(32, env.user_agent),
        "metadata" => once!(64, env.metadata),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The rest of an event object as its kind's struct sees it: the envelope's
/// fields are read into the envelope on the way, the others handed on,
/// starting with `first`, the one already read.
struct KindMap<'e, 'de, A> {
    map: A,
    env: &'e mut Envelope<'de>,
    seen: &'e mut u8,
    first: Option<Cow<'de, str>>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for KindMap<'_, 'de, A> {
    type Error = A::Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let key = match self.first.take() {
            Some(k) => k,
            None => loop {
                let Some(Text(k)) = self.map.next_key()? else { return Ok(None) };
                if !envelope_field(&k, &mut self.map, self.env, self.seen)? {
                    break k;
                }
            },
        };
        seed.deserialize(de::IntoDeserializer::<A::Error>::into_deserializer(key)).map(Some)
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl KindFields {
    fn read<'de, A: MapAccess<'de>>(kind: EventKind, map: KindMap<'_, 'de, A>) -> Result<Self, A::Error> {
        let d = de::value::MapAccessDeserializer::new(map);
        Ok(match kind {
            EventKind::Activity => KindFields::Activity(Deserialize::deserialize(d)?),
            EventKind::ApiRequest => KindFields::ApiRequest(Deserialize::deserialize(d)?),
            EventKind::Auth => KindFields::Auth(Deserialize::deserialize(d)?),
            EventKind::ExternalCall => KindFields::ExternalCall(Deserialize::deserialize(d)?),
        })
    }
}

/// Reads an event object; with `direct`, its kind's fields go straight
/// into the kind's struct once `kind` is known, and any error in them
/// fails the read (to be read again without, for the exact problems).
pub(super) struct FieldsSeed {
    pub direct: bool,
}

impl<'de> de::DeserializeSeed<'de> for FieldsSeed {
    type Value = Fields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut envelope = Envelope::default();
        let mut rest: Vec<Field<'de>> = Vec::with_capacity(12);
        let mut seen = 0u8;
        let mut first_key = None;
        while let Some(Text(k)) = map.next_key()? {
            if seen == 0 && rest.is_empty() {
                first_key = match &k {
                    Cow::Borrowed(b) => Some(b.as_ptr() as usize),
                    Cow::Owned(_) => None,
                };
            }
            if envelope_field(&k, &mut map, &mut envelope, &mut seen)? {
                continue;
            }
            if let Some(kind) = envelope.kind.as_deref().and_then(EventKind::parse).filter(|_| self.direct && rest.is_empty()) {
                let parsed = KindFields::read(kind, KindMap { map, env: &mut envelope, seen: &mut seen, first: Some(k) })?;
                return Ok(Fields { envelope, parsed: Some(parsed), rest, first_key });
            }
            if rest.iter().any(|(r, _)| *r == k) {
                return Err(de::Error::custom(format!("duplicate field `{k}`")));
            }
            rest.push((k, map.next_value()?));
        }
        Ok(Fields { envelope, parsed: None, rest, first_key })
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsSeed { direct: false })
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
        use de::DeserializeSeed;
        let direct = |raw| {
            let mut de = serde_json::Deserializer::from_str(raw);
            let fields = FieldsSeed { direct: true }.deserialize(&mut de)?;
            de.end().map(|()| fields)
        };
        direct(raw).or_else(|_: serde_json::Error| {
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

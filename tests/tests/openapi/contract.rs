//! The ingest schemas of `infra/openapi.yaml` against the contract as
//! code (`analytics_shared::model::event`, `analytics_shared::validate`):
//!
//! - the kinds, the discriminator and the enumerations are the Rust ones;
//! - each kind's schema (envelope included) has exactly the fields the
//!   wire types read ([`wire::fields_of`], [`wire::ENVELOPE`]), and the
//!   report, impact and batch objects the fields serde expects;
//! - every bound the event schemas hold is a constant of
//!   [`limits`], compared number by number, and nothing is bounded that
//!   the table below does not tie to one;
//! - the document's examples are valid batches by the schema and by the
//!   real validator ([`pipeline::prepare`]);
//! - probes around every documented bound, enumeration, type, required
//!   field, closed object, pattern and the metadata rules get the same
//!   verdict from the schema and from the validator;
//! - the ingest function's error answers match their documented
//!   responses, headers included.
//!
//! None of this needs DynamoDB: validation is pure, and the error answers
//! are given before anything is read or written.

use std::collections::{BTreeMap, BTreeSet};

use analytics_shared::config::Retention;
use analytics_shared::ingest as pipeline;
use analytics_shared::model::{AuthEventType, EventKind, KNOWN_ACTIONS};
use analytics_shared::validate::{self, limits, wire};
use chrono::{DateTime, Duration, Utc};
use integration_tests::{Answer, ApiEvent};
use serde_json::{Map, Value, json};
use yaml_rust2::Yaml;

use super::pattern::Pattern;
use super::{check, has_type, places, spec, types};

// ---- Reading the document ----------------------------------------------

/// The component schema a `#/components/schemas/...` reference names.
fn component<'a>(doc: &'a Yaml, r: &str) -> &'a Yaml {
    let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r} names a component schema"));
    let s = &doc["components"]["schemas"][name];
    assert!(!s.is_badvalue(), "{r} resolves");
    s
}

fn schema<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    component(doc, &format!("#/components/schemas/{name}"))
}

/// A schema with its `$ref` and `allOf` merged in (its own keywords win):
/// what a value of it must satisfy, for the schemas this document writes.
#[derive(Default, Clone, Debug)]
struct Flat {
    kw: BTreeMap<String, Yaml>,
    props: BTreeMap<String, Yaml>,
    required: BTreeSet<String>,
}

impl Flat {
    fn merge(&mut self, o: Flat) {
        self.kw.extend(o.kw);
        self.props.extend(o.props);
        self.required.extend(o.required);
    }

    fn num(&self, k: &str) -> Option<f64> {
        self.kw.get(k).and_then(num)
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.kw.get(k).and_then(Yaml::as_str)
    }

    fn list(&self, k: &str) -> &[Yaml] {
        self.kw.get(k).and_then(Yaml::as_vec).map(Vec::as_slice).unwrap_or_default()
    }

    fn types(&self) -> Vec<&str> {
        match self.kw.get("type") {
            Some(Yaml::String(t)) => vec![t.as_str()],
            Some(Yaml::Array(ts)) => ts.iter().filter_map(Yaml::as_str).collect(),
            _ => vec![],
        }
    }

    /// No field but the documented ones.
    fn closed(&self) -> bool {
        ["additionalProperties", "unevaluatedProperties"].iter().any(|k| self.kw.get(*k).and_then(Yaml::as_bool) == Some(false))
    }

    /// The schema of the values of a map.
    fn values(&self) -> Option<&Yaml> {
        self.kw.get("additionalProperties").filter(|a| a.as_hash().is_some())
    }
}

fn flat(doc: &Yaml, s: &Yaml) -> Flat {
    let mut f = Flat::default();
    if let Some(r) = s["$ref"].as_str() {
        f.merge(flat(doc, component(doc, r)));
    }
    for m in s["allOf"].as_vec().into_iter().flatten() {
        f.merge(flat(doc, m));
    }
    let mut own = Flat::default();
    for (k, v) in s.as_hash().into_iter().flatten() {
        match k.as_str().expect("schema keywords are strings") {
            "$ref" | "allOf" => {}
            "properties" => {
                for (p, ps) in v.as_hash().expect("properties is a map") {
                    own.props.insert(p.as_str().unwrap().to_owned(), ps.clone());
                }
            }
            "required" => own.required.extend(v.as_vec().unwrap().iter().map(|r| r.as_str().unwrap().to_owned())),
            k => {
                own.kw.insert(k.to_owned(), v.clone());
            }
        }
    }
    f.merge(own);
    f
}

fn num(y: &Yaml) -> Option<f64> {
    match y {
        Yaml::Integer(i) => Some(*i as f64),
        Yaml::Real(_) => y.as_f64(),
        _ => None,
    }
}

/// A YAML value (an example, an enum member) as JSON.
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => json!(b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(_) => json!(y.as_f64().expect("a real")),
        Yaml::String(s) => json!(s),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let k = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("an object key {other:?}"),
                    };
                    (k, to_json(v))
                })
                .collect(),
        ),
        other => panic!("no JSON for {other:?}"),
    }
}

fn strings(ys: &[Yaml]) -> BTreeSet<String> {
    ys.iter().map(|y| y.as_str().expect("a string").to_owned()).collect()
}

// ---- Applying a schema -------------------------------------------------

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        other => panic!("the checker does not know the format {other}"),
    }
}

fn passes(doc: &Yaml, s: &Yaml, v: &Value) -> bool {
    let mut errs = Vec::new();
    conforms(doc, s, v, "", &mut errs);
    errs.is_empty()
}

/// Checks a value against a schema, JSON Schema 2020-12 as far as this
/// document uses it (`oneOf` by its discriminator, `anyOf`, `const`,
/// `enum`, bounds, lengths, `pattern`, formats, `propertyNames`, closed
/// objects, `dependentSchemas`, and the `x-` bounds it defines).
fn conforms(doc: &Yaml, s: &Yaml, v: &Value, at: &str, errs: &mut Vec<String>) {
    let f = flat(doc, s);
    if let Some(alts) = f.kw.get("oneOf").and_then(Yaml::as_vec) {
        match f.kw.get("discriminator") {
            Some(d) => {
                let prop = d["propertyName"].as_str().expect("a discriminator names its property");
                let tag = v.get(prop).and_then(Value::as_str);
                match tag.map(|t| &d["mapping"][t]).and_then(Yaml::as_str) {
                    Some(r) => conforms(doc, component(doc, r), v, at, errs),
                    None => errs.push(format!("{at}.{prop}: {tag:?} is not in the discriminator's mapping")),
                }
            }
            None if alts.iter().filter(|a| passes(doc, a, v)).count() != 1 => {
                errs.push(format!("{at}: {v} does not match exactly one of oneOf"))
            }
            None => {}
        }
    }
    if !f.list("anyOf").is_empty() && !f.list("anyOf").iter().any(|a| passes(doc, a, v)) {
        errs.push(format!("{at}: {v} matches none of anyOf"));
    }
    let ts = f.types();
    if !ts.is_empty() && !ts.iter().any(|t| has_type(v, t)) {
        errs.push(format!("{at}: {v} is not of type {ts:?}"));
        return;
    }
    if let Some(c) = f.kw.get("const")
        && to_json(c) != *v
    {
        errs.push(format!("{at}: {v} is not {c:?}"));
    }
    if f.kw.contains_key("enum") && !f.list("enum").iter().any(|m| to_json(m) == *v) {
        errs.push(format!("{at}: {v} is not one of the enum"));
    }
    match v {
        Value::String(s) => {
            let n = s.chars().count() as f64;
            if f.num("maxLength").is_some_and(|m| n > m) || f.num("minLength").is_some_and(|m| n < m) {
                errs.push(format!("{at}: {n} characters is outside minLength..=maxLength"));
            }
            if let Some(p) = f.str("pattern")
                && !Pattern::parse(p).is_match(s)
            {
                errs.push(format!("{at}: {s:?} does not match {p}"));
            }
            if let Some(fmt) = f.str("format")
                && !format_ok(fmt, s)
            {
                errs.push(format!("{at}: {s:?} is not a {fmt}"));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().expect("a JSON number is an f64");
            if f.num("maximum").is_some_and(|m| x > m) || f.num("minimum").is_some_and(|m| x < m) {
                errs.push(format!("{at}: {x} is outside minimum..=maximum"));
            }
            if let Some(m) = f.kw.get("x-number-magnitude")
                && n.is_f64()
                && x != 0.0
                && !(num(&m["minimum"]).unwrap()..=num(&m["maximum"]).unwrap()).contains(&x.abs())
            {
                errs.push(format!("{at}: {x} is neither 0 nor of a magnitude DynamoDB holds"));
            }
        }
        Value::Object(o) => {
            for r in f.required.iter().filter(|r| !o.contains_key(*r)) {
                errs.push(format!("{at}: the required field {r} is missing"));
            }
            if f.num("maxProperties").is_some_and(|m| o.len() as f64 > m) {
                errs.push(format!("{at}: {} fields are more than maxProperties", o.len()));
            }
            if let Some(names) = f.kw.get("propertyNames") {
                for k in o.keys() {
                    conforms(doc, names, &json!(k), &format!("{at}.{k} (its name)"), errs);
                }
            }
            for (k, x) in o {
                match (f.props.get(k), f.values()) {
                    (Some(s), _) | (None, Some(s)) => conforms(doc, s, x, &format!("{at}.{k}"), errs),
                    (None, None) if f.closed() => errs.push(format!("{at}: the field {k} is not documented")),
                    (None, None) => {}
                }
            }
            for (k, dependent) in f.kw.get("dependentSchemas").and_then(Yaml::as_hash).into_iter().flatten() {
                if o.contains_key(k.as_str().unwrap()) {
                    conforms(doc, dependent, v, at, errs);
                }
            }
            if f.num("x-max-bytes").is_some_and(|m| v.to_string().len() as f64 > m) {
                errs.push(format!("{at}: {} bytes are more than x-max-bytes", v.to_string().len()));
            }
        }
        Value::Array(items) => {
            if f.num("maxItems").is_some_and(|m| items.len() as f64 > m) || f.num("minItems").is_some_and(|m| (items.len() as f64) < m) {
                errs.push(format!("{at}: {} items is outside minItems..=maxItems", items.len()));
            }
            if let Some(s) = f.kw.get("items") {
                for (i, x) in items.iter().enumerate() {
                    conforms(doc, s, x, &format!("{at}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

// ---- The validator -----------------------------------------------------

/// The request body's examples, by name.
fn examples(doc: &Yaml) -> Vec<(String, Value)> {
    let ex = &doc["paths"][pipeline_route()]["post"]["requestBody"]["content"]["application/json"]["examples"];
    ex.as_hash()
        .expect("the ingest body has examples")
        .iter()
        .map(|(k, e)| (k.as_str().unwrap().to_owned(), to_json(&e["value"])))
        .collect()
}

fn pipeline_route() -> &'static str {
    ::ingest::ROUTE
}

/// The batch an example sends: the receive time a second after its `sent_at`.
fn received_at(batch: &Value) -> DateTime<Utc> {
    let sent = batch["sent_at"].as_str().expect("every example has a sent_at");
    DateTime::parse_from_rfc3339(sent).unwrap().to_utc() + Duration::seconds(1)
}

/// The real validator's verdict on a body: every event accepted, or each
/// problem (`path: message`), or the whole body's error.
fn verdict(body: &Value, at: DateTime<Utc>) -> Result<(), Vec<String>> {
    match pipeline::prepare(body.to_string().as_bytes(), "acme", at, &Retention::default(), 8) {
        Err(e) => Err(vec![format!("{}: {}", e.code.as_str(), e.message)]),
        Ok(b) if b.rejected.is_empty() => Ok(()),
        Ok(b) => Err(b.rejected.iter().flat_map(|r| r.problems.iter().map(|p| format!("{}: {}", p.path, p.message))).collect()),
    }
}

/// The example events of each kind: the first of a kind's own example
/// holds every field, the last the fewest.
fn samples(doc: &Yaml) -> BTreeMap<EventKind, (Value, Value)> {
    let all = examples(doc);
    EventKind::ALL
        .into_iter()
        .map(|k| {
            let (_, batch) = all.iter().find(|(n, _)| n == k.as_str()).unwrap_or_else(|| panic!("an example named {}", k.as_str()));
            let events = batch["events"].as_array().unwrap();
            assert!(events.iter().all(|e| e["kind"] == k.as_str()), "the example {} holds events of its kind only", k.as_str());
            (k, (events[0].clone(), events.last().unwrap().clone()))
        })
        .collect()
}

fn kind_schema(doc: &Yaml, kind: EventKind) -> &Yaml {
    let r = doc["components"]["schemas"]["IngestEvent"]["discriminator"]["mapping"][kind.as_str()].as_str();
    component(doc, r.unwrap_or_else(|| panic!("the discriminator maps {}", kind.as_str())))
}

/// The field names in serde's "unknown field `x`, expected one of `a`, `b`".
fn expected_fields(message: &str) -> BTreeSet<String> {
    let (_, after) = message.split_once("expected").unwrap_or_else(|| panic!("serde lists the expected fields in {message}"));
    after.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

// ---- Structure ---------------------------------------------------------

#[test]
fn the_kinds_and_enumerations_are_the_rust_ones() {
    let doc = spec();
    let rust: BTreeSet<String> = EventKind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(strings(flat(&doc, schema(&doc, "EventKind")).list("enum")), rust, "EventKind's enum");
    let ingest = flat(&doc, schema(&doc, "IngestEvent"));
    let d = &ingest.kw["discriminator"];
    assert_eq!(d["propertyName"].as_str(), Some("kind"));
    let mapping: BTreeMap<String, String> =
        d["mapping"].as_hash().unwrap().iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned())).collect();
    assert_eq!(mapping.keys().cloned().collect::<BTreeSet<_>>(), rust, "the discriminator maps every kind and no other");
    let one_of: BTreeSet<String> = ingest.list("oneOf").iter().map(|s| s["$ref"].as_str().unwrap().to_owned()).collect();
    assert_eq!(one_of, mapping.values().cloned().collect(), "oneOf lists exactly the mapped schemas");
    for (tag, r) in &mapping {
        let f = flat(&doc, component(&doc, r));
        assert_eq!(f.props["kind"]["const"].as_str(), Some(tag.as_str()), "{r} is the schema of kind {tag}");
        assert!(f.required.contains("kind"), "{r} requires kind (the discriminator)");
    }
    // The kind of a stored event and the `kind` filter of /events.
    let event_kind = flat(&doc, &schema(&doc, "Event")["properties"]["kind"]);
    assert_eq!(strings(event_kind.list("enum")), rust, "the stored Event's kind");

    let auth: BTreeSet<String> = AuthEventType::ALL.iter().map(|t| t.as_str().to_owned()).collect();
    assert_eq!(strings(flat(&doc, schema(&doc, "AuthEventType")).list("enum")), auth, "AuthEventType's enum");
    let actions = flat(&doc, &flat(&doc, schema(&doc, "ActivityEvent")).props["action"]);
    assert_eq!(strings(actions.list("x-known-values")), KNOWN_ACTIONS.iter().map(|a| a.to_string()).collect(), "the known actions");
    for m in flat(&doc, schema(&doc, "HttpMethod")).list("enum") {
        let m = m.as_str().unwrap();
        assert_eq!(validate::http_method(m), Some(m), "{m} is an HTTP method of the validator");
        assert_eq!(validate::http_method(&m.to_lowercase()), Some(m), "{m} in any case");
    }
    let codes = flat(&doc, &schema(&doc, "Rejection")["properties"]["code"]);
    assert_eq!(strings(codes.list("enum")), ["validation_failed".to_owned(), pipeline::UNSTORABLE.to_owned()].into());
}

#[test]
fn each_kind_documents_exactly_the_fields_the_validator_reads() {
    let doc = spec();
    let envelope: BTreeSet<String> = wire::ENVELOPE.iter().map(|f| f.to_string()).collect();
    assert_eq!(flat(&doc, schema(&doc, "EventEnvelope")).props.keys().cloned().collect::<BTreeSet<_>>(), envelope, "the envelope");
    for kind in EventKind::ALL {
        let documented: BTreeSet<String> = flat(&doc, kind_schema(&doc, kind)).props.keys().cloned().collect();
        let read: BTreeSet<String> = envelope.iter().cloned().chain(wire::fields_of(kind).iter().map(|f| f.to_string())).collect();
        assert_eq!(documented, read, "kind {}: the schema's fields (envelope included) and the wire type's", kind.as_str());
    }
    // The report, its impact and the batch: the names serde expects, as
    // the validator reports them for a field it does not know.
    let (full, _) = samples(&doc)[&EventKind::Activity].clone();
    let at = received_at(&json!({"sent_at": "2026-11-21T10:00:05Z"}));
    for (path, name) in [(vec!["report"], "ReportInput"), (vec!["report", "impact"], "ImpactInput")] {
        let path: Vec<String> = path.into_iter().map(str::to_owned).collect();
        let probe = with(&full, &[path.clone(), vec!["zzz_unknown".into()]].concat(), json!(1));
        let problems = verdict(&json!({"sent_at": "2026-11-21T10:00:05Z", "events": [probe]}), at).unwrap_err();
        let documented: BTreeSet<String> = flat(&doc, schema(&doc, name)).props.keys().cloned().collect();
        assert_eq!(expected_fields(&problems[0]), documented, "{name}: {problems:?}");
    }
    let problems = verdict(&json!({"events": [full], "zzz_unknown": 1}), at).unwrap_err();
    let documented: BTreeSet<String> = flat(&doc, schema(&doc, "EventBatch")).props.keys().cloned().collect();
    assert_eq!(expected_fields(&problems[0]), documented, "EventBatch: {problems:?}");
}

/// The contract's required fields, in one place (API.md: "Kinds and their
/// own fields"); the probes below show the validator requires exactly
/// these, and tolerates the absence of every other.
const REQUIRED: [(EventKind, &[&str]); 4] = [
    (EventKind::Activity, &["kind", "user_id", "action"]),
    (EventKind::ApiRequest, &["kind", "endpoint", "method", "status_code", "response_time_ms"]),
    (EventKind::Auth, &["kind", "event_type", "success"]),
    (EventKind::ExternalCall, &["kind", "service", "endpoint", "response_time_ms"]),
];

#[test]
fn the_required_fields_are_the_contracts() {
    let doc = spec();
    for (kind, fields) in REQUIRED {
        let required = flat(&doc, kind_schema(&doc, kind)).required;
        assert_eq!(required, fields.iter().map(|f| f.to_string()).collect(), "kind {}", kind.as_str());
    }
    assert_eq!(flat(&doc, schema(&doc, "EventBatch")).required, ["events".to_owned()].into());
    assert_eq!(flat(&doc, schema(&doc, "ReportInput")).required, ["status".to_owned()].into());
}

/// Every bound of the event schemas, where it is written (component, then
/// the path inside it), and the constant it must equal.
fn limit_table() -> BTreeMap<&'static str, f64> {
    use limits::*;
    let n = |x: usize| x as f64;
    BTreeMap::from([
        ("EventBatch.x-max-bytes", n(MAX_BODY_BYTES)),
        ("EventBatch.events.maxItems", n(MAX_EVENTS)),
        ("IngestEvent.x-max-bytes", n(MAX_EVENT_BYTES)),
        ("EventId.maxLength", n(MAX_EVENT_ID_CHARS)),
        ("EventEnvelope.occurred_at.x-max-future-hours", MAX_FUTURE_HOURS as f64),
        ("EventEnvelope.user_id.maxLength", n(MAX_ID_CHARS)),
        ("EventEnvelope.user_agent.x-truncated-to", n(MAX_USER_AGENT_CHARS)),
        ("Metadata.maxProperties", n(MAX_METADATA_KEYS)),
        ("MetadataValue.anyOf[1].maxProperties", n(MAX_METADATA_KEYS)),
        ("MetadataLeafValue.anyOf[1].maxProperties", n(MAX_METADATA_KEYS)),
        ("MetadataKey.maxLength", n(MAX_METADATA_KEY_CHARS)),
        ("MetadataScalar.maxLength", n(MAX_METADATA_STRING_CHARS)),
        ("MetadataScalar.x-number-magnitude.minimum", MIN_METADATA_MAGNITUDE),
        ("MetadataScalar.x-number-magnitude.maximum", MAX_METADATA_MAGNITUDE),
        ("Name.maxLength", n(MAX_NAME_CHARS)),
        ("Count.maximum", MAX_COUNT as f64),
        ("Amount.maximum", MAX_AMOUNT),
        ("ResponseTimeMs.maximum", MAX_RESPONSE_TIME_MS),
        // The checker's status_code rule (100..=599) has no constant.
        ("StatusCode.minimum", 100.0),
        ("StatusCode.maximum", 599.0),
        ("ActivityEvent.description.maxLength", n(MAX_TEXT_CHARS)),
        ("ActivityEvent.client_id.maxLength", n(MAX_ID_CHARS)),
        ("ActivityEvent.report_id.maxLength", n(MAX_ID_CHARS)),
        ("ReportInput.categories.maxProperties", n(MAX_REPORT_CATEGORIES)),
        ("ApiRequestEvent.endpoint.maxLength", n(MAX_ENDPOINT_CHARS)),
        ("ApiRequestEvent.error_message.maxLength", n(MAX_TEXT_CHARS)),
        ("ApiRequestEvent.sample_rate.minimum", MIN_SAMPLE_RATE),
        ("ApiRequestEvent.sample_rate.maximum", 1.0),
        ("QueryParams.maxProperties", n(MAX_QUERY_PARAMS)),
        ("QueryParams.*.maxLength", n(MAX_METADATA_STRING_CHARS)),
        ("AuthEvent.error_message.maxLength", n(MAX_TEXT_CHARS)),
        ("ExternalCallEvent.service.maxLength", n(MAX_NAME_CHARS)),
        ("ExternalCallEvent.endpoint.maxLength", n(MAX_ENDPOINT_CHARS)),
        ("ExternalCallEvent.error_message.maxLength", n(MAX_TEXT_CHARS)),
        ("ExternalCallEvent.model.maxLength", n(MAX_MODEL_CHARS)),
    ])
}

const BOUNDS: [&str; 11] = [
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxLength",
    "maxProperties",
    "maxItems",
    "x-max-bytes",
    "x-truncated-to",
    "x-max-future-hours",
    "x-number-magnitude",
];

/// The bounds a schema writes itself (a `$ref` is walked as its own
/// component), by where they are; a `minimum` of 0 is no limit to tie.
fn bounds(s: &Yaml, at: &str, out: &mut BTreeMap<String, f64>, refs: &mut Vec<String>) {
    let Some(h) = s.as_hash() else { return };
    if let (Some(p), Some(m)) = (s["pattern"].as_str(), num(&s["maxLength"]))
        && let Some(longest) = Pattern::parse(p).max_len()
    {
        assert_eq!(longest as f64, m, "{at}: the pattern {p} and maxLength allow the same length");
    }
    for (k, v) in h {
        let k = k.as_str().unwrap();
        match k {
            "$ref" => refs.push(v.as_str().unwrap().rsplit('/').next().unwrap().to_owned()),
            "properties" => {
                for (p, ps) in v.as_hash().unwrap() {
                    bounds(ps, &format!("{at}.{}", p.as_str().unwrap()), out, refs);
                }
            }
            "additionalProperties" => bounds(v, &format!("{at}.*"), out, refs),
            "propertyNames" => bounds(v, &format!("{at}.keys"), out, refs),
            "items" => bounds(v, &format!("{at}[]"), out, refs),
            "allOf" | "anyOf" | "oneOf" => {
                for (i, m) in v.as_vec().unwrap().iter().enumerate() {
                    bounds(m, &format!("{at}.{k}[{i}]"), out, refs);
                }
            }
            "dependentSchemas" => {
                for (p, ds) in v.as_hash().unwrap() {
                    bounds(ds, &format!("{at}.{k}.{}", p.as_str().unwrap()), out, refs);
                }
            }
            "x-number-magnitude" => {
                for side in ["minimum", "maximum"] {
                    out.insert(format!("{at}.{k}.{side}"), num(&v[side]).unwrap());
                }
            }
            b if BOUNDS.contains(&b) => {
                let n = num(v).unwrap_or_else(|| panic!("{at}.{b} is a number"));
                if !(b == "minimum" && n == 0.0) {
                    out.insert(format!("{at}.{b}"), n);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn every_bound_of_the_event_schemas_is_a_constant_of_the_contract() {
    let doc = spec();
    let (mut found, mut refs, mut walked) = (BTreeMap::new(), vec!["EventBatch".to_owned()], BTreeSet::new());
    while let Some(name) = refs.pop() {
        if walked.insert(name.clone()) {
            bounds(schema(&doc, &name), &name, &mut found, &mut refs);
        }
    }
    let table: BTreeMap<String, f64> = limit_table().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let differ: Vec<String> = table
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: the contract says {v}, the document {:?}", found.get(k)))
        .collect();
    assert!(differ.is_empty(), "bounds that differ from analytics_shared::validate::limits:\n{}", differ.join("\n"));
    let untied: Vec<&String> = found.keys().filter(|k| !table.contains_key(*k)).collect();
    assert!(untied.is_empty(), "bounds in the document that no constant backs (add them to limit_table): {untied:?}");
}

// ---- Examples ----------------------------------------------------------

/// Every field of a schema that `v` leaves out, nested objects included.
fn missing_fields(doc: &Yaml, s: &Yaml, v: &Value, at: &str, out: &mut Vec<String>) {
    let f = flat(doc, s);
    for (name, ps) in &f.props {
        match v.get(name) {
            None => out.push(format!("{at}{name}")),
            Some(x) if x.is_object() => missing_fields(doc, ps, x, &format!("{at}{name}."), out),
            Some(_) => {}
        }
    }
}

#[test]
fn every_example_is_a_valid_batch_by_the_schema_and_by_the_validator() {
    let doc = spec();
    let batch_schema = schema(&doc, "EventBatch");
    let all = examples(&doc);
    assert!(all.len() > EventKind::ALL.len(), "an example per kind, and the contract's");
    for (name, batch) in &all {
        let mut errs = Vec::new();
        conforms(&doc, batch_schema, batch, name, &mut errs);
        assert_eq!(errs, Vec::<String>::new(), "the example {name} against EventBatch");
        assert_eq!(verdict(batch, received_at(batch)), Ok(()), "the example {name} through the ingest validator");
        let prepared = pipeline::prepare(batch.to_string().as_bytes(), "acme", received_at(batch), &Retention::default(), 8).unwrap();
        assert_eq!(prepared.writes.len(), batch["events"].as_array().unwrap().len(), "{name}: every event becomes a write");
    }
    for (kind, (full, _)) in samples(&doc) {
        let mut missing = Vec::new();
        missing_fields(&doc, kind_schema(&doc, kind), &full, "", &mut missing);
        assert_eq!(missing, Vec::<String>::new(), "the first event of the example {} holds every documented field", kind.as_str());
    }
}

// ---- Probes: the schema's verdict and the validator's ------------------

fn at_path<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[k.as_str()])
}

fn with(v: &Value, path: &[String], x: Value) -> Value {
    let mut out = v.clone();
    let (last, parents) = path.split_last().expect("a path");
    let obj = parents.iter().fold(&mut out, |v, k| &mut v[k.as_str()]);
    obj.as_object_mut().expect("an object on the path").insert(last.clone(), x);
    out
}

fn without(v: &Value, path: &[String]) -> Value {
    let mut out = v.clone();
    let (last, parents) = path.split_last().expect("a path");
    parents.iter().fold(&mut out, |v, k| &mut v[k.as_str()]).as_object_mut().unwrap().remove(last);
    out
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// One event to judge, what the schema means of it, and where a
/// rejection must point.
struct Probe {
    what: String,
    event: Value,
    ok: bool,
    /// The path (inside the event) a problem names when it is rejected.
    at: String,
}

fn probe(what: impl Into<String>, event: Value, ok: bool, at: &[String]) -> Probe {
    Probe { what: what.into(), event, ok, at: dotted(at) }
}

fn pad(s: &str, n: usize) -> String {
    let mut s: String = s.chars().take(n).collect();
    while s.chars().count() < n {
        s.push('a');
    }
    s
}

fn number(x: f64, integer: bool) -> Value {
    if integer { json!(x as i64) } else { json!(x) }
}

/// Probes around every documented rule of one field (and its fields).
fn field_probes(doc: &Yaml, s: &Yaml, ev: &Value, path: &[String], out: &mut Vec<Probe>) {
    let f = flat(doc, s);
    let p = dotted(path);
    let ts = f.types();
    if !ts.is_empty() {
        let wrong = [json!("x"), json!(12345), json!(true), json!([1])].into_iter().find(|w| !ts.iter().any(|t| has_type(w, t)));
        if let Some(w) = wrong {
            out.push(probe(format!("{p} = {w} (a wrong type)"), with(ev, path, w), false, path));
        }
        if ts == ["integer"] {
            out.push(probe(format!("{p} = 1.5"), with(ev, path, json!(1.5)), false, path));
        }
    }
    for m in f.list("enum") {
        out.push(probe(format!("{p} = {m:?}"), with(ev, path, to_json(m)), true, path));
    }
    if f.kw.contains_key("enum") {
        out.push(probe(format!("{p} outside the enum"), with(ev, path, json!("zzz_undocumented")), false, path));
    }
    if ts.contains(&"integer") || ts.contains(&"number") {
        let integer = ts == ["integer"];
        if let Some(max) = f.num("maximum") {
            out.push(probe(format!("{p} = its maximum"), with(ev, path, number(max, integer)), true, path));
            out.push(probe(format!("{p} above its maximum"), with(ev, path, number(max + 1.0, integer)), false, path));
        }
        if let Some(min) = f.num("minimum") {
            let under = if min > 0.0 && min < 1.0 { min / 2.0 } else { min - 1.0 };
            out.push(probe(format!("{p} = its minimum"), with(ev, path, number(min, integer)), true, path));
            out.push(probe(format!("{p} below its minimum"), with(ev, path, number(under, integer)), false, path));
        }
    }
    if ts == ["string"] && !f.kw.contains_key("enum") {
        let cur = at_path(ev, path).as_str().unwrap_or("a").to_owned();
        if let Some(max) = f.num("maxLength") {
            let max = max as usize;
            out.push(probe(format!("{p} of {max} characters"), with(ev, path, json!(pad(&cur, max))), true, path));
            out.push(probe(format!("{p} of {} characters", max + 1), with(ev, path, json!(pad(&cur, max + 1))), false, path));
        }
        if f.num("minLength").is_some_and(|m| m >= 1.0) {
            out.push(probe(format!("{p} empty"), with(ev, path, json!("")), false, path));
        }
    }
    if at_path(ev, path).is_object() {
        object_probes(doc, &f, ev, path, out);
    }
}

/// Probes of an object: each field left out, an unknown one, a map's
/// size and key lengths, then each field's own.
fn object_probes(doc: &Yaml, f: &Flat, ev: &Value, path: &[String], out: &mut Vec<Probe>) {
    let here = at_path(ev, path).as_object().expect("an object").clone();
    let sub = |k: &str| {
        let mut p = path.to_vec();
        p.push(k.to_owned());
        p
    };
    for name in here.keys() {
        let required = f.required.contains(name);
        out.push(probe(format!("without {}", dotted(&sub(name))), without(ev, &sub(name)), !required, &sub(name)));
    }
    if f.closed() {
        let at = if path.is_empty() { sub("zzz_unknown") } else { path.to_vec() };
        out.push(probe(format!("{} with an unknown field", dotted(path)), with(ev, &sub("zzz_unknown"), json!(1)), false, &at));
    }
    let map = |keys: Vec<String>| -> Value {
        let sample = here.values().next().cloned().expect("a map sample has an entry");
        Value::Object(keys.into_iter().map(|k| (k, sample.clone())).collect::<Map<_, _>>())
    };
    if let (Some(max), Some(_)) = (f.num("maxProperties"), f.values()) {
        let keys = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
        let max = max as usize;
        out.push(probe(format!("{} with {max} entries", dotted(path)), with(ev, path, map(keys(max))), true, path));
        out.push(probe(format!("{} with {} entries", dotted(path), max + 1), with(ev, path, map(keys(max + 1))), false, path));
    }
    if let Some(names) = f.kw.get("propertyNames") {
        let names = flat(doc, names);
        if let Some(max) = names.num("maxLength") {
            let max = max as usize;
            out.push(probe(format!("{} with a key of {max}", dotted(path)), with(ev, path, map(vec![pad("k", max)])), true, path));
            out.push(probe(
                format!("{} with a key of {}", dotted(path), max + 1),
                with(ev, path, map(vec![pad("k", max + 1)])),
                false,
                path,
            ));
        }
        if names.num("minLength").is_some_and(|m| m >= 1.0) {
            out.push(probe(format!("{} with an empty key", dotted(path)), with(ev, path, map(vec![String::new()])), false, path));
        }
    }
    // A field a dependent schema constrains is probed without the field
    // that brings the constraint (an action other than generate_report is
    // fine once there is no report).
    let mut freed: BTreeMap<String, String> = BTreeMap::new();
    for (k, ds) in f.kw.get("dependentSchemas").and_then(Yaml::as_hash).into_iter().flatten() {
        for constrained in flat(doc, ds).props.keys() {
            freed.insert(constrained.clone(), k.as_str().unwrap().to_owned());
        }
    }
    for (name, s) in &f.props {
        if here.contains_key(name) {
            let base = freed.get(name).map_or_else(|| ev.clone(), |k| without(ev, &sub(k)));
            field_probes(doc, s, &base, &sub(name), out);
        }
    }
    if let (Some(values), Some(first)) = (f.values(), here.keys().next()) {
        field_probes(doc, values, ev, &sub(first), out);
    }
}

/// Runs probes of one kind: the schema must mean what the probe says, and
/// the validator must agree, rejecting at the probed path.
fn judge(doc: &Yaml, probes: Vec<Probe>, sent_at: &str) -> Vec<String> {
    let ingest_event = schema(doc, "IngestEvent");
    let at = received_at(&json!({ "sent_at": sent_at }));
    let mut disagreements = Vec::new();
    for p in probes {
        let by_schema = passes(doc, ingest_event, &p.event);
        let by_rust = verdict(&json!({"sent_at": sent_at, "events": [p.event]}), at);
        let where_ = if p.at.is_empty() { "events[0]".to_owned() } else { format!("events[0].{}", p.at) };
        let pointed = by_rust.as_ref().err().is_some_and(|ps| ps.iter().any(|m| m.starts_with(&where_)));
        if by_schema != p.ok {
            disagreements.push(format!("{}: the schema says {by_schema}, the probe means {}", p.what, p.ok));
        }
        if by_rust.is_ok() != p.ok || (!p.ok && !pointed) {
            disagreements.push(format!("{}: the validator answers {by_rust:?} (expected {}, at {where_})", p.what, p.ok));
        }
    }
    disagreements
}

#[test]
fn the_schemas_and_the_validator_agree_around_every_documented_rule() {
    let doc = spec();
    let samples = samples(&doc);
    let mut disagreements = Vec::new();
    let mut count = 0;
    for (kind, (full, minimal)) in &samples {
        let f = flat(&doc, kind_schema(&doc, *kind));
        let mut probes = vec![probe(format!("{} (every field)", kind.as_str()), full.clone(), true, &[])];
        probes.push(probe(format!("{} (the fewest fields)", kind.as_str()), minimal.clone(), true, &[]));
        object_probes(&doc, &f, full, &[], &mut probes);
        // A field of another kind is refused, not dropped.
        for (other, (other_full, _)) in samples.iter().filter(|(k, _)| *k != kind) {
            for (name, v) in other_full.as_object().unwrap().iter().filter(|(n, _)| !f.props.contains_key(*n)) {
                let what = format!("{} with {name} of {}", kind.as_str(), other.as_str());
                let at = std::slice::from_ref(name);
                probes.push(probe(what, with(full, at, v.clone()), false, at));
            }
        }
        count += probes.len();
        disagreements.extend(judge(&doc, probes, "2026-11-21T10:00:05Z"));
    }
    assert!(count > 400, "{count} probes");
    assert!(disagreements.is_empty(), "infra/openapi.yaml and the validator disagree:\n{}", disagreements.join("\n"));
}

#[test]
fn the_schemas_and_the_validator_agree_on_patterns_formats_and_metadata() {
    let doc = spec();
    let s = samples(&doc);
    let full = |k: EventKind| s[&k].0.clone();
    let minimal = |k: EventKind| s[&k].1.clone();
    let set = |ev: Value, field: &str, v: Value| with(&ev, &[field.to_owned()], v);
    let p = |what: &str, ev: Value, ok: bool, at: &str| Probe { what: what.to_owned(), event: ev, ok, at: at.to_owned() };
    let (act, api, auth, call) = (EventKind::Activity, EventKind::ApiRequest, EventKind::Auth, EventKind::ExternalCall);
    let meta = |m: Value| set(full(auth), "metadata", m);
    let keys = |n: usize, v: Value| Value::Object((0..n).map(|i| (format!("k{i}"), v.clone())).collect());
    let mut probes = vec![
        p("event_id with a space", set(full(auth), "event_id", json!("a b")), false, "event_id"),
        p("event_id with a slash", set(full(auth), "event_id", json!("a/b")), false, "event_id"),
        p("event_id of every allowed character", set(full(auth), "event_id", json!("A.b_c:d-1")), true, ""),
        p("action in capitals", set(minimal(act), "action", json!("Generate")), false, "action"),
        p("action starting with a digit", set(minimal(act), "action", json!("9x")), false, "action"),
        p("a custom action", set(minimal(act), "action", json!("custom_thing")), true, ""),
        p("a report without generate_report", set(full(act), "action", json!("login")), false, "report"),
        p("a category in capitals", with(&full(act), &["report".into(), "categories".into()], json!({"Cost": 1})), false, "report"),
        p("a long category", with(&full(act), &["report".into(), "categories".into()], json!({"operational_excellence": 3})), true, ""),
        p("a service with a space", set(full(call), "service", json!("gem ini")), false, "service"),
        p("a service of every allowed character", set(full(call), "service", json!("gemini.v2_x-1")), true, ""),
        p("an api endpoint without its slash", set(full(api), "endpoint", json!("clients")), false, "endpoint"),
        p("an api endpoint with a query string", set(full(api), "endpoint", json!("/reset?token=abc#top")), true, ""),
        p("a blank user_id", set(full(auth), "user_id", json!("   ")), false, "user_id"),
        p("a user_id with a control character", set(full(auth), "user_id", json!("a\u{1}b")), false, "user_id"),
        p("a user_id with a C1 control", set(full(auth), "user_id", json!("a\u{9f}")), false, "user_id"),
        p("an error_message on two lines", set(full(auth), "error_message", json!("first\nsecond\ttab")), true, ""),
        p("a tab for an error_message", set(full(auth), "error_message", json!("\t")), false, "error_message"),
        p("a user_id beyond ASCII", set(full(auth), "user_id", json!("zoë-東京")), true, ""),
        p("an IPv6 address", set(full(auth), "ip_address", json!("::1")), true, ""),
        p("an IPv4 address out of range", set(full(auth), "ip_address", json!("999.1.1.1")), false, "ip_address"),
        p("a host name for an address", set(full(auth), "ip_address", json!("localhost")), false, "ip_address"),
        p("an occurred_at that is no time", set(full(auth), "occurred_at", json!("yesterday")), false, "occurred_at"),
        p("an occurred_at with an offset", set(full(auth), "occurred_at", json!("2026-11-21T10:59:00+01:00")), true, ""),
        p("an unknown kind", set(full(auth), "kind", json!("pageview")), false, "kind"),
        p("a long user agent (cut, not refused)", set(full(auth), "user_agent", json!("x".repeat(600))), true, ""),
        p("a sample_rate of 0", set(full(api), "sample_rate", json!(0)), false, "sample_rate"),
        p("metadata three levels deep", meta(json!({"a": {"b": {"c": 1}}, "l": [[1, "x", null, true]]})), true, ""),
        p("metadata four levels deep", meta(json!({"a": {"b": {"c": {"d": 1}}}})), false, "metadata.a"),
        p("metadata arrays four levels deep", meta(json!({"l": [[[1]]]})), false, "metadata.l"),
        p("metadata, an array in an object in an array", meta(json!({"a": {"b": [[1]]}})), false, "metadata.a"),
        p("a metadata string of 1000", meta(json!({"s": "a".repeat(1000), "o": {"s": "a".repeat(1000)}})), true, ""),
        p("a metadata string of 1001", meta(json!({"s": "a".repeat(1001)})), false, "metadata.s"),
        p("a nested metadata string of 1001", meta(json!({"o": {"s": "a".repeat(1001)}})), false, "metadata.o"),
        p("metadata numbers DynamoDB holds", meta(json!({"a": 1e-120, "b": 1e120, "c": 0.0, "d": -2.5, "e": 12})), true, ""),
        p("a metadata number too small", meta(json!({"a": 1e-121})), false, "metadata.a"),
        p("a metadata number too large", meta(json!({"a": 1.5e120})), false, "metadata.a"),
        p("a nested metadata number too large", meta(json!({"o": [1e121]})), false, "metadata.o"),
        p("a nested metadata object of 50 keys", meta(json!({"o": keys(50, json!(1))})), true, ""),
        p("a nested metadata object of 51 keys", meta(json!({"o": keys(51, json!(1))})), false, "metadata.o"),
        p("a nested metadata key of 65", meta(json!({"o": {"k".repeat(65): 1}})), false, "metadata.o"),
        p("a query_params key of 65", set(full(api), "query_params", json!({"k".repeat(65): "v"})), false, "query_params"),
    ];
    // An event of exactly the largest size, and one byte more.
    let mut big = set(minimal(auth), "metadata", json!({}));
    let size = |v: &Value| v.to_string().len();
    let mut i = 0;
    while limits::MAX_EVENT_BYTES - size(&big) > 1000 {
        big = with(&big, &["metadata".into(), format!("p{i:02}")], json!("a".repeat(900)));
        i += 1;
    }
    let filler = |n: usize, big: &Value| with(big, &["metadata".into(), "zz".into()], json!("a".repeat(n)));
    let n = limits::MAX_EVENT_BYTES - size(&filler(0, &big));
    assert_eq!(size(&filler(n, &big)), limits::MAX_EVENT_BYTES);
    probes.push(p("an event of exactly the largest size", filler(n, &big), true, ""));
    probes.push(p("an event a byte larger", filler(n + 1, &big), false, ""));
    let disagreements = judge(&doc, probes, "2026-11-21T10:00:05Z");
    assert!(disagreements.is_empty(), "infra/openapi.yaml and the validator disagree:\n{}", disagreements.join("\n"));

    // The batch: its size, its fields, its sent_at.
    let batch_schema = schema(&doc, "EventBatch");
    let ev = minimal(auth);
    let at = received_at(&json!({"sent_at": "2026-11-21T10:00:05Z"}));
    let batches = [
        ("500 events", json!({"events": vec![ev.clone(); limits::MAX_EVENTS]}), true),
        ("501 events", json!({"events": vec![ev.clone(); limits::MAX_EVENTS + 1]}), false),
        ("no events", json!({"events": []}), false),
        ("no events field", json!({"sent_at": "2026-11-21T10:00:05Z"}), false),
        ("events not an array", json!({"events": {"0": ev.clone()}}), false),
        ("a sent_at that is no time", json!({"sent_at": "soon", "events": [ev.clone()]}), false),
        ("an unknown batch field", json!({"events": [ev.clone()], "source": "web"}), false),
        ("a body larger than 1 MiB", json!({"events": vec![filler(n, &big); 40]}), false),
    ];
    for (what, body, ok) in batches {
        assert_eq!(passes(&doc, batch_schema, &body), ok, "{what}: the schema");
        assert_eq!(verdict(&body, at).is_ok(), ok, "{what}: the validator answers {:?}", verdict(&body, at));
    }
}

// ---- The ingest function's error answers -------------------------------

/// The ingest function over a client that is never called: every answer
/// here is given before storage is touched.
fn ingest_app() -> ::ingest::App {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("unused", "unused", None, None, "tests"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    ::ingest::App::new(integration_tests::config("never-touched"), aws_sdk_dynamodb::Client::from_conf(conf))
}

/// A response object, `$ref` followed.
fn response<'a>(doc: &'a Yaml, op: &'a Yaml, status: u16) -> &'a Yaml {
    let r = &op["responses"][status.to_string().as_str()];
    let r = if r.is_badvalue() { &op["responses"]["default"] } else { r };
    match r["$ref"].as_str() {
        Some(name) => &doc["components"]["responses"][name.rsplit('/').next().unwrap()],
        None => r,
    }
}

/// The required headers a documented response names that an answer lacks
/// or gives a value outside their schema.
pub(super) fn header_problems(doc: &Yaml, documented: &Yaml, headers: &http::HeaderMap, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (name, h) in documented["headers"].as_hash().into_iter().flatten() {
        let name = name.as_str().unwrap();
        let h = match h["$ref"].as_str() {
            Some(r) => &doc["components"]["headers"][r.rsplit('/').next().unwrap()],
            None => h,
        };
        match headers.get(name).and_then(|v| v.to_str().ok()) {
            None if h["required"].as_bool() == Some(true) => out.push(format!("{at}: the header {name} is missing")),
            None => {}
            Some(v) => {
                let v = if types(&h["schema"]) == ["integer"] { v.parse::<i64>().map_or(json!(v), |n| json!(n)) } else { json!(v) };
                if !passes(doc, &h["schema"], &v) {
                    out.push(format!("{at}: the header {name}: {v} does not match its schema"));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_ingest_functions_errors_match_their_documented_responses() {
    let doc = spec();
    let op = &doc["paths"][pipeline_route()]["post"];
    let app = ingest_app();
    let tok = integration_tests::ingest_token("acme");
    let ev = json!({"kind": "auth", "event_type": "login", "success": true});
    let post = |body: String| ApiEvent::post(pipeline_route(), body);
    let asks: Vec<(&str, ApiEvent, u16, &str)> = vec![
        ("no token", post(json!({"events": [ev]}).to_string()), 401, "unauthorized"),
        (
            "a member without the ingest scope",
            post("{}".into()).bearer(&integration_tests::token("u-1", Some("acme"), &[], &[])),
            403,
            "forbidden",
        ),
        ("a body that is no JSON", post("{".into()).bearer(&tok), 400, "bad_request"),
        ("a sent_at that is no time", post(json!({"sent_at": "soon", "events": [ev]}).to_string()).bearer(&tok), 400, "validation_failed"),
        (
            "every event invalid",
            post(json!({"events": [{"event_id": "e-1", "kind": "auth", "success": "no"}, {"kind": "pageview"}]}).to_string()).bearer(&tok),
            400,
            "validation_failed",
        ),
        ("501 events", post(json!({"events": vec![ev.clone(); 501]}).to_string()).bearer(&tok), 413, "payload_too_large"),
        ("a GET to the ingest function", ApiEvent::get(pipeline_route()).bearer(&tok), 405, "method_not_allowed"),
    ];
    let (mut seen, mut errors) = (BTreeSet::new(), Vec::new());
    for (what, ask, status, code) in asks {
        let answer = Answer::from(app.handle(ask.into_request()).await);
        assert_eq!((answer.status, answer.code()), (status, code), "{what}: {}", answer.body);
        let documented = response(&doc, op, status);
        errors.extend(header_problems(&doc, documented, &answer.headers, what));
        check(&doc, &documented["content"]["application/json"]["schema"], what, &answer.body, &mut seen, &mut errors);
    }
    assert_eq!(errors, Vec::<String>::new(), "error answers that differ from infra/openapi.yaml");
    let mut documented = BTreeSet::new();
    places(&doc, &json_schema_ref("Error"), "Error", &mut documented);
    let never: Vec<&String> = documented.difference(&seen).collect();
    assert!(never.is_empty(), "documented in Error but in no error answer: {never:?}");
}

/// `{$ref: "#/components/schemas/<name>"}`.
pub(super) fn json_schema_ref(name: &str) -> Yaml {
    yaml_rust2::YamlLoader::load_from_str(&format!("$ref: \"#/components/schemas/{name}\"")).unwrap().remove(0)
}

// ---- Query parameters --------------------------------------------------

/// Every event of every example of the ingest body.
pub(super) fn example_events(doc: &Yaml) -> Vec<Value> {
    examples(doc).into_iter().flat_map(|(_, b)| b["events"].as_array().unwrap().clone()).collect()
}

/// A parameter object, `$ref` followed.
pub(super) fn parameter<'a>(doc: &'a Yaml, p: &'a Yaml) -> &'a Yaml {
    match p["$ref"].as_str() {
        Some(r) => &doc["components"]["parameters"][r.rsplit('/').next().unwrap()],
        None => p,
    }
}

fn shown(x: f64) -> String {
    if x.fract() == 0.0 { format!("{}", x as i64) } else { format!("{x}") }
}

/// Values a query parameter's schema allows (that a route must accept)
/// and values outside it (that a route must refuse with a 400 naming the
/// parameter): the enum and one value outside it, the bounds and one
/// beyond each, the longest string and one longer, the formats.
pub(super) fn parameter_values(doc: &Yaml, s: &Yaml, name: &str, now: DateTime<Utc>) -> (Vec<String>, Vec<String>) {
    let f = flat(doc, s);
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let ts = f.types();
    if f.kw.contains_key("enum") {
        good.extend(f.list("enum").iter().map(|m| m.as_str().expect("a string member").to_owned()));
        bad.push("zzz_undocumented".to_owned());
    } else if ts == ["integer"] || ts == ["number"] {
        for (k, step) in [("minimum", -1.0), ("maximum", 1.0)] {
            if let Some(x) = f.num(k) {
                good.push(shown(x));
                bad.push(shown(x + step));
            }
        }
        bad.push("ten".into());
        if ts == ["integer"] {
            bad.push("1.5".into());
        }
    } else if ts == ["boolean"] {
        good.extend(["true".to_owned(), "false".to_owned()]);
        bad.push("maybe".into());
    } else if f.list("anyOf").iter().any(|a| a["format"].as_str() == Some("date")) {
        let (ago, ahead) =
            if name == "date_to" { (Duration::days(-1), Duration::hours(-1)) } else { (Duration::days(2), Duration::hours(1)) };
        good.push((now - ago).date_naive().to_string());
        good.push((now - ahead).to_rfc3339());
        bad.extend(["2026-13-45".to_owned(), "yesterday".to_owned()]);
        bad.push(if name == "date_to" { "10000-01-01" } else { "1969-12-31" }.to_owned());
    } else if ts == ["string"] {
        match f.list("examples") {
            [] if f.str("pattern").is_none_or(|p| Pattern::parse(p).is_match("a")) => good.push("a".into()),
            [] => {}
            examples => good.extend(examples.iter().map(|e| e.as_str().unwrap().to_owned())),
        }
        if let Some(max) = f.num("maxLength") {
            bad.push("a".repeat(max as usize + 1));
        }
        if f.num("minLength").is_some_and(|m| m >= 1.0) {
            bad.push(String::new());
        }
        if f.str("pattern").is_some_and(|p| !Pattern::parse(p).is_match("!")) {
            bad.push("!".into());
        }
    } else {
        panic!("the parameter {name} has a schema the probe does not know: {s:?}");
    }
    (good, bad)
}

/// Storage that does not answer: the ingest function's 503 carries
/// Retry-After and x-request-id, as documented.
#[tokio::test]
async fn the_ingest_functions_unavailable_matches_its_documented_response() {
    let doc = spec();
    let op = &doc["paths"][pipeline_route()]["post"];
    let ev = json!({"kind": "auth", "event_type": "login", "success": true});
    let ask = ApiEvent::post(pipeline_route(), json!({ "events": [ev] }).to_string()).bearer(&integration_tests::ingest_token("acme"));
    let answer = Answer::from(ingest_app().handle(ask.into_request()).await);
    assert_eq!((answer.status, answer.code()), (503, "unavailable"), "{}", answer.body);
    let documented = response(&doc, op, 503);
    let mut errors = header_problems(&doc, documented, &answer.headers, "503");
    assert!(documented["headers"]["Retry-After"]["$ref"].as_str().is_some(), "the 503 documents Retry-After");
    check(&doc, &documented["content"]["application/json"]["schema"], "503", &answer.body, &mut BTreeSet::new(), &mut errors);
    assert_eq!(errors, Vec::<String>::new());
}

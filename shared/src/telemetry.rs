//! Logging set-up shared by every function.
//!
//! In Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`, which the template sets) every
//! line is one flat JSON object with the names Powertools uses, so Logs
//! Insights queries read them directly: `timestamp`, `level`, `message`,
//! the event's own fields, and the invocation's `request_id`, `cold_start`
//! and `function_name`. Locally, compact text.
//!
//! The level is `AWS_LAMBDA_LOG_LEVEL` (the function's logging config in
//! the template) when set, else `RUST_LOG` (one level: error, warn, info,
//! debug, trace), else info.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The invocation being served: one at a time per execution environment.
struct Invocation {
    request_id: Option<String>,
    cold_start: bool,
}

static CURRENT: Mutex<Invocation> = Mutex::new(Invocation { request_id: None, cold_start: true });
static STARTED: AtomicBool = AtomicBool::new(false);

/// Marks the start of an invocation: its request id goes on every line
/// until the next one, `cold_start` is true for the first only.
pub fn begin_invocation(request_id: &str) {
    let first = !STARTED.swap(true, Ordering::Relaxed);
    if let Ok(mut c) = CURRENT.lock() {
        *c = Invocation { request_id: Some(request_id.to_owned()), cold_start: first };
    }
}

/// The level a function logs at, from Lambda's setting first.
pub fn level(lambda: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    let parse = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
        "fatal" => Some(LevelFilter::ERROR),
        other => LevelFilter::from_str(other).ok(),
    };
    lambda.and_then(parse).or_else(|| rust_log.and_then(parse)).unwrap_or(LevelFilter::INFO)
}

/// Installs the tracing subscriber once per process.
pub fn init() {
    let level = level(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(), std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false).without_time();
    let _ = if json {
        let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
        builder.event_format(FlatJson { function_name }).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// One flat JSON object per event.
pub struct FlatJson {
    pub function_name: Option<String>,
}

impl FlatJson {
    /// The line of one event, given its fields.
    pub fn line(&self, level: &tracing::Level, fields: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("timestamp".into(), Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        out.insert("level".into(), Value::String(level.as_str().to_owned()));
        out.extend(fields);
        if let Ok(c) = CURRENT.lock() {
            if let Some(id) = &c.request_id {
                out.insert("request_id".into(), Value::String(id.clone()));
            }
            out.insert("cold_start".into(), Value::Bool(c.cold_start));
        }
        if let Some(name) = &self.function_name {
            out.insert("function_name".into(), Value::String(name.clone()));
        }
        out
    }
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let line = Value::Object(self.line(event.metadata().level(), fields.0));
        writeln!(writer, "{line}")
    }
}

/// An event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_level_comes_first_and_fatal_is_error() {
        assert_eq!(level(Some("DEBUG"), Some("warn")), LevelFilter::DEBUG);
        assert_eq!(level(Some("FATAL"), None), LevelFilter::ERROR);
        assert_eq!(level(None, Some("trace")), LevelFilter::TRACE);
        assert_eq!(level(Some("loud"), Some("warn")), LevelFilter::WARN, "an unknown value falls through");
        assert_eq!(level(None, None), LevelFilter::INFO);
    }

    #[test]
    fn a_line_is_flat_with_the_invocations_fields() {
        begin_invocation("req-1");
        let f = FlatJson { function_name: Some("stack-IngestFunction-x".into()) };
        let mut fields = Map::new();
        fields.insert("message".into(), "request".into());
        fields.insert("status".into(), 202.into());
        let line = f.line(&tracing::Level::INFO, fields);
        assert_eq!(line["level"], "INFO");
        assert_eq!((line["message"].as_str(), line["status"].as_u64()), (Some("request"), Some(202)));
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["function_name"], "stack-IngestFunction-x");
        assert_eq!(line["cold_start"], true, "the first invocation is the cold start");
        begin_invocation("req-2");
        let line = f.line(&tracing::Level::WARN, Map::new());
        assert_eq!((line["request_id"].as_str(), line["cold_start"].as_bool()), (Some("req-2"), Some(false)));
    }
}

//! The declarative variable table: each setting's name, default, rule and
//! meaning in one place. Parsing, the `VARIABLES` lists, the template check
//! and the README's tables all follow from it, so adding a setting is one
//! entry, not four edits that can drift apart.

use std::fmt;

/// What a variable's value must look like.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Any text.
    Text,
    /// Text never shown in logs or debug output (read with [`Env::secret`]).
    Secret,
    /// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
    Flag,
    /// A whole number within bounds; `unit` names what it counts.
    Whole { min: u64, max: u64, unit: &'static str },
    /// A decimal number within bounds; `above_min` excludes `min` itself.
    Decimal { min: f64, max: f64, above_min: bool },
    /// One of these words, any case.
    OneOf(&'static [&'static str]),
    /// Checked by a function; `expected` is what a refused value is told.
    Custom { expected: &'static str, accepts: fn(&str) -> bool },
}

impl Rule {
    /// Whether a (trimmed) value passes the rule.
    pub fn accepts(&self, v: &str) -> bool {
        match *self {
            Rule::Text | Rule::Secret => true,
            Rule::Flag => flag(v).is_some(),
            Rule::Whole { min, max, .. } => v.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n)),
            Rule::Decimal { min, max, above_min } => {
                v.parse::<f64>().is_ok_and(|n| n.is_finite() && n <= max && if above_min { n > min } else { n >= min })
            }
            Rule::OneOf(words) => words.iter().any(|w| w.eq_ignore_ascii_case(v)),
            Rule::Custom { accepts, .. } => accepts(v),
        }
    }

    /// What a refused value is told.
    pub fn expected(&self) -> String {
        match *self {
            Rule::Text | Rule::Secret => "text".into(),
            Rule::Flag => "true or false".into(),
            Rule::Whole { min, max, unit: "" } => format!("a whole number from {min} to {max}"),
            Rule::Whole { min, max, unit } => format!("a whole number of {unit} from {min} to {max}"),
            Rule::Decimal { min, max, above_min: true } => format!("a number greater than {min} and at most {max}"),
            Rule::Decimal { min, max, above_min: false } => format!("a number from {min} to {max}"),
            Rule::OneOf(words) => format!("one of {}", words.join(", ")),
            Rule::Custom { expected, .. } => expected.into(),
        }
    }
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// The value used when the variable is unset or empty (`None`: unset).
    pub default: Option<&'static str>,
    pub rule: Rule,
    /// What it does, as the README's table says it.
    pub meaning: &'static str,
}

impl Var {
    /// The README's table of these variables, row for row.
    pub fn markdown_table(vars: &[Var]) -> String {
        let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
        for v in vars {
            let default = v.default.map_or_else(|| "unset".to_owned(), |d| format!("`{d}`"));
            out.push_str(&format!("| `{}` | {default} | {} |\n", v.name, v.meaning));
        }
        out
    }
}

/// A variable that is set but does not pass its rule.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?} is invalid: expected {}", self.var, self.value, self.expected)
    }
}

impl std::error::Error for ConfigError {}

/// A value kept out of logs: its `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Reads variables by their table entries from any lookup (the process
/// environment, a map in tests). An empty value counts as unset; a value
/// is trimmed and checked against its rule before it is converted.
pub struct Env<F>(F);

impl Env<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn process() -> Self {
        Env(|k| std::env::var(k).ok())
    }

    /// Nothing set: every variable at its default.
    pub fn defaults() -> Self {
        Env(|_| None)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(get: F) -> Self {
        Env(get)
    }

    /// Whether the variable is set to something (not only its default).
    pub fn is_set(&self, v: &Var) -> bool {
        (self.0)(v.name).is_some_and(|s| !s.trim().is_empty())
    }

    /// The trimmed value or the default, checked against the rule.
    pub fn optional(&self, v: &Var) -> Result<Option<String>, ConfigError> {
        let set = (self.0)(v.name).filter(|s| !s.trim().is_empty());
        match set {
            Some(raw) if v.rule.accepts(raw.trim()) => Ok(Some(raw.trim().to_owned())),
            Some(raw) => Err(ConfigError { var: v.name, value: raw, expected: v.rule.expected() }),
            None => Ok(v.default.map(str::to_owned)),
        }
    }

    /// A value that always has a default.
    pub fn text(&self, v: &Var) -> Result<String, ConfigError> {
        Ok(self.optional(v)?.unwrap_or_default())
    }

    pub fn secret(&self, v: &Var) -> Result<Option<Secret>, ConfigError> {
        Ok(self.optional(v)?.map(Secret))
    }

    pub fn flag(&self, v: &Var) -> Result<bool, ConfigError> {
        self.parsed(v, flag)
    }

    /// A number (its rule has checked the bounds).
    pub fn number<T: std::str::FromStr>(&self, v: &Var) -> Result<T, ConfigError> {
        self.parsed(v, |s| s.parse().ok())
    }

    /// A value converted by `f`; `None` from `f` is refused like a rule.
    pub fn parsed<T>(&self, v: &Var, f: impl FnOnce(&str) -> Option<T>) -> Result<T, ConfigError> {
        let raw = self.text(v)?;
        f(&raw).ok_or_else(|| ConfigError { var: v.name, value: raw, expected: v.rule.expected() })
    }
}

/// Checks a table: names unique, every default passing its rule (the
/// tests of each crate run it over their own table).
pub fn check_table(vars: &[Var]) -> Result<(), String> {
    for (i, v) in vars.iter().enumerate() {
        if vars[..i].iter().any(|w| w.name == v.name) {
            return Err(format!("{} is listed twice", v.name));
        }
        if let Some(d) = v.default
            && !v.rule.accepts(d)
        {
            return Err(format!("{}'s default {d:?} fails its own rule: expected {}", v.name, v.rule.expected()));
        }
    }
    Ok(())
}

/// A table entry (for the tables of this crate and of the client).
pub const fn var(name: &'static str, default: Option<&'static str>, rule: Rule, meaning: &'static str) -> Var {
    Var { name, default, rule, meaning }
}

/// A whole number from `min` to `max`, counting `unit`.
pub const fn whole(min: u64, max: u64, unit: &'static str) -> Rule {
    Rule::Whole { min, max, unit }
}

const DAYS: Rule = whole(1, 36_500, "days");
pub const RETENTION_DAYS: Var = var("ANALYTICS_RETENTION_DAYS", Some("90"), DAYS, "activity, auth, external_call retention");
pub const API_LOG_RETENTION_DAYS: Var = var("ANALYTICS_API_LOG_RETENTION_DAYS", Some("30"), DAYS, "api_request retention");
pub const METRICS_RETENTION_DAYS: Var = var("ANALYTICS_METRICS_RETENTION_DAYS", Some("30"), DAYS, "health snapshots");
pub const ROLLUP_RETENTION_DAYS: Var = var("ANALYTICS_ROLLUP_RETENTION_DAYS", Some("800"), DAYS, "rollups and reports");

/// How long each kind of item is kept (the TTL written on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// [`RETENTION_DAYS`]: activity, auth and external_call events.
    pub events_days: u32,
    /// [`API_LOG_RETENTION_DAYS`]: api_request events.
    pub api_log_days: u32,
    /// [`METRICS_RETENTION_DAYS`]: health snapshots.
    pub metrics_days: u32,
    /// [`ROLLUP_RETENTION_DAYS`]: rollups and reports.
    pub rollup_days: u32,
}

impl Retention {
    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_days: env.number(&RETENTION_DAYS)?,
            api_log_days: env.number(&API_LOG_RETENTION_DAYS)?,
            metrics_days: env.number(&METRICS_RETENTION_DAYS)?,
            rollup_days: env.number(&ROLLUP_RETENTION_DAYS)?,
        })
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::read(&Env::defaults()).expect("the variable table's defaults pass its rules")
    }
}

//! One-line helpers for the kinds the layer does not see: auth events,
//! external API calls (with a timing guard) and user activity.
//!
//! ```no_run
//! # use analytics_client::{Analytics, AuthEventType};
//! # async fn f(analytics: Analytics, ip: std::net::IpAddr) {
//! analytics.auth(AuthEventType::LoginFailed, false).user("u-42").ip(ip).error("bad password").record();
//! analytics.activity("u-42", "generate_report").client_id("c-7").record();
//! let answer = analytics.external_call("gemini", "/v1/generate").method("POST").cost(0.002)
//!     .model("gemini-1.5-pro").tokens(1_200, 340)
//!     .time(async { Ok::<_, std::io::Error>(http::Response::new(())) }).await;
//! # }
//! ```

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use analytics_contract::event::{Activity, AuthEvent, AuthEventType, EventBody, ExternalCall, ReportOutcome};
use serde_json::{Map, Value};

use crate::client::Analytics;
use crate::event::PendingEvent;

/// A kind-specific body the helpers build.
pub trait Body: Sized {
    fn into_body(self) -> EventBody;
}

impl Body for Activity {
    fn into_body(self) -> EventBody {
        EventBody::Activity(self)
    }
}

impl Body for AuthEvent {
    fn into_body(self) -> EventBody {
        EventBody::Auth(self)
    }
}

impl Body for ExternalCall {
    fn into_body(self) -> EventBody {
        EventBody::ExternalCall(self)
    }
}

/// An event being described; nothing is recorded until [`Record::record`].
#[must_use = "nothing is recorded until .record()"]
pub struct Record<B: Body> {
    client: Analytics,
    user_id: Option<String>,
    ip_address: Option<IpAddr>,
    user_agent: Option<String>,
    metadata: Option<Map<String, Value>>,
    body: B,
}

impl Analytics {
    /// Something a user did (`action` as `^[a-z][a-z0-9_]{0,63}$`).
    pub fn activity(&self, user_id: impl Into<String>, action: impl Into<String>) -> Record<Activity> {
        let body = Activity { action: action.into(), custom: false, description: None, client_id: None, report_id: None, report: None };
        Record::new(self, body).user(user_id)
    }

    /// A sign-up, login, failed login, logout, password reset or token refresh.
    pub fn auth(&self, event_type: AuthEventType, success: bool) -> Record<AuthEvent> {
        Record::new(self, AuthEvent { event_type, success, error_message: None })
    }

    /// A call to an external API; finish it with [`Record::time`],
    /// [`Record::start`] or [`Record::response_time`] and `record()`.
    pub fn external_call(&self, service: impl Into<String>, endpoint: impl Into<String>) -> Record<ExternalCall> {
        let body = ExternalCall {
            service: service.into(),
            endpoint: endpoint.into(),
            method: None,
            status_code: None,
            response_time_ms: 0.0,
            cost_estimate: None,
            request_size: None,
            response_size: None,
            error_message: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
        };
        Record::new(self, body)
    }
}

impl<B: Body> Record<B> {
    fn new(client: &Analytics, body: B) -> Self {
        Self { client: client.clone(), user_id: None, ip_address: None, user_agent: None, metadata: None, body }
    }

    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip_address = Some(ip);
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// One metadata entry (sensitive keys are redacted before sending).
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.get_or_insert_with(Map::new).insert(key.into(), value.into());
        self
    }

    /// Puts the event in the buffer; never waits.
    pub fn record(self) {
        let mut e = PendingEvent::new(self.body.into_body());
        (e.user_id, e.ip_address, e.user_agent, e.metadata) = (self.user_id, self.ip_address, self.user_agent, self.metadata);
        self.client.record(e);
    }
}

impl Record<Activity> {
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.body.description = Some(d.into());
        self
    }

    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.body.client_id = Some(id.into());
        self
    }

    pub fn report_id(mut self, id: impl Into<String>) -> Self {
        self.body.report_id = Some(id.into());
        self
    }

    /// The outcome of a `generate_report`.
    pub fn report(mut self, outcome: ReportOutcome) -> Self {
        self.body.report = Some(outcome);
        self
    }
}

impl Record<AuthEvent> {
    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.body.error_message = Some(message.into());
        self
    }
}

impl Record<ExternalCall> {
    pub fn method(mut self, m: impl Into<String>) -> Self {
        self.body.method = Some(m.into());
        self
    }

    pub fn status(mut self, code: u16) -> Self {
        self.body.status_code = Some(code);
        self
    }

    /// The cost in USD.
    pub fn cost(mut self, usd: f64) -> Self {
        self.body.cost_estimate = Some(usd);
        self
    }

    pub fn sizes(mut self, request: Option<u64>, response: Option<u64>) -> Self {
        (self.body.request_size, self.body.response_size) = (request, response);
        self
    }

    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.body.error_message = Some(message.into());
        self
    }

    /// The model called, for an LLM (`gemini-1.5-pro`): `/external-calls`
    /// totals calls, cost and tokens per model with `group_by=model`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.body.model = Some(model.into());
        self
    }

    /// The tokens the call consumed and produced, as the provider reports
    /// them (Gemini's `usageMetadata.promptTokenCount` and
    /// `candidatesTokenCount`, OpenAI's `usage.prompt_tokens` and
    /// `completion_tokens`).
    pub fn tokens(mut self, input: u64, output: u64) -> Self {
        (self.body.input_tokens, self.body.output_tokens) = (Some(input), Some(output));
        self
    }

    pub fn response_time(mut self, d: Duration) -> Self {
        self.body.response_time_ms = d.as_secs_f64() * 1000.0;
        self
    }

    /// Starts the clock; the guard records when finished, or when dropped
    /// unfinished (a cancelled or timed-out call), with an error saying so.
    pub fn start(self) -> CallGuard {
        CallGuard { record: Some(self), started: Instant::now() }
    }

    /// Awaits the call and records its duration and outcome (status and
    /// error from the output: see [`CallOutcome`]); returns the output.
    pub async fn time<F>(self, call: F) -> F::Output
    where
        F: Future,
        F::Output: CallOutcome,
    {
        self.time_with(call, |out| (out.status_code(), out.error_message())).await
    }

    /// [`Record::time`] for outputs that are not a [`CallOutcome`]: `read`
    /// gives the status and error of the output.
    pub async fn time_with<F, R>(self, call: F, read: R) -> F::Output
    where
        F: Future,
        R: FnOnce(&F::Output) -> (Option<u16>, Option<String>),
    {
        let guard = self.start();
        let out = call.await;
        let (status, error) = read(&out);
        guard.finish(status, error);
        out
    }
}

/// Times an external call; see [`Record::start`].
#[must_use = "the call is recorded when the guard is finished or dropped"]
pub struct CallGuard {
    record: Option<Record<ExternalCall>>,
    started: Instant,
}

impl CallGuard {
    /// Records the call with its status and error.
    pub fn finish(mut self, status: Option<u16>, error: Option<String>) {
        self.done(status, error);
    }

    fn done(&mut self, status: Option<u16>, error: Option<String>) {
        if let Some(mut r) = self.record.take() {
            r.body.response_time_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            r.body.status_code = status.or(r.body.status_code);
            r.body.error_message = error.or(r.body.error_message);
            r.record();
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.done(None, Some("cancelled before completion".into()));
    }
}

/// What a timed call's output says about it.
pub trait CallOutcome {
    fn status_code(&self) -> Option<u16> {
        None
    }
    fn error_message(&self) -> Option<String> {
        None
    }
}

impl<B> CallOutcome for http::Response<B> {
    fn status_code(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
    fn error_message(&self) -> Option<String> {
        let s = self.status();
        (s.is_client_error() || s.is_server_error()).then(|| s.canonical_reason().unwrap_or("error").to_owned())
    }
}

impl CallOutcome for http::StatusCode {
    fn status_code(&self) -> Option<u16> {
        Some(self.as_u16())
    }
}

impl CallOutcome for () {}

impl<T: CallOutcome, E: std::fmt::Display> CallOutcome for Result<T, E> {
    fn status_code(&self) -> Option<u16> {
        self.as_ref().ok().and_then(T::status_code)
    }
    fn error_message(&self) -> Option<String> {
        match self {
            Ok(t) => t.error_message(),
            Err(e) => Some(e.to_string()),
        }
    }
}

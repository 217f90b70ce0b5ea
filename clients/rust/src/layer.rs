//! The request-tracking layer: every request the wrapped service answers
//! becomes an `api_request` event, captured on the caller's path in a few
//! hundred nanoseconds and pushed into the client's buffer; with an
//! [`ActivityTable`], a 2xx answer to a signed-in user on one of its routes
//! is also an `activity` event.

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};
use std::time::Instant;

use std::sync::Arc;

use analytics_contract::event::{ApiRequest, EventBody};
use chrono::{DateTime, Utc};
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::activity::ActivityTable;
use crate::client::Analytics;
use crate::event::PendingEvent;
use crate::transport::BoxFuture;

/// The signed-in user of a request. Put it in the request's extensions
/// (from an auth layer outside this one) or in the response's extensions
/// (from a handler or an inner layer) and the event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsUser(pub String);

/// The error message of a failed response, put in the response's
/// extensions by the handler; without it a 5xx is described by its reason
/// phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage(pub String);

/// Wraps a service so that each of its requests is recorded.
#[derive(Clone)]
pub struct AnalyticsLayer {
    client: Analytics,
    activities: Arc<ActivityTable>,
}

impl AnalyticsLayer {
    pub fn new(client: Analytics) -> Self {
        Self { client, activities: Arc::default() }
    }

    /// Records an `activity` event for each 2xx answer to a signed-in user
    /// ([`AnalyticsUser`]) on a route of `table` (for example
    /// [`ActivityTable::standard`]), besides the `api_request`. Activities
    /// are never sampled and never excluded: they are what users did.
    pub fn with_activities(mut self, table: ActivityTable) -> Self {
        self.activities = Arc::new(table);
        self
    }
}

impl<S> Layer<S> for AnalyticsLayer {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked { inner, client: self.client.clone(), activities: self.activities.clone() }
    }
}

/// A service whose requests are recorded; see [`AnalyticsLayer`].
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    client: Analytics,
    activities: Arc<ActivityTable>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Tracked<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Display + Send + 'static,
    ReqB: Body,
    ResB: Body + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let capture = Capture::of(&self.client, &req, !self.activities.is_empty());
        let fut = self.inner.call(req);
        let Some(capture) = capture else { return Box::pin(fut) };
        let client = self.client.clone();
        let activities = self.activities.clone();
        Box::pin(async move {
            let result = fut.await;
            capture.finish(&client, &activities, &result);
            if client.config().flush_per_invocation {
                // Lambda: a frozen environment runs no timer, so the
                // invocation sends its own events before it answers.
                client.flush_within(client.config().request_timeout).await;
            }
            result
        })
    }
}

/// What is known of a request before the inner service takes it.
struct Capture {
    started: Instant,
    occurred_at: DateTime<Utc>,
    method: http::Method,
    endpoint: String,
    raw_query: Option<String>,
    request_size: Option<u64>,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
    user: Option<String>,
    /// The path as requested, for the activity's path parameters.
    path: String,
    /// False on an excluded path: only an activity may be recorded.
    track_request: bool,
}

impl Capture {
    fn of<B: Body>(client: &Analytics, req: &Request<B>, activities: bool) -> Option<Capture> {
        let cfg = client.config();
        let track_request = !cfg.is_excluded(req.uri().path());
        if !cfg.enabled || !(track_request || activities) {
            return None;
        }
        let headers = req.headers();
        let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        Some(Capture {
            started: Instant::now(),
            occurred_at: Utc::now(),
            method: req.method().clone(),
            endpoint: endpoint(req),
            raw_query: req.uri().query().filter(|q| !q.is_empty()).map(str::to_owned),
            request_size: content_length(headers).or_else(|| req.body().size_hint().exact()),
            user_agent: headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
            ip: client_ip(xff, cfg.trusted_proxies, peer(req)),
            user: req.extensions().get::<AnalyticsUser>().map(|u| u.0.clone()),
            path: req.uri().path().to_owned(),
            track_request,
        })
    }

    fn finish<B: Body, E: Display>(self, client: &Analytics, activities: &ActivityTable, result: &Result<Response<B>, E>) {
        let elapsed = self.started.elapsed();
        let (status, response_size, error, user) = match result {
            Ok(resp) => {
                let status = resp.status();
                let error = resp
                    .extensions()
                    .get::<ErrorMessage>()
                    .map(|m| m.0.clone())
                    .or_else(|| status.is_server_error().then(|| status.canonical_reason().unwrap_or("server error").to_owned()));
                let size = content_length(resp.headers()).or_else(|| resp.body().size_hint().exact());
                (status.as_u16(), size, error, resp.extensions().get::<AnalyticsUser>().map(|u| u.0.clone()))
            }
            Err(e) => (500, None, Some(e.to_string()), None),
        };
        let user = self.user.clone().or(user);
        if (200..300).contains(&status)
            && let Some(user) = &user
            && let Some(activity) = activities.lookup(&self.method, &self.endpoint, &self.path)
        {
            let mut event = PendingEvent::new(EventBody::Activity(activity));
            event.occurred_at = self.occurred_at;
            event.user_id = Some(user.clone());
            event.ip_address = self.ip;
            event.user_agent = self.user_agent.clone();
            client.record(event);
        }
        if !self.track_request {
            return;
        }
        let Some(sample_rate) = keep(status, client.config().effective_sampling_rate(), fastrand::f64()) else {
            client.count_sampled_out();
            return;
        };
        let mut event = PendingEvent::new(EventBody::ApiRequest(ApiRequest {
            endpoint: self.endpoint,
            method: self.method.as_str().to_owned(),
            status_code: status,
            response_time_ms: elapsed.as_secs_f64() * 1000.0,
            request_size: self.request_size,
            response_size,
            query_params: None,
            error_message: error,
            sample_rate,
        }));
        event.occurred_at = self.occurred_at;
        event.raw_query = self.raw_query;
        event.user_agent = self.user_agent;
        event.ip_address = self.ip;
        event.user_id = user;
        client.record(event);
    }
}

/// The sampling decision: `Some(rate to send)` when the request is kept.
/// A 5xx is always kept and sent with rate 1, so errors are never missed
/// and every count stays unbiased (the others are weighted by 1/rate).
pub fn keep(status: u16, rate: f64, draw: f64) -> Option<f64> {
    if status >= 500 || rate >= 1.0 {
        Some(1.0)
    } else if draw < rate {
        Some(rate)
    } else {
        None
    }
}

/// A `Content-Length` the backend can store: a forged size past
/// [`MAX_COUNT`](analytics_contract::validate::limits::MAX_COUNT) is left
/// out rather than have the whole event refused.
fn content_length(h: &http::HeaderMap) -> Option<u64> {
    let n: u64 = h.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()?;
    (n <= analytics_contract::validate::limits::MAX_COUNT).then_some(n)
}

/// The route template when the framework matched one (axum's
/// `MatchedPath`, API Gateway's route key), else the path: templates keep
/// `/items/{id}` one endpoint instead of one per id.
fn endpoint<B>(req: &Request<B>) -> String {
    #[cfg(feature = "axum")]
    if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
        return m.as_str().to_owned();
    }
    #[cfg(feature = "lambda")]
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) = req.extensions().get::<lambda_http::request::RequestContext>()
        && let Some((_, path)) = ctx.route_key.as_deref().and_then(|k| k.split_once(' '))
        && path.starts_with('/')
    {
        return path.to_owned();
    }
    req.uri().path().to_owned()
}

/// The socket's peer, when the server put it where the layer can read it.
fn peer<B>(_req: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = _req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "lambda")]
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) = _req.extensions().get::<lambda_http::request::RequestContext>()
        && let Some(ip) = ctx.http.source_ip.as_deref().and_then(parse_ip)
    {
        return Some(ip);
    }
    None
}

/// The client's address. Each trusted proxy appends the address it got the
/// request from to `X-Forwarded-For`, so with `trusted` proxies the client
/// is `trusted` hops from the right; entries further left are whatever the
/// client claimed and are never believed. With no trusted proxy, or no
/// header, the socket's peer. A hop that is not an address gives `None`
/// rather than a guess (the backend refuses a malformed `ip_address`).
pub fn client_ip(xff: Option<&str>, trusted: usize, peer: Option<IpAddr>) -> Option<IpAddr> {
    if trusted == 0 {
        return peer;
    }
    let Some(xff) = xff else { return peer };
    let hops: Vec<&str> = xff.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
    if hops.is_empty() {
        return peer;
    }
    // Fewer hops than proxies: every hop was written by a trusted proxy,
    // the leftmost is the furthest from us.
    let hop = hops[hops.len().saturating_sub(trusted)];
    parse_ip(hop)
}

/// An IPv4 or IPv6 address, with or without a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_client_is_as_many_hops_from_the_right_as_there_are_trusted_proxies() {
        let xff = Some("198.51.100.1, 203.0.113.7, 10.0.0.2");
        assert_eq!(client_ip(xff, 1, None), ip("10.0.0.2"));
        assert_eq!(client_ip(xff, 2, None), ip("203.0.113.7"));
        assert_eq!(client_ip(xff, 3, None), ip("198.51.100.1"));
        assert_eq!(client_ip(xff, 5, None), ip("198.51.100.1"), "fewer hops than proxies: the furthest");
    }

    #[test]
    fn no_trusted_proxy_or_no_header_means_the_peer() {
        let peer = ip("192.0.2.9");
        assert_eq!(client_ip(Some("1.1.1.1"), 0, peer), peer, "a spoofed header is ignored");
        assert_eq!(client_ip(None, 1, peer), peer);
        assert_eq!(client_ip(Some(" , "), 1, peer), peer);
    }

    #[test]
    fn hops_with_ports_parse_and_garbage_gives_none() {
        assert_eq!(client_ip(Some("203.0.113.7:4711"), 1, None), ip("203.0.113.7"));
        assert_eq!(client_ip(Some("[2001:db8::1]:443"), 1, None), ip("2001:db8::1"));
        assert_eq!(client_ip(Some("2001:db8::2"), 1, None), ip("2001:db8::2"));
        assert_eq!(client_ip(Some("1.2.3.4, unknown"), 1, ip("192.0.2.9")), None);
    }

    #[test]
    fn sizes_past_what_the_backend_stores_are_left_out() {
        let len = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_LENGTH, v.parse().unwrap());
            content_length(&h)
        };
        assert_eq!(len("12"), Some(12));
        assert_eq!(len("1000000000000"), Some(1_000_000_000_000));
        assert_eq!(len("1000000000001"), None);
        assert_eq!(len("18446744073709551615"), None);
        assert_eq!(len("-1"), None);
    }

    #[test]
    fn sampling_keeps_errors_at_rate_one() {
        assert_eq!(keep(200, 1.0, 0.99), Some(1.0), "no sampling");
        assert_eq!(keep(200, 0.25, 0.10), Some(0.25));
        assert_eq!(keep(404, 0.25, 0.30), None);
        assert_eq!(keep(503, 0.25, 0.99), Some(1.0), "5xx always kept, weight 1");
    }

    #[test]
    fn sampling_keeps_about_the_rate() {
        fastrand::seed(7);
        let kept = (0..100_000).filter(|_| keep(200, 0.2, fastrand::f64()).is_some()).count();
        assert!((19_000..21_000).contains(&kept), "{kept}");
    }
}

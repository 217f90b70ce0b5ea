//! The HTTP adapter of `POST /api/v1/analytics/events`: it turns the API
//! Gateway request into a call of [`analytics_shared::ingest`] and the
//! result into the contract's response. The rules live in the shared crate.

use analytics_shared::error::{ErrorCode, json_response};
use analytics_shared::query::Params;
use analytics_shared::store::Table;
use analytics_shared::{ApiError, Caller, Config, ingest as pipeline};
use lambda_http::{Body, Request, Response};

/// The route this function serves (behind any stage prefix).
pub const ROUTE: &str = "/api/v1/analytics/events";

/// Everything an invocation needs, built once.
pub struct App {
    pub cfg: Config,
    pub store: Table,
}

impl App {
    pub fn new(cfg: Config, client: analytics_shared::store::DynamoDbClient) -> Self {
        let store = Table::new(client, cfg.store.clone());
        Self { cfg, store }
    }

    /// Serves one request; never fails: every error is a response. Logs
    /// one `request` line and records the request's metrics (printed by
    /// [`analytics_shared::emf::flush`] after the invocation).
    #[tracing::instrument(skip_all, fields(request_id))]
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let request_id = analytics_shared::http::request_id(&req);
        analytics_shared::telemetry::begin_invocation(&request_id);
        tracing::Span::current().record("request_id", request_id.as_str());
        let method = req.method().clone();
        let mut tenant = None;
        let resp = match self.serve(&req, &mut tenant).await {
            Ok((caller, outcome)) => {
                let (accepted, rejected, duplicates) = (outcome.accepted, outcome.rejected.len(), outcome.duplicates);
                analytics_shared::emf::ingested(&caller.tenant, accepted, rejected, duplicates);
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!(route = ROUTE, method = %method, status = 202, latency_ms, tenant = %caller.tenant, accepted, rejected, duplicates, "request");
                json_response(http::StatusCode::ACCEPTED, &outcome, &request_id)
            }
            Err(e) => {
                e.log();
                // A batch refused whole (every event invalid) still counts its rejections.
                let rejected = if e.code == ErrorCode::ValidationFailed { e.details.len() } else { 0 };
                let tenant = tenant.unwrap_or_default();
                if !tenant.is_empty() && rejected > 0 {
                    analytics_shared::emf::ingested(&tenant, 0, rejected, 0);
                }
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                let status = e.status().as_u16();
                tracing::info!(route = ROUTE, method = %method, status, latency_ms, tenant, rejected, code = e.code.as_str(), "request");
                e.into_response(&request_id)
            }
        };
        analytics_shared::emf::request(ROUTE, resp.status().as_u16(), started.elapsed());
        resp.map(Body::from)
    }

    async fn serve(&self, req: &Request, tenant: &mut Option<String>) -> Result<(Caller, pipeline::IngestOutcome), ApiError> {
        let received_at = analytics_shared::time::receive_time();
        if !req.uri().path().trim_end_matches('/').ends_with(ROUTE) {
            return Err(ApiError::not_found(format!("no route {}; events are posted to {ROUTE}", req.uri().path())));
        }
        if req.method() != http::Method::POST {
            return Err(ApiError::method_not_allowed("POST"));
        }
        let caller = analytics_shared::http::caller(req, &self.cfg.auth)?;
        *tenant = Some(caller.tenant.to_string());
        caller.may_ingest()?;
        let dry_run = dry_run(req)?;
        if let Some(ct) = req.headers().get(http::header::CONTENT_TYPE)
            && !is_json_media_type(ct.to_str().unwrap_or(""))
        {
            return Err(ApiError::bad_request("the Content-Type must be application/json"));
        }
        let body: &[u8] = match req.body() {
            Body::Empty => b"",
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
            _ => b"",
        };
        let outcome = pipeline::ingest(&self.store, &caller.tenant, body, dry_run, received_at, &self.cfg.retention).await?;
        Ok((caller, outcome))
    }
}

/// `?dry_run=true`: the only query parameter of this route, read by the
/// same rules as every other route's (unknown or repeated names are a 400).
fn dry_run(req: &Request) -> Result<bool, ApiError> {
    let pairs = analytics_shared::http::query_pairs(req);
    let params = Params::new(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &["dry_run"])?;
    params.choice("dry_run", &[("true", true), ("1", true), ("false", false), ("0", false)], false)
}

/// `application/json`, any case, with or without parameters
/// (`; charset=utf-8`); `application/jsonx` is another type.
pub fn is_json_media_type(value: &str) -> bool {
    value.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_media_type_is_matched_whole() {
        for ok in ["application/json", "Application/JSON", "application/json; charset=utf-8", " application/json ;x=1"] {
            assert!(super::is_json_media_type(ok), "{ok}");
        }
        for bad in ["application/jsonx", "application/json-patch+json", "text/json", "", "application/"] {
            assert!(!super::is_json_media_type(bad), "{bad}");
        }
    }
}

//! The Lambda HTTP glue every HTTP function shares: the request id, the
//! caller, and the query-string pairs of an API Gateway request.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::{Caller, auth};

/// The Lambda request id; the API Gateway one when there is no Lambda
/// context (a request built by hand), a fresh one as the last resort.
pub fn request_id(req: &Request) -> String {
    let lambda = req.lambda_context_ref().map(|c| c.request_id.clone());
    let gateway = || match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    lambda.filter(|id| !id.is_empty()).or_else(gateway).unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The caller: the JWT authorizer's claims when API Gateway verified the
/// token, else the local verifier.
pub fn caller(req: &Request, cfg: &AuthConfig) -> Result<Caller, ApiError> {
    let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims),
        _ => None,
    };
    auth::authenticate(cfg, authorization, claims)
}

/// Every query-string pair, repeated names included.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.query_string_parameters_ref().map(|q| q.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()).unwrap_or_default()
}

/// The path below a base (`/api/v1/analytics`), whatever stage prefix API
/// Gateway put in front; `None` when the base is not in the path.
pub fn path_below<'a>(req_path: &'a str, base: &str) -> Option<&'a str> {
    let at = req_path.find(base)?;
    Some(req_path[at + base.len()..].trim_end_matches('/'))
}

/// A lambda_http response from the contract's response.
pub fn into_lambda(resp: Response<String>) -> Response<Body> {
    resp.map(Body::from)
}

/// Serves the function's HTTP invocations with `handle`, one at a time,
/// printing each invocation's metrics ([`crate::emf`]) after its answer.
pub async fn serve<F, Fut>(handle: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Response<Body>> + Send,
{
    lambda_http::run(lambda_http::service_fn(|req: Request| {
        let request_id = request_id(&req);
        let answer = handle(req);
        async move {
            let resp = answer.await;
            crate::emf::flush(&request_id);
            Ok::<_, lambda_http::Error>(resp)
        }
    }))
    .await
}

//! How a batch reaches the backend: one POST with a bearer token.
//!
//! [`Transport`] is the seam: [`HttpTransport`] is the real one (hyper-util's
//! pooled client over rustls); tests and benchmarks can put an in-process
//! sink in its place.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any error a token callback returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The backend's answer to one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After` in seconds, when the backend sent one.
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// A POST that got no answer: worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the request failed before an answer: {0}")]
    Network(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the token callback failed: {0}")]
    Token(String),
}

/// Sends one batch body with a bearer token.
pub trait Transport: Send + Sync + 'static {
    fn post(&self, bearer: String, body: Bytes) -> BoxFuture<'_, Result<Reply, SendError>>;
}

/// Where the bearer token comes from: called before every send, so a
/// rotated token is picked up without restarting anything.
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self) -> BoxFuture<'static, Result<String, BoxError>>;
}

impl<F, Fut, E> TokenSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn token(&self) -> BoxFuture<'static, Result<String, BoxError>> {
        let fut = self();
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// A token that never changes (tests, short-lived jobs).
#[derive(Clone)]
pub struct StaticToken(pub Arc<str>);

impl StaticToken {
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }
}

impl TokenSource for StaticToken {
    fn token(&self) -> BoxFuture<'static, Result<String, BoxError>> {
        let t = self.0.to_string();
        Box::pin(async move { Ok(t) })
    }
}

/// The route every batch is posted to, below the configured base URL.
pub const EVENTS_PATH: &str = "/api/v1/analytics/events";

type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The real transport: a pooled HTTP/1.1 and HTTP/2 client, TLS by rustls
/// with the aws-lc-rs provider and the system's roots (the stack the AWS
/// SDK uses too), plain HTTP for local backends.
#[derive(Clone)]
pub struct HttpTransport {
    client: Client<HttpsConnector, Full<Bytes>>,
    uri: http::Uri,
    timeout: Duration,
}

/// The transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("ANALYTICS_API_URL {0:?} is not a URL: {1}")]
    BadUrl(String, String),
    #[error("the system's TLS root certificates could not be loaded: {0}")]
    Roots(String),
}

impl HttpTransport {
    /// A client of `{base_url}/api/v1/analytics/events`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, TransportError> {
        let full = format!("{}{EVENTS_PATH}", base_url.trim_end_matches('/'));
        let uri: http::Uri = full.parse().map_err(|e: http::uri::InvalidUri| TransportError::BadUrl(base_url.into(), e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(TransportError::BadUrl(base_url.into(), "expected http:// or https:// and a host".into()));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
            Ok(b) => b,
            // A plain-HTTP backend (local development) needs no roots.
            Err(_) if uri.scheme_str() == Some("http") => {
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| TransportError::Roots(e.to_string()))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
            }
            Err(e) => return Err(TransportError::Roots(e.to_string())),
        };
        let connector = builder.https_or_http().enable_http1().enable_http2().build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(Self { client, uri, timeout })
    }
}

impl Transport for HttpTransport {
    fn post(&self, bearer: String, body: Bytes) -> BoxFuture<'_, Result<Reply, SendError>> {
        Box::pin(async move {
            let req = http::Request::post(self.uri.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
                .body(Full::new(body))
                .map_err(|e| SendError::Network(e.to_string()))?;
            let exchange = async {
                let resp = self.client.request(req).await.map_err(|e| SendError::Network(error_chain(&e)))?;
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = resp.into_body().collect().await.map_err(|e| SendError::Network(e.to_string()))?.to_bytes();
                Ok(Reply { status, retry_after, body })
            };
            tokio::time::timeout(self.timeout, exchange).await.map_err(|_| SendError::Timeout(self.timeout))?
        })
    }
}

/// hyper-util's error says "client error (Connect)"; its sources say why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_must_be_http_or_https() {
        assert!(HttpTransport::new("ftp://x", Duration::from_secs(1)).is_err());
        assert!(HttpTransport::new("not a url", Duration::from_secs(1)).is_err());
        let t = HttpTransport::new("https://api.example.com/", Duration::from_secs(1)).unwrap();
        assert_eq!(t.uri.to_string(), "https://api.example.com/api/v1/analytics/events");
    }
}

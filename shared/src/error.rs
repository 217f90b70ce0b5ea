//! The one error type every route answers with, and its JSON shape:
//! `{"error": {"code": "...", "message": "...", "details": [...]}}`.
//! Status, code and message are decided here and nowhere else.

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

/// The contract's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    Unavailable,
    /// A bug: logged with its cause; never a reason to resend.
    #[serde(rename = "internal_error")]
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::ValidationFailed => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal_error",
        }
    }
}

/// A request that cannot be served, as the caller will see it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<Value>,
    /// Seconds, sent as `Retry-After` with `unavailable`.
    pub retry_after: Option<u32>,
    /// `Allow` header value, sent with `method_not_allowed`.
    pub allow: Option<&'static str>,
    /// What failed on this side, for the log only: never sent.
    pub cause: Option<String>,
}

/// Seconds a caller is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new(), retry_after: None, allow: None, cause: None }
    }

    /// The same error, with what failed on this side for the log.
    pub fn with_cause(self, cause: impl std::fmt::Display) -> Self {
        Self { cause: Some(cause.to_string()), ..self }
    }

    /// Logs the error where it is answered, inside the request's span: a
    /// 5xx at error level with its cause (what an alarm counts), a refusal
    /// of the caller's request at info.
    pub fn log(&self) {
        let cause = self.cause.as_deref().unwrap_or("");
        if self.code == ErrorCode::Unavailable {
            tracing::error!(code = self.code.as_str(), detail = %self.message, cause, "storage unavailable");
        } else if self.status().is_server_error() {
            tracing::error!(code = self.code.as_str(), detail = %self.message, cause, "request failed");
        } else {
            tracing::info!(code = self.code.as_str(), detail = %self.message, "request refused");
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn validation(message: impl Into<String>, details: Vec<Value>) -> Self {
        Self { details, ..Self::new(ErrorCode::ValidationFailed, message) }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self { allow: Some(allow), ..Self::new(ErrorCode::MethodNotAllowed, format!("this route only accepts {allow}")) }
    }
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }
    /// Storage or the event bus still failing after bounded retries: the
    /// caller should resend later, which is always safe.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { retry_after: Some(RETRY_AFTER_SECONDS), ..Self::new(ErrorCode::Unavailable, message) }
    }

    /// A bug on this side (an item that does not map, a body that does
    /// not serialize): the caller learns only that it was logged, and gets
    /// no `Retry-After`, since resending would fail the same way.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "the request failed on our side; the cause is logged under this request's x-request-id")
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The JSON body of the contract.
    pub fn body(&self) -> Value {
        let mut error = serde_json::json!({"code": self.code.as_str(), "message": self.message});
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        serde_json::json!({ "error": error })
    }

    /// The whole HTTP response, `x-request-id` included.
    pub fn into_response(self, request_id: &str) -> Response<String> {
        let mut resp = json_response(self.status(), &self.body(), request_id);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

/// A JSON response with the headers every route sends.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T, request_id: &str) -> Response<String> {
    json_text_response(status, serde_json::to_string(body).unwrap_or_else(|_| String::from("{}")), request_id)
}

/// A response whose JSON body is already serialized (a cached answer).
pub fn json_text_response(status: StatusCode, text: String, request_id: &str) -> Response<String> {
    let mut resp = Response::new(text);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        let cases = [
            (ErrorCode::BadRequest, 400, "bad_request"),
            (ErrorCode::ValidationFailed, 400, "validation_failed"),
            (ErrorCode::Unauthorized, 401, "unauthorized"),
            (ErrorCode::Forbidden, 403, "forbidden"),
            (ErrorCode::NotFound, 404, "not_found"),
            (ErrorCode::MethodNotAllowed, 405, "method_not_allowed"),
            (ErrorCode::PayloadTooLarge, 413, "payload_too_large"),
            (ErrorCode::Unavailable, 503, "unavailable"),
            (ErrorCode::Internal, 500, "internal_error"),
        ];
        for (code, status, name) in cases {
            assert_eq!(code.status().as_u16(), status);
            assert_eq!(code.as_str(), name);
            assert_eq!(serde_json::to_value(code).unwrap(), name);
        }
    }

    #[test]
    fn unavailable_carries_retry_after_and_request_id() {
        let resp = ApiError::unavailable("storage is down").into_response("req-1");
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "5");
        assert_eq!(resp.headers()["x-request-id"], "req-1");
        let body: Value = serde_json::from_str(resp.body()).unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(body["error"]["message"], "storage is down");
        assert!(body["error"].get("details").is_none());
    }

    #[test]
    fn details_are_listed() {
        let e = ApiError::validation("bad", vec![serde_json::json!({"path": "events[0].kind"})]);
        assert_eq!(e.body()["error"]["details"][0]["path"], "events[0].kind");
        let resp = ApiError::method_not_allowed("POST").into_response("r");
        assert_eq!(resp.headers()["allow"], "POST");
    }
}

//! Who is calling: the [`Caller`] built from JWT claims.
//!
//! In AWS the HTTP API's JWT authorizer has verified the token and hands the
//! claims over as strings (array claims may arrive as `"[a b]"`). Locally
//! there is no authorizer: when `ANALYTICS_LOCAL_JWT_SECRET` is set the
//! function verifies HS256 tokens itself. Both paths end in the same
//! [`Caller::from_claims`], so roles, scopes and tenants follow one rule.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::tenant::TenantId;

/// The scope that lets a backend post events without being an admin.
pub const INGEST_SCOPE: &str = "analytics/ingest";

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub user_id: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }
    /// Admins and managers see every user's events inside their tenant.
    pub fn sees_all_users(&self) -> bool {
        self.is_admin() || self.has_role("manager")
    }
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
    /// Posting events needs the ingest scope or the admin role.
    pub fn may_ingest(&self) -> Result<(), ApiError> {
        if self.has_scope(INGEST_SCOPE) || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "posting events needs the `{INGEST_SCOPE}` scope or the admin role; ask for a token that has one"
            )))
        }
    }

    /// Builds the caller from verified claims.
    pub fn from_claims(claims: &Claims, cfg: &AuthConfig) -> Result<Self, ApiError> {
        let user_id = claims
            .string("sub")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the token has no `sub` claim; it must name the user"))?;
        let tenant = match claims.0.get(&cfg.tenant_claim) {
            None if cfg.require_tenant => {
                return Err(ApiError::forbidden(format!(
                    "the token has no `{}` claim; this deployment requires every token to name its tenant",
                    cfg.tenant_claim
                )));
            }
            None => cfg.default_tenant.clone(),
            Some(Value::String(t)) if TenantId::parse(t).is_some() => TenantId::parse(t).expect("checked"),
            // Present but not a tenant id: never the default tenant, whose
            // data the caller would then read and write.
            Some(other) => {
                let shown: String = match other {
                    Value::String(t) => format!("`{t}`"),
                    v => format!("of JSON type {}", json_type(v)),
                };
                return Err(ApiError::forbidden(format!(
                    "the token's `{}` claim {} is not a tenant id (a string of 1 to 64 characters of A-Z a-z 0-9 . _ -)",
                    cfg.tenant_claim,
                    shown.chars().take(90).collect::<String>()
                )));
            }
        };
        let roles = claims.list(&cfg.roles_claim);
        let scopes = claims.string("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
        Ok(Caller { tenant, user_id, roles, scopes })
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Verified claims, from either source.
#[derive(Debug, Clone, Default)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// Claims as API Gateway's JWT authorizer passes them: every value a string.
    pub fn from_authorizer(claims: &HashMap<String, String>) -> Self {
        Claims(claims.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
    }

    pub fn from_json(map: Map<String, Value>) -> Self {
        Claims(map)
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A list claim in any of the shapes it arrives in: a JSON array, the
    /// authorizer's `"[a b]"`, a JSON array in a string, or `"a,b"`.
    fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Some(Value::String(s)) => parse_list_claim(s),
            _ => Vec::new(),
        }
    }
}

/// Parses `"[a b]"`, `"[\"a\",\"b\"]"`, `"a,b"` and `"a"`.
pub fn parse_list_claim(raw: &str) -> Vec<String> {
    let s = raw.trim();
    if s.starts_with('[')
        && let Ok(items) = serde_json::from_str::<Vec<String>>(s)
    {
        return items;
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|p| p.trim_matches('"'))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Returns the token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(header: Option<&str>) -> Result<&str, ApiError> {
    let h = header.ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
    let (scheme, token) = h.trim().split_once(' ').unwrap_or((h, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized("the Authorization header must be `Bearer <token>`"));
    }
    Ok(token.trim())
}

/// Verifies a local HS256 token: signature, `exp`, `nbf` when present and
/// `iss`. Any other algorithm (`none` included) is refused.
pub fn verify_local_token(token: &str, secret: &str, issuer: &str) -> Result<Claims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.leeway = 5;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "the token has expired; make a new one".to_string(),
                K::ImmatureSignature => "the token is not valid yet (its `nbf` is in the future)".to_string(),
                K::InvalidSignature => "the token's signature does not verify".to_string(),
                K::InvalidIssuer => format!("the token's issuer is not `{issuer}`"),
                K::InvalidAlgorithm | K::InvalidAlgorithmName => "the token must be signed with HS256".to_string(),
                K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
                _ => format!("the token is not a valid JWT ({e})"),
            };
            ApiError::unauthorized(why)
        })?;
    Ok(Claims::from_json(data.claims))
}

/// Resolves the caller of a request. Claims from API Gateway's JWT
/// authorizer win: the gateway has verified the token. Without them the
/// local verifier checks the bearer token when a secret is configured
/// (`cargo lambda watch`); with neither, nobody is let in.
pub fn authenticate(
    cfg: &AuthConfig,
    authorization: Option<&str>,
    authorizer_claims: Option<&HashMap<String, String>>,
) -> Result<Caller, ApiError> {
    let claims = match (authorizer_claims.filter(|c| !c.is_empty()), &cfg.local_jwt_secret) {
        (Some(claims), _) => Claims::from_authorizer(claims),
        (None, Some(secret)) => verify_local_token(bearer_token(authorization)?, secret.expose(), &cfg.local_jwt_issuer)?,
        (None, None) => {
            bearer_token(authorization)?;
            return Err(ApiError::unauthorized("the request carries no verified identity (no JWT authorizer claims)"));
        }
    };
    Caller::from_claims(&claims, cfg)
}

/// What a local token says; used by the token helper and the tests.
#[derive(Debug, Clone)]
pub struct LocalToken<'a> {
    pub sub: &'a str,
    pub tenant: Option<&'a str>,
    pub roles: &'a [&'a str],
    pub scopes: &'a [&'a str],
    pub ttl_seconds: i64,
}

/// Signs a local HS256 token the way the local verifier expects it.
pub fn mint_local_token(t: &LocalToken<'_>, cfg: &AuthConfig, secret: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "sub": t.sub,
        "iss": cfg.local_jwt_issuer,
        "iat": now,
        "exp": now + t.ttl_seconds,
    });
    if !t.roles.is_empty() {
        claims[cfg.roles_claim.as_str()] = serde_json::json!(t.roles);
    }
    if !t.scopes.is_empty() {
        claims["scope"] = Value::String(t.scopes.join(" "));
    }
    if let Some(tenant) = t.tenant {
        claims[cfg.tenant_claim.as_str()] = Value::String(tenant.to_owned());
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing with an in-memory key cannot fail")
}

#[cfg(test)]
mod tests;

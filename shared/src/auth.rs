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
        (None, Some(secret)) => verify_local_token(bearer_token(authorization)?, secret, &cfg.local_jwt_issuer)?,
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
mod tests {
    use super::*;

    fn cfg() -> AuthConfig {
        AuthConfig { local_jwt_secret: Some("s3cret".into()), ..AuthConfig::default() }
    }

    fn token(t: LocalToken<'_>) -> String {
        mint_local_token(&t, &cfg(), "s3cret")
    }

    const BASE: LocalToken<'static> = LocalToken { sub: "u-1", tenant: Some("acme"), roles: &["admin"], scopes: &[], ttl_seconds: 600 };

    #[test]
    fn local_token_round_trips_into_a_caller() {
        let t = token(LocalToken { scopes: &["analytics/ingest", "other"], ..BASE });
        let c = authenticate(&cfg(), Some(&format!("Bearer {t}")), None).unwrap();
        assert_eq!(c.user_id, "u-1");
        assert_eq!(c.tenant, "acme");
        assert!(c.is_admin() && c.sees_all_users());
        assert!(c.has_scope(INGEST_SCOPE));
    }

    #[test]
    fn tokens_without_tenant_get_the_default() {
        let t = token(LocalToken { tenant: None, roles: &[], ..BASE });
        let c = authenticate(&cfg(), Some(&format!("bearer {t}")), None).unwrap();
        assert_eq!(c.tenant, "default");
        assert!(!c.sees_all_users());
        assert!(c.may_ingest().is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = chrono::Utc::now().timestamp() + 600;
        let payload = b.encode(format!(r#"{{"sub":"u-1","iss":"analytics-local","exp":{exp},"cognito:groups":["admin"]}}"#).as_bytes());
        let forged = format!("{header}.{payload}.");
        let e = authenticate(&cfg(), Some(&format!("Bearer {forged}")), None).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::Unauthorized);
    }

    #[test]
    fn bad_signature_expired_and_wrong_issuer_are_refused() {
        let other = mint_local_token(&BASE, &cfg(), "another-secret");
        let e = authenticate(&cfg(), Some(&format!("Bearer {other}")), None).unwrap_err();
        assert!(e.message.contains("signature"), "{}", e.message);

        let expired = token(LocalToken { ttl_seconds: -3600, ..BASE });
        let e = authenticate(&cfg(), Some(&format!("Bearer {expired}")), None).unwrap_err();
        assert!(e.message.contains("expired"), "{}", e.message);

        let foreign = mint_local_token(&BASE, &AuthConfig { local_jwt_issuer: "elsewhere".into(), ..cfg() }, "s3cret");
        let e = authenticate(&cfg(), Some(&format!("Bearer {foreign}")), None).unwrap_err();
        assert!(e.message.contains("issuer"), "{}", e.message);
    }

    #[test]
    fn missing_or_malformed_header_is_401() {
        for h in [None, Some("Basic abc"), Some("Bearer "), Some("Bearer not.a.jwt")] {
            let e = authenticate(&cfg(), h, None).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::Unauthorized, "{h:?}");
        }
    }

    #[test]
    fn authorizer_claims_in_every_list_shape() {
        let cfg = AuthConfig::default();
        for groups in ["[admin manager]", "[\"admin\",\"manager\"]", "admin,manager", "admin manager"] {
            let claims: HashMap<String, String> = [
                ("sub".to_string(), "u-9".to_string()),
                ("cognito:groups".to_string(), groups.to_string()),
                ("scope".to_string(), "openid analytics/ingest".to_string()),
                ("custom:tenant".to_string(), "t1".to_string()),
            ]
            .into();
            let c = authenticate(&cfg, None, Some(&claims)).unwrap();
            assert_eq!(c.roles, vec!["admin", "manager"], "{groups}");
            assert_eq!(c.tenant, "t1");
            assert!(c.has_scope(INGEST_SCOPE));
        }
    }

    /// A tenant claim that is there but is not a tenant id is refused,
    /// whatever its JSON type: it never falls back to the default tenant.
    #[test]
    fn a_tenant_claim_of_the_wrong_type_is_forbidden() {
        let sign = |tenant: Value| {
            let exp = chrono::Utc::now().timestamp() + 600;
            let claims = serde_json::json!({"sub": "u-1", "iss": "analytics-local", "exp": exp, "custom:tenant": tenant, "cognito:groups": ["admin"]});
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"s3cret")).unwrap()
        };
        for bad in [
            serde_json::json!(""),
            serde_json::json!(["acme"]),
            serde_json::json!(true),
            serde_json::json!({"id": "acme"}),
            serde_json::json!(42),
            serde_json::json!(null),
            serde_json::json!("a#b"),
            serde_json::json!("x".repeat(65)),
        ] {
            let e = authenticate(&cfg(), Some(&format!("Bearer {}", sign(bad.clone()))), None).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::Forbidden, "{bad}");
            assert!(e.message.contains("custom:tenant"), "{}", e.message);
        }
        assert_eq!(authenticate(&cfg(), Some(&format!("Bearer {}", sign(serde_json::json!("acme")))), None).unwrap().tenant, "acme");
        // The authorizer passes arrays as "[acme]": not a tenant id either.
        let claims: HashMap<String, String> = [("sub".into(), "u".into()), ("custom:tenant".into(), "[acme]".into())].into();
        assert_eq!(authenticate(&AuthConfig::default(), None, Some(&claims)).unwrap_err().code, crate::error::ErrorCode::Forbidden);
    }

    #[test]
    fn require_tenant_refuses_tokens_without_one() {
        let strict = AuthConfig { require_tenant: true, ..cfg() };
        let t = token(LocalToken { tenant: None, ..BASE });
        let e = authenticate(&strict, Some(&format!("Bearer {t}")), None).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::Forbidden);
        assert!(e.message.contains("requires"), "{}", e.message);
        let t = token(BASE);
        assert_eq!(authenticate(&strict, Some(&format!("Bearer {t}")), None).unwrap().tenant, "acme");
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"sub": "u-1", "iss": "analytics-local", "exp": now + 600, "nbf": now + 300});
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"s3cret")).unwrap();
        let e = authenticate(&cfg(), Some(&format!("Bearer {t}")), None).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::Unauthorized);
        assert!(e.message.contains("nbf"), "{}", e.message);
        let claims = serde_json::json!({"sub": "u-1", "iss": "analytics-local", "exp": now + 600, "nbf": now - 10});
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"s3cret")).unwrap();
        assert!(authenticate(&cfg(), Some(&format!("Bearer {t}")), None).is_ok(), "a past nbf is fine");
    }

    #[test]
    fn authorizer_claims_win_over_the_local_verifier() {
        let claims: HashMap<String, String> = [("sub".into(), "gw-user".into())].into();
        let c = authenticate(&cfg(), Some("Bearer not-checked-here"), Some(&claims)).unwrap();
        assert_eq!(c.user_id, "gw-user");
    }

    #[test]
    fn no_identity_without_secret_or_authorizer() {
        let e = authenticate(&AuthConfig::default(), Some("Bearer x.y.z"), None).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::Unauthorized);
    }

    #[test]
    fn configurable_claim_names_and_bad_tenants() {
        let cfg = AuthConfig { roles_claim: "roles".into(), tenant_claim: "org".into(), ..AuthConfig::default() };
        let claims: HashMap<String, String> =
            [("sub".into(), "u".into()), ("roles".into(), "[manager]".into()), ("org".into(), "o-1".into())].into();
        let c = authenticate(&cfg, None, Some(&claims)).unwrap();
        assert!(c.sees_all_users() && !c.is_admin());
        assert_eq!(c.tenant, "o-1");
        let claims: HashMap<String, String> = [("sub".into(), "u".into()), ("org".into(), "a#b".into())].into();
        assert_eq!(authenticate(&cfg, None, Some(&claims)).unwrap_err().code, crate::error::ErrorCode::Forbidden);
        let claims: HashMap<String, String> = [("org".into(), "a".into())].into();
        assert_eq!(authenticate(&cfg, None, Some(&claims)).unwrap_err().code, crate::error::ErrorCode::Unauthorized);
    }
}

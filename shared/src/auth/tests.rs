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
        let claims =
            serde_json::json!({"sub": "u-1", "iss": "analytics-local", "exp": exp, "custom:tenant": tenant, "cognito:groups": ["admin"]});
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

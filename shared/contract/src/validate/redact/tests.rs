use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

#[test]
fn the_contracts_examples_are_kept_and_redacted_as_it_says() {
    for k in ["prompt_tokens", "total_tokens", "keyword", "keys", "monkey", "author", "authority", "tokens", "passwords_changed"] {
        assert!(!is_sensitive_key(k), "{k} is kept");
    }
    // The README's table, beside the contract's own.
    assert!(!is_sensitive_key("sessions_count"));
    for k in ["set-cookie", "otp_code", "token_usage", "promptTokenCount", "tokenCount"] {
        assert!(is_sensitive_key(k), "{k} is redacted: `token` is a whole word of it");
    }
    for k in ["refresh_token", "X-Api-Key", "sessionId", "oauth_token", "key", "api_key", "x-api-key", "privateKey"] {
        assert!(is_sensitive_key(k), "{k} is redacted");
    }
}

#[test]
fn the_longest_sensitive_word_is_the_bound_the_scan_uses() {
    assert_eq!(SENSITIVE_WORDS.iter().map(|w| w.len()).max(), Some(LONGEST_WORD));
}

#[test]
fn keys_split_into_words_at_separators_and_case_changes() {
    fn words(k: &str) -> Vec<&str> {
        key_words(k).collect()
    }
    assert_eq!(words("accessToken"), ["access", "Token"]);
    assert_eq!(words("X-Api-Key"), ["X", "Api", "Key"]);
    assert_eq!(words("user.session id"), ["user", "session", "id"]);
    assert_eq!(words("__a--b..c"), ["a", "b", "c"]);
    assert_eq!(words("APIKey"), ["API", "Key"], "an acronym ends before the capital of the next word");
    assert_eq!(words("HTTPS"), ["HTTPS"]);
    assert_eq!(words("XMLHttpRequest"), ["XML", "Http", "Request"]);
    assert_eq!(words("oauth2Token"), ["oauth2", "Token"]);
    assert_eq!(words("ünicodeToken"), ["ünicode", "Token"]);
    assert!(words("").is_empty());
    for k in [
        "password",
        "PASSWORD",
        "user_password",
        "new-Passwd",
        "pwd",
        "clientSecret",
        "client.secret",
        "id token",
        "Authorization",
        "auth",
        "X-Auth",
        "set-cookie",
        "Cookie",
        "jwt",
        "bearer",
        "otp_code",
        "APIKey",
        "apikey",
        "aws.credentials",
        "credential",
        "x-signature",
        "SessionID",
        "sessionid",
        "PHPSESSID_session",
        "private_key_pem",
    ] {
        assert!(is_sensitive_key(k), "{k} is sensitive");
    }
    for k in ["page", "source", "email", "k", "monkey_business", "keynote", "tokenizer", "authored_by", "sessions_count", "cookies", "pwdx"]
    {
        assert!(!is_sensitive_key(k), "{k} is kept");
    }
}

#[test]
fn secret_shaped_values_are_recognised_under_any_key() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln";
    for v in [
        "Bearer abc.def",
        "bearer x",
        "BEARER  x",
        "  Bearer x",
        jwt,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.",
        "eyJhbGciOiJIUzI1NiJ9==.e30.sig",
    ] {
        assert!(is_secret_value(v), "{v:?} is a secret");
    }
    for v in [
        "Bearer",
        "bearers of news",
        "a.b.c",
        "1.2.3",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln.more",
        "WyJhIl0.e30.sig",
        "gemini-1.5-pro",
        "",
        "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
    ] {
        assert!(!is_secret_value(v), "{v:?} is kept");
    }
}

#[test]
fn metadata_is_redacted_at_any_depth_in_objects_and_arrays() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln";
    let Value::Object(mut m) = json!({
        "usage": {"prompt_tokens": 120, "total_tokens": 200, "tokenCount": 3},
        "keyword": "shoes",
        "author": "ana",
        "refreshToken": "r1",
        "nested": {"deeper": {"x-api-key": "k1", "list": [{"oauth_token": "t"}, "Bearer zzz", jwt, "plain"]}},
        "auth": {"anything": [1, 2]},
        "note": "bearer abc"
    }) else {
        unreachable!()
    };
    sanitize_json_map(&mut m);
    assert_eq!(m["usage"], json!({"prompt_tokens": 120, "total_tokens": 200, "tokenCount": REDACTED}));
    assert_eq!((m["keyword"].as_str(), m["author"].as_str()), (Some("shoes"), Some("ana")));
    assert_eq!(m["refreshToken"], REDACTED);
    assert_eq!(m["nested"]["deeper"]["x-api-key"], REDACTED);
    assert_eq!(m["nested"]["deeper"]["list"], json!([{"oauth_token": REDACTED}, REDACTED, REDACTED, "plain"]));
    assert_eq!(m["auth"], REDACTED, "a whole object under a sensitive key goes");
    assert_eq!(m["note"], REDACTED);
}

#[test]
fn query_params_are_redacted_by_key_and_by_value() {
    let mut q: BTreeMap<String, String> = [("page", "2"), ("Signature", "s"), ("next", "Bearer x"), ("keys", "a,b"), ("session_id", "")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    sanitize_query_params(&mut q);
    assert_eq!(q["page"], "2");
    assert_eq!(q["keys"], "a,b");
    for k in ["Signature", "next", "session_id"] {
        assert_eq!(q[k], REDACTED, "{k}");
    }
}

#[test]
fn an_endpoint_is_cut_at_its_query_string_and_fragment() {
    assert_eq!(split_endpoint("/reset?token=abc#top"), ("/reset", Some("token=abc")));
    assert_eq!(split_endpoint("/a#frag?x=1"), ("/a", None));
    assert_eq!(split_endpoint("/a?"), ("/a", Some("")));
    assert_eq!(split_endpoint("/plain"), ("/plain", None));
    let pairs = query_pairs("a=1&b&c=x+y%21&a=2&=lost&&d=%ZZ&%E2%9C%93=ok");
    let want: BTreeMap<String, String> =
        [("a", "2"), ("b", ""), ("c", "x y!"), ("d", "%ZZ"), ("\u{2713}", "ok")].map(|(k, v)| (k.into(), v.into())).into();
    assert_eq!(pairs, want, "decoded, last value wins, nameless pairs left out");

    let mut endpoint = "/reset?token=abc&page=3&q=1".to_owned();
    let mut params = Some(BTreeMap::from([("q".to_owned(), "explicit".to_owned())]));
    assert!(move_query_into_params(&mut endpoint, &mut params));
    assert_eq!(endpoint, "/reset");
    let params = params.unwrap();
    assert_eq!((params["token"].as_str(), params["page"].as_str(), params["q"].as_str()), ("abc", "3", "explicit"));
    assert_eq!(external_endpoint("https://user:pa@ss@brd.superproxy.io:22225/x?key=1#f"), "https://brd.superproxy.io:22225/x");
    assert_eq!(external_endpoint("https://api.example/v1/a@b"), "https://api.example/v1/a@b", "an @ in the path stays");
    assert_eq!(external_endpoint("/v1/generate?key=k"), "/v1/generate");
    for k in ["user[password]", "auth:token", "headers/Authorization", "data[api_key]"] {
        assert!(is_sensitive_key(k), "{k}");
    }
    let (mut plain, mut none) = ("/x".to_owned(), None);
    assert!(!move_query_into_params(&mut plain, &mut none));
    assert_eq!((plain.as_str(), none), ("/x", None));
}

/// A key built the way real code spells one: words in snake, kebab,
/// dotted, spaced or camel case, one of them sensitive.
fn sensitive_key() -> impl Strategy<Value = String> {
    let word = prop::sample::select(SENSITIVE_WORDS.to_vec());
    let other = "[a-z]{1,6}".prop_filter("not itself sensitive", |w| !is_sensitive_key(w));
    (prop::collection::vec(other.clone(), 0..3), word, prop::collection::vec(other, 0..2), 0..6usize, any::<bool>()).prop_map(
        |(before, word, after, style, shout)| {
            // Upper case in camelCase would run into the next word.
            let word = if shout && style < 4 { word.to_uppercase() } else { word.to_owned() };
            let words: Vec<String> = before.into_iter().chain([word]).chain(after).collect();
            match style {
                0 => words.join("_"),
                1 => words.join("-"),
                2 => words.join("."),
                3 => words.join(" "),
                _ => words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| if i == 0 { w.clone() } else { w[..1].to_uppercase() + &w[1..] })
                    .collect::<String>(),
            }
        },
    )
}

/// Wraps `inner` in up to three levels of objects and arrays, in an object.
fn nest(inner: Value, path: Vec<(bool, String)>) -> Value {
    let v = path.into_iter().fold(inner, |v, (array, key)| if array { json!(["x", v]) } else { json!({ key: v }) });
    json!({ "meta": v })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A key is sensitive exactly when one of the words `key_words` gives
    /// equals a sensitive word in any ASCII case: the allocation-free scan
    /// decides as the word list reads.
    #[test]
    fn a_key_is_sensitive_when_one_of_its_words_is(
        key in "([a-zA-Z0-9]{0,4}|[_. :/-]|token|Token|TOKEN|APIKey|KEY|Key|key|authorization|credentialS|ünï|İ|ß|\\[)*",
    ) {
        let by_words = key_words(&key).any(|w| SENSITIVE_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s)));
        prop_assert_eq!(is_sensitive_key(&key), by_words);
    }

    /// The value under a sensitive key, however spelled and however deep,
    /// and a secret-shaped value under any key, never survive.
    #[test]
    fn no_secret_survives_sanitizing(
        key in sensitive_key(),
        secret in "[A-Za-z0-9]{12,20}",
        path in prop::collection::vec((any::<bool>(), "[a-z]{1,8}".prop_filter("kept", |k| !is_sensitive_key(k))), 0..3),
        as_value in any::<bool>(),
    ) {
        let planted = if as_value { json!({"note": format!("Bearer {secret}")}) } else { json!({ key.clone(): secret.clone() }) };
        let Value::Object(mut m) = nest(planted, path) else { unreachable!() };
        sanitize_json_map(&mut m);
        prop_assert!(!Value::Object(m).to_string().contains(&secret));

        let mut q = BTreeMap::from([(key.clone(), secret.clone()), ("x".to_owned(), format!("bearer {secret}"))]);
        sanitize_query_params(&mut q);
        prop_assert!(!q.values().any(|v| v.contains(&secret)));

        let mut endpoint = format!("/p?{}={}&y=1#{}", form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>(), secret, secret);
        let mut params = None;
        move_query_into_params(&mut endpoint, &mut params);
        let mut params = params.unwrap_or_default();
        sanitize_query_params(&mut params);
        prop_assert_eq!(endpoint.as_str(), "/p");
        prop_assert!(!params.values().any(|v| v.contains(&secret)));
    }
}

"""The backend's redaction rule (shared/src/validate/redact.rs and its
tests), example for example."""

import pytest

from analytics_client import event as ev
from analytics_client.redact import (
    REDACTED,
    external_endpoint,
    is_secret_value,
    is_sensitive_key,
    key_words,
    move_query_into_params,
    query_pairs,
    sanitize_json,
    sanitize_query_params,
    split_endpoint,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"

# The contract's lists, then redact.rs's own.
KEPT = ["prompt_tokens", "total_tokens", "keyword", "keys", "monkey", "author", "authority", "tokens", "passwords_changed",
        "sessions_count", "page", "source", "email", "k", "monkey_business", "keynote", "tokenizer", "authored_by",
        "cookies", "pwdx"]
REDACTED_KEYS = ["refresh_token", "X-Api-Key", "sessionId", "oauth_token", "key", "api_key", "x-api-key", "privateKey",
                 "set-cookie", "otp_code", "token_usage", "promptTokenCount", "tokenCount",
                 "password", "PASSWORD", "user_password", "new-Passwd", "pwd", "clientSecret", "client.secret", "id token",
                 "Authorization", "auth", "X-Auth", "Cookie", "jwt", "bearer", "APIKey", "apikey", "aws.credentials",
                 "credential", "x-signature", "SessionID", "sessionid", "PHPSESSID_session", "private_key_pem",
                 "user[password]", "auth:token", "headers/Authorization", "data[api_key]"]


@pytest.mark.parametrize("key", KEPT)
def test_kept_keys(key):
    assert not is_sensitive_key(key)


@pytest.mark.parametrize("key", REDACTED_KEYS)
def test_redacted_keys(key):
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key,words",
    [
        ("accessToken", ["access", "Token"]),
        ("X-Api-Key", ["X", "Api", "Key"]),
        ("user.session id", ["user", "session", "id"]),
        ("__a--b..c", ["a", "b", "c"]),
        ("APIKey", ["API", "Key"]),
        ("HTTPS", ["HTTPS"]),
        ("XMLHttpRequest", ["XML", "Http", "Request"]),
        ("oauth2Token", ["oauth2", "Token"]),
        ("ünicodeToken", ["ünicode", "Token"]),
        ("", []),
    ],
)
def test_keys_split_into_words(key, words):
    assert key_words(key) == words


def test_case_folding_is_ascii_only():
    assert not is_sensitive_key("\u212aey")  # KELVIN SIGN + "ey" is not "key"
    assert key_words("a\x1cb") == ["a\x1cb"], "U+001C is not whitespace to Rust"


@pytest.mark.parametrize(
    "value",
    ["Bearer abc.def", "bearer x", "BEARER  x", "  Bearer x", JWT, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.",
     "eyJhbGciOiJIUzI1NiJ9==.e30.sig"],
)
def test_secret_values(value):
    assert is_secret_value(value)


@pytest.mark.parametrize(
    "value",
    ["Bearer", "bearers of news", "a.b.c", "1.2.3", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln.more", "WyJhIl0.e30.sig", "gemini-1.5-pro", "", "\u00e9" * 7],
)
def test_values_kept(value):
    assert not is_secret_value(value)


def test_metadata_is_redacted_at_any_depth():
    m = {
        "usage": {"prompt_tokens": 120, "total_tokens": 200, "tokenCount": 3},
        "keyword": "shoes",
        "author": "ana",
        "refreshToken": "r1",
        "nested": {"deeper": {"x-api-key": "k1", "list": [{"oauth_token": "t"}, "Bearer zzz", JWT, "plain"]}},
        "auth": {"anything": [1, 2]},
        "note": "bearer abc",
    }
    out = sanitize_json(m)
    assert out["usage"] == {"prompt_tokens": 120, "total_tokens": 200, "tokenCount": REDACTED}
    assert (out["keyword"], out["author"]) == ("shoes", "ana")
    assert out["refreshToken"] == REDACTED
    assert out["nested"]["deeper"]["x-api-key"] == REDACTED
    assert out["nested"]["deeper"]["list"] == [{"oauth_token": REDACTED}, REDACTED, REDACTED, "plain"]
    assert out["auth"] == REDACTED
    assert out["note"] == REDACTED
    assert m["refreshToken"] == "r1", "the caller's dict is not changed"


def test_query_params_by_key_and_by_value():
    q = sanitize_query_params({"page": "2", "Signature": "s", "next": "Bearer x", "keys": "a,b", "session_id": ""})
    assert (q["page"], q["keys"]) == ("2", "a,b")
    assert q["Signature"] == q["next"] == q["session_id"] == REDACTED


def test_endpoints_query_strings_and_fragments():
    assert split_endpoint("/reset?token=abc#top") == ("/reset", "token=abc")
    assert split_endpoint("/a#frag?x=1") == ("/a", None)
    assert split_endpoint("/a?") == ("/a", "")
    assert split_endpoint("/plain") == ("/plain", None)
    assert query_pairs("a=1&b&c=x+y%21&a=2&=lost&&d=%ZZ&%E2%9C%93=ok") == {"a": "2", "b": "", "c": "x y!", "d": "%ZZ", "\u2713": "ok"}
    path, params, changed = move_query_into_params("/reset?token=abc&page=3&q=1", {"q": "explicit"})
    assert (path, changed) == ("/reset", True)
    assert params == {"q": "explicit", "token": "abc", "page": "3"}
    assert move_query_into_params("/x", None) == ("/x", None, False)
    assert external_endpoint("https://user:pa@ss@brd.superproxy.io:22225/x?key=1#f") == "https://brd.superproxy.io:22225/x"
    assert external_endpoint("https://api.example/v1/a@b") == "https://api.example/v1/a@b"
    assert external_endpoint("/v1/generate?key=k") == "/v1/generate"


def test_events_are_redacted_before_they_leave():
    a = ev.api_request("/reset?token=abc&page=2#top", "GET", 200, 1.5, query_params={"page": "explicit"},
                       metadata={"apiKey": "s3cr3t", "prompt_tokens": 5})
    wire = a.to_json()
    assert "abc" not in wire and "s3cr3t" not in wire and "top" not in wire
    assert a.fields["endpoint"] == "/reset"
    assert a.fields["query_params"] == {"page": "explicit", "token": REDACTED}
    assert a.metadata == {"apiKey": REDACTED, "prompt_tokens": 5}
    x = ev.external_call("brightdata", "https://user:pass@brd.superproxy.io:22225/x?key=1#f", model="m")
    assert x.to_json().count("pass") == 0
    assert x.fields["endpoint"] == "https://brd.superproxy.io:22225/x"

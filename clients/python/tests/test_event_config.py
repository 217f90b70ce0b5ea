"""Event ids, times, the wire form of each kind, and the variables."""

import json
import uuid

import pytest

from analytics_client import Config, ConfigError, event as ev
from analytics_client.config import VARIABLES

from conftest import FakeClock


def test_uuid_v7_carries_the_millisecond_and_version():
    at = 1_795_000_000_123
    ids = {ev.uuid_v7(at) for _ in range(10_000)}
    assert len(ids) == 10_000
    u = ev.uuid_v7(at)
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert u.int >> 80 == at
    assert ev.uuid_v7(at, bytes(10)).hex == f"{at:012x}" + "7000" + "8000" + "0" * 12


def test_event_id_and_occurred_at_are_fixed_at_record_time():
    clock = FakeClock(1_795_000_000.5)
    e = ev.auth("login_failed", False, error_message="bad password", user_id="u-42", ip_address="203.0.113.7", clock=clock)
    clock.advance(60)
    wire = json.loads(e.to_json())
    assert wire["occurred_at"] == "2026-11-18T11:06:40.500000Z"
    assert uuid.UUID(wire["event_id"]).int >> 80 == 1_795_000_000_500
    assert e.to_json() == e.to_json(), "the same bytes on every send"
    assert wire == {"event_id": e.event_id, "occurred_at": "2026-11-18T11:06:40.500000Z", "user_id": "u-42",
                    "ip_address": "203.0.113.7", "kind": "auth", "event_type": "login_failed", "success": False,
                    "error_message": "bad password"}


def test_each_kind_has_its_fields():
    a = json.loads(ev.activity("u-42", "generate_report", client_id="c-7", report_id="r-9",
                               report={"status": "completed", "processing_time_ms": 8421}).to_json())
    assert (a["kind"], a["action"], a["client_id"], a["report"]["status"]) == ("activity", "generate_report", "c-7", "completed")
    assert "description" not in a
    x = json.loads(ev.external_call("gemini", "/v1/generate", model="gemini-1.5-pro", input_tokens=1200, output_tokens=340,
                                    cost_estimate=0.002, response_time_ms=812.5, method="POST", status_code=200).to_json())
    assert {k: x[k] for k in ("kind", "service", "model", "input_tokens", "output_tokens", "cost_estimate", "response_time_ms")} == {
        "kind": "external_call", "service": "gemini", "model": "gemini-1.5-pro", "input_tokens": 1200,
        "output_tokens": 340, "cost_estimate": 0.002, "response_time_ms": 812.5}
    r = json.loads(ev.api_request("/items/{id}", "GET", 200, 1.5, response_size=10).to_json())
    assert (r["kind"], r["sample_rate"], "query_params" in r) == ("api_request", 1.0, False)


def test_bad_arguments_fail_at_the_call():
    with pytest.raises(ValueError):
        ev.auth("logged_in", True)
    with pytest.raises(ValueError):
        ev.activity("u", "login", ip_address="not an ip")
    with pytest.raises(TypeError):
        ev.activity("u", "login", colour="red")


def test_text_is_cut_to_the_backends_limits():
    e = ev.api_request("/x?" + "&".join(f"k{i:02}=v" for i in range(80)) + "&" + "z" * 65 + "=1", "GET", 200, 1,
                       user_agent="u" * 600, error_message="e" * 3000)
    e.to_json()
    assert len(e.user_agent) == 512 and len(e.fields["error_message"]) == 2000
    assert len(e.fields["query_params"]) == 50 and "k49" in e.fields["query_params"] and "k50" not in e.fields["query_params"]


def test_config_defaults_match_the_rust_client():
    c = Config.from_env({})
    assert c == Config()
    assert (c.enabled, c.api_url, c.flush_strategy, c.flush_interval, c.flush_count_threshold) == (True, "http://localhost:9000", "hybrid", 10.0, 100)
    assert (c.buffer_capacity, c.max_retries, c.request_timeout, c.sampling_enabled, c.sampling_rate) == (10_000, 5, 10.0, False, 0.1)
    assert (c.flush_per_invocation, c.excluded_paths, c.effective_sampling_rate()) == (False, ["/health", "/favicon.ico"], 1.0)


def test_variables_are_read():
    c = Config.from_env({
        "ANALYTICS_ENABLED": "false", "ANALYTICS_API_URL": "https://api.example.com/", "ANALYTICS_FLUSH_STRATEGY": "COUNT",
        "ANALYTICS_FLUSH_INTERVAL_SECONDS": "3", "ANALYTICS_FLUSH_COUNT_THRESHOLD": "7", "ANALYTICS_ENABLE_SAMPLING": "1",
        "ANALYTICS_SAMPLING_RATE": "0.25", "ANALYTICS_EXCLUDED_PATHS": " /internal/ , /static,,",
        "ANALYTICS_BUFFER_CAPACITY": "50", "ANALYTICS_MAX_RETRIES": "0", "ANALYTICS_TRUSTED_PROXIES": "2",
        "ANALYTICS_REQUEST_TIMEOUT_SECONDS": "4", "ANALYTICS_TOKEN": "tok",
    })
    assert not c.enabled and c.api_url == "https://api.example.com" and c.flush_strategy == "count"
    assert (c.flush_interval, c.flush_count_threshold, c.effective_sampling_rate()) == (3.0, 7, 0.25)
    assert c.excluded_paths == ["/internal", "/static"]
    assert (c.buffer_capacity, c.max_retries, c.trusted_proxies, c.request_timeout, c.token) == (50, 0, 2, 4.0, "tok")
    asked = set()
    Config.from_lookup(lambda k: asked.add(k))
    assert asked == {v.name for v in VARIABLES}


def test_lambda_flushes_per_invocation():
    assert Config.from_env({"AWS_LAMBDA_FUNCTION_NAME": "fn"}).flush_per_invocation
    assert not Config.from_env({"AWS_LAMBDA_FUNCTION_NAME": "fn", "ANALYTICS_FLUSH_PER_INVOCATION": "false"}).flush_per_invocation


@pytest.mark.parametrize("var,value", [
    ("ANALYTICS_FLUSH_STRATEGY", "sometimes"), ("ANALYTICS_SAMPLING_RATE", "0"), ("ANALYTICS_SAMPLING_RATE", "1.5"),
    ("ANALYTICS_FLUSH_COUNT_THRESHOLD", "0"), ("ANALYTICS_ENABLED", "maybe"), ("ANALYTICS_TRUSTED_PROXIES", "-1"),
    ("ANALYTICS_MAX_RETRIES", "21"), ("ANALYTICS_BUFFER_CAPACITY", "1_000"),
])
def test_bad_values_name_the_variable(var, value):
    with pytest.raises(ConfigError) as e:
        Config.from_env({var: value})
    assert (e.value.var, e.value.value) == (var, value)


def test_exclusions_match_whole_segments():
    c = Config(excluded_paths=["/health", "/static"])
    assert c.is_excluded("/health") and c.is_excluded("/health/db") and c.is_excluded("/static/app.js")
    assert not c.is_excluded("/healthy") and not c.is_excluded("/api/health")

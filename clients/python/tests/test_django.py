"""The Django middlewares and signals, through Django's test client, against
a transport that keeps the batches (tests/django_app.py is the project)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django", reason="Django is not installed (tests/stack/install.sh installs it into .local/venv)")

import django_app  # noqa: E402  (configures Django)
from django.contrib.auth import authenticate  # noqa: E402
from django.test import Client as Browser  # noqa: E402
from django.test import override_settings  # noqa: E402

from analytics_client import Client, Config, ConfigError  # noqa: E402
from analytics_client import django as integration  # noqa: E402
from analytics_client.django import Action, config_from_settings, hash_username, set_client, tracking_failures  # noqa: E402
from analytics_client.django.actions import DEFAULT_ACTIONS, match, parse_actions  # noqa: E402
from analytics_client.web import client_ip, parse_ip, route_template  # noqa: E402

from conftest import CapturingTransport, ScriptedRandom  # noqa: E402


class Recorder:
    """The process's client for one test: fake time, no thread, batches kept."""

    def __init__(self, clock, rng=None, **settings):
        self.transport = CapturingTransport()
        self.client = Client(Config(**settings), token="t0k", transport=self.transport, clock=clock, sleep=clock.sleep,
                             rng=rng or ScriptedRandom(), background=False, flush_at_exit=False)
        set_client(self.client)

    def events(self, kind=None):
        self.client.flush()
        return [e for e in self.transport.events if kind is None or e["kind"] == kind]

    def one(self, kind):
        got = self.events(kind)
        assert len(got) == 1, got
        return got[0]


@pytest.fixture
def make_rec(clock):
    yield lambda rng=None, **settings: Recorder(clock, rng, **settings)
    set_client(None)


@pytest.fixture
def rec(make_rec):
    return make_rec()


@pytest.fixture
def alice():
    return django_app.user()


def signed_in(user, **kw):
    b = Browser(**kw)
    b.force_login(user)  # fires user_logged_in: tests count kinds, not all events
    return b


# ---- api_request: what each request records ------------------------------------


def test_route_templates_are_the_endpoints(rec):
    b = Browser()
    assert b.get("/reports/7").status_code == 200
    b.get("/api/v2/items/3")
    b.get("/articles/2026/")
    assert b.get("/no/such/page").status_code == 404
    b.post("/reports", data="{}", content_type="application/json")
    got = [(e["endpoint"], e["method"], e["status_code"]) for e in rec.events("api_request")]
    assert got == [
        ("/reports/{pk}", "GET", 200),
        ("/api/v2/items/{item_id}", "GET", 200),
        ("/articles/{year}/", "GET", 200),
        ("/no/such/page", "GET", 404),  # nothing resolved: the path
        ("/reports", "POST", 201),
    ]
    for e in rec.events("api_request"):
        assert e["response_time_ms"] >= 0 and e["sample_rate"] == 1.0


@pytest.mark.parametrize("route,template", [
    ("reports/<int:pk>", "/reports/{pk}"),
    ("clients/<slug:client_id>/reports", "/clients/{client_id}/reports"),
    ("", "/"),
    ("reports/", "/reports/"),
    ("/reports/<int:pk>", "/reports/{pk}"),  # Flask's
    ("/r/<any(a,b):kind>", "/r/{kind}"),
    (r"^articles/(?P<year>[0-9]{4})/$", "/articles/{year}/"),
    (r"^api/(?P<pk>[^/]+)/x\.json$", "/api/{pk}/x.json"),
    ("^api/reports/<int:pk>", "/api/reports/{pk}"),  # a path() below a re_path()
    (r"^a/([0-9]+)/$", None),  # an unnamed group: the caller uses the path
    (r"^x/(a|b)$", None),
    (None, None),
])
def test_route_template(route, template):
    assert route_template(route) == template


def test_excluded_paths_are_not_recorded(make_rec):
    rec = make_rec()  # the defaults: /health, /favicon.ico
    b = Browser()
    for p in ("/health", "/health/db", "/healthy", "/reports/1"):
        assert b.get(p).status_code == 200
    assert [e["endpoint"] for e in rec.events("api_request")] == ["/healthy", "/reports/{pk}"]
    rec = make_rec(excluded_paths=["/reports"])
    b.get("/reports/1")
    b.get("/reports")
    b.get("/dashboard")
    assert [e["endpoint"] for e in rec.events("api_request")] == ["/dashboard"]


def test_sampling_keeps_the_rate_and_every_5xx(make_rec):
    rng = ScriptedRandom(values=[0.1, 0.3, 0.2])
    rec = make_rec(rng=rng, sampling_enabled=True, sampling_rate=0.25)
    b = Browser()
    b.get("/reports/1")  # draw 0.1 < 0.25: kept
    b.get("/reports/2")  # draw 0.3: left out
    b.get("/fail")  # a 5xx: kept without a draw, at rate 1
    b.get("/no/such")  # draw 0.2: kept, a 404 is sampled like a 200
    got = [(e["endpoint"], e["status_code"], e["sample_rate"]) for e in rec.events("api_request")]
    assert got == [("/reports/{pk}", 200, 0.25), ("/fail", 503, 1.0), ("/no/such", 404, 0.25)]
    assert rng.values == [] and rec.client.stats().sampled_out == 1


@pytest.mark.parametrize("trusted,xff,ip", [
    (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),
    (2, "198.51.100.1, 203.0.113.7", "198.51.100.1"),
    (5, "198.51.100.1, 203.0.113.7", "198.51.100.1"),  # fewer hops than proxies: the furthest
    (0, "198.51.100.1", "127.0.0.1"),  # no trusted proxy: the header is a claim, the peer is the truth
    (1, None, "127.0.0.1"),
    (1, "203.0.113.7:4711", "203.0.113.7"),
    (1, "1.2.3.4, unknown", None),  # a hop that is not an address: none, not a guess
])
def test_the_client_address_behind_trusted_proxies(make_rec, trusted, xff, ip):
    rec = make_rec(trusted_proxies=trusted)
    headers = {"x-forwarded-for": xff} if xff is not None else {}
    Browser().get("/reports/1", headers=headers)
    e = rec.one("api_request")
    assert e.get("ip_address") == ip


def test_client_ip_is_the_rust_clients_rule():
    # The cases of clients/rust/src/layer.rs, word for word.
    xff = "198.51.100.1, 203.0.113.7, 10.0.0.2"
    assert [client_ip(xff, n, None) for n in (1, 2, 3, 5)] == ["10.0.0.2", "203.0.113.7", "198.51.100.1", "198.51.100.1"]
    assert client_ip("1.1.1.1", 0, "192.0.2.9") == "192.0.2.9"
    assert client_ip(None, 1, "192.0.2.9") == "192.0.2.9"
    assert client_ip(" , ", 1, "192.0.2.9") == "192.0.2.9"
    assert client_ip("203.0.113.7:4711", 1, None) == "203.0.113.7"
    assert client_ip("[2001:db8::1]:443", 1, None) == "2001:db8::1"
    assert client_ip("2001:db8::2", 1, None) == "2001:db8::2"
    assert client_ip("1.2.3.4, unknown", 1, "192.0.2.9") is None
    assert [parse_ip(s) for s in ("fe80::1%eth0", "1.2.3.4:99999", "[1.2.3.4]:80", "", None)] == [None] * 5


def test_sizes_of_requests_and_responses(rec):
    b = Browser()
    body = json.dumps({"client_id": "c-7", "pad": "x" * 50})
    r = b.post("/reports", data=body, content_type="application/json")
    b.get("/reports/3/download")
    b.get("/stream")
    post, download, stream = rec.events("api_request")
    assert (post["request_size"], post["response_size"]) == (len(body), len(r.content))
    assert "request_size" not in download and download["response_size"] == 109
    assert stream["status_code"] == 200 and "response_size" not in stream, "a stream of unknown length is not read"


def test_errors_on_5xx_and_exceptions(rec):
    b = Browser(raise_request_exception=False)
    assert b.get("/fail").status_code == 503
    assert b.get("/fail-explained").status_code == 500
    assert b.get("/boom").status_code == 500
    assert b.get("/forbidden-report").status_code == 403
    got = [(e["endpoint"], e["status_code"], e.get("error_message")) for e in rec.events("api_request")]
    assert got == [
        ("/fail", 503, "Service Unavailable"),
        ("/fail-explained", 500, "database unreachable"),
        ("/boom", 500, "RuntimeError: the view blew up"),
        ("/forbidden-report", 403, None),
    ]


def test_user_agent_user_and_the_query_string_redacted(rec, alice):
    b = signed_in(alice)
    b.get("/reports/1?page=2&access_token=abc", headers={"user-agent": "pytest-agent/1"})
    Browser().get("/reports/2")
    mine, anonymous = rec.events("api_request")
    assert (mine["endpoint"], mine["user_id"], mine["user_agent"]) == ("/reports/{pk}", str(alice.pk), "pytest-agent/1")
    assert mine["query_params"] == {"page": "2", "access_token": "[REDACTED]"}
    assert "user_id" not in anonymous and "query_params" not in anonymous


def test_user_id_setting_and_explicit_user(rec, alice):
    with override_settings(ANALYTICS={"USER_ID": lambda u: f"user-{u.username}"}):
        signed_in(alice).get("/reports/1")
    assert rec.one("api_request")["user_id"] == "user-alice"


def test_a_view_names_the_user_of_a_token_api(rec):
    Browser().post("/tokens/reports", data="{}", content_type="application/json")
    assert rec.one("api_request")["user_id"] == "svc-1"
    assert [(e["action"], e["user_id"]) for e in rec.events("activity")] == [("generate_report", "svc-1")]


def test_flush_per_invocation_sends_before_answering(make_rec):
    rec = make_rec(flush_per_invocation=True)
    Browser().get("/reports/1")
    assert len(rec.transport.batches) == 1, "sent without a flush() call"


def test_tracking_never_breaks_a_request(rec, alice, monkeypatch):
    before = tracking_failures()

    def broken(*a, **k):
        raise RuntimeError("tracking bug")

    b = signed_in(alice)
    monkeypatch.setattr(rec.client, "api_request", broken)
    monkeypatch.setattr(rec.client, "activity", broken)
    r = b.post("/reports", data="{}", content_type="application/json")
    assert r.status_code == 201 and json.loads(r.content) == {"id": 9}
    assert tracking_failures() == before + 2, "the api_request and the activity failure, each counted"
    with override_settings(ANALYTICS={"USER_ID": broken}):
        assert signed_in(alice).get("/reports/1").status_code == 200


def test_a_disabled_client_records_nothing(make_rec, alice):
    rec = make_rec(enabled=False)
    signed_in(alice).post("/reports", data="{}", content_type="application/json")
    assert rec.client.stats().recorded == 0


# ---- activity: the route table ------------------------------------------------


def test_activity_only_for_2xx_of_signed_in_users(rec, alice):
    signed_in(alice).post("/reports", data="{}", content_type="application/json")
    Browser().post("/reports", data="{}", content_type="application/json")  # anonymous
    with override_settings(ANALYTICS={"ACTIONS": [("GET", "/forbidden-report", "share_report")]}):
        signed_in(alice).get("/forbidden-report")  # a 403
    activity = [e for e in rec.events("activity") if e["action"] != "login"]
    assert [(e["action"], e["user_id"]) for e in activity] == [("generate_report", str(alice.pk))]
    assert activity[0]["ip_address"] == "127.0.0.1"


@pytest.mark.parametrize("method,path,action,ids", [
    ("post", "/reports", "generate_report", {}),
    ("get", "/reports/8/download", "download_report", {"report_id": "8"}),
    ("delete", "/reports/5", "delete_report", {"report_id": "5"}),
    ("post", "/clients", "create_client", {}),
    ("put", "/clients/3", "update_client", {"client_id": "3"}),
    ("patch", "/clients/3", "update_client", {"client_id": "3"}),
    ("delete", "/clients/3", "delete_client", {"client_id": "3"}),
    ("post", "/clients/4/upload", "upload_csv", {"client_id": "4"}),
    ("post", "/clients/acme/reports", "generate_report", {"client_id": "acme", "report_id": "r-77"}),
    ("get", "/dashboard", "view_dashboard", {}),
])
def test_the_default_table_and_ids_from_path_params(rec, alice, method, path, action, ids):
    b = signed_in(alice)
    if method == "get":
        b.get(path)
    else:
        getattr(b, method)(path, data="{}", content_type="application/json")
    e = [e for e in rec.events("activity") if e["action"] != "login"]
    assert len(e) == 1, e
    assert e[0]["action"] == action
    assert {k: e[0][k] for k in ("client_id", "report_id") if k in e[0]} == ids
    if path == "/clients/acme/reports":
        assert e[0]["report"] == {"status": "completed", "processing_time_ms": 1200}, "fields the view added"


def test_requests_the_table_does_not_name_record_no_activity(rec, alice):
    b = signed_in(alice)
    b.get("/reports/1")
    b.get("/reports")
    b.get("/api/v2/items/1")
    assert [e["action"] for e in rec.events("activity")] == ["login"]


def test_a_view_can_name_its_own_action(rec, alice):
    signed_in(alice).get("/custom")
    e = [e for e in rec.events("activity") if e["action"] != "login"]
    assert [(x["action"], x["description"]) for x in e] == [("export_data", "exported the client list")]


def test_the_table_comes_from_settings(rec, alice):
    table = [
        ("GET", "/reports/{}", "view_report", {"pk": "report_id"}),
        {"method": ["POST"], "route": "*/upload", "action": "import_rows", "pk": "client_id", "description": "CSV import"},
        Action("GET", "/api/v2/items/{}", "open_item", report_id="item_id"),
    ]
    with override_settings(ANALYTICS={"ACTIONS": table}):
        b = signed_in(alice)
        b.get("/reports/11")
        b.post("/reports", data="{}", content_type="application/json")  # the default table is replaced
        b.post("/clients/2/upload", data="{}", content_type="application/json")
        b.get("/api/v2/items/6")
    got = [(e["action"], e.get("client_id"), e.get("report_id"), e.get("description")) for e in rec.events("activity")
           if e["action"] != "login"]
    assert got == [("view_report", None, "11", None), ("import_rows", "2", None, "CSV import"), ("open_item", None, "6", None)]


def test_table_matching_rules():
    assert match(DEFAULT_ACTIONS, "post", "/api/reports/").action == "generate_report", "any prefix, trailing slash"
    assert match(DEFAULT_ACTIONS, "DELETE", "/reports/{report_id}").action == "delete_report", "any parameter name"
    assert match(DEFAULT_ACTIONS, "GET", "/reports") is None
    assert match(DEFAULT_ACTIONS, "POST", "/reports/{pk}/share").fields({"pk": 3}) == {"report_id": "3"}
    assert Action("GET", "/x/{}", "a").fields({"client_id": 1, "report_id": "r", "pk": 2}) == {"client_id": "1", "report_id": "r"}
    for bad in ([("GET", "/x", "Bad-Action")], [("GET", "/x", "ok", {"pk": "user_id"})], [{"route": "/x"}], ["nonsense"]):
        with pytest.raises(ConfigError):
            parse_actions(bad)


def test_a_bad_table_fails_at_start_up(rec):
    with override_settings(ANALYTICS={"ACTIONS": [("GET", "/x", "Not An Action")]}):
        with pytest.raises(ConfigError) as e:
            Browser().get("/reports/1")
    assert e.value.var == "ANALYTICS['ACTIONS']"


# ---- auth events from the signals ---------------------------------------------


def login(b, username, password, **kw):
    return b.post("/login", data=json.dumps({"username": username, "password": password}), content_type="application/json", **kw)


def test_login_success_and_failure(rec, alice):
    b = Browser()
    assert login(b, "alice", "wrong", headers={"x-forwarded-for": "198.51.100.7"}).status_code == 401
    assert login(b, "alice", "s3cret-pw", headers={"user-agent": "browser/1"}).status_code == 200
    failed, ok = rec.events("auth")
    assert (failed["event_type"], failed["success"], failed["error_message"]) == ("login_failed", False, "invalid credentials")
    assert failed["user_id"] == hash_username("alice", b"django-tests-secret") and failed["ip_address"] == "198.51.100.7"
    assert failed["user_id"].startswith("h-") and "alice" not in json.dumps(failed)
    assert (ok["event_type"], ok["success"], ok["user_id"], ok["user_agent"]) == ("login", True, str(alice.pk), "browser/1")
    assert [(e["action"], e["user_id"]) for e in rec.events("activity")] == [("login", str(alice.pk))]
    assert [(e["endpoint"], e["status_code"]) for e in rec.events("api_request")] == [("/login", 401), ("/login", 200)]


@pytest.mark.parametrize("mode,expected", [("username", "alice"), ("none", None), ("hash", hash_username("alice", b"k"))])
def test_the_failed_login_user_setting(rec, alice, mode, expected):
    with override_settings(ANALYTICS={"LOGIN_FAILED_USER": mode, "HASH_KEY": "k"}):
        login(Browser(), "alice", "nope")
    assert rec.one("auth").get("user_id") == expected


def test_logout(rec, alice):
    b = signed_in(alice)
    b.post("/logout")
    Browser().post("/logout")  # nobody signed in
    got = [(e["event_type"], e.get("user_id")) for e in rec.events("auth")]
    assert got == [("login", str(alice.pk)), ("logout", str(alice.pk)), ("logout", None)]
    assert [e["action"] for e in rec.events("activity")] == ["login", "logout"]


def test_auth_activity_can_be_off(rec, alice):
    with override_settings(ANALYTICS={"AUTH_ACTIVITY": False}):
        signed_in(alice).post("/logout")
    assert [e["event_type"] for e in rec.events("auth")] == ["login", "logout"]
    assert rec.events("activity") == []


def test_a_login_without_a_request_has_no_address(rec, alice):
    assert authenticate(username="alice", password="bad") is None
    e = rec.one("auth")
    assert e["event_type"] == "login_failed" and "ip_address" not in e


def test_signals_connect_once(rec, alice):
    integration.connect_signals()
    integration.connect_signals()
    login(Browser(), "alice", "bad")
    assert len(rec.events("auth")) == 1
    integration.disconnect_signals()
    try:
        login(Browser(), "alice", "bad")
        assert len(rec.events("auth")) == 1
    finally:
        integration.connect_signals()


# ---- settings and the process's client -----------------------------------------


def test_settings_override_the_environment():
    cfg = config_from_settings(
        {"API_URL": "https://analytics.example.com/", "EXCLUDED_PATHS": ["/internal", "/static/"], "TRUSTED_PROXIES": 2,
         "ENABLE_SAMPLING": True, "SAMPLING_RATE": 0.5, "TOKEN": "tok", "ACTIONS": [], "ANALYTICS_MAX_RETRIES": 3},
        environ={"ANALYTICS_API_URL": "http://ignored", "ANALYTICS_BUFFER_CAPACITY": "50", "ANALYTICS_TRUSTED_PROXIES": "7"},
    )
    assert (cfg.api_url, cfg.excluded_paths, cfg.trusted_proxies) == ("https://analytics.example.com", ["/internal", "/static"], 2)
    assert (cfg.effective_sampling_rate(), cfg.token, cfg.max_retries, cfg.buffer_capacity) == (0.5, "tok", 3, 50)
    assert config_from_settings({}, environ={}) == Config()


def test_bad_settings_name_themselves():
    with pytest.raises(ConfigError) as e:
        config_from_settings({"API_ULR": "x"}, environ={})
    assert e.value.var == "ANALYTICS['API_ULR']" and "API_URL" in e.value.expected
    with pytest.raises(ConfigError) as e:
        config_from_settings({"SAMPLING_RATE": 2}, environ={})
    assert (e.value.var, e.value.value) == ("ANALYTICS['SAMPLING_RATE']", "2")
    with pytest.raises(ConfigError) as e:
        config_from_settings({}, environ={"ANALYTICS_SAMPLING_RATE": "0"})
    assert e.value.var == "ANALYTICS_SAMPLING_RATE", "a value from the environment names the variable"


def test_get_client_is_lazy_one_per_process_with_the_settings_token(backend, monkeypatch):
    set_client(None)
    calls = []

    def token():
        calls.append(1)
        return "rotating"

    try:
        with override_settings(ANALYTICS={"API_URL": backend.url, "TOKEN": token, "FLUSH_PER_INVOCATION": True}):
            c = integration.get_client()
            assert integration.get_client() is c, "one client per process"
            Browser().get("/reports/1")  # per invocation: sent before the answer
            assert backend.requests[0][1]["Authorization"] == "Bearer rotating" and calls
            assert backend.events[0]["endpoint"] == "/reports/{pk}"
            real = integration.conf.os.getpid()
            monkeypatch.setattr(integration.conf.os, "getpid", lambda: real + 1)
            assert integration.get_client() is not c, "a forked worker builds its own"
            c.shutdown(timeout=1.0)
    finally:
        integration.reset_client(timeout=1.0)


def test_importable_without_django():
    code = "import sys; sys.modules['django'] = None\nimport analytics_client.django, analytics_client.wsgi\nprint('ok')"
    package_root = Path(django_app.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=package_root)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

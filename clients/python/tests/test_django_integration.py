"""The Django integration against the real backend: the small Django app of
tests/django_app.py (both middlewares, the auth signals) sends its events
over HTTP to the ingest function on DynamoDB Local (``local-api``, started
by the ``local_api`` fixture), and the query routes read them back. Each test
has a tenant of its own, so they share one table without seeing each other.
"""

import json
import uuid

import pytest

pytest.importorskip("django", reason="Django is not installed (tests/stack/install.sh installs it into .local/venv)")

import django_app  # noqa: E402  (configures Django)
from django.test import Client as Browser  # noqa: E402

from analytics_client import Client, Config  # noqa: E402
from analytics_client.django import hash_username, set_client  # noqa: E402
from analytics_client.wsgi import AnalyticsMiddleware  # noqa: E402

from conftest import mint_token  # noqa: E402


@pytest.fixture
def tenant():
    return "dj-" + uuid.uuid4().hex[:12]


@pytest.fixture
def admin(tenant):
    return mint_token("boss", tenant, roles=["admin"])


@pytest.fixture
def sender(local_api, tenant):
    """The process's client, posting to the real ingest function with a
    backend's ingest token of the test's tenant; flushed by the test."""
    client = Client(Config(api_url=local_api.url, backoff_base=0.01, backoff_cap=0.1),
                    token=mint_token("backend-1", tenant, scopes=["analytics/ingest"]),
                    background=False, flush_at_exit=False)
    set_client(client)
    yield client
    set_client(None)


def deliver(client, n):
    """Flushes and checks the backend stored all ``n`` events."""
    report = client.flush(timeout=30)
    assert (report.sent, report.rejected, report.requeued) == (n, 0, 0), (report, client.stats())


def login(b, username, password, **kw):
    return b.post("/login", data=json.dumps({"username": username, "password": password}), content_type="application/json", **kw)


def test_api_requests_are_counted_per_route_template_with_errors(local_api, sender, admin):
    b = Browser(raise_request_exception=False)
    for pk in (1, 2, 3):
        assert b.get(f"/reports/{pk}").status_code == 200
    assert b.get("/reports/4?page=2&access_token=abc").status_code == 200
    assert b.get("/fail").status_code == 503
    assert b.get("/fail-explained").status_code == 500
    assert b.get("/boom").status_code == 500
    assert b.post("/reports", data="{}", content_type="application/json").status_code == 201
    assert b.get("/health").status_code == 200  # excluded: never sent
    deliver(sender, 8)

    status, body = local_api.get("/api-requests", admin)
    assert status == 200, body
    rows = {(r["endpoint"], r["method"]): (r["count"], r["error_count"]) for r in body["endpoints"]}
    assert rows == {
        ("/reports/{pk}", "GET"): (4, 0),
        ("/fail", "GET"): (1, 1),
        ("/fail-explained", "GET"): (1, 1),
        ("/boom", "GET"): (1, 1),
        ("/reports", "POST"): (1, 0),
    }

    # The stored events themselves: the query string split and redacted,
    # the error messages kept.
    status, page = local_api.get("/events", admin, kind="api_request", limit=50)
    assert status == 200, page
    by_endpoint = {}
    for e in page["items"]:
        by_endpoint.setdefault(e["endpoint"], []).append(e)
    [with_query] = [e for e in by_endpoint["/reports/{pk}"] if e.get("query_params")]
    assert with_query["query_params"] == {"page": "2", "access_token": "[REDACTED]"}
    assert by_endpoint["/boom"][0]["error_message"] == "RuntimeError: the view blew up"
    assert by_endpoint["/fail-explained"][0]["error_message"] == "database unreachable"
    assert all(e["ip_address"] == "127.0.0.1" for e in page["items"])


def test_activity_of_signed_in_users_with_its_ids(local_api, sender, admin, tenant):
    bob = django_app.user("bob", "bob-pw-1")
    b = Browser()
    assert login(b, "bob", "bob-pw-1").status_code == 200
    assert b.post("/clients/acme/reports", data="{}", content_type="application/json").status_code == 201
    assert b.post("/clients/4/upload", data="{}", content_type="application/json").status_code == 201
    assert b.delete("/reports/9").status_code == 204
    assert b.get("/forbidden-report").status_code == 403  # not a 2xx: no activity
    Browser().post("/reports", data="{}", content_type="application/json")  # anonymous: no activity
    # 6 api_request, the login (auth + activity) and 3 activities.
    deliver(sender, 11)

    status, page = local_api.get("/user-activity", admin, limit=50)
    assert status == 200, page
    got = [(e["action"], e["user_id"], e.get("client_id"), e.get("report_id")) for e in page["items"]]
    uid = str(bob.pk)
    assert got == [  # newest first
        ("delete_report", uid, None, "9"),
        ("upload_csv", uid, "4", None),
        ("generate_report", uid, "acme", "r-77"),
        ("login", uid, None, None),
    ]
    report = next(e for e in page["items"] if e["action"] == "generate_report")["report"]
    assert report["status"] == "completed" and report["processing_time_ms"] == 1200

    # bob's own token sees the same feed on /recent-activity (members see only their own events).
    status, recent = local_api.get("/recent-activity", mint_token(uid, tenant), limit=2)
    assert status == 200, recent
    assert [e["action"] for e in recent["items"]] == ["delete_report", "upload_csv"]


def test_auth_events_from_the_signals(local_api, sender, admin):
    carol = django_app.user("carol", "carol-pw-1")
    b = Browser()
    for _ in range(2):
        assert login(b, "carol", "wrong", headers={"x-forwarded-for": "198.51.100.7"}).status_code == 401
    assert login(b, "carol", "carol-pw-1").status_code == 200
    assert b.post("/logout").status_code == 200
    # 4 api_request, 2 failed logins, a login and a logout (each auth + activity for the last two).
    deliver(sender, 10)

    status, body = local_api.get("/auth-events", admin)
    assert status == 200, body
    counts = {e["event_type"]: (e["success"], e["failure"]) for e in body["event_types"]}
    assert counts == {"login": (1, 0), "login_failed": (0, 2), "logout": (1, 0)}
    assert body["failed_logins"] == 2
    assert body["top_failed_ips"] == [{"ip_address": "198.51.100.7", "count": 2}]
    hashed = hash_username("carol", django_app.settings.SECRET_KEY.encode())
    assert body["top_failed_users"] == [{"user_id": hashed, "count": 2}]

    status, page = local_api.get("/events", admin, kind="auth", success="true")
    assert status == 200, page
    assert sorted((e["event_type"], e["user_id"]) for e in page["items"]) == [("login", str(carol.pk)), ("logout", str(carol.pk))]


def test_the_wsgi_middleware_against_the_real_backend(local_api, sender, admin):
    def app(environ, start_response):
        environ["analytics.route"] = "/items/<int:id>"
        environ["analytics.user"] = "u-9"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"an item"]

    wrapped = AnalyticsMiddleware(app, sender)
    for i in range(3):
        env = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/items/{i}", "QUERY_STRING": "", "REMOTE_ADDR": "192.0.2.1"}
        body = wrapped(env, lambda status, headers, exc_info=None: None)
        b"".join(body)
        body.close()
    deliver(sender, 3)
    status, body = local_api.get("/api-requests", admin)
    assert status == 200, body
    assert [(r["endpoint"], r["method"], r["count"], r["error_count"]) for r in body["endpoints"]] == [("/items/{id}", "GET", 3, 0)]

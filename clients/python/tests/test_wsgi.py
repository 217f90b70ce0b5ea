"""The WSGI middleware: plain WSGI apps driven by hand (PEP 3333), and a
Flask app through its test client when Flask is installed."""

import pytest

from analytics_client import Client, Config
from analytics_client.web import tracking_failures
from analytics_client.wsgi import AnalyticsMiddleware

from conftest import CapturingTransport, ScriptedRandom


def make(clock, **settings):
    transport = CapturingTransport()
    client = Client(Config(**settings), token="t0k", transport=transport, clock=clock, sleep=clock.sleep,
                    rng=ScriptedRandom(), background=False, flush_at_exit=False)
    return client, transport


def sent(client, transport, kind="api_request"):
    client.flush()
    return [e for e in transport.events if e["kind"] == kind]


def environ(path="/", method="GET", query="", body=b"", **extra):
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "test", "SERVER_PORT": "80",
        "REMOTE_ADDR": "192.0.2.9", "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    env.update(extra)
    return env


def call(app, env):
    """Serves one request as a server would: start_response, iterate, close."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    body = app(env, start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return seen["status"], data


def app_answering(status="200 OK", chunks=(b"hello",), length=False, before=None):
    def app(env, start_response):
        if before is not None:
            before(env)
        headers = [("Content-Type", "text/plain")]
        if length:
            headers.append(("Content-Length", str(sum(len(c) for c in chunks))))
        start_response(status, headers)
        return list(chunks)

    return app


def test_each_request_is_an_api_request(clock):
    client, transport = make(clock)
    app = AnalyticsMiddleware(app_answering(chunks=(b"abc", b"defg")), client)
    status, data = call(app, environ("/reports/7", query="page=2&api_key=zzz", HTTP_USER_AGENT="curl/8"))
    assert (status, data) == ("200 OK", b"abcdefg")
    [e] = sent(client, transport)
    assert (e["endpoint"], e["method"], e["status_code"], e["response_size"]) == ("/reports/7", "GET", 200, 7)
    assert e["query_params"] == {"page": "2", "api_key": "[REDACTED]"}
    assert (e["user_agent"], e["ip_address"], e["sample_rate"]) == ("curl/8", "192.0.2.9", 1.0)
    assert e["response_time_ms"] >= 0 and "user_id" not in e and "error_message" not in e


def test_the_app_names_the_route_and_the_user(clock):
    def before(env):
        env["analytics.route"] = "/reports/<int:pk>"
        env["analytics.user"] = "u-42"

    client, transport = make(clock)
    app = AnalyticsMiddleware(app_answering(before=before, length=True), client)
    call(app, environ("/reports/7", method="POST", body=b'{"a": 1}', CONTENT_LENGTH="8"))
    [e] = sent(client, transport)
    assert (e["endpoint"], e["user_id"], e["request_size"], e["response_size"]) == ("/reports/{pk}", "u-42", 8, 5)


def test_the_app_names_the_error(clock):
    def before(env):
        env["analytics.error"] = "upstream timed out"

    client, transport = make(clock)
    call(AnalyticsMiddleware(app_answering("504 Gateway Timeout", before=before), client), environ("/x"))
    call(AnalyticsMiddleware(app_answering("404 Not Found"), client), environ("/y"))
    x, y = sent(client, transport)
    assert (x["status_code"], x["error_message"]) == (504, "upstream timed out")
    assert y["status_code"] == 404 and "error_message" not in y


def test_excluded_paths_and_trusted_proxies(clock):
    client, transport = make(clock, trusted_proxies=2)
    app = AnalyticsMiddleware(app_answering(), client)
    call(app, environ("/health/db"))
    call(app, environ("/x", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7, 10.0.0.2"))
    call(app, environ("/y", HTTP_X_FORWARDED_FOR="junk, 10.0.0.2"))
    x, y = sent(client, transport)
    assert (x["endpoint"], x["ip_address"]) == ("/x", "203.0.113.7")
    assert y["endpoint"] == "/y" and "ip_address" not in y


def test_sampling_keeps_5xx(clock):
    client, transport = make(clock, sampling_enabled=True, sampling_rate=0.5)
    client._rng = ScriptedRandom(values=[0.9])
    call(AnalyticsMiddleware(app_answering(), client), environ("/a"))  # draw 0.9: left out
    call(AnalyticsMiddleware(app_answering("502 Bad Gateway"), client), environ("/b"))
    [e] = sent(client, transport)
    assert (e["endpoint"], e["status_code"], e["sample_rate"], e["error_message"]) == ("/b", 502, 1.0, "Bad Gateway")


def test_an_exception_is_a_500_and_propagates(clock):
    def broken(env, start_response):
        raise KeyError("missing")

    client, transport = make(clock)
    with pytest.raises(KeyError):
        call(AnalyticsMiddleware(broken, client), environ("/boom"))
    [e] = sent(client, transport)
    assert (e["status_code"], e["error_message"]) == (500, "KeyError: 'missing'")


def test_an_error_while_streaming_is_recorded(clock):
    def body():
        yield b"part"
        raise IOError("disk gone")

    def app(env, start_response):
        start_response("200 OK", [])
        return body()

    client, transport = make(clock)
    with pytest.raises(IOError):
        call(AnalyticsMiddleware(app, client), environ("/file"))
    [e] = sent(client, transport)
    assert (e["status_code"], e["response_size"], e["error_message"]) == (200, 4, "OSError: disk gone")


def test_the_body_is_closed_and_recorded_once(clock):
    closed = []

    class Body(list):
        def close(self):
            closed.append(1)

    def app(env, start_response):
        start_response("201 Created", [])
        return Body([b"x"])

    client, transport = make(clock)
    body = AnalyticsMiddleware(app, client)(environ("/z"), lambda s, h, e=None: None)
    body.close()
    body.close()
    assert closed == [1, 1] and len(sent(client, transport)) == 1


def test_tracking_never_breaks_the_app(clock, monkeypatch):
    client, transport = make(clock)

    def broken(*a, **k):
        raise RuntimeError("tracking bug")

    monkeypatch.setattr(client, "api_request", broken)
    before = tracking_failures()
    assert call(AnalyticsMiddleware(app_answering(), client), environ("/a")) == ("200 OK", b"hello")
    assert tracking_failures() == before + 1


def test_with_flask(clock):
    flask = pytest.importorskip("flask", reason="Flask is not installed")
    app = flask.Flask("analytics-test")

    @app.route("/reports/<int:pk>")
    def report(pk):
        flask.request.environ["analytics.user"] = "u-7"
        return {"id": pk}

    @app.route("/fail")
    def fail():
        raise RuntimeError("no database")

    client, transport = make(clock)
    app.wsgi_app = AnalyticsMiddleware(app.wsgi_app, client)
    browser = app.test_client()
    # buffered: the test client reads and closes each body as a server does
    # (the event is recorded when the body is closed).
    assert browser.get("/reports/12?x=1", buffered=True).status_code == 200
    assert browser.get("/fail", buffered=True).status_code == 500
    assert browser.get("/nowhere", buffered=True).status_code == 404
    got = [(e["endpoint"], e["status_code"], e.get("user_id"), e.get("error_message")) for e in sent(client, transport)]
    assert got == [("/reports/{pk}", 200, "u-7", None), ("/fail", 500, None, "INTERNAL SERVER ERROR"), ("/nowhere", 404, None, None)]

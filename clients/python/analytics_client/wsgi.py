"""A plain WSGI middleware (PEP 3333), for Flask or any WSGI app: every
request becomes an ``api_request`` event, as with the Django middleware.

::

    from analytics_client import Client
    from analytics_client.wsgi import AnalyticsMiddleware

    app.wsgi_app = AnalyticsMiddleware(app.wsgi_app, Client())   # Flask

The endpoint is, in order: ``environ["analytics.route"]`` when the app set
one; Flask's (Werkzeug's) matched URL rule when there is one
(``/reports/<int:pk>`` is recorded as ``/reports/{pk}``); else
``PATH_INFO``. The user is ``environ["analytics.user"]`` when the app set
it (Flask: ``request.environ["analytics.user"] = current_user.id``), the
error message ``environ["analytics.error"]`` (else a 5xx is described by
its status line's reason, an exception by its type and text).

Status, response time (until the app has returned and started the
response), request size (``Content-Length``), response size
(``Content-Length``, else the bytes of the body as it is sent), user agent,
the client's address behind ``ANALYTICS_TRUSTED_PROXIES`` proxies and the
query string (redacted by the client) are recorded when the body is closed.
Excluded paths and sampling follow the client's configuration. Tracking
never breaks a request: a failure inside it is logged and counted
(:func:`analytics_client.web.tracking_failures`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Optional

from .client import Client
from .web import FAILURES, client_ip, content_length, route_template

ROUTE_KEY = "analytics.route"
USER_KEY = "analytics.user"
ERROR_KEY = "analytics.error"


def _werkzeug_rule(environ) -> Optional[str]:
    """The URL rule Flask matched, read while its request is still in the
    environ (Flask clears it once the response has started)."""
    req = environ.get("werkzeug.request")
    rule = getattr(req, "url_rule", None) if req is not None else None
    return getattr(rule, "rule", None)


class _Request:
    """One request being tracked: what was known before the app ran, and
    what the app's answer said."""

    def __init__(self, environ, trusted: int):
        self.environ = environ
        self.started = time.perf_counter()
        self.elapsed_ms: Optional[float] = None
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = environ.get("PATH_INFO") or "/"
        self.query = environ.get("QUERY_STRING") or ""
        self.request_size = content_length(environ.get("CONTENT_LENGTH"))
        self.user_agent = environ.get("HTTP_USER_AGENT") or None
        self.ip = client_ip(environ.get("HTTP_X_FORWARDED_FOR"), trusted, environ.get("REMOTE_ADDR"))
        self.status: Optional[int] = None
        self.reason: Optional[str] = None
        self.declared_size: Optional[int] = None
        self.rule: Optional[str] = None
        self.sent = 0
        self.error: Optional[str] = None
        self.done = False

    def started_response(self, status: str, headers) -> None:
        code, _, reason = status.partition(" ")
        self.status = int(code) if code.isdigit() else 500
        self.reason = reason or None
        self.declared_size = None
        for name, value in headers:
            if name.lower() == "content-length":
                self.declared_size = content_length(value)
        self.rule = _werkzeug_rule(self.environ) or self.rule
        self.stop_clock()

    def stop_clock(self) -> None:
        if self.elapsed_ms is None:
            self.elapsed_ms = (time.perf_counter() - self.started) * 1000.0


class _Body:
    """The app's body, passed through chunk by chunk (counting bytes);
    closing it records the event, once."""

    def __init__(self, inner: Iterable[bytes], finish: Callable[[], None], track: _Request):
        self._inner, self._finish, self._track = inner, finish, track

    def __iter__(self):
        try:
            for chunk in self._inner:
                self._track.sent += len(chunk)
                yield chunk
        except Exception as exc:
            self._track.error = self._track.error or f"{type(exc).__name__}: {exc}"
            raise

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()


class AnalyticsMiddleware:
    """Wraps a WSGI app; ``client`` defaults to a :class:`Client` built
    from the environment on the first request (so a server that forks its
    workers builds one per worker)."""

    def __init__(self, app, client: Optional[Client] = None):
        self.app = app
        self._client = client

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    def __call__(self, environ, start_response):
        try:
            client = self.client
            cfg = client.config
            track = None
            if cfg.enabled and not cfg.is_excluded(environ.get("PATH_INFO") or "/"):
                track = _Request(environ, cfg.trusted_proxies)
        except Exception:
            FAILURES.record("request tracking")
            return self.app(environ, start_response)
        if track is None:
            return self.app(environ, start_response)

        def tracking_start_response(status, headers, exc_info=None):
            try:
                track.started_response(status, headers)
            except Exception:
                FAILURES.record("request tracking")
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        def finish() -> None:
            self._finish(client, track)

        try:
            body = self.app(environ, tracking_start_response)
        except Exception as exc:
            track.status = track.status or 500
            track.error = f"{type(exc).__name__}: {exc}"
            finish()
            raise
        track.stop_clock()
        return _Body(body, finish, track)

    def _finish(self, client: Client, track: _Request) -> None:
        if track.done:
            return
        track.done = True
        try:
            env = track.environ
            status = track.status or 500
            route = env.get(ROUTE_KEY) or track.rule
            endpoint = (route_template(str(route)) if route else None) or track.path
            if track.query:
                endpoint += "?" + track.query  # split into query_params and redacted by the client
            error: Any = env.get(ERROR_KEY) or track.error
            if error is None and status >= 500:
                error = track.reason or "Server Error"
            user = env.get(USER_KEY)
            size = track.declared_size if track.declared_size is not None else track.sent
            track.stop_clock()
            client.api_request(
                endpoint,
                track.method,
                status,
                track.elapsed_ms,
                request_size=track.request_size,
                response_size=size,
                error_message=str(error) if error is not None else None,
                user_id=str(user) if user not in (None, "") else None,
                ip_address=track.ip,
                user_agent=track.user_agent,
            )
            if client.config.flush_per_invocation:
                client.flush(timeout=client.config.request_timeout)
        except Exception:
            FAILURES.record("request tracking")

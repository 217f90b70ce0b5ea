"""The two Django middlewares.

:class:`ApiTrackingMiddleware` turns every request into an ``api_request``
event, as the Rust client's layer does (``clients/rust/src/layer.rs``): the
route template when Django resolved one, else the path; method, status,
response time, request and response sizes, user agent, the client's address
behind ``ANALYTICS_TRUSTED_PROXIES`` proxies, the signed-in user, the query
string (redacted by the client before sending) and an error message on a
5xx or an exception. Excluded paths are never recorded; with sampling on, a
request is kept with the sampling rate (and sent with it as
``sample_rate``), a 5xx always, at rate 1.

:class:`ActivityTrackingMiddleware` turns the requests its table names into
``activity`` events: only 2xx answers to signed-in users.

Tracking never breaks a request: whatever fails inside it is logged and
counted (:func:`analytics_client.web.tracking_failures`), and the request is
answered as if nothing was tracked. Both are synchronous middlewares
(Django runs them in a thread under ASGI). Views can add to what is sent
through attributes of the request (or the response, for the error):

- ``request.analytics_user``: the user id, when ``request.user`` does not
  carry it (token-authenticated APIs);
- ``request.analytics_route``: the endpoint to record instead of the route;
- ``request.analytics_error`` / ``response.analytics_error``: the error
  message (else a 5xx is described by its reason phrase);
- ``request.analytics_activity``: a dict of activity fields
  (``description``, ``client_id``, ``report_id``, ``report``, ``metadata``,
  and ``action`` to record an action the table does not name).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ..web import FAILURES, client_ip, content_length, route_template
from . import conf
from .actions import match

_ACTIVITY_KEYS = ("description", "client_id", "report_id", "report", "metadata")


def request_route(request) -> Optional[str]:
    """The endpoint a request is recorded under: ``request.analytics_route``
    when the view set one, else the template of the route Django resolved
    (``reports/<int:pk>`` is ``/reports/{pk}``), else ``None``."""
    explicit = getattr(request, "analytics_route", None)
    if explicit:
        return str(explicit)
    resolved = getattr(request, "resolver_match", None)
    return route_template(getattr(resolved, "route", None)) if resolved is not None else None


def request_user_id(request, options: conf.Options) -> Optional[str]:
    """The signed-in user's id: ``request.analytics_user``, else
    ``request.user`` when authenticated (through ``USER_ID``)."""
    explicit = getattr(request, "analytics_user", None)
    if explicit:
        return str(explicit)
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        uid = options.user_id(user)
        return None if uid is None else str(uid)
    return None


def request_ip(request, trusted: int) -> Optional[str]:
    meta = request.META
    return client_ip(meta.get("HTTP_X_FORWARDED_FOR"), trusted, meta.get("REMOTE_ADDR"))


def response_size(response) -> Optional[int]:
    """``Content-Length`` when set, else the body's length; ``None`` for a
    streaming body of unknown length (it is not read here)."""
    size = content_length(response.get("Content-Length"))
    if size is None and not getattr(response, "streaming", False):
        size = len(response.content)
    return size


def _flush_if_per_invocation(client) -> None:
    # On Lambda (Mangum, Zappa...) a frozen environment runs no timer: the
    # invocation sends its own events before it answers.
    if client.config.flush_per_invocation:
        client.flush(timeout=client.config.request_timeout)


class _Capture:
    """What is known of a request before the view runs."""

    __slots__ = ("started", "method", "path", "query", "request_size", "user_agent", "ip")

    def __init__(self, request, trusted: int):
        meta = request.META
        self.started = time.perf_counter()
        self.method = request.method
        self.path = request.path_info
        self.query = meta.get("QUERY_STRING") or ""
        self.request_size = content_length(meta.get("CONTENT_LENGTH"))
        self.user_agent = meta.get("HTTP_USER_AGENT") or None
        self.ip = request_ip(request, trusted)


class ApiTrackingMiddleware:
    """Records an ``api_request`` event for every request (put it first in
    ``MIDDLEWARE``, so its time covers the others and it sees their
    answers)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        # A bad setting fails at start-up (Django builds middleware once).
        conf.load_config()
        self.options = conf.load_options()

    def __call__(self, request):
        try:
            client = conf.get_client()
            cfg = client.config
            capture = None
            if cfg.enabled and not cfg.is_excluded(request.path_info):
                capture = _Capture(request, cfg.trusted_proxies)
        except Exception:
            FAILURES.record("request tracking")
            return self.get_response(request)
        if capture is None:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except Exception as exc:  # Django answers exceptions itself; a bare get_response may not
            self._finish(client, request, capture, None, exc)
            raise
        self._finish(client, request, capture, response, None)
        return response

    def process_exception(self, request, exception):
        """Keeps the view's exception as the event's error message; Django
        then answers it as usual (a 500, or another middleware's answer)."""
        try:
            if not getattr(request, "analytics_error", None):
                request.analytics_error = f"{type(exception).__name__}: {exception}"
        except Exception:
            FAILURES.record("exception tracking")
        return None

    def _finish(self, client, request, capture: _Capture, response, exc: Optional[BaseException]) -> None:
        try:
            elapsed_ms = (time.perf_counter() - capture.started) * 1000.0
            status = response.status_code if response is not None else 500
            error = getattr(response, "analytics_error", None) or getattr(request, "analytics_error", None)
            if error is None and exc is not None:
                error = f"{type(exc).__name__}: {exc}"
            if error is None and status >= 500:
                error = getattr(response, "reason_phrase", None) or "Server Error"
            endpoint = request_route(request) or capture.path
            if capture.query:
                endpoint += "?" + capture.query  # split into query_params and redacted by the client
            client.api_request(
                endpoint,
                capture.method,
                status,
                elapsed_ms,
                request_size=capture.request_size,
                response_size=response_size(response) if response is not None else None,
                error_message=str(error) if error is not None else None,
                user_id=request_user_id(request, self.options),
                ip_address=capture.ip,
                user_agent=capture.user_agent,
            )
            _flush_if_per_invocation(client)
        except Exception:
            FAILURES.record("request tracking")


class ActivityTrackingMiddleware:
    """Records an ``activity`` event for each request its table
    (``ANALYTICS['ACTIONS']``) names, when the answer is a 2xx and the user
    is signed in. Put it after ``AuthenticationMiddleware``."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        conf.load_config()
        self.options = conf.load_options()

    def __call__(self, request):
        response = self.get_response(request)
        try:
            self._track(request, response)
        except Exception:
            FAILURES.record("activity tracking")
        return response

    def _track(self, request, response) -> None:
        if not 200 <= response.status_code <= 299:
            return
        client = conf.get_client()
        if not client.enabled:
            return
        user_id = request_user_id(request, self.options)
        if user_id is None:
            return
        explicit: Dict[str, Any] = dict(getattr(request, "analytics_activity", None) or {})
        template = request_route(request) or request.path_info
        entry = match(self.options.actions, request.method, template)
        action = explicit.pop("action", None) or (entry.action if entry is not None else None)
        if action is None:
            return
        resolved = getattr(request, "resolver_match", None)
        fields: Dict[str, Any] = entry.fields(getattr(resolved, "kwargs", None) or {}) if entry is not None else {}
        unknown = set(explicit) - set(_ACTIVITY_KEYS)
        if unknown:
            raise TypeError(f"request.analytics_activity has unknown keys: {', '.join(sorted(unknown))}")
        fields.update((k, v) for k, v in explicit.items() if v is not None)
        client.activity(
            user_id,
            action,
            ip_address=request_ip(request, client.config.trusted_proxies),
            user_agent=request.META.get("HTTP_USER_AGENT") or None,
            **fields,
        )
        _flush_if_per_invocation(client)


__all__ = ["ActivityTrackingMiddleware", "ApiTrackingMiddleware", "request_ip", "request_route", "request_user_id", "response_size"]

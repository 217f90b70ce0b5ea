"""How a batch reaches the backend: one POST with a bearer token, by
``urllib.request``. Any object with the same ``post`` can replace it."""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from typing import Optional

from .batch import Reply, parse_retry_after

#: The route every batch is posted to, below the configured base URL.
EVENTS_PATH = "/api/v1/analytics/events"

USER_AGENT = "analytics-client-python/0.1"


class SendError(Exception):
    """A POST that got no answer (network error, timeout, token failure):
    worth retrying."""


class HttpTransport:
    def __init__(self, base_url: str, timeout: float):
        if not (base_url.startswith("http://") or base_url.startswith("https://")):
            raise ValueError(f"ANALYTICS_API_URL {base_url!r} is not a URL: expected http:// or https:// and a host")
        self.url = base_url.rstrip("/") + EVENTS_PATH
        self.timeout = timeout

    def post(self, bearer: str, body: bytes, timeout: Optional[float] = None) -> Reply:
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {bearer}",
                "User-Agent": USER_AGENT,
            },
        )
        limit = self.timeout if timeout is None else max(0.001, min(timeout, self.timeout))
        try:
            with urllib.request.urlopen(req, timeout=limit) as resp:
                return Reply(resp.status, parse_retry_after(resp.headers.get("Retry-After")), resp.read())
        except urllib.error.HTTPError as e:
            try:
                data = e.read()
            except OSError:
                data = b""
            return Reply(e.code, parse_retry_after(e.headers.get("Retry-After") if e.headers else None), data)
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError, ValueError) as e:
            raise SendError(f"the request failed before an answer: {e}") from e

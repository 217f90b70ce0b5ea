"""Events as the client holds them between record and send, the helpers
that build each kind, and their wire form.

``event_id`` (a UUIDv7) and ``occurred_at`` are fixed when an event is
built, so every resend carries the same pair and the backend recognises it
as a duplicate. Redaction, query splitting and cutting over-long text are
applied by :meth:`Event.normalize` (the flusher calls it before sending).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

from . import redact

# The backend's limits (shared/src/validate/limits.rs).
MAX_EVENTS = 500
#: The largest count or size the backend takes (limits::MAX_COUNT).
MAX_COUNT = 10**12
MAX_BODY_BYTES = 1024 * 1024
MAX_EVENT_BYTES = 32 * 1024
MAX_USER_AGENT_CHARS = 512
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 2000
MAX_ENDPOINT_CHARS = 2048
MAX_MODEL_CHARS = 128
MAX_QUERY_PARAMS = 50
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_STRING_CHARS = 1000

AUTH_EVENT_TYPES = ("signup", "login", "login_failed", "logout", "reset_password", "token_refresh")
KINDS = ("activity", "api_request", "auth", "external_call")

_ACTIVITY_FIELDS = ("description", "client_id", "report_id", "report")


def uuid_v7(unix_ms: int, random_bytes: Optional[bytes] = None) -> uuid.UUID:
    """A UUIDv7: 48-bit Unix millisecond timestamp, version 7, variant 10,
    74 random bits."""
    rnd = int.from_bytes(random_bytes if random_bytes is not None else os.urandom(10), "big")
    rand_a = (rnd >> 62) & 0xFFF  # 12 bits
    rand_b = rnd & ((1 << 62) - 1)  # 62 bits
    value = ((max(unix_ms, 0) & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def format_time(unix_seconds: float) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``, as the Rust client writes it."""
    micros = int(round(unix_seconds * 1_000_000))
    dt = datetime.fromtimestamp(micros // 1_000_000, tz=timezone.utc).replace(microsecond=micros % 1_000_000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _cut(s: Optional[str], n: int) -> Optional[str]:
    return s[:n] if isinstance(s, str) else s


class Event:
    """One recorded event, waiting to be sent."""

    __slots__ = ("event_id", "occurred_at", "kind", "user_id", "ip_address", "user_agent", "metadata", "fields", "_json")

    def __init__(
        self,
        kind: str,
        fields: Dict[str, Any],
        *,
        user_id: Optional[str] = None,
        ip_address: Optional[str] = None,
        user_agent: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        clock: Callable[[], float] = time.time,
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if ip_address is not None:
            ip_address = str(ipaddress.ip_address(ip_address))  # ValueError when it is not an IP
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError("metadata must be a dict")
        now = clock()
        self.event_id = str(uuid_v7(int(now * 1000)))
        self.occurred_at = format_time(now)
        self.kind = kind
        self.user_id = user_id
        self.ip_address = ip_address
        self.user_agent = user_agent
        # Copies: a caller changing its dict after recording changes nothing.
        self.metadata = copy.deepcopy(metadata) if metadata is not None else None
        self.fields = copy.deepcopy(fields)
        self._json: Optional[str] = None

    def normalize(self) -> None:
        """Applies the rules the sender can apply itself (the backend's
        redaction, query splitting, cutting text to its limits). Idempotent."""
        self.user_agent = _cut(self.user_agent, MAX_USER_AGENT_CHARS)
        self.user_id = _cut(self.user_id, MAX_ID_CHARS)
        if self.metadata is not None:
            self.metadata = redact.sanitize_json(self.metadata)
        f = self.fields
        if self.kind == "api_request":
            endpoint, params, _ = redact.move_query_into_params(f["endpoint"], f.get("query_params"))
            f["endpoint"] = endpoint[:MAX_ENDPOINT_CHARS]
            if params is not None:
                # Redacted before it is cut: a cut JWT no longer looks like one.
                f["query_params"] = _fit_query(redact.sanitize_query_params(params))
        elif self.kind == "external_call":
            f["endpoint"] = redact.external_endpoint(f["endpoint"])[:MAX_ENDPOINT_CHARS]
            if f.get("model") is not None:
                f["model"] = _cut(f["model"], MAX_MODEL_CHARS)
        elif self.kind == "activity":
            if f.get("description") is not None:
                f["description"] = _cut(f["description"], MAX_TEXT_CHARS)
        if f.get("error_message") is not None:
            f["error_message"] = _cut(f["error_message"], MAX_TEXT_CHARS)

    def to_json(self) -> str:
        """The event as the backend reads it: normalized once, then the same
        bytes on every resend. Raises ValueError for values JSON cannot hold
        (NaN, infinities, objects)."""
        if self._json is None:
            self.normalize()
            wire: Dict[str, Any] = {"event_id": self.event_id, "occurred_at": self.occurred_at}
            for name in ("user_id", "ip_address", "user_agent", "metadata"):
                v = getattr(self, name)
                if v is not None:
                    wire[name] = v
            wire["kind"] = self.kind
            wire.update((k, v) for k, v in self.fields.items() if v is not None)
            self._json = json.dumps(wire, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return self._json

    def __repr__(self) -> str:
        return f"Event({self.kind!r}, event_id={self.event_id!r}, occurred_at={self.occurred_at!r})"


def _fit_query(q: Dict[str, str]) -> Optional[Dict[str, str]]:
    """Keeps query parameters within what the backend accepts: keys too long
    left out, the first 50 names (by name) kept, values cut."""
    names = sorted(k for k in q if len(k) <= MAX_METADATA_KEY_CHARS)[:MAX_QUERY_PARAMS]
    out = {k: str(q[k])[:MAX_METADATA_STRING_CHARS] for k in names}
    return out or None


# ---- the four kinds -------------------------------------------------------


def activity(user_id: str, action: str, *, ip_address=None, user_agent=None, metadata=None, clock=time.time, **fields) -> Event:
    """Something a user did: ``action`` as ``^[a-z][a-z0-9_]{0,63}$``;
    fields ``description``, ``client_id``, ``report_id`` and, on
    ``generate_report``, ``report`` (a dict as in the contract)."""
    unknown = set(fields) - set(_ACTIVITY_FIELDS)
    if unknown:
        raise TypeError(f"activity() got unknown fields: {', '.join(sorted(unknown))}")
    body = {"action": action}
    body.update((k, fields.get(k)) for k in _ACTIVITY_FIELDS)
    return Event("activity", body, user_id=user_id, ip_address=ip_address, user_agent=user_agent, metadata=metadata, clock=clock)


def api_request(
    endpoint: str,
    method: str,
    status_code: int,
    response_time_ms: float,
    *,
    request_size: Optional[int] = None,
    response_size: Optional[int] = None,
    query_params: Optional[Dict[str, str]] = None,
    error_message: Optional[str] = None,
    sample_rate: float = 1.0,
    user_id=None,
    ip_address=None,
    user_agent=None,
    metadata=None,
    clock=time.time,
) -> Event:
    """A request your API served. A query string in ``endpoint`` is split
    into ``query_params`` (an explicit entry wins) and redacted."""
    body = {
        "endpoint": endpoint,
        "method": method,
        "status_code": status_code,
        "response_time_ms": response_time_ms,
        "request_size": request_size,
        "response_size": response_size,
        "query_params": dict(query_params) if query_params is not None else None,
        "error_message": error_message,
        "sample_rate": sample_rate,
    }
    return Event("api_request", body, user_id=user_id, ip_address=ip_address, user_agent=user_agent, metadata=metadata, clock=clock)


def auth(
    event_type: str,
    success: bool,
    *,
    error_message: Optional[str] = None,
    user_id=None,
    ip_address=None,
    user_agent=None,
    metadata=None,
    clock=time.time,
) -> Event:
    """A signup, login, login_failed, logout, reset_password or token_refresh."""
    if event_type not in AUTH_EVENT_TYPES:
        raise ValueError(f"event_type must be one of {', '.join(AUTH_EVENT_TYPES)}, not {event_type!r}")
    body = {"event_type": event_type, "success": bool(success), "error_message": error_message}
    return Event("auth", body, user_id=user_id, ip_address=ip_address, user_agent=user_agent, metadata=metadata, clock=clock)


def external_call(
    service: str,
    endpoint: str,
    model: Optional[str] = None,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    cost_estimate: Optional[float] = None,
    *,
    response_time_ms: float = 0.0,
    method: Optional[str] = None,
    status_code: Optional[int] = None,
    request_size: Optional[int] = None,
    response_size: Optional[int] = None,
    error_message: Optional[str] = None,
    user_id=None,
    ip_address=None,
    user_agent=None,
    metadata=None,
    clock=time.time,
) -> Event:
    """A call to an external API (``cost_estimate`` in USD). The endpoint is
    kept without its query string, fragment and ``user:pass@``."""
    body = {
        "service": service,
        "endpoint": endpoint,
        "method": method,
        "status_code": status_code,
        "response_time_ms": response_time_ms,
        "cost_estimate": cost_estimate,
        "request_size": request_size,
        "response_size": response_size,
        "error_message": error_message,
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
    }
    return Event("external_call", body, user_id=user_id, ip_address=ip_address, user_agent=user_agent, metadata=metadata, clock=clock)

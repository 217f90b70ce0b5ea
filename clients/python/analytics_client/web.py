"""What every web integration shares (the Django middlewares, the WSGI
middleware): the client's address behind trusted proxies, route templates
in ``{param}`` form, request and response sizes, and the rule that tracking
never breaks a request. Standard library only; no framework is imported.

The address rule is the Rust client's (``clients/rust/src/layer.rs``,
``client_ip``), so a Python and a Rust service behind the same proxies
report the same addresses.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from typing import Any, Optional

from .event import MAX_COUNT

log = logging.getLogger("analytics_client")


# ---- the client's address ------------------------------------------------


def parse_ip(value: Optional[str]) -> Optional[str]:
    """An IPv4 or IPv6 address, with or without a port (``1.2.3.4:80``,
    ``[::1]:80``), as the Rust client's ``parse_ip`` reads it; ``None`` for
    anything else. Returned in its normal form (what the backend stores).

    A zone index (``fe80::1%eth0``) is refused: Python's ``ipaddress``
    takes one, Rust's ``IpAddr`` (and so the backend) does not.
    """
    if not value or "%" in value:
        return None
    s = value.strip()
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        pass
    host, port = None, None
    if s.startswith("["):  # [v6]:port
        end = s.find("]:")
        if end > 0:
            host, port = s[1:end], s[end + 2 :]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                return None
    elif s.count(":") == 1:  # v4:port
        host, port = s.split(":")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return None
    if host is None or not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return None
    return str(ipaddress.ip_address(host))


def client_ip(forwarded_for: Optional[str], trusted: int, peer: Optional[str]) -> Optional[str]:
    """The client's address. Each trusted proxy appends the address it got
    the request from to ``X-Forwarded-For``, so with ``trusted`` proxies the
    client is ``trusted`` hops from the right; entries further left are
    whatever the client claimed and are never believed. With no trusted
    proxy, or no header, the socket's peer (``REMOTE_ADDR``). A hop that is
    not an address gives ``None`` rather than a guess (the backend refuses a
    malformed ``ip_address``)."""
    peer_ip = parse_ip(peer)
    if trusted <= 0 or forwarded_for is None:
        return peer_ip
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if not hops:
        return peer_ip
    # Fewer hops than proxies: every hop was written by a trusted proxy,
    # the leftmost is the furthest from us.
    return parse_ip(hops[max(len(hops) - trusted, 0)])


# ---- route templates ------------------------------------------------------

# Django's and Werkzeug's converters: <name>, <int:pk>, <any(a,b):kind>.
_ANGLE = re.compile(r"<(?:[^<>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
# Characters that, left after the conversion, mean the route was a regular
# expression we could not read as a template.
_REGEX_LEFT = re.compile(r"[()\[\]*+?|\\^$]")


def _named_groups_to_params(regex: str) -> Optional[str]:
    """``(?P<year>[0-9]{4})`` becomes ``{year}`` (the group skipped to its
    closing parenthesis, nested ones included); ``None`` when a group does
    not close."""
    out = []
    i, n = 0, len(regex)
    while i < n:
        if regex.startswith("(?P<", i):
            close = regex.find(">", i)
            if close < 0:
                return None
            name = regex[i + 4 : close]
            depth, j = 1, close + 1
            while j < n and depth:
                if regex[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
            if depth:
                return None
            out.append("{" + name + "}")
            i = j
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def route_template(route: Optional[str]) -> Optional[str]:
    """A framework's route in the ``{param}`` form the backend groups by,
    with a leading slash: Django's ``reports/<int:pk>`` and Flask's
    ``/reports/<int:pk>`` both become ``/reports/{pk}``; a Django
    ``re_path`` regex ``^articles/(?P<year>[0-9]{4})/$`` becomes
    ``/articles/{year}/``. ``None`` when there is no route or it is a
    regular expression that does not read as a path (unnamed groups,
    alternatives): the caller then uses the request's path."""
    if route is None:
        return None
    t = route
    if "(?P<" in t or "^" in t or "$" in t or "\\" in t:
        # A regex, or a path route below one (Django joins them, the inner
        # one without its ``^``): named groups first, before <...> reads
        # the group names as converters.
        t = _named_groups_to_params(t)
        if t is None:
            return None
        t = t.replace("^", "")
        t = re.sub(r"(\$|\\Z)$", "", t)
        t = re.sub(r"\\([./\-_~])", r"\1", t)  # escaped literals: \. \/ \-
    t = _ANGLE.sub(lambda m: "{" + m.group(1) + "}", t)
    if _REGEX_LEFT.search(t):
        return None
    return t if t.startswith("/") else "/" + t


# ---- sizes ----------------------------------------------------------------


def content_length(value: Any) -> Optional[int]:
    """A ``Content-Length`` value as a whole number of bytes, else ``None``:
    a size past what the backend takes (a forged header) is left out rather
    than sink the whole event."""
    if value is None:
        return None
    s = str(value).strip()
    if not (s.isascii() and s.isdigit()) or len(s) > 13:
        return None
    n = int(s)
    return n if n <= MAX_COUNT else None


# ---- tracking never breaks a request -------------------------------------


class _Failures:
    """How often tracking itself failed (a bug, a bad setting, an
    unexpected request object). Each failure is logged with its traceback
    and counted; the request it happened in is answered as if nothing was
    tracked."""

    def __init__(self):
        self._lock = threading.Lock()
        self.count = 0

    def record(self, what: str) -> None:
        with self._lock:
            self.count += 1
        log.warning("analytics %s failed; the request is served untracked", what, exc_info=True)


FAILURES = _Failures()


def tracking_failures() -> int:
    """Failures of tracking code since the process started (see :data:`FAILURES`)."""
    return FAILURES.count

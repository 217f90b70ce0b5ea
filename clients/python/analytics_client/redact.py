"""Secrets never reach storage: a port of the backend's rule
(``shared/src/validate/redact.rs``), so what the client redacts before
sending is exactly what the backend would redact on arrival.

A key is split into words (at ``_``, ``-``, ``.``, whitespace, ``[``, ``]``,
``:`` and ``/``, wherever a lower-case letter or a digit is followed by an
upper-case one, and before the last capital of an upper-case run followed by
a lower-case letter: ``APIKey`` is API, Key) and is sensitive when one of its
words is in :data:`SENSITIVE_WORDS` (compared ASCII case-insensitively).  A
value shaped like a secret (``Bearer ...``, a JWT) is redacted under any key.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

#: The words of a key that name a secret (``key`` included, as a whole word).
SENSITIVE_WORDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "credential",
    "credentials",
    "signature",
    "session",
    "sessionid",
    "auth",
    "authorization",
    "cookie",
    "jwt",
    "bearer",
    "otp",
    "apikey",
    "key",
)
_SENSITIVE = frozenset(SENSITIVE_WORDS)

#: The value that replaces a secret.
REDACTED = "[REDACTED]"

# Rust's `char::is_whitespace` (the Unicode White_Space property). Python's
# str.isspace also accepts U+001C..U+001F, which Rust does not.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_SEPARATORS = frozenset("_-.[]:/")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def _ascii_lower(s: str) -> str:
    # Rust's eq_ignore_ascii_case folds ASCII only: the Kelvin sign is not `k`.
    return s.translate(_ASCII_LOWER)


def _rust_trim(s: str) -> str:
    start, end = 0, len(s)
    while start < end and s[start] in _WHITESPACE:
        start += 1
    while end > start and s[end - 1] in _WHITESPACE:
        end -= 1
    return s[start:end]


def key_words(key: str) -> List[str]:
    """The words of a key, as the backend splits it."""
    words: List[str] = []
    start = 0
    prev: Optional[str] = None
    n = len(key)
    for i, ch in enumerate(key):
        if ch in _SEPARATORS or ch in _WHITESPACE:
            words.append(key[start:i])
            start = i + 1
            prev = None
            continue
        next_lower = i + 1 < n and key[i + 1].islower()
        camel = prev is not None and (prev.islower() or "0" <= prev <= "9")
        after_acronym = prev is not None and prev.isupper() and next_lower
        if ch.isupper() and (camel or after_acronym):
            words.append(key[start:i])
            start = i
        prev = ch
    words.append(key[start:])
    return [w for w in words if w]


def is_sensitive_key(key: str) -> bool:
    """True when one of the key's words names a secret."""
    return any(_ascii_lower(w) in _SENSITIVE for w in key_words(key))


def is_secret_value(value: str) -> bool:
    """True for a ``Bearer `` credential (any case) or a JWT-shaped value."""
    v = _rust_trim(value)
    if _ascii_lower(v[:7]) == "bearer ":
        return True
    return _is_jwt(v)


def _is_jwt(v: str) -> bool:
    parts = v.split(".")
    if len(parts) != 3:
        return False
    header, payload, signature = parts
    if not header or not payload:
        return False
    if not all(set(p) <= _B64URL for p in parts):
        return False
    h = header.rstrip("=")
    # Base64url without padding, canonical (no stray trailing bits), as the
    # backend's decoder reads it.
    if "=" in h or len(h) % 4 == 1:
        return False
    try:
        raw = base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))
    except (binascii.Error, ValueError):
        return False
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != h:
        return False
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(obj, dict)


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity are not JSON


def sanitize_json(value: Any) -> Any:
    """A copy of a JSON value with the values of sensitive keys and the
    secret-shaped strings replaced, at any depth (a whole object or array
    under a sensitive key goes)."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_sensitive_key(str(k)) else sanitize_json(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize_json(v) for v in value]
    if isinstance(value, str) and is_secret_value(value):
        return REDACTED
    return value


def sanitize_query_params(params: Dict[str, str]) -> Dict[str, str]:
    """A copy of query parameters with sensitive keys and secret-shaped
    values redacted."""
    return {k: (REDACTED if is_sensitive_key(k) or is_secret_value(v) else v) for k, v in params.items()}


def split_endpoint(endpoint: str) -> Tuple[str, Optional[str]]:
    """The path (before ``?`` or ``#``) and the query string (between ``?``
    and ``#``) when there is one; the fragment is dropped."""
    before_fragment = endpoint.split("#", 1)[0]
    if "?" in before_fragment:
        path, query = before_fragment.split("?", 1)
        return path, query
    return before_fragment, None


def external_endpoint(endpoint: str) -> str:
    """An external call's URL as kept: without query string, fragment and
    credentials (``https://user:pass@host/x`` is ``https://host/x``)."""
    path = split_endpoint(endpoint)[0]
    if "://" not in path:
        return path
    scheme, rest = path.split("://", 1)
    slash = rest.find("/")
    authority_end = len(rest) if slash < 0 else slash
    at = rest[:authority_end].rfind("@")
    if at < 0:
        return path
    return f"{scheme}://{rest[at + 1:]}"


def _percent_decode(s: str) -> str:
    data = s.encode("utf-8").replace(b"+", b" ")
    out = bytearray()
    i, n = 0, len(data)
    hexdigits = b"0123456789abcdefABCDEF"
    while i < n:
        b = data[i]
        if b == 0x25 and i + 2 < n and data[i + 1] in hexdigits and data[i + 2] in hexdigits:
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", errors="replace")


def query_pairs(query: str) -> Dict[str, str]:
    """A query string's pairs as ``application/x-www-form-urlencoded``:
    percent-decoded, ``+`` as a space, a name without ``=`` valued ``""``, a
    repeated name keeping its last value, nameless pairs left out."""
    out: Dict[str, str] = {}
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        name = _percent_decode(name)
        if not name:
            continue
        out[name] = _percent_decode(value)
    return out


def move_query_into_params(
    endpoint: str, params: Optional[Dict[str, str]]
) -> Tuple[str, Optional[Dict[str, str]], bool]:
    """Splits an endpoint's query string into its query parameters: returns
    the path, the parameters (an explicit entry wins) and whether the
    endpoint changed."""
    path, query = split_endpoint(endpoint)
    if len(path) == len(endpoint):
        return endpoint, params, False
    pairs = query_pairs(query) if query is not None else {}
    if pairs:
        merged = dict(params) if params else {}
        for k, v in pairs.items():
            merged.setdefault(k, v)
        params = merged
    return path, params, True

"""The pure rules of sending (a port of ``clients/rust/src/batch.rs``):
how events are cut into batches the backend accepts, how a batch body is
written, and what an answer means."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

from .event import MAX_BODY_BYTES, MAX_EVENTS

#: Bytes of ``{"sent_at":"…","events":[`` and ``]}`` with room to spare.
ENVELOPE_BYTES = 96

VALIDATION_FAILED = "validation_failed"
UNSTORABLE = "unstorable"
#: Codes of events refused for good (the same bytes get the same answer):
#: dropped and counted, never resent. The backend's PERMANENT_REJECTIONS.
PERMANENT_REJECTIONS = (VALIDATION_FAILED, UNSTORABLE)


def split(sizes: Sequence[int]) -> List[range]:
    """Cuts events (by serialized size in bytes) into consecutive ranges of
    at most 500 events and 1 MiB of body each."""
    out: List[range] = []
    start, total = 0, ENVELOPE_BYTES
    for i, size in enumerate(sizes):
        add = size + 1  # the comma
        if i > start and (i - start == MAX_EVENTS or total + add > MAX_BODY_BYTES):
            out.append(range(start, i))
            start, total = i, ENVELOPE_BYTES
        total += add
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out


def body(events_json: Iterable[str], sent_at: str) -> bytes:
    """The request body: this attempt's ``sent_at`` and the events."""
    return ('{"sent_at":' + json.dumps(sent_at) + ',"events":[' + ",".join(events_json) + "]}").encode("utf-8")


@dataclass
class Reply:
    status: int
    retry_after: Optional[float] = None
    body: bytes = b""


@dataclass
class Stored:
    """Stored at least partly. ``invalid`` are refused for good (index,
    message); ``again`` were not stored for another reason and are resent."""

    accepted: int
    duplicates: int = 0
    invalid: List[Tuple[int, str]] = field(default_factory=list)
    again: List[int] = field(default_factory=list)


@dataclass
class Invalid:
    """A 400: nothing in the batch can be stored; resending cannot help."""

    message: str


@dataclass
class TooLarge:
    """A 413: split the batch and send the halves."""


@dataclass
class Retry:
    """Anything else (503, other 5xx, 429, 401/403, network errors): the
    same batch is safe to send again later."""

    retry_after: Optional[float]
    reason: str


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in whole seconds (as the Rust client reads it)."""
    if value is None:
        return None
    v = value.strip()
    return float(int(v)) if v.isdigit() and v.isascii() else None


def classify(reply: Reply, n: int):
    """Reads an answer to a batch of ``n`` events."""
    text = reply.body.decode("utf-8", errors="replace")[:300]
    if 200 <= reply.status <= 299:
        try:
            o = json.loads(reply.body)
            accepted = int(o["accepted"])
            duplicates = int(o.get("duplicates") or 0)
            rejected = o.get("rejected") or []
            invalid, again = [], []
            for r in rejected:
                index = int(r["index"])
                if not 0 <= index < n:
                    continue
                code = r.get("code") or ""
                if code == "" or code in PERMANENT_REJECTIONS:
                    invalid.append((index, str(r.get("message") or "")))
                else:
                    again.append(index)
            return Stored(accepted, duplicates, invalid, again)
        except (ValueError, KeyError, TypeError, AttributeError):
            # A 2xx means the backend took the batch; an unreadable body is a
            # proxy's doing, not a reason to send it all again.
            return Stored(n)
    if reply.status == 400:
        return Invalid(text)
    if reply.status == 413:
        return TooLarge()
    return Retry(reply.retry_after, f"HTTP {reply.status}: {text}")

"""The client: a bounded buffer the caller's code pushes into, and the
flusher that sends it (a background thread, or explicit :meth:`Client.flush`
calls). A port of ``clients/rust/src/client.rs`` and ``client/flush.rs``.

Recording never waits on the network. Time is injectable: ``clock``
(seconds since the epoch, like ``time.time``) and ``sleep`` (like
``time.sleep``), so tests drive flush strategies and backoff without real
waiting.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Union

from . import batch as batchmod
from . import event as ev
from .batch import Invalid, Reply, Retry, Stored, TooLarge
from .config import Config
from .event import Event
from .transport import HttpTransport, SendError

log = logging.getLogger("analytics_client")

TokenSource = Union[str, Callable[[], str], None]


@dataclass
class Stats:
    """What the client has done since it started. ``recorded`` = ``sent`` +
    ``duplicates`` + ``rejected`` + ``dropped`` + ``buffered`` (+ in flight),
    except that records after shutdown count only as dropped."""

    recorded: int = 0
    sampled_out: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    retried: int = 0
    dropped: int = 0
    buffered: int = 0


@dataclass
class FlushReport:
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: Events put back in the buffer: the backend stayed unreachable.
    requeued: int = 0
    #: Events lost by this flush (requeued into a full buffer, or left at shutdown).
    dropped: int = 0


class _Backoff:
    """Full-jitter exponential backoff: delay uniform in
    ``[0, min(cap, base * 2**n)]``, at most ``max_attempts`` attempts, never
    past the deadline."""

    def __init__(self, base, cap, max_attempts, deadline, clock, rng):
        self.base, self.cap, self.max_attempts, self.deadline = base, cap, max_attempts, deadline
        self.clock, self.rng, self.attempt = clock, rng, 0

    def next_delay(self) -> Optional[float]:
        self.attempt += 1
        if self.attempt >= self.max_attempts:
            return None
        ceiling = min(self.base * (1 << min(self.attempt, 16)), self.cap)
        delay = self.rng.uniform(0.0, ceiling)
        if self.deadline is not None and self.clock() + delay >= self.deadline:
            return None
        return delay


class Client:
    """The handle a service shares. Build it once::

        client = Client()            # settings from the environment
        client.activity("u-42", "generate_report", client_id="c-7")

    Arguments (all optional): ``config`` (default :meth:`Config.from_env`),
    ``token`` (a string or a callable asked before every send; default
    ``ANALYTICS_TOKEN``), ``transport`` (anything with
    ``post(bearer, body, timeout=None) -> Reply``), ``clock``, ``sleep``,
    ``rng`` (a ``random.Random``), ``background`` (start the flusher
    thread; default: unless disabled or ``flush_per_invocation``),
    ``flush_at_exit`` (register :meth:`shutdown` with ``atexit``).
    """

    def __init__(
        self,
        config: Optional[Config] = None,
        *,
        token: TokenSource = None,
        transport=None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Optional[random.Random] = None,
        background: Optional[bool] = None,
        flush_at_exit: bool = True,
    ):
        self.config = cfg = config if config is not None else Config.from_env()
        self._token = token if token is not None else (cfg.token or "")
        if transport is None and cfg.enabled:
            transport = HttpTransport(cfg.api_url, cfg.request_timeout)
        self._transport = transport
        self._clock, self._sleep = clock, sleep
        self._rng = rng if rng is not None else random.Random()
        self._buffer: Deque[Event] = deque()
        self._lock = threading.Lock()  # the buffer and the counters
        self._flushing = threading.Lock()  # one flush at a time
        self._stats = Stats()
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_due = clock() + cfg.flush_interval
        self._thread: Optional[threading.Thread] = None
        self._atexit = False
        if background is None:
            background = cfg.enabled and not cfg.flush_per_invocation
        if background and cfg.enabled:
            self._thread = threading.Thread(target=self._run, name="analytics-flusher", daemon=True)
            self._thread.start()
        if flush_at_exit and cfg.enabled:
            atexit.register(self._exit)
            self._atexit = True

    # ---- recording ---------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def record(self, event: Event) -> None:
        """Puts an event in the buffer and returns at once; when the buffer
        is full the oldest event is dropped (and counted)."""
        cfg = self.config
        if not cfg.enabled:
            return
        with self._lock:
            if self._closed:
                self._stats.dropped += 1
                return
            if len(self._buffer) >= cfg.buffer_capacity:
                self._buffer.popleft()
                self._stats.dropped += 1
            self._buffer.append(event)
            self._stats.recorded += 1
            n = len(self._buffer)
        if cfg.by_count and n >= cfg.flush_count_threshold:
            self._wake.set()

    def activity(self, user_id: str, action: str, **fields) -> Optional[Event]:
        """Records an ``activity`` event (see :func:`analytics_client.event.activity`)."""
        if not self.enabled:
            return None
        e = ev.activity(user_id, action, clock=self._clock, **fields)
        self.record(e)
        return e

    def auth(self, event_type: str, success: bool, **fields) -> Optional[Event]:
        """Records an ``auth`` event (see :func:`analytics_client.event.auth`)."""
        if not self.enabled:
            return None
        e = ev.auth(event_type, success, clock=self._clock, **fields)
        self.record(e)
        return e

    def external_call(self, service: str, endpoint: str, *args, **fields) -> Optional[Event]:
        """Records an ``external_call`` event (see :func:`analytics_client.event.external_call`)."""
        if not self.enabled:
            return None
        e = ev.external_call(service, endpoint, *args, clock=self._clock, **fields)
        self.record(e)
        return e

    def api_request(self, endpoint: str, method: str, status_code: int, response_time_ms: float, **fields) -> Optional[Event]:
        """Records an ``api_request`` event, unless its path is excluded
        (``ANALYTICS_EXCLUDED_PATHS``) or sampling leaves it out; a kept
        request carries ``sample_rate`` (1 for a 5xx, always kept)."""
        cfg = self.config
        if not cfg.enabled:
            return None
        path = endpoint.split("#", 1)[0].split("?", 1)[0]
        if cfg.is_excluded(path):
            return None
        rate = cfg.effective_sampling_rate()
        if status_code >= 500:
            rate = 1.0
        if rate < 1.0 and self._rng.random() >= rate:
            with self._lock:
                self._stats.sampled_out += 1
            return None
        fields.setdefault("sample_rate", rate)
        e = ev.api_request(endpoint, method, status_code, response_time_ms, clock=self._clock, **fields)
        self.record(e)
        return e

    # ---- flushing ----------------------------------------------------------

    def tick(self) -> Optional[FlushReport]:
        """Flushes when the strategy says so: the count threshold is reached
        (count, hybrid) or the interval has passed on the clock (time,
        hybrid). The background thread calls it; without one, call it from
        your own loop. Returns the report when it flushed."""
        cfg = self.config
        now = self._clock()
        with self._lock:
            n = len(self._buffer)
        due_count = cfg.by_count and n >= cfg.flush_count_threshold
        due_time = cfg.by_time and now >= self._next_due
        if due_time:
            self._next_due = now + cfg.flush_interval
        if due_count or due_time:
            return self.flush()
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = max(0.0, self._next_due - self._clock()) if self.config.by_time else None
            if wait is not None:
                wait = min(wait, 1.0)  # re-read the clock at least every second
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.tick()
            except Exception:  # never let the flusher die
                log.exception("analytics flush failed")

    def flush(self, timeout: Optional[float] = None) -> FlushReport:
        """Sends what is buffered now and returns when the backend has
        answered for it (or every retry failed and the rest went back to the
        front of the buffer). ``timeout`` (seconds on the clock) bounds the
        retries and each attempt."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._flushing:
            return self._flush(deadline)

    def shutdown(self, timeout: Optional[float] = None) -> FlushReport:
        """Stops the flusher, sends what is left, and counts as dropped what
        still could not be sent. Records after this are dropped (and
        counted). Safe to call more than once."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
            self._thread = None
        if self._atexit:
            atexit.unregister(self._exit)
            self._atexit = False
        if not self.enabled:
            return FlushReport()
        report = self.flush(timeout)
        with self._lock:
            left = len(self._buffer)
            self._buffer.clear()
            self._stats.dropped += left
        if left:
            log.warning("%d analytics events not delivered before shutdown are lost", left)
            report.dropped += left
        return report

    def _exit(self) -> None:
        # At interpreter exit: bounded, so a backend that is down cannot hold
        # the process for the whole retry schedule.
        try:
            self.shutdown(timeout=self.config.request_timeout)
        except Exception:
            log.exception("analytics flush at exit failed")

    def stats(self) -> Stats:
        with self._lock:
            s = Stats(**vars(self._stats))
            s.buffered = len(self._buffer)
        return s

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    # ---- one flush ---------------------------------------------------------

    def _count(self, **add: int) -> None:
        with self._lock:
            for k, v in add.items():
                setattr(self._stats, k, getattr(self._stats, k) + v)

    def _flush(self, deadline: Optional[float]) -> FlushReport:
        report = FlushReport()
        if self._transport is None:
            return report
        with self._lock:
            todo = len(self._buffer)  # only what is buffered now: a flush ends
        while todo > 0:
            with self._lock:
                n = min(todo, ev.MAX_EVENTS, len(self._buffer))
                taken = [self._buffer.popleft() for _ in range(n)]
            if not taken:
                break
            todo -= len(taken)
            ready: List[Event] = []
            sizes: List[int] = []
            for e in taken:
                try:
                    size = len(e.to_json().encode("utf-8"))
                except (ValueError, TypeError) as err:
                    log.warning("analytics event %s not serializable, not sent: %s", e.event_id, err)
                    size = None
                if size is None or size > ev.MAX_EVENT_BYTES:
                    if size is not None:
                        log.warning("analytics event %s over the 32 KiB limit (%d bytes) not sent", e.event_id, size)
                    report.rejected += 1
                    self._count(rejected=1)
                    continue
                ready.append(e)
                sizes.append(size)
            ranges = batchmod.split(sizes)
            for i, r in enumerate(ranges):
                unsent = self._send_batch(ready[r.start : r.stop], report, deadline)
                if unsent:
                    rest = [e for later in ranges[i + 1 :] for e in ready[later.start : later.stop]]
                    self._requeue(unsent + rest, report)
                    return report
        return report

    def _requeue(self, events: List[Event], report: FlushReport) -> None:
        report.requeued += len(events)
        with self._lock:
            self._buffer.extendleft(reversed(events))
            dropped = 0
            while len(self._buffer) > self.config.buffer_capacity:
                self._buffer.popleft()
                dropped += 1
            self._stats.dropped += dropped
        if dropped:
            log.warning("analytics buffer full while the backend is unreachable: %d oldest events dropped", dropped)
            report.dropped += dropped

    def _token_value(self) -> str:
        t = self._token
        return t() if callable(t) else t

    def _attempt(self, events: List[Event], deadline: Optional[float]) -> Reply:
        try:
            bearer = self._token_value()
        except Exception as e:
            raise SendError(f"the token callback failed: {e}") from e
        body = batchmod.body((e.to_json() for e in events), ev.format_time(self._clock()))
        remaining = None if deadline is None else max(0.001, deadline - self._clock())
        try:
            return self._transport.post(bearer, body, timeout=remaining)
        except SendError:
            raise
        except Exception as e:  # a transport's own failure is a network error
            raise SendError(str(e)) from e

    def _send_batch(self, batch: List[Event], report: FlushReport, deadline: Optional[float]) -> List[Event]:
        """Sends one batch until the backend has answered for each event:
        splits it on a 413, resends only what was not stored, retries with
        full-jitter backoff (at least Retry-After). Returns what is still
        unsent when the retries are used up."""
        cfg = self.config
        backoff = _Backoff(cfg.backoff_base, cfg.backoff_cap, cfg.max_retries + 1, deadline, self._clock, self._rng)
        stack = [batch]
        while stack:
            batch = stack.pop()
            while True:
                try:
                    verdict = batchmod.classify(self._attempt(batch, deadline), len(batch))
                except SendError as e:
                    verdict = Retry(None, str(e))
                if isinstance(verdict, Stored):
                    refused = len(verdict.invalid)
                    self._count(sent=verdict.accepted, duplicates=verdict.duplicates, rejected=refused)
                    report.sent += verdict.accepted
                    report.duplicates += verdict.duplicates
                    report.rejected += refused
                    if refused:
                        index, message = verdict.invalid[0]
                        log.warning("%d analytics events refused as invalid (first: #%d %s)", refused, index, message)
                    if not verdict.again:
                        break
                    keep = set(verdict.again)
                    batch = [e for i, e in enumerate(batch) if i in keep]
                    retry_after = None
                elif isinstance(verdict, Invalid):
                    log.error("analytics batch of %d refused as a whole: %s", len(batch), verdict.message)
                    self._count(rejected=len(batch))
                    report.rejected += len(batch)
                    break
                elif isinstance(verdict, TooLarge):
                    if len(batch) == 1:
                        log.warning("analytics event refused as too large")
                        self._count(rejected=1)
                        report.rejected += 1
                    else:
                        half = len(batch) // 2
                        stack.append(batch[half:])
                        stack.append(batch[:half])
                    break
                else:
                    log.debug("analytics batch not delivered (%s); retrying", verdict.reason)
                    retry_after = verdict.retry_after
                delay = backoff.next_delay()
                if delay is None:
                    log.warning("analytics backend unreachable after every retry; %d events kept for the next flush", len(batch))
                    unsent = list(batch)
                    while stack:
                        unsent.extend(stack.pop())
                    return unsent
                self._count(retried=len(batch))
                floor = min(retry_after or 0.0, cfg.backoff_cap)
                self._sleep(max(delay, floor))
        return []

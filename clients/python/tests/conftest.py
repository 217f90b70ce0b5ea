"""A fake backend (ThreadingHTTPServer on 127.0.0.1:0 recording bodies and
answering scripted statuses), a fake clock and a scripted random source."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analytics_client import Client, Config

EVENTS_PATH = "/api/v1/analytics/events"


class FakeBackend:
    """Records every request; answers from ``script`` (a list of
    ``(status, headers, body)`` tuples or callables taking the parsed
    request body) in order, then the default answer: 202, every event
    accepted, a resend of a stored (event_id, occurred_at) counted as a
    duplicate."""

    def __init__(self):
        self.requests = []  # (path, headers, parsed body)
        self.script = []
        self.stored = set()
        self.lock = threading.Lock()
        self.received = threading.Condition(self.lock)

    def store(self, events):
        accepted = duplicates = 0
        for e in events:
            key = (e["event_id"], e["occurred_at"])
            if key in self.stored:
                duplicates += 1
            else:
                self.stored.add(key)
                accepted += 1
        return accepted, duplicates

    def default(self, body):
        accepted, duplicates = self.store(body["events"])
        return 202, {}, {"accepted": accepted, "duplicates": duplicates, "rejected": [], "received_at": "x"}

    def answer(self, path, headers, raw):
        body = json.loads(raw)
        with self.lock:
            self.requests.append((path, headers, body))
            step = self.script.pop(0) if self.script else self.default
            result = step(body) if callable(step) else step
            self.received.notify_all()
        return result

    def wait_for(self, n, timeout=10.0):
        """Blocks until n requests arrived (a ceiling for a broken test, not a timing dependency)."""
        with self.lock:
            return self.received.wait_for(lambda: len(self.requests) >= n, timeout)

    @property
    def bodies(self):
        return [b for _, _, b in self.requests]

    @property
    def events(self):
        return [e for b in self.bodies for e in b["events"]]


@pytest.fixture
def backend():
    fake = FakeBackend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers, body = fake.answer(self.path, dict(self.headers), raw)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


class FakeClock:
    """Seconds since the epoch that move only when told (or slept)."""

    def __init__(self, now=1_795_000_000.0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedRandom:
    """``uniform(a, b)`` returns ``a + fraction * (b - a)``; ``random()`` returns ``values`` in turn."""

    def __init__(self, fraction=0.0, values=()):
        self.fraction = fraction
        self.values = list(values)
        self.ceilings = []

    def uniform(self, a, b):
        self.ceilings.append(b)
        return a + self.fraction * (b - a)

    def random(self):
        return self.values.pop(0)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_client(backend, clock):
    """A client of the fake backend, no background thread, no atexit, fake time."""
    made = []

    def make(rng=None, background=False, **settings):
        settings.setdefault("api_url", backend.url)
        cfg = Config(request_timeout=5.0, **settings)
        c = Client(cfg, token="t0k", clock=clock, sleep=clock.sleep, rng=rng or ScriptedRandom(), background=background, flush_at_exit=False)
        made.append(c)
        return c

    yield make
    for c in made:
        c.shutdown(timeout=1.0) if c._thread is not None else None

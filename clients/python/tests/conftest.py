"""A fake backend (ThreadingHTTPServer on 127.0.0.1:0 recording bodies and
answering scripted statuses), a transport that keeps what is posted, a fake
clock and a scripted random source; for the integration tests, the real
backend on the local stack (``local_api``) and local tokens (``mint_token``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analytics_client import Client, Config, Reply

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


class CapturingTransport:
    """Stands in for HttpTransport (the middleware tests): keeps every
    batch posted and answers 202 with every event accepted."""

    def __init__(self):
        self.batches = []

    def post(self, bearer, body, timeout=None):
        batch = json.loads(body)
        self.batches.append((bearer, batch))
        return Reply(202, None, json.dumps({"accepted": len(batch["events"]), "duplicates": 0, "rejected": []}).encode())

    @property
    def events(self):
        return [e for _, b in self.batches for e in b["events"]]


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


# ---- the real backend on the local stack (integration tests) --------------

REPO = Path(__file__).resolve().parents[3]

#: What the Makefile exports for the local stack; the environment wins.
LOCAL_STACK_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
    "ANALYTICS_LOCAL_JWT_SECRET": "local-dev-secret",
    "ANALYTICS_LOCAL_JWT_ISSUER": "analytics-local",
}


def local_env():
    env = dict(os.environ)
    for k, v in LOCAL_STACK_ENV.items():
        env.setdefault(k, v)
    return env


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(sub, tenant=None, roles=(), scopes=(), ttl=600, secret=None, issuer=None):
    """A local HS256 token as the backend's local verifier checks it (the
    claims of ``tests/src/lib.rs`` ``token()``: roles in ``cognito:groups``,
    the tenant in ``custom:tenant``, scopes space-separated in ``scope``)."""
    env = local_env()
    secret = secret or env["ANALYTICS_LOCAL_JWT_SECRET"]
    now = int(time.time())
    claims = {"sub": sub, "iss": issuer or env["ANALYTICS_LOCAL_JWT_ISSUER"], "iat": now, "exp": now + ttl}
    if roles:
        claims["cognito:groups"] = list(roles)
    if scopes:
        claims["scope"] = " ".join(scopes)
    if tenant is not None:
        claims["custom:tenant"] = tenant
    head = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(sig)}"


def _dynamodb_reachable(endpoint):
    u = urlparse(endpoint)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=0.5):
            return True
    except OSError:
        return False


class LocalApi:
    """``target/debug/local-api``: the ingest and query functions over a
    fresh table of DynamoDB Local, on 127.0.0.1."""

    def __init__(self, url, table, proc):
        self.url, self.table, self.proc = url, table, proc

    def get(self, path, token, **params):
        """GET ``/api/v1/analytics{path}``: (status, parsed body)."""
        import urllib.error
        import urllib.parse
        import urllib.request

        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        req = urllib.request.Request(f"{self.url}/api/v1/analytics{path}{query}", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="session")
def local_api():
    """Starts ``local-api`` once per session (building it with cargo when
    it is missing); skipped, with the reason, only when DynamoDB Local does
    not answer (``make test`` starts it first, so there they always run)."""
    env = local_env()
    endpoint = env["AWS_ENDPOINT_URL_DYNAMODB"]
    if not _dynamodb_reachable(endpoint):
        pytest.skip(f"DynamoDB Local is not reachable on {endpoint}: start the stack with tests/stack/start.sh (make test does)")
    target = Path(env.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    binary = target / "debug" / "local-api"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "integration-tests", "--bin", "local-api"], cwd=REPO, env=env, check=True)
    log = open(target / "local-api.log", "wb")
    # --exit-with-stdin: if this process dies, the server goes with it.
    proc = subprocess.Popen([str(binary), "0", "--exit-with-stdin"], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    line = {}

    def read_ready():
        line["text"] = proc.stdout.readline()

    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    reader.join(120)  # creating the table; a ceiling for a broken start, not a timing dependency
    try:
        ready = json.loads(line.get("text") or b"null")
        if not ready:
            raise RuntimeError(f"local-api did not start (exit code {proc.poll()}); see {target / 'local-api.log'}")
        yield LocalApi(ready["url"], ready["table"], proc)
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(10)
        log.close()

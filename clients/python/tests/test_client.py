"""The client against the fake backend, with a fake clock and sleep."""

import json
import threading
import uuid
from datetime import datetime

import pytest

from analytics_client import Client, Config, event as ev
from analytics_client.batch import ENVELOPE_BYTES, split

from conftest import EVENTS_PATH, ScriptedRandom


def record_n(client, n, **meta):
    return [client.activity(f"u-{i}", "view_dashboard", **meta) for i in range(n)]


# ---- batching limits ------------------------------------------------------


def test_split_keeps_500_events_and_1_mib():
    assert split([100] * 1234) == [range(0, 500), range(500, 1000), range(1000, 1234)]
    sizes = [ev.MAX_EVENT_BYTES] * 100
    ranges = split(sizes)
    assert len(ranges) >= 4 and sum(len(r) for r in ranges) == 100
    for r in ranges:
        assert sum(sizes[i] + 1 for i in r) + ENVELOPE_BYTES <= ev.MAX_BODY_BYTES
    assert split([]) == []


def test_a_flush_sends_batches_of_at_most_500(make_client, backend):
    c = make_client(buffer_capacity=5000)
    record_n(c, 1201)
    report = c.flush()
    assert [len(b["events"]) for b in backend.bodies] == [500, 500, 201]
    assert report.sent == 1201 and c.stats().sent == 1201 and c.stats().buffered == 0
    path, headers, _ = backend.requests[0]
    assert path == EVENTS_PATH
    assert headers["Authorization"] == "Bearer t0k" and headers["Content-Type"] == "application/json"
    ids = [e["event_id"] for e in backend.events]
    assert len(set(ids)) == 1201, "every event exactly once, in order"
    assert [e["user_id"] for e in backend.events] == [f"u-{i}" for i in range(1201)]


def test_a_flush_keeps_bodies_within_1_mib(make_client, backend):
    c = make_client()
    for i in range(100):  # ~30 KiB each: 100 of them need 3+ bodies
        c.activity(f"u-{i}", "upload_csv", metadata={f"k{j}": "x" * 1000 for j in range(30)})
    c.flush()
    assert len(backend.requests) >= 3
    for _, headers, body in backend.requests:
        assert int(headers["Content-Length"]) <= ev.MAX_BODY_BYTES
    assert len(backend.events) == 100


def test_an_event_over_32_kib_is_refused_locally(make_client, backend):
    c = make_client()
    c.activity("u-1", "upload_csv", metadata={f"k{j}": "x" * 1000 for j in range(40)})
    c.activity("u-2", "upload_csv")
    report = c.flush()
    assert report.rejected == 1 and c.stats().rejected == 1
    assert [e["user_id"] for e in backend.events] == ["u-2"]


def test_each_attempt_carries_its_own_sent_at(make_client, backend, clock):
    backend.script = [(503, {"Retry-After": "2"}, {"error": {"code": "unavailable"}})]
    c = make_client()
    c.activity("u-1", "login")
    c.flush()
    first, second = (b["sent_at"] for b in backend.bodies)
    assert first != second
    t1, t2 = (datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in (first, second))
    assert t2 - t1 == pytest.approx(clock.sleeps[0], abs=1e-5)


# ---- flush strategies -----------------------------------------------------


def test_count_strategy_flushes_at_the_threshold_only(make_client, backend, clock):
    c = make_client(flush_strategy="count", flush_count_threshold=3)
    record_n(c, 2)
    clock.advance(3600)
    assert c.tick() is None and not backend.requests, "time does not matter to `count`"
    c.activity("u-x", "login")
    assert c.tick().sent == 3
    assert len(backend.events) == 3


def test_time_strategy_flushes_each_interval_only(make_client, backend, clock):
    c = make_client(flush_strategy="time", flush_interval=10.0, flush_count_threshold=2)
    record_n(c, 5)
    assert c.tick() is None, "the count does not matter to `time`"
    clock.advance(9.999)
    assert c.tick() is None
    clock.advance(0.001)
    assert c.tick().sent == 5
    c.activity("u-y", "login")
    clock.advance(5)
    assert c.tick() is None, "the next interval starts at the last flush"
    clock.advance(5)
    assert c.tick().sent == 1


def test_hybrid_strategy_flushes_on_whichever_comes_first(make_client, backend, clock):
    c = make_client(flush_strategy="hybrid", flush_interval=10.0, flush_count_threshold=3)
    record_n(c, 3)
    assert c.tick().sent == 3  # by count, before the interval
    c.activity("u-z", "login")
    assert c.tick() is None
    clock.advance(10)
    assert c.tick().sent == 1  # by time, under the threshold
    assert len(backend.requests) == 2


def test_the_background_thread_flushes_at_the_count(backend, clock):
    cfg = Config(api_url=backend.url, flush_strategy="count", flush_count_threshold=4)
    c = Client(cfg, token="t", clock=clock, sleep=clock.sleep, flush_at_exit=False)
    try:
        record_n(c, 4)
        assert backend.wait_for(1), "the flusher thread sent the batch"
        assert len(backend.bodies[0]["events"]) == 4
    finally:
        c.shutdown()
    assert c.stats().sent == 4


# ---- retries and Retry-After ----------------------------------------------


def test_retry_after_is_a_floor_on_the_jittered_wait(make_client, backend, clock):
    backend.script = [(503, {"Retry-After": "3"}, {}), (429, {"Retry-After": "7"}, {}), (503, {}, {})]
    c = make_client(rng=ScriptedRandom(fraction=0.0))
    c.activity("u-1", "login")
    report = c.flush()
    assert clock.sleeps == [3.0, 7.0, 0.0], "full jitter drew 0: the server's Retry-After is the wait"
    assert report.sent == 1 and c.stats().retried == 3


def test_full_jitter_ceilings_double_up_to_the_cap(make_client, backend, clock):
    backend.script = [(500, {}, {})] * 5 + [(502, {"Retry-After": "999"}, {})]
    rng = ScriptedRandom(fraction=1.0)
    c = make_client(rng=rng, max_retries=10, backoff_base=0.2, backoff_cap=20.0)
    c.activity("u-1", "login")
    c.flush()
    assert rng.ceilings == pytest.approx([0.4, 0.8, 1.6, 3.2, 6.4, 12.8])
    assert clock.sleeps == pytest.approx([0.4, 0.8, 1.6, 3.2, 6.4, 20.0]), "Retry-After is capped at backoff_cap"


def test_network_errors_are_retried(backend, clock):
    class Flaky:
        def __init__(self, real):
            self.real, self.calls = real, 0

        def post(self, bearer, body, timeout=None):
            self.calls += 1
            if self.calls == 1:
                raise OSError("connection refused")
            return self.real.post(bearer, body, timeout)

    from analytics_client import HttpTransport

    t = Flaky(HttpTransport(backend.url, 5))
    c = Client(Config(api_url=backend.url), token="t", transport=t, clock=clock, sleep=clock.sleep,
               rng=ScriptedRandom(), background=False, flush_at_exit=False)
    c.activity("u-1", "login")
    assert c.flush().sent == 1 and t.calls == 2 and len(clock.sleeps) == 1


def test_an_unreachable_backend_gets_max_retries_then_events_wait(make_client, clock):
    import socket

    with socket.socket() as closed:  # bound, never listening: every connect is refused at once
        closed.bind(("127.0.0.1", 0))
        c = make_client(api_url=f"http://127.0.0.1:{closed.getsockname()[1]}", max_retries=3)
        record_n(c, 3)
        report = c.flush()
    assert len(clock.sleeps) == 3, "max_retries waits, then give up"
    assert report.requeued == 3 and c.stats().buffered == 3 and c.stats().retried == 9


def test_requeued_events_go_back_in_front_and_keep_their_ids(make_client, backend, clock):
    backend.script = [(503, {}, {})] * 3
    c = make_client(max_retries=2)
    first = record_n(c, 2)
    assert c.flush().requeued == 2
    later = c.activity("u-later", "login")
    assert c.flush().sent == 3
    last = backend.bodies[-1]["events"]
    assert [e["event_id"] for e in last] == [first[0].event_id, first[1].event_id, later.event_id]


def test_a_400_drops_the_batch_and_counts_it(make_client, backend):
    backend.script = [(400, {}, {"error": {"code": "validation_failed", "details": []}})]
    c = make_client()
    record_n(c, 2)
    assert c.flush().rejected == 2 and c.stats().rejected == 2 and len(backend.requests) == 1


def test_a_413_splits_the_batch(make_client, backend):
    backend.script = [(413, {}, {"error": {"code": "payload_too_large"}})]
    c = make_client()
    record_n(c, 4)
    assert c.flush().sent == 4
    assert [len(b["events"]) for b in backend.bodies] == [4, 2, 2]


# ---- only the unstored resent; duplicates ---------------------------------


def test_only_what_was_not_stored_is_resent(make_client, backend):
    def partial(body):
        e = body["events"]
        backend.store([e[0], e[2]])
        return 202, {}, {"accepted": 2, "duplicates": 0, "received_at": "x", "rejected": [
            {"index": 1, "event_id": e[1]["event_id"], "code": "validation_failed", "message": "status_code: must be 100..=599"},
            {"index": 3, "event_id": e[3]["event_id"], "code": "unstorable_later", "message": "throttled"}]}

    backend.script = [partial]
    c = make_client()
    sent = record_n(c, 4)
    report = c.flush()
    assert [e["event_id"] for e in backend.bodies[1]["events"]] == [sent[3].event_id]
    assert (report.sent, report.rejected) == (3, 1)
    s = c.stats()
    assert (s.sent, s.rejected, s.retried, s.buffered) == (3, 1, 1, 0)


def test_a_resend_after_a_lost_answer_is_a_duplicate(make_client, backend):
    def stored_but_answer_lost(body):
        backend.store(body["events"])
        return 503, {"Retry-After": "1"}, {"error": {"code": "unavailable"}}

    backend.script = [stored_but_answer_lost]
    c = make_client()
    record_n(c, 3)
    report = c.flush()
    a, b = backend.bodies
    assert [(e["event_id"], e["occurred_at"]) for e in a["events"]] == [(e["event_id"], e["occurred_at"]) for e in b["events"]]
    assert a["events"] == b["events"], "the same bytes, only sent_at differs"
    assert a["sent_at"] != b["sent_at"]
    assert (report.sent, report.duplicates) == (0, 3)
    assert c.stats().duplicates == 3 and len(backend.stored) == 3


# ---- the bounded buffer ---------------------------------------------------


def test_a_full_buffer_drops_the_oldest(make_client, backend):
    c = make_client(buffer_capacity=3)
    events = record_n(c, 5)
    s = c.stats()
    assert (s.recorded, s.dropped, s.buffered) == (5, 2, 3)
    c.flush()
    assert [e["event_id"] for e in backend.events] == [e.event_id for e in events[2:]]


def test_requeueing_into_a_full_buffer_drops_the_oldest(make_client, backend, clock):
    backend.script = [(503, {}, {})]
    c = make_client(buffer_capacity=3, max_retries=0)
    old = record_n(c, 2)

    def fill_during_flush(bearer, body, timeout=None, _real=c._transport.post):
        if len(backend.requests) == 0:
            record_n(c, 2)  # two newer events arrive while the batch is out
        return _real(bearer, body, timeout)

    c._transport.post = fill_during_flush
    report = c.flush()
    assert (report.requeued, report.dropped) == (2, 1)
    assert c.stats().buffered == 3 and c.stats().dropped == 1
    c.flush()
    assert [e["event_id"] for e in backend.bodies[-1]["events"]][0] == old[1].event_id


# ---- shutdown, exit, stats ------------------------------------------------


def test_shutdown_sends_what_is_left_and_drops_later_records(make_client, backend):
    c = make_client()
    record_n(c, 2)
    assert c.shutdown().sent == 2
    c.activity("u-late", "login")
    s = c.stats()
    assert (s.recorded, s.sent, s.dropped, s.buffered) == (2, 2, 1, 0)


def test_shutdown_drops_and_counts_what_cannot_be_sent(make_client, backend):
    backend.script = [(503, {}, {})] * 2
    c = make_client(max_retries=1)
    record_n(c, 2)
    report = c.shutdown()
    assert report.dropped == 2 and c.stats().dropped == 2


def test_flush_at_exit_is_registered_and_unregistered(backend, clock, monkeypatch):
    registered = []
    import analytics_client.client as mod

    monkeypatch.setattr(mod.atexit, "register", lambda f: registered.append(f))
    monkeypatch.setattr(mod.atexit, "unregister", lambda f: registered.remove(f))
    c = Client(Config(api_url=backend.url), token="t", clock=clock, sleep=clock.sleep, background=False)
    c.activity("u-1", "login")
    assert len(registered) == 1
    registered[0]()  # what the interpreter runs at exit
    assert len(backend.events) == 1 and registered == []


def test_a_token_callable_is_asked_before_every_send(make_client, backend):
    tokens = iter(["a", "b"])
    backend.script = [(401, {}, {})]
    c = make_client()
    c._token = lambda: next(tokens)
    c.activity("u-1", "login")
    c.flush()
    assert [h["Authorization"] for _, h, _ in backend.requests] == ["Bearer a", "Bearer b"]


def test_disabled_records_nothing(backend, clock):
    c = Client(Config(enabled=False), clock=clock, flush_at_exit=False)
    assert c.activity("u-1", "login") is None
    assert c.flush().sent == 0 and c.stats().recorded == 0


# ---- sampling and exclusions ----------------------------------------------


def test_sampling_keeps_5xx_and_sends_the_rate(make_client, backend):
    c = make_client(sampling_enabled=True, sampling_rate=0.25, rng=ScriptedRandom(values=[0.1, 0.9]))
    c.api_request("/a", "GET", 200, 1.0)  # 0.1 < 0.25: kept
    c.api_request("/b", "GET", 200, 1.0)  # 0.9: sampled out
    c.api_request("/c", "GET", 503, 1.0)  # a 5xx is always kept
    c.api_request("/health/db", "GET", 200, 1.0)  # excluded
    c.flush()
    assert [(e["endpoint"], e["sample_rate"]) for e in backend.events] == [("/a", 0.25), ("/c", 1.0)]
    assert c.stats().sampled_out == 1


def test_an_unstorable_event_is_dropped_and_counted_not_resent(make_client, backend):
    def refuse_one(body):
        e = body["events"]
        backend.store([e[0]])
        return 202, {}, {"accepted": 1, "duplicates": 0, "received_at": "x", "rejected": [
            {"index": 1, "event_id": e[1]["event_id"], "code": "unstorable", "message": "item exceeds 400 KB"}]}

    backend.script = [refuse_one]
    c = make_client()
    record_n(c, 2)
    report = c.flush()
    assert len(backend.bodies) == 1, "nothing is resent"
    assert (report.sent, report.rejected) == (1, 1)
    s = c.stats()
    assert (s.sent, s.rejected, s.retried, s.buffered) == (1, 1, 0, 0)

"""Property-style checks of the helpers that read outside input (headers,
routes, lengths): seeded random extremes, standard library only. Whatever a
caller or a proxy sends, they never raise, and what they return is something
the backend stores (an address or None, a route or None, a size or None)."""

import ipaddress
import random

from analytics_client.event import MAX_COUNT
from analytics_client.web import client_ip, content_length, parse_ip, route_template

PIECES = [
    "", " ", ",", ", ,", "unknown", "1.2.3.4", "203.0.113.7:443", "[2001:db8::1]:80", "2001:db8::2",
    "fe80::1%eth0", "999.1.1.1", "::", "0.0.0.0", "[::1]", "1.2.3.4:99999", "\x00", "é", "x" * 5000,
]


def random_header(rng: random.Random) -> str:
    return ",".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def test_client_ip_never_raises_and_gives_an_address_or_none():
    rng = random.Random(7)
    for _ in range(5000):
        header = rng.choice([None, random_header(rng)])
        peer = rng.choice([None, "192.0.2.9", "not an ip", ""])
        trusted = rng.choice([0, 1, 2, 5, 10**9])
        got = client_ip(header, trusted, peer)
        assert got is None or ipaddress.ip_address(got), (header, trusted, peer, got)
        if trusted == 0:
            assert got == parse_ip(peer), "no trusted proxy: the header is never believed"


def test_route_templates_and_lengths_never_raise():
    rng = random.Random(11)
    alphabet = "abc/<>:{}()?P_-*%é\\^$[]+."
    for _ in range(5000):
        route = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        got = route_template(rng.choice([None, route]))
        assert got is None or isinstance(got, str)
        value = rng.choice([None, "", "-1", "0", "12", "1e3", " 7 ", str(10**30), "abc", 5, -5, 1.5, [], {}])
        size = content_length(value)
        assert size is None or (isinstance(size, int) and 0 <= size <= MAX_COUNT), (value, size)
    assert content_length(str(MAX_COUNT)) == MAX_COUNT and content_length(str(MAX_COUNT + 1)) is None

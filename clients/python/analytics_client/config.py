"""The client's settings, read from the same variables (names, defaults,
rules) as the Rust client (``clients/rust/src/config.rs``).

A value that does not pass its rule is a :class:`ConfigError` naming the
variable at start-up; an empty value counts as unset.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional

TIME, COUNT, HYBRID = "time", "count", "hybrid"

_WHOLE = re.compile(r"^\+?[0-9]+$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


class ConfigError(ValueError):
    """A variable whose value does not pass its rule."""

    def __init__(self, var: str, value: str, expected: str):
        super().__init__(f"{var}={value!r}: expected {expected}")
        self.var, self.value, self.expected = var, value, expected


@dataclass(frozen=True)
class Var:
    name: str
    default: Optional[str]
    meaning: str


#: Every variable the client reads, in the Rust client's order (plus the
#: token, which the Rust README reads in its token callback).
VARIABLES = (
    Var("ANALYTICS_ENABLED", "true", "`false`: nothing is recorded"),
    Var("ANALYTICS_API_URL", "http://localhost:9000", "the backend's base URL; batches go to `{url}/api/v1/analytics/events`"),
    Var("ANALYTICS_FLUSH_STRATEGY", "hybrid", "`time` (every interval), `count` (at the threshold) or `hybrid` (whichever first)"),
    Var("ANALYTICS_FLUSH_INTERVAL_SECONDS", "10", "the time strategy's period"),
    Var("ANALYTICS_FLUSH_COUNT_THRESHOLD", "100", "the count strategy's threshold"),
    Var("ANALYTICS_FLUSH_PER_INVOCATION", None, "no background flusher (call flush() yourself); unset: true on Lambda"),
    Var("ANALYTICS_ENABLE_SAMPLING", "false", "sample API requests"),
    Var("ANALYTICS_SAMPLING_RATE", "0.1", "share kept (0 < r <= 1), sent as `sample_rate`; a 5xx is always kept"),
    Var("ANALYTICS_EXCLUDED_PATHS", "/health,/favicon.ico", "comma-separated path prefixes never recorded (whole segments)"),
    Var("ANALYTICS_BUFFER_CAPACITY", "10000", "events held while the backend is unreachable; beyond it the oldest are dropped"),
    Var("ANALYTICS_MAX_RETRIES", "5", "retries of a batch before its events wait for the next flush"),
    Var("ANALYTICS_TRUSTED_PROXIES", "1", "proxies appending to X-Forwarded-For: the middlewares take the client's address that many hops from the right"),
    Var("ANALYTICS_REQUEST_TIMEOUT_SECONDS", "10", "one send attempt"),
    Var("AWS_LAMBDA_FUNCTION_NAME", None, "set by Lambda itself"),
    Var("ANALYTICS_TOKEN", None, "the bearer token sent with each batch (or pass token= to Client)"),
)


@dataclass
class Config:
    enabled: bool = True
    api_url: str = "http://localhost:9000"
    flush_strategy: str = HYBRID
    flush_interval: float = 10.0
    flush_count_threshold: int = 100
    flush_per_invocation: bool = False
    sampling_enabled: bool = False
    sampling_rate: float = 0.1
    excluded_paths: List[str] = field(default_factory=lambda: ["/health", "/favicon.ico"])
    buffer_capacity: int = 10_000
    max_retries: int = 5
    trusted_proxies: int = 1
    request_timeout: float = 10.0
    token: Optional[str] = None
    #: First backoff ceiling (full jitter: a delay is drawn from 0 to it).
    backoff_base: float = 0.2
    #: Highest backoff ceiling, also the cap on a server's Retry-After.
    backoff_cap: float = 20.0

    @property
    def by_time(self) -> bool:
        return self.flush_strategy in (TIME, HYBRID)

    @property
    def by_count(self) -> bool:
        return self.flush_strategy in (COUNT, HYBRID)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Config":
        env = os.environ if environ is None else environ
        return cls.from_lookup(env.get)

    @classmethod
    def from_lookup(cls, get: Callable[[str], Optional[str]]) -> "Config":
        def raw(name: str) -> Optional[str]:
            v = get(name)
            return v.strip() if v is not None and v.strip() else None

        def value(name: str) -> str:
            v = raw(name)
            if v is not None:
                return v
            default = next(x.default for x in VARIABLES if x.name == name)
            return default or ""

        def flag(name: str) -> bool:
            v = value(name)
            low = v.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ConfigError(name, v, "true or false")

        def whole(name: str, lo: int, hi: int, unit: str = "") -> int:
            v = value(name)
            if _WHOLE.match(v) and lo <= int(v) <= hi:
                return int(v)
            what = f"a whole number of {unit} from {lo} to {hi}" if unit else f"a whole number from {lo} to {hi}"
            raise ConfigError(name, v, what)

        def rate(name: str) -> float:
            v = value(name)
            if _DECIMAL.match(v):
                x = float(v)
                if math.isfinite(x) and 0.0 < x <= 1.0:
                    return x
            raise ConfigError(name, v, "a number greater than 0 and at most 1")

        on_lambda = raw("AWS_LAMBDA_FUNCTION_NAME") is not None
        enabled = flag("ANALYTICS_ENABLED")
        api_url = value("ANALYTICS_API_URL").rstrip("/")
        strategy = value("ANALYTICS_FLUSH_STRATEGY").lower()
        if strategy not in (TIME, COUNT, HYBRID):
            raise ConfigError("ANALYTICS_FLUSH_STRATEGY", value("ANALYTICS_FLUSH_STRATEGY"), "one of time, count, hybrid")
        interval = whole("ANALYTICS_FLUSH_INTERVAL_SECONDS", 1, 86_400, "seconds")
        threshold = whole("ANALYTICS_FLUSH_COUNT_THRESHOLD", 1, 1_000_000)
        per_invocation = flag("ANALYTICS_FLUSH_PER_INVOCATION") if raw("ANALYTICS_FLUSH_PER_INVOCATION") else on_lambda
        sampling = flag("ANALYTICS_ENABLE_SAMPLING")
        sampling_rate = rate("ANALYTICS_SAMPLING_RATE")
        excluded = [p.strip().rstrip("/") for p in value("ANALYTICS_EXCLUDED_PATHS").split(",")]
        return cls(
            enabled=enabled,
            api_url=api_url,
            flush_strategy=strategy,
            flush_interval=float(interval),
            flush_count_threshold=threshold,
            flush_per_invocation=per_invocation,
            sampling_enabled=sampling,
            sampling_rate=sampling_rate,
            excluded_paths=[p for p in excluded if p],
            buffer_capacity=whole("ANALYTICS_BUFFER_CAPACITY", 1, 10_000_000),
            max_retries=whole("ANALYTICS_MAX_RETRIES", 0, 20),
            trusted_proxies=whole("ANALYTICS_TRUSTED_PROXIES", 0, 32),
            request_timeout=float(whole("ANALYTICS_REQUEST_TIMEOUT_SECONDS", 1, 600, "seconds")),
            token=raw("ANALYTICS_TOKEN"),
        )

    def is_excluded(self, path: str) -> bool:
        """True when ``path`` falls under an excluded prefix (whole segments)."""
        for p in self.excluded_paths:
            if path.startswith(p):
                rest = path[len(p):]
                if rest == "" or rest.startswith("/"):
                    return True
        return False

    def effective_sampling_rate(self) -> float:
        return self.sampling_rate if self.sampling_enabled else 1.0

"""Python client of the analytics backend (``POST /api/v1/analytics/events``)."""

from .batch import Reply
from .client import Client, FlushReport, Stats
from .config import Config, ConfigError
from .event import Event, activity, api_request, auth, external_call, uuid_v7
from .redact import REDACTED, is_secret_value, is_sensitive_key, key_words
from .transport import HttpTransport, SendError

__all__ = [
    "Client",
    "Config",
    "ConfigError",
    "Event",
    "FlushReport",
    "HttpTransport",
    "REDACTED",
    "Reply",
    "SendError",
    "Stats",
    "activity",
    "api_request",
    "auth",
    "external_call",
    "is_secret_value",
    "is_sensitive_key",
    "key_words",
    "uuid_v7",
]
__version__ = "0.1.0"

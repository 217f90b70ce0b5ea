"""The Django settings of the integration and the one client of the process.

``settings.ANALYTICS`` is a dict. Its client keys are the client's variables
without the ``ANALYTICS_`` prefix (``API_URL``, ``TOKEN``, ``EXCLUDED_PATHS``,
``TRUSTED_PROXIES``, ...; the full names work too), with the same rules and
errors (:class:`~analytics_client.ConfigError` names the setting); a key that
is not in the dict falls back to the environment variable, then to the
client's default. Python values are accepted where a variable takes text:
``True``/``False``, numbers, a list of paths. The Django keys are in
:data:`DJANGO_KEYS`.

Nothing here imports Django at module level: the functions that read the
settings import it when they are called.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Tuple

from ..client import Client, TokenSource
from ..config import VARIABLES, Config, ConfigError
from .actions import DEFAULT_ACTIONS, Action, parse_actions

#: The integration's own keys of ``settings.ANALYTICS``:
#:
#: - ``TOKEN``: the bearer token (a string, as ``ANALYTICS_TOKEN``) or a
#:   callable asked before every send (a token that rotates);
#: - ``ACTIONS``: the route-to-action table of :class:`ActivityTrackingMiddleware`
#:   (default :data:`~analytics_client.django.actions.DEFAULT_ACTIONS`);
#: - ``USER_ID``: a callable (or its dotted path) turning a user object into
#:   the ``user_id`` events carry; default ``str(user.pk)``;
#: - ``LOGIN_FAILED_USER``: what a failed login's ``user_id`` is: ``"hash"``
#:   (default: a keyed hash of the attempted username, so attempts on one
#:   account are counted together without storing what was typed),
#:   ``"username"`` (as typed) or ``"none"``;
#: - ``HASH_KEY``: the key of that hash (default ``settings.SECRET_KEY``);
#: - ``AUTH_ACTIVITY``: also record the ``login`` and ``logout`` activity
#:   actions next to the auth events (default ``True``: the activity feeds
#:   show sign-ins, as the seed's did).
DJANGO_KEYS = ("TOKEN", "ACTIONS", "USER_ID", "LOGIN_FAILED_USER", "HASH_KEY", "AUTH_ACTIVITY")

LOGIN_FAILED_USER_MODES = ("hash", "username", "none")

# The client's variables a setting may name (the Lambda marker is Lambda's own).
_CLIENT_VARS = tuple(v.name for v in VARIABLES if v.name.startswith("ANALYTICS_"))


def _setting_name(key: str) -> Optional[str]:
    name = key if key.startswith("ANALYTICS_") else "ANALYTICS_" + key
    return name if name in _CLIENT_VARS else None


def _as_text(value: Any) -> Optional[str]:
    """A setting's value as the variable's text: ``None`` is unset."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(v) for v in value)
    return str(value)


def config_from_settings(analytics: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> Config:
    """The client's :class:`Config` from an ``ANALYTICS`` dict, each key not
    in it read from ``environ`` (default ``os.environ``). An unknown key is
    a :class:`ConfigError` (a typo would otherwise be silently ignored)."""
    env = os.environ if environ is None else environ
    given = {}
    for key, value in analytics.items():
        if key in DJANGO_KEYS:
            if key == "TOKEN" and not callable(value):
                given["ANALYTICS_TOKEN"] = _as_text(value)
            continue
        name = _setting_name(str(key))
        if name is None:
            known = ", ".join([n[len("ANALYTICS_"):] for n in _CLIENT_VARS] + list(DJANGO_KEYS))
            raise ConfigError(f"ANALYTICS[{key!r}]", str(value), f"a known key: {known}")
        given[name] = _as_text(value)

    def get(name: str) -> Optional[str]:
        if name in given and given[name] is not None:
            return given[name]
        return env.get(name)

    try:
        return Config.from_lookup(get)
    except ConfigError as e:
        # Name the setting when the value came from it, else the variable.
        if e.var in given:
            raise ConfigError(f"ANALYTICS[{e.var[len('ANALYTICS_'):]!r}]", e.value, e.expected) from None
        raise


@dataclass(frozen=True)
class Options:
    """The Django keys of ``settings.ANALYTICS``, checked."""

    token: TokenSource
    actions: Tuple[Action, ...]
    user_id: Callable[[Any], Optional[str]]
    login_failed_user: str
    hash_key: bytes
    auth_activity: bool


def default_user_id(user: Any) -> Optional[str]:
    """A user's id as events carry it: its primary key as text."""
    pk = getattr(user, "pk", None)
    return None if pk is None else str(pk)


def analytics_settings() -> Mapping[str, Any]:
    """``settings.ANALYTICS`` (an empty dict when unset)."""
    from django.conf import settings

    value = getattr(settings, "ANALYTICS", None) or {}
    if not isinstance(value, Mapping):
        raise ConfigError("ANALYTICS", repr(value), "a dict of settings")
    return value


def load_config() -> Config:
    """The client's configuration from the Django settings and the environment."""
    return config_from_settings(analytics_settings())


def load_options() -> Options:
    """The integration's own settings, checked (a bad one is a :class:`ConfigError`)."""
    from django.conf import settings

    a = analytics_settings()
    token = a.get("TOKEN")
    user_id = a.get("USER_ID") or default_user_id
    if isinstance(user_id, str):
        from django.utils.module_loading import import_string

        user_id = import_string(user_id)
    if not callable(user_id):
        raise ConfigError("ANALYTICS['USER_ID']", repr(user_id), "a callable taking a user, or its dotted path")
    mode = str(a.get("LOGIN_FAILED_USER", "hash")).lower()
    if mode not in LOGIN_FAILED_USER_MODES:
        raise ConfigError("ANALYTICS['LOGIN_FAILED_USER']", mode, "one of " + ", ".join(LOGIN_FAILED_USER_MODES))
    key = a.get("HASH_KEY") or getattr(settings, "SECRET_KEY", "") or ""
    actions = parse_actions(a["ACTIONS"]) if "ACTIONS" in a else DEFAULT_ACTIONS
    return Options(
        token=token if callable(token) else None,
        actions=actions,
        user_id=user_id,
        login_failed_user=mode,
        hash_key=key.encode("utf-8") if isinstance(key, str) else bytes(key),
        auth_activity=bool(a.get("AUTH_ACTIVITY", True)),
    )


# ---- the process's client --------------------------------------------------

_lock = threading.Lock()
_client: Optional[Client] = None
_pid: Optional[int] = None


def get_client() -> Client:
    """The process-wide client, built on first use from the settings.

    Built lazily, not at import or in ``AppConfig.ready()``: a server that
    forks its workers after loading the app (gunicorn ``--preload``) would
    otherwise share one client whose flusher thread lives only in the
    parent. A client inherited across a fork is replaced by a new one in
    the child (events it held are sent by both; the backend recognises the
    copies as duplicates).
    """
    global _client, _pid
    with _lock:
        if _client is None or _pid != os.getpid():
            options = load_options()
            _client = Client(load_config(), token=options.token)
            _pid = os.getpid()
        return _client


def set_client(client: Optional[Client]) -> None:
    """Makes ``client`` the process's client (tests, or a client built by
    hand); ``None`` forgets it, so the next :func:`get_client` builds one."""
    global _client, _pid
    with _lock:
        _client, _pid = client, (os.getpid() if client is not None else None)


def reset_client(timeout: Optional[float] = None) -> None:
    """Shuts the process's client down (sending what it holds) and forgets it."""
    global _client, _pid
    with _lock:
        client, _client, _pid = _client, None, None
    if client is not None:
        client.shutdown(timeout)

"""Auth events from Django's own signals (``django.contrib.auth.signals``):

- ``user_logged_in``: ``auth`` ``login``, success, with the user's id;
- ``user_logged_out``: ``auth`` ``logout``, success (the user's id when
  one was signed in);
- ``user_login_failed``: ``auth`` ``login_failed``, not a success, with
  ``error_message`` "invalid credentials" and as ``user_id`` what
  ``ANALYTICS['LOGIN_FAILED_USER']`` says: a keyed hash of the attempted
  username (the default), the username as typed, or nothing. The contract's
  auth events carry no username field: ``user_id`` is what
  ``/auth-events`` counts failed logins by, as the Rust client's
  ``Analytics::auth(...).user(...)`` sends it.

Each carries the client's address (behind ``ANALYTICS_TRUSTED_PROXIES``
proxies) and user agent when the signal has the request. With
``AUTH_ACTIVITY`` (the default) a login and a logout are also ``login`` and
``logout`` activity events. Connected by the app's ``ready()``
(``INSTALLED_APPS += ["analytics_client.django"]``) or by
:func:`connect_signals`; a failure inside a receiver is logged and counted,
never raised into the login.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Optional

from ..web import FAILURES
from . import conf
from .middleware import request_ip

_UIDS = ("analytics_client.login", "analytics_client.logout", "analytics_client.login_failed")


def hash_username(username: str, key: bytes) -> str:
    """A stable, keyed stand-in for a username: ``h-`` and 32 hex digits
    of HMAC-SHA256. The same attempted name always gives the same id, and
    without the key a list of likely names cannot be hashed to find it."""
    return "h-" + hmac.new(key, username.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _request_fields(request, client) -> dict:
    if request is None or not hasattr(request, "META"):
        return {"ip_address": None, "user_agent": None}
    return {
        "ip_address": request_ip(request, client.config.trusted_proxies),
        "user_agent": request.META.get("HTTP_USER_AGENT") or None,
    }


def _user_id(user: Any, options: conf.Options) -> Optional[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    uid = options.user_id(user)
    return None if uid is None else str(uid)


def _session_event(event_type: str, request: Any, user: Any) -> None:
    """A login or logout: the auth event, and the activity of the same name
    when ``AUTH_ACTIVITY`` is on and the user has an id."""
    try:
        client = conf.get_client()
        if not client.enabled:
            return
        options = conf.load_options()
        uid = _user_id(user, options)
        where = _request_fields(request, client)
        client.auth(event_type, True, user_id=uid, **where)
        if options.auth_activity and uid is not None:
            client.activity(uid, event_type, **where)
    except Exception:
        FAILURES.record(f"{event_type} tracking")


def on_logged_in(sender, request=None, user=None, **kwargs) -> None:
    _session_event("login", request, user)


def on_logged_out(sender, request=None, user=None, **kwargs) -> None:
    _session_event("logout", request, user)


def attempted_username(credentials: Any) -> Optional[str]:
    """The username a failed login tried: the user model's
    ``USERNAME_FIELD`` of the credentials, else ``username`` or ``email``.
    (Django has already masked the password in them.)"""
    if not isinstance(credentials, dict):
        return None
    fields = ["username", "email"]
    try:
        from django.contrib.auth import get_user_model

        fields.insert(0, get_user_model().USERNAME_FIELD)
    except Exception:  # no user model configured: the usual names
        pass
    for f in fields:
        v = credentials.get(f)
        if isinstance(v, str) and v.strip():
            return v
    return None


def on_login_failed(sender, credentials=None, request=None, **kwargs) -> None:
    try:
        client = conf.get_client()
        if not client.enabled:
            return
        options = conf.load_options()
        username = attempted_username(credentials)
        uid = None
        if username is not None and options.login_failed_user == "hash":
            uid = hash_username(username, options.hash_key)
        elif username is not None and options.login_failed_user == "username":
            uid = username
        client.auth("login_failed", False, user_id=uid, error_message="invalid credentials", **_request_fields(request, client))
    except Exception:
        FAILURES.record("failed-login tracking")


def connect_signals() -> None:
    """Connects the three receivers (idempotent: each has a dispatch uid)."""
    from django.contrib.auth import signals

    signals.user_logged_in.connect(on_logged_in, dispatch_uid=_UIDS[0], weak=False)
    signals.user_logged_out.connect(on_logged_out, dispatch_uid=_UIDS[1], weak=False)
    signals.user_login_failed.connect(on_login_failed, dispatch_uid=_UIDS[2], weak=False)


def disconnect_signals() -> None:
    from django.contrib.auth import signals

    signals.user_logged_in.disconnect(dispatch_uid=_UIDS[0])
    signals.user_logged_out.disconnect(dispatch_uid=_UIDS[1])
    signals.user_login_failed.disconnect(dispatch_uid=_UIDS[2])

"""Django integration of the analytics client.

::

    INSTALLED_APPS = [..., "analytics_client.django"]      # auth events from the login signals
    MIDDLEWARE = [
        "analytics_client.django.ApiTrackingMiddleware",     # first: an api_request per request
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "analytics_client.django.ActivityTrackingMiddleware",  # activity per the route table
        ...,
    ]
    ANALYTICS = {"API_URL": "https://analytics.example.com", "TOKEN": "..."}

Importing this package does not import Django (the settings are read, and
the signals connected, when used); the app module
(``analytics_client.django.apps``) is the one that needs it.
"""

from ..web import tracking_failures
from .actions import DEFAULT_ACTIONS, Action
from .conf import DJANGO_KEYS, config_from_settings, get_client, load_config, load_options, reset_client, set_client
from .middleware import ActivityTrackingMiddleware, ApiTrackingMiddleware
from .signals import connect_signals, disconnect_signals, hash_username

__all__ = [
    "Action",
    "ActivityTrackingMiddleware",
    "ApiTrackingMiddleware",
    "DEFAULT_ACTIONS",
    "DJANGO_KEYS",
    "config_from_settings",
    "connect_signals",
    "disconnect_signals",
    "get_client",
    "hash_username",
    "load_config",
    "load_options",
    "reset_client",
    "set_client",
    "tracking_failures",
]

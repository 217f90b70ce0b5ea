"""The Django app: ``INSTALLED_APPS += ["analytics_client.django"]``
connects the auth signals and checks the settings at start-up."""

from django.apps import AppConfig

from . import conf
from .signals import connect_signals


class AnalyticsConfig(AppConfig):
    name = "analytics_client.django"
    # The default label would be "django", which says nothing.
    label = "analytics_client"
    verbose_name = "Analytics"

    def ready(self):
        # A bad setting stops the start (ConfigError names it), as the client
        # does when it is built; the client itself is built on first use, in
        # the worker that uses it (see conf.get_client).
        conf.load_config()
        conf.load_options()
        connect_signals()

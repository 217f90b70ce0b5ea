"""The route-to-action table of the activity middleware: which requests are
something a user did, under which action name, with which ids.

An entry matches a request by its method and its route template (the
``{param}`` form of the route Django resolved, see
:func:`analytics_client.web.route_template`):

- any ``{...}`` in the entry's route matches any parameter of the template
  (``/reports/{}`` matches ``reports/<int:pk>`` and ``reports/<uuid:report_id>``);
- ``*`` matches any run of characters, so ``*/reports`` matches
  ``/reports``, ``/api/reports`` and ``/clients/{client_id}/reports``;
- a trailing slash is ignored on both sides.

The first entry that matches wins. Its ids come from the resolved URL
kwargs: ``client_id`` and ``report_id`` from the kwargs of those names (each
renamable per entry), and the ``pk`` kwarg fills the field the entry names
with ``pk=`` (``"client_id"`` or ``"report_id"``).

Standard library only: the table can be built and tested without Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

from ..config import ConfigError

ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PARAM = re.compile(r"\{[^{}]*\}")
_ID_FIELDS = ("client_id", "report_id")


def _shape(template: str) -> str:
    """A route with every parameter written ``{}`` and no trailing slash."""
    t = _PARAM.sub("{}", template)
    return t.rstrip("/") or "/"


@dataclass(frozen=True)
class Action:
    """One entry: ``methods`` (one or more, any case) and ``route`` name the
    requests; ``action`` is what the activity event says (the backend knows
    generate_report, download_report, delete_report, share_report,
    create_client, update_client, delete_client, upload_csv, login, logout
    and view_dashboard; any other ``^[a-z][a-z0-9_]{0,63}$`` is stored as a
    custom action)."""

    methods: Union[str, Tuple[str, ...]]
    route: str
    action: str
    #: The URL kwarg read as ``client_id``.
    client_id: str = "client_id"
    #: The URL kwarg read as ``report_id``.
    report_id: str = "report_id"
    #: The field the ``pk`` kwarg fills: ``"client_id"``, ``"report_id"`` or ``None``.
    pk: Optional[str] = None
    #: A fixed ``description`` for the event.
    description: Optional[str] = None
    _regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", tuple(m.upper() for m in methods))
        if not ACTION.match(self.action):
            raise ConfigError("ANALYTICS['ACTIONS']", self.action, "an action of ^[a-z][a-z0-9_]{0,63}$")
        if self.pk is not None and self.pk not in _ID_FIELDS:
            raise ConfigError("ANALYTICS['ACTIONS']", str(self.pk), "pk= naming client_id or report_id")
        pattern = ".*".join(re.escape(part) for part in _shape(self.route).split("*"))
        object.__setattr__(self, "_regex", re.compile(pattern))

    def matches(self, method: str, template: str) -> bool:
        return method.upper() in self.methods and self._regex.fullmatch(_shape(template)) is not None

    def fields(self, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
        """The activity fields this entry takes from a request's URL kwargs."""
        out: Dict[str, Any] = {}
        for name, kwarg in (("client_id", self.client_id), ("report_id", self.report_id)):
            if kwargs.get(kwarg) is not None:
                out[name] = str(kwargs[kwarg])
        if self.pk is not None and kwargs.get("pk") is not None:
            out[self.pk] = str(kwargs["pk"])
        if self.description is not None:
            out["description"] = self.description
        return out


#: The default table, after the seed's product routes (``/api/reports``,
#: ``/api/clients/{id}``, ``/api/upload`` of a clients' CSV, ...) under any
#: prefix.
DEFAULT_ACTIONS: Tuple[Action, ...] = (
    Action("POST", "*/reports", "generate_report"),
    Action("GET", "*/reports/{}/download", "download_report", pk="report_id"),
    Action("POST", "*/reports/{}/share", "share_report", pk="report_id"),
    Action("DELETE", "*/reports/{}", "delete_report", pk="report_id"),
    Action("POST", "*/clients", "create_client"),
    Action(("PUT", "PATCH"), "*/clients/{}", "update_client", pk="client_id"),
    Action("DELETE", "*/clients/{}", "delete_client", pk="client_id"),
    Action("POST", "*/upload", "upload_csv", pk="client_id"),
    Action("GET", "*/dashboard", "view_dashboard"),
)


def parse_actions(entries: Iterable[Any]) -> Tuple[Action, ...]:
    """A table from settings: each entry an :class:`Action`, a tuple
    ``(methods, route, action)`` with an optional dict of the other fields
    as a fourth item, or a dict with ``method``/``methods``, ``route``,
    ``action`` and the others."""
    out = []
    for e in entries:
        if isinstance(e, Action):
            out.append(e)
        elif isinstance(e, Mapping):
            d = dict(e)
            if "method" in d:
                d["methods"] = d.pop("method")
            try:
                out.append(Action(**d))
            except TypeError as err:
                raise ConfigError("ANALYTICS['ACTIONS']", repr(e), f"an entry with methods, route, action: {err}") from None
        elif isinstance(e, (tuple, list)) and len(e) in (3, 4):
            extra = dict(e[3]) if len(e) == 4 else {}
            out.append(Action(e[0], e[1], e[2], **extra))
        else:
            raise ConfigError("ANALYTICS['ACTIONS']", repr(e), "an Action, a (methods, route, action[, options]) tuple or a dict")
    return tuple(out)


def match(table: Iterable[Action], method: str, template: str) -> Optional[Action]:
    """The first entry of ``table`` matching the request, else ``None``."""
    for entry in table:
        if entry.matches(method, template):
            return entry
    return None

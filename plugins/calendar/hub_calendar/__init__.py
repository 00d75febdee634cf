"""Ruff Hub's calendars: every ``.ics`` file in ``calendars/`` (beside ``configuration.yaml``) is an
entity ``calendar.<file name>``, ``on`` while one of its events is happening, with Home Assistant's
attributes; and Home Assistant's ``calendar`` trigger (``event: start|end``, ``offset``).

Parts: :mod:`hub_calendar.calendars` reads a file and answers lookups, :mod:`hub_calendar.entities`
keeps the entities' states, :mod:`hub_calendar.trigger` is the rule trigger. See
docs/plugins/calendar.md.
"""

from __future__ import annotations

from typing import Any

from hub import hookimpl
from hub.context import PluginContext

from hub_calendar.config import CalendarConfig

__version__ = "0.1.0"


@hookimpl
def hub_config_schema() -> type[CalendarConfig]:
    return CalendarConfig


@hookimpl
def hub_discover(hub: PluginContext) -> None:
    from hub_calendar.entities import Calendars

    calendars = hub.data["calendars"] = Calendars(hub, hub.config)
    calendars.discover()
    calendars.start()


@hookimpl
def hub_rule_triggers(hub: PluginContext, register: Any) -> None:
    from hub_calendar.trigger import register_triggers

    register_triggers(hub, register)


@hookimpl
def hub_shutdown(hub: PluginContext) -> None:
    calendars = hub.data.get("calendars")
    if calendars is not None:
        calendars.stop()

"""Which entities the bridge shows on the broker and which it lets the broker command.

One place, so the state topics, Home Assistant discovery, the peer hubs' device list and the
command intake can never disagree about what a configuration exposes.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.core.registry import EntityEntry

    from hub_mqtt.config import MqttConfig, Select


def _selected(select: "Select", entity_id: str) -> bool:
    if any(fnmatchcase(entity_id, pattern) for pattern in select.exclude):
        return False
    return any(fnmatchcase(entity_id, pattern) for pattern in select.include)


def is_mirror(entry: "EntityEntry") -> bool:
    """An entity this plugin mirrors from another hub on the broker: never published back (the
    other hub publishes it), or two hubs would mirror each other's mirrors without end."""
    return entry.platform == "mqtt" and entry.device_id.startswith("mqtt:peer:")


def is_adopted(entry: "EntityEntry") -> bool:
    """An entity this plugin adopted from the broker (declared in ``mqtt:`` or found by discovery):
    it is already on the broker, so it is not announced to Home Assistant a second time."""
    return entry.platform == "mqtt" and not is_mirror(entry)


def published(config: "MqttConfig", entry: "EntityEntry") -> bool:
    """Its state goes to ``<prefix>/state/<entity_id>`` (and to peers and Home Assistant)."""
    return not is_mirror(entry) and _selected(config.publish, entry.entity_id)


def commandable(config: "MqttConfig", entry: "EntityEntry") -> bool:
    """A command for it on ``<prefix>/set/<entity_id>`` is passed to the command gate."""
    return published(config, entry) and _selected(config.commands, entry.entity_id)

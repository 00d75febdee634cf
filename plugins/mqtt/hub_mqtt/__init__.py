"""Ruff Hub's MQTT bridge: the hub on a broker, and a broker's devices in the hub.

Parts, each in its own module and each talking to the broker only through :class:`hub_mqtt.link.Link`:

* ``states``: every exposed entity's state, retained, under ``<base_topic>/<node_id>/state/...``;
* ``commands``: commands arriving on ``<base_topic>/<node_id>/set/...`` go through the hub's command
  gate, as the API's do;
* ``ha_out``: Home Assistant discovery configs for the exposed entities, so Home Assistant adopts them;
* ``ha_in``: entities declared in ``mqtt:`` the way Home Assistant declares them, and devices that
  announce themselves with Home Assistant discovery (Zigbee2MQTT, Tasmota, ESPHome, Shelly);
* ``peers``: other Ruff Hubs on the same broker, their devices mirrored and commandable here;
* ``rules``: the ``mqtt`` trigger and the ``mqtt.publish`` action.

Devices this plugin adds have local ids ``ha:...`` (``ha_in``) or ``peer:<node>:...`` (``peers``);
a command for one goes to the part that added it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext

from hub_mqtt.config import MqttConfig

__version__ = "0.1.0"

log = logging.getLogger("hub.plugins.mqtt")

#: The parts, in the order they are set up: each module has ``setup(hub, link)``.
PARTS = ("states", "commands", "ha_out", "ha_in", "peers")


@hookimpl
def hub_config_schema() -> type[MqttConfig]:
    return MqttConfig


@hookimpl
def hub_setup(hub: PluginContext) -> None:
    import importlib

    from hub_mqtt.link import Link

    # paho's own logger would otherwise repeat every connection error we already report.
    if logging.getLogger("paho").level == logging.NOTSET:
        logging.getLogger("paho").setLevel(logging.WARNING)
    link = hub.data["link"] = Link(hub.config, note=hub.note)
    for part in PARTS:
        importlib.import_module(f"hub_mqtt.{part}").setup(hub, link)


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    await hub.data["link"].run()


def _owner(device_id: str) -> str:
    """The part that added a device, from its hub-wide id ``mqtt:<local id>``."""
    local = device_id.split(":", 1)[1] if ":" in device_id else device_id
    return "peers" if local.startswith("peer:") else "ha_in"


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    import importlib

    part = importlib.import_module(f"hub_mqtt.{_owner(entity.entry.device_id)}")
    return await part.handle_command(hub, entity, command, args)


@hookimpl
def hub_notify(hub: PluginContext, notification: dict) -> str:
    """A rule's notification, on ``<prefix>/notify`` (QoS 1, not retained: a notification read
    at the next connection would be old news), for a phone gateway or Node-RED to pick up."""
    topic = f"{hub.config.prefix}/notify"
    hub.data["link"].publish(topic, json.dumps(notification, default=str, ensure_ascii=False), qos=1)
    return topic


@hookimpl
def hub_api_routes(hub: PluginContext):
    from hub_mqtt.api import router

    return router(hub)


@hookimpl
def hub_rule_triggers(hub: PluginContext, register) -> None:
    from hub_mqtt.rules import register_triggers

    register_triggers(hub, register)


@hookimpl
def hub_rule_actions(hub: PluginContext, register) -> None:
    from hub_mqtt.rules import register_actions

    register_actions(hub, register)


@hookimpl
def hub_register_commands(cli) -> None:
    from hub_mqtt.cli import mqtt

    cli.add_command(mqtt)

"""Every published entity's state on ``<prefix>/state/<entity_id>``, retained.

Retained, so a subscriber that arrives late (a dashboard, Home Assistant after its restart, another
hub) gets every current state at once. All of them go again after each (re)connection: while the
broker was away states changed, and a broker that lost its store has none. This runs on every state
change of the hub, so the hot path is one dict lookup and one ``json.dumps``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hub_mqtt.expose import published

log = logging.getLogger("hub.plugins.mqtt")


def payload(state: Any) -> bytes:
    return json.dumps(state.as_dict(), default=str, separators=(",", ":")).encode()


def setup(hub: Any, link: Any) -> None:
    config = hub.config
    base = f"{config.prefix}/state/"
    qos = config.publish.qos
    # entity_id -> published? Settled once per entity; the configuration does not change at run time.
    decided: dict[str, bool] = {}

    def exposed(entity_id: str) -> bool:
        answer = decided.get(entity_id)
        if answer is None:
            entry = hub.get_entity(entity_id)
            if entry is None:
                return False
            answer = decided[entity_id] = published(config, entry)
        return answer

    def changed(event: Any) -> None:
        if exposed(event.entity_id):
            link.publish(base + event.entity_id, payload(event.new_state), qos=qos, retain=True)

    def removed(event: Any) -> None:
        if decided.pop(event.entity_id, False):
            link.publish(base + event.entity_id, b"", qos=qos, retain=True)  # the retained state goes too

    async def republish() -> None:
        # Paced by the link's queue: a hub with more entities than the queue holds must not push
        # its own first states (or the discovery configs sent beside them) out of it.
        for state in hub.all_states():
            if exposed(state.entity_id):
                if not await link.room():
                    return  # off the broker again: the next connection sends them all
                current = hub.get_state(state.entity_id)  # as it is now, after the wait
                if current is not None:
                    link.publish(base + state.entity_id, payload(current), qos=qos, retain=True)

    hub.bus.subscribe("state_changed", changed)
    hub.bus.subscribe("entity_removed", removed)
    link.on_connect(republish)

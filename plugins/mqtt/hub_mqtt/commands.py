"""Commands from the broker, on ``<prefix>/set/<entity_id>[/<field>]``, through the hub's command gate.

A command here is checked exactly as one from the API: the entity must be one the configuration
lets the broker command (``commands.include``), and the gate validates its arguments. Every command
gets a reply (the MQTT 5 response topic, else ``reply_to``, else ``<prefix>/result/<entity_id>``), so
a sender learns why nothing happened. A retained command is never run: it would be replayed at every
reconnection of the hub.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from hub.core.commands import CommandError
from hub.core.redact import scrub, secret_values

from hub_mqtt.expose import commandable

log = logging.getLogger("hub.plugins.mqtt")

#: Commands being executed at once, at most; past it a command is refused (``busy``) at once, so a
#: flood from the broker cannot grow the hub's memory.
MAX_IN_FLIGHT = 64
_NODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _properties(correlation: bytes | None) -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = correlation
    return props


def _reply_topic(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "+" in value or "#" in value or len(value) > 1024:
        raise Refused("bad_payload", "reply_to must be a topic without wildcards")
    return value


def setup(hub: Any, link: Any) -> None:
    config = hub.config
    base = f"{config.prefix}/set/"
    state = {"in_flight": 0, "retained_logged": False}

    def reply(message: Any, entity_id: str, reply_to: str | None, body: dict) -> None:
        text = json.dumps(body, default=str)
        if message.response_topic:
            props = _properties(message.correlation_data) if message.correlation_data is not None else None
            link.publish(message.response_topic, text, qos=1, properties=props)
        elif reply_to:
            link.publish(reply_to, text, qos=1)
        else:
            link.publish(f"{config.prefix}/result/{entity_id}", text, qos=1)

    def parse(message: Any) -> tuple[str, str, dict, Any, str | None, str]:
        """(entity_id, command, args, id, reply_to, via), or Refused."""
        rest = message.topic[len(base):].split("/")
        if len(rest) > 2 or not rest[0] or "." not in rest[0]:
            raise Refused("unknown_entity", f"no entity in topic {message.topic}; use {base}<entity_id>[/<field>]")
        entity_id, field = rest[0], rest[1] if len(rest) == 2 else None
        entry = hub.get_entity(entity_id)
        if entry is None:
            raise Refused("unknown_entity", f"no entity {entity_id}")
        if not commandable(config, entry):
            raise Refused("not_exposed", f"{entity_id} may not be commanded over MQTT (mqtt.commands.include)")
        try:
            body = json.loads(message.payload)
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict) and "command" in body:
            command, args = body.get("command"), body.get("args")
            if not isinstance(command, str) or not command:
                raise Refused("bad_payload", "command must be a non-empty string")
            if args is not None and not isinstance(args, dict):
                raise Refused("bad_payload", "args must be an object")
            sender = body.get("from")
            if sender is not None and (not isinstance(sender, str) or not _NODE_RE.match(sender)):
                raise Refused("bad_payload", "from must be a node id")
            via = f"peer:{sender}" if sender else "set"
            return entity_id, command, args or {}, body.get("id"), _reply_topic(body.get("reply_to")), via
        from hub_mqtt import ha_out

        try:
            translated = ha_out.translate(entry, hub.get_state(entity_id), field, message.payload)
        except Exception as exc:  # noqa: BLE001 - a payload the translation chokes on is a bad payload
            log.debug("mqtt: %s: translating the payload failed: %r", message.topic, exc)
            translated = None
        if translated is None:
            raise Refused("bad_payload", 'expected {"command": ..., "args": {...}} or a Home Assistant command payload')
        command, args = translated
        return entity_id, command, args or {}, None, None, "set"

    async def execute(message: Any, entity_id: str, command: str, args: dict, ident: Any,
                      reply_to: str | None, via: str) -> None:
        try:
            result = await hub.call(entity_id, command, args, via=via)
        except CommandError as exc:
            text = scrub(exc.message, secret_values(args))
            log.warning("mqtt: %s: %s %s refused: %s (%s)", message.topic, entity_id, command, exc.code, text)
            body = {"id": ident, "ok": False, "error": exc.code, "message": text}
            if exc.errors:
                body["errors"] = exc.errors
            reply(message, entity_id, reply_to, body)
        else:
            reply(message, entity_id, reply_to, {"id": ident, "ok": True, "result": result})
        finally:
            state["in_flight"] -= 1

    def received(message: Any) -> None:
        if message.retain:
            # A retained command would run again at every reconnection: never run one.
            if not state["retained_logged"]:
                state["retained_logged"] = True
                log.warning("mqtt: %s: a retained command ignored (commands are never retained; "
                            "clear it with an empty retained message)", message.topic)
            return
        entity_id = message.topic[len(base):].split("/")[0]
        try:
            entity_id, command, args, ident, reply_to, via = parse(message)
        except Refused as exc:
            log.warning("mqtt: %s: command refused: %s (%s)", message.topic, exc.code, exc.message)
            ident = None
            try:
                body = json.loads(message.payload)
                ident = body.get("id") if isinstance(body, dict) else None
                reply_to = _reply_topic(body.get("reply_to")) if isinstance(body, dict) else None
            except (ValueError, RecursionError, Refused):
                reply_to = None
            reply(message, entity_id or "_", reply_to, {"id": ident, "ok": False, "error": exc.code, "message": exc.message})
            return
        if state["in_flight"] >= MAX_IN_FLIGHT:
            log.warning("mqtt: %s: command refused: busy (%d commands in flight)", message.topic, MAX_IN_FLIGHT)
            reply(message, entity_id, reply_to, {"id": ident, "ok": False, "error": "busy",
                                                 "message": f"{MAX_IN_FLIGHT} commands are already in flight"})
            return
        state["in_flight"] += 1
        return execute(message, entity_id, command, args, ident, reply_to, via)

    link.subscribe(f"{base}#", received, qos=1, retain_as_published=True)

"""The command intake's bound and the removal of a state, in a ``Hub`` started in the test's own loop
(the real bridge on a real mosquitto) with a driver whose commands the test holds open."""

from __future__ import annotations

import asyncio
import json

import hub_mqtt
from hub import hookimpl
from hub.devices import Device, EntitySpec
from hub.runtime import Hub
from hub_mqtt.commands import MAX_IN_FLIGHT
from mqtt_testing import until

P = "ruffhub/t"


class SlowRelay:
    """A relay whose commands wait until the test lets them finish."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    @hookimpl
    def hub_discover(self, hub):
        self.ctx = hub
        self.handles = hub.add_device(Device(id="relay", name="Relay"),
                                      [EntitySpec(key="relay", capability="switch", object_id="slow_relay")])
        self.handles["relay"].set("off")

    @hookimpl
    async def hub_handle_command(self, hub, entity, command, args):
        self.calls += 1
        await self.release.wait()
        entity.set("on" if command == "turn_on" else "off")


async def test_commands_in_flight_are_bounded_and_a_removed_entity_leaves_the_broker(tmp_path, mosquitto, mqtt_client):
    (tmp_path / "configuration.yaml").write_text(
        f"hub: {{}}\nmqtt:\n  port: {mosquitto.port}\n  node_id: t\n  commands:\n    include: ['switch.*']\n")
    hub, relay = Hub(tmp_path, entrypoints=False), SlowRelay()
    hub.plugins.register("mqtt", hub_mqtt)
    hub.plugins.register("relay", relay)
    await hub.start()
    try:
        c = mqtt_client(subscribe=["answers/#", f"{P}/state/#"])
        await asyncio.get_running_loop().run_in_executor(None, c.wait, f"{P}/state/switch.slow_relay")
        total = MAX_IN_FLIGHT + 36
        for n in range(total):
            c.client.publish(f"{P}/set/switch.slow_relay",
                             json.dumps({"command": "turn_on", "id": n, "reply_to": "answers/x"}), qos=1)

        def replies() -> list[dict]:
            return [json.loads(p) for t, p, _ in list(c.messages) if t == "answers/x"]

        # The driver holds every command: past the bound, the rest are refused at once.
        await until(lambda: len(replies()) == total - MAX_IN_FLIGHT, what="busy replies")
        assert relay.calls == MAX_IN_FLIGHT
        assert all(r["error"] == "busy" for r in replies())
        relay.release.set()
        await until(lambda: len(replies()) == total, what="the held commands' replies")
        assert sum(r["ok"] for r in replies()) == MAX_IN_FLIGHT
        # A command is taken again once the others are done.
        c.publish(f"{P}/set/switch.slow_relay", {"command": "turn_off", "id": "later", "reply_to": "answers/y"})
        await asyncio.get_running_loop().run_in_executor(None, c.wait_json, "answers/y")
        assert json.loads(c.latest["answers/y"])["ok"] is True

        relay.ctx.remove_device("relay")  # its retained state is withdrawn
        await until(lambda: c.latest.get(f"{P}/state/switch.slow_relay") == b"", what="the empty retained state")
        late = mqtt_client(subscribe=f"{P}/state/#")
        await asyncio.sleep(0.3)
        assert f"{P}/state/switch.slow_relay" not in late.latest
    finally:
        relay.release.set()
        await hub.stop()

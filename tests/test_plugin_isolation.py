"""One plugin's failure never reaches another plugin or the hub (issue: plugin contract)."""

import asyncio
import textwrap

import pytest
from pydantic import BaseModel, ConfigDict

from hub import hookimpl
from hub.core.commands import CommandFailed, CommandTimeout, EntityUnavailable, InvalidArguments
from hub.devices import Device, EntitySpec
from hub.runtime import Hub

FAST = "hub: {command_timeout: 0.3, setup_timeout: 0.3}\n"


class Good:
    """A well-behaved switch driver."""

    @hookimpl
    def hub_discover(self, hub):
        self.handles = hub.add_device(Device(id="relay", name="Relay"), [EntitySpec(key="out", capability="switch")])
        self.handles["out"].set("off")

    @hookimpl
    async def hub_handle_command(self, entity, command, args):
        entity.set("on" if command == "turn_on" else "off")
        return {"done": command}


class SetupRaises:
    @hookimpl
    def hub_setup(self, hub):
        raise RuntimeError("port /dev/ttyUSB9 not found")


class SetupHangs:
    @hookimpl
    async def hub_setup(self, hub):
        await asyncio.Event().wait()


class CommandRaises:
    @hookimpl
    def hub_discover(self, hub):
        hub.add_device(Device(id="lamp", name="Bad lamp"), [EntitySpec(key="l", capability="light")])["l"].set("off")

    @hookimpl
    def hub_handle_command(self, entity, command, args):
        raise OSError("device answered NAK")


class CommandHangs:
    @hookimpl
    def hub_discover(self, hub):
        hub.add_device(Device(id="slow", name="Slow plug"), [EntitySpec(key="s", capability="switch")])["s"].set("off")

    @hookimpl
    async def hub_handle_command(self, entity, command, args):
        await asyncio.Event().wait()


class RoutesRaise:
    @hookimpl
    def hub_api_routes(self, hub):
        raise ValueError("bad router")


class Configured:
    class Schema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int

    @hookimpl
    def hub_config_schema(self):
        return self.Schema

    @hookimpl
    def hub_setup(self, hub):
        self.port = hub.config.port


def make_hub(tmp_path, write_config, config: str, **plugins) -> Hub:
    write_config(FAST + config)
    hub = Hub(tmp_path, entrypoints=False)
    for name, plugin in plugins.items():
        hub.plugins.register(name, plugin)
    return hub


async def test_failing_setup_is_reported_and_the_rest_runs(tmp_path, write_config):
    hub = make_hub(tmp_path, write_config, "", good=Good(), broken=SetupRaises(), hangs=SetupHangs())
    await hub.start()
    try:
        info = hub.plugins.info
        assert info["broken"].status == "failed"
        assert "port /dev/ttyUSB9 not found" in info["broken"].error
        assert info["hangs"].status == "failed" and "did not finish within 0.3 s" in info["hangs"].error
        assert info["good"].status == "running"
        assert await hub.commands.call("switch.relay_out", "turn_on") == {"done": "turn_on"}
        assert hub.states.get("switch.relay_out").value == "on"
    finally:
        await hub.stop()


async def test_command_errors_and_hangs_stay_with_their_plugin(tmp_path, write_config):
    hub = make_hub(tmp_path, write_config, "", good=Good(), raises=CommandRaises(), hangs=CommandHangs())
    await hub.start()
    try:
        with pytest.raises(CommandFailed, match="device answered NAK"):
            await hub.commands.call("light.bad_lamp_l", "turn_on")
        with pytest.raises(CommandTimeout, match="within 0.3 s"):
            await hub.commands.call("switch.slow_plug_s", "turn_on")
        assert await hub.commands.call("switch.relay_out", "toggle") == {"done": "toggle"}
    finally:
        await hub.stop()


async def test_arguments_are_validated_before_the_driver(tmp_path, write_config):
    seen = []

    class Spy(CommandRaises):
        @hookimpl
        def hub_handle_command(self, entity, command, args):
            seen.append(args)

    hub = make_hub(tmp_path, write_config, "", spy=Spy())
    await hub.start()
    try:
        with pytest.raises(InvalidArguments) as err:
            await hub.commands.call("light.bad_lamp_l", "turn_on", {"brightness": 300})
        assert err.value.errors[0]["field"] == "brightness"
        with pytest.raises(InvalidArguments) as err:
            await hub.commands.call("light.bad_lamp_l", "turn_on", {"brigthness": 3})
        assert err.value.errors[0]["field"] == "brigthness"
        assert seen == []
        await hub.commands.call("light.bad_lamp_l", "turn_on", {"brightness": 30})
        assert seen[0].brightness == 30
    finally:
        await hub.stop()


async def test_a_hook_exception_never_reaches_another_plugin(tmp_path, write_config):
    hub = make_hub(tmp_path, write_config, "", routes=RoutesRaise(), good=Good())
    await hub.start()
    try:
        assert hub.plugins.info["good"].status == "running"
        assert hub.plugins.info["routes"].status == "running"  # a failed optional hook is logged only
    finally:
        await hub.stop()


async def test_bad_plugin_config_stops_only_that_plugin(tmp_path, write_config):
    configured = Configured()
    hub = make_hub(tmp_path, write_config, "configured:\n  port: nope\n", configured=configured, good=Good())
    await hub.start()
    try:
        info = hub.plugins.info["configured"]
        assert info.status == "config_error"
        assert "configured.port" in info.error and "configuration.yaml:3:" in info.error  # file:line of the key
        assert hub.plugins.info["good"].status == "running"
    finally:
        await hub.stop()


async def test_plugin_with_schema_but_no_section_is_not_started(tmp_path, write_config):
    hub = make_hub(tmp_path, write_config, "", configured=Configured())
    await hub.start()
    try:
        assert hub.plugins.info["configured"].status == "not_configured"
    finally:
        await hub.stop()


async def test_import_failure_is_reported(tmp_path, write_config):
    plugins = tmp_path / "local_plugins"
    plugins.mkdir()
    (plugins / "broken_import.py").write_text("import no_such_module_xyz\n")
    (plugins / "fine.py").write_text(textwrap.dedent("""
        from hub import hookimpl
        @hookimpl
        def hub_setup(hub):
            hub.log.info("fine")
    """))
    write_config(FAST)
    hub = Hub(tmp_path, entrypoints=False, plugins_dir=plugins)
    await hub.start()
    try:
        info = hub.plugins.info
        assert info["broken_import"].status == "import_failed"
        assert "No module named 'no_such_module_xyz'" in info["broken_import"].error
        assert info["fine"].status == "running"
    finally:
        await hub.stop()


async def test_crashing_driver_goes_unavailable_and_is_restarted(tmp_path, write_config):
    class Flaky:
        runs = 0

        @hookimpl
        def hub_discover(self, hub):
            self.h = hub.add_device(Device(id="m", name="Meter"), [EntitySpec(key="p", capability="sensor", device_class="power")])["p"]

        @hookimpl
        async def hub_run(self, hub):
            Flaky.runs += 1
            self.h.set(100.0 + Flaky.runs)
            if Flaky.runs == 1:
                await asyncio.sleep(0.05)
                raise ConnectionError("bus fault")
            await asyncio.Event().wait()

    hub = make_hub(tmp_path, write_config, "", flaky=Flaky(), good=Good())
    await hub.start()
    try:
        async def wait_for(pred, timeout=5.0):
            deadline = asyncio.get_running_loop().time() + timeout
            while not pred():
                assert asyncio.get_running_loop().time() < deadline, "condition not reached"
                await asyncio.sleep(0.01)

        await wait_for(lambda: hub.plugins.info["flaky"].status == "restarting")
        state = hub.states.get("sensor.meter_p")
        assert not state.available and state.state == "unavailable"
        assert "ConnectionError: bus fault" in hub.plugins.info["flaky"].error
        assert hub.states.get("switch.relay_out").available  # the other plugin is untouched
        await wait_for(lambda: hub.states.get("sensor.meter_p").available)
        assert hub.states.get("sensor.meter_p").value == 102.0
        assert hub.plugins.info["flaky"].restarts == 1 and hub.plugins.info["flaky"].status == "running"
    finally:
        await hub.stop()


async def test_commands_to_an_unavailable_entity_are_refused(tmp_path, write_config):
    good = Good()
    hub = make_hub(tmp_path, write_config, "", good=good)
    await hub.start()
    try:
        good.handles["out"].set_unavailable()
        with pytest.raises(EntityUnavailable, match="switch.relay_out is unavailable"):
            await hub.commands.call("switch.relay_out", "turn_on")
    finally:
        await hub.stop()

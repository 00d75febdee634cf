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


# --- issue #14: plugin code raising anything, blocking the loop ------------------------------------


class ExitsEverywhere:
    """sys.exit() and other BaseExceptions from every hook that the hub calls."""

    def __init__(self, raised: BaseException) -> None:
        self.raised = raised

    @hookimpl
    def hub_api_routes(self, hub):
        raise self.raised

    @hookimpl
    def hub_rule_triggers(self, register):
        raise self.raised

    @hookimpl
    def hub_rule_actions(self, register):
        raise self.raised

    @hookimpl
    async def hub_shutdown(self, hub):
        raise self.raised


@pytest.mark.parametrize("hook", ["hub_config_schema", "hub_setup", "hub_discover"])
@pytest.mark.parametrize("raised", [SystemExit(4), KeyboardInterrupt(), GeneratorExit(), asyncio.CancelledError()])
async def test_a_base_exception_in_a_start_hook_fails_only_that_plugin(tmp_path, write_config, hook, raised):
    async def async_raise(*args, **kwargs):
        raise raised

    def sync_raise(*args, **kwargs):
        raise raised

    # The same hook, sync and async, since an async one runs in a task of its own under wait_for.
    plugins = {}
    for kind, function in (("sync", sync_raise), ("async", async_raise)):
        cls = type(f"Raises_{kind}", (), {hook: hookimpl(function)})
        plugins[f"raises_{kind}"] = cls()
    hub = make_hub(tmp_path, write_config, "", good=Good(), **plugins)
    await hub.start()
    try:
        for name in plugins:
            info = hub.plugins.info[name]
            assert info.status == "failed", (name, info)
            if hook == "hub_config_schema" and name == "raises_async":  # never awaited: refused as async
                assert "must be a plain function, not async" in info.error
            else:
                assert type(raised).__name__ in info.error
        assert hub.plugins.info["good"].status == "running"
        assert await hub.commands.call("switch.relay_out", "turn_on") == {"done": "turn_on"}
    finally:
        await hub.stop()


@pytest.mark.parametrize("raised", [SystemExit("bye"), KeyboardInterrupt("no")])
async def test_base_exceptions_from_optional_hooks_and_shutdown_are_contained(tmp_path, write_config, raised, caplog):
    hub = make_hub(tmp_path, write_config, "", exits=ExitsEverywhere(raised), good=Good())
    await hub.start()
    try:
        assert hub.plugins.info["exits"].status == "running"  # optional hooks failing are logged only
        assert hub.plugins.info["good"].status == "running"
    finally:
        await hub.stop()
    assert "plugin exits: shutdown failed" in caplog.text
    assert hub.store is not None and hub.recorder is not None  # stop ran to its end: the store closed


class ExitsInCommand(Good):
    def __init__(self, raised: BaseException) -> None:
        self.raised = raised

    @hookimpl
    async def hub_handle_command(self, entity, command, args):
        raise self.raised


@pytest.mark.parametrize("raised", [SystemExit(7), KeyboardInterrupt(), asyncio.CancelledError()])
async def test_a_command_whose_driver_raises_a_base_exception_is_a_logged_502(tmp_path, write_config, raised):
    from hub.core.events import CommandCalled

    hub = make_hub(tmp_path, write_config, "", exits=ExitsInCommand(raised))
    seen = []
    hub.bus.subscribe(CommandCalled, seen.append)
    await hub.start()
    try:
        with pytest.raises(CommandFailed, match=type(raised).__name__) as err:
            await hub.commands.call("switch.relay_out", "turn_on")
        assert err.value.status == 502
        assert [(e.entity_id, e.ok) for e in seen] == [("switch.relay_out", False)]
        assert type(raised).__name__ in seen[0].error
    finally:
        await hub.stop()


async def test_a_blocking_sync_setup_is_interrupted_at_the_timeout(tmp_path, write_config):
    import time

    class BlocksSetup:
        @hookimpl
        def hub_setup(self, hub):
            time.sleep(30)

    hub = make_hub(tmp_path, write_config, "", blocks=BlocksSetup(), good=Good())
    await hub.start()
    try:
        info = hub.plugins.info["blocks"]
        assert info.status == "failed" and "did not finish within 0.3 s" in info.error
        assert hub.plugins.info["good"].status == "running"
    finally:
        await hub.stop()


async def test_a_blocking_sync_command_is_cut_off_at_the_command_timeout(tmp_path, write_config):
    import time

    class BlocksCommand(Good):
        @hookimpl
        def hub_handle_command(self, entity, command, args):
            time.sleep(30)

    hub = make_hub(tmp_path, write_config, "", blocks=BlocksCommand())
    await hub.start()
    try:
        with pytest.raises(CommandTimeout, match="within 0.3 s"):
            await hub.commands.call("switch.relay_out", "turn_on")
    finally:
        await hub.stop()


async def test_the_plugin_that_blocks_the_loop_is_named(tmp_path, write_config, caplog):
    import time

    class Blocker:
        @hookimpl
        async def hub_run(self, hub):
            await asyncio.sleep(0)
            time.sleep(1.0)  # blocks the event loop, as a careless driver would
            await asyncio.Event().wait()

    hub = make_hub(tmp_path, write_config, "", blocker=Blocker(), good=Good())
    hub.watchdog.stall_after = 0.3
    await hub.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not hub.plugins.info["blocker"].stalls:
            assert asyncio.get_running_loop().time() < deadline, "no stall recorded"
            await asyncio.sleep(0.05)
        info = hub.plugins.info["blocker"]
        assert info.status == "running" and info.last_stall > 0.3
        assert "in hub_run" in info.note and "test_plugin_isolation.py" in info.note
        assert hub.plugins.info["good"].stalls == 0
        assert "plugin blocker blocked the event loop" in caplog.text
    finally:
        await hub.stop()


async def test_hub_run_that_returns_at_once_is_not_restarted(tmp_path, write_config):
    class Returns:
        runs = 0

        @hookimpl
        async def hub_run(self, hub):
            Returns.runs += 1

    hub = make_hub(tmp_path, write_config, "", returns=Returns())
    await hub.start()
    try:
        task = hub._tasks["returns"]
        await task
        assert hub.plugins.info["returns"].status == "stopped"
        assert Returns.runs == 1 and hub.plugins.info["returns"].restarts == 0
    finally:
        await hub.stop()


async def test_hub_run_failing_while_cancelled_is_not_restarted_and_stop_ends(tmp_path, write_config):
    class FailsOnStop:
        @hookimpl
        async def hub_run(self, hub):
            try:
                await asyncio.Event().wait()
            finally:
                raise SystemExit("clean-up failed")

    class IgnoresFirstCancel:
        @hookimpl
        async def hub_run(self, hub):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass  # wrong, but it happens; the second cancellation (loop teardown) ends it
            await asyncio.Event().wait()

    hub = make_hub(tmp_path, write_config, "", fails=FailsOnStop(), ignores=IgnoresFirstCancel())
    await hub.start()
    await asyncio.sleep(0)
    await hub.stop()
    info = hub.plugins.info["fails"]
    assert info.status == "stopped" and "SystemExit: clean-up failed" in info.error and info.restarts == 0
    hub._tasks["ignores"].cancel()


async def test_subscribers_and_rule_actions_raising_base_exceptions_are_contained(tmp_path, write_config):
    from pydantic import BaseModel as Model

    from hub.core.events import CustomEvent

    class Quits:
        class Config(Model):
            quit: int

        @hookimpl
        def hub_rule_actions(self, register):
            def run(config, variables):
                raise SystemExit(config.quit)

            register("quit", self.Config, run)

        @hookimpl
        def hub_setup(self, hub):
            hub.bus.subscribe("go", self.on_go)

        def on_go(self, event):
            raise SystemExit("a plugin's own subscriber")

    write_config(FAST)
    (tmp_path / "automations.yaml").write_text(textwrap.dedent("""
        - id: quitter
          trigger:
            - trigger: event
              event_type: go
          action:
            - quit: 9
    """))
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("quits", Quits())
    hub.plugins.register("good", Good())
    got = []

    def sync_quits(event):
        raise SystemExit("sync subscriber")

    async def async_quits(event):
        raise KeyboardInterrupt("async subscriber")

    hub.bus.subscribe("go", sync_quits)
    hub.bus.subscribe("go", async_quits)
    hub.bus.subscribe("go", got.append)
    await hub.start()
    try:
        hub.bus.publish(CustomEvent(hub.now(), "go", {}))
        await hub.bus.drain()
        for _ in range(50):
            if hub.rules.traces.for_rule("quitter"):
                break
            await asyncio.sleep(0.02)
        assert len(got) == 1  # the subscribers after the ones that raised still got the event
        note = hub.plugins.info["quits"].note
        assert "SystemExit: a plugin's own subscriber" in note and "in on_go" in note
        assert hub.plugins.info["good"].note is None
        [trace] = [t.as_dict() for t in hub.rules.traces.for_rule("quitter")]
        assert trace["outcome"] == "error" and "SystemExit: 9" in trace["error"]
        assert await hub.commands.call("switch.relay_out", "turn_on") == {"done": "turn_on"}
    finally:
        await hub.stop()


async def test_a_recorder_crash_is_logged_and_it_is_restarted(tmp_path, write_config, caplog):
    write_config("hub: {commit_interval: 0.05}\n")
    hub = Hub(tmp_path, entrypoints=False)
    good = Good()
    hub.plugins.register("good", good)
    await hub.start()
    try:
        recorder, flush = hub.recorder, hub.recorder.flush
        crashed = False

        async def flush_with_a_bug():
            nonlocal crashed
            if not crashed:
                crashed = True
                raise RuntimeError("a bug in the recorder")
            await flush()

        recorder.flush = flush_with_a_bug
        deadline = asyncio.get_running_loop().time() + 10
        while not recorder.crashes:
            assert asyncio.get_running_loop().time() < deadline, "the crash was not noticed"
            await asyncio.sleep(0.02)
        assert "recorder crashed; state history is not being written" in caplog.text
        good.handles["out"].set("on")
        while not any(r.value == "on" for r in hub.store.history("switch.relay_out", 0, hub.now() + 60, 10)):
            assert asyncio.get_running_loop().time() < deadline, "history not written after the restart"
            await asyncio.sleep(0.05)
    finally:
        await hub.stop()

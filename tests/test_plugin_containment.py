"""Issue #14: plugin code can raise anything (``sys.exit()``, ``KeyboardInterrupt``) and block the
event loop; the hub stays up, says which plugin did it, and keeps serving. Against a real ``hub run``."""

import textwrap

from hub.store import Store
from tests.hubproc import HubProcess, run_cli

CONFIG = "hub: {setup_timeout: 1.0, command_timeout: 2.0, restart_backoff_max: 1}\n"
NO_ENTRYPOINTS = {"RUFFHUB_NO_ENTRYPOINTS": "1"}

HEADER = """
import asyncio, sys, time
from hub import hookimpl
from hub.devices import Device, EntitySpec
"""

PLUGINS = {
    # hub_run ends with sys.exit(): before the fix, SystemExit left the event loop and the hub exited.
    "exits_in_run": """
        @hookimpl
        async def hub_run(hub):
            await asyncio.sleep(0.05)
            sys.exit(3)
    """,
    # A command whose driver calls sys.exit(): a bare 500 and no command-log row before the fix.
    "exits_in_command": """
        @hookimpl
        def hub_discover(hub):
            hub.add_device(Device(id="quitter", name="Quitter"), [EntitySpec(key="s", capability="switch")])["s"].set("off")

        @hookimpl
        def hub_handle_command(entity, command, args):
            sys.exit("the driver gave up")
    """,
    # An async set-up runs under wait_for, in a task of its own: SystemExit there ended the hub too.
    "exits_in_async_setup": """
        @hookimpl
        async def hub_setup(hub):
            sys.exit(2)
    """,
    "interrupts_discovery": """
        @hookimpl
        def hub_discover(hub):
            raise KeyboardInterrupt("not a real Ctrl-C")
    """,
    # A synchronous set-up that blocks for longer than setup_timeout: the hub's start waited for it.
    "blocks_setup": """
        @hookimpl
        def hub_setup(hub):
            time.sleep(30)
    """,
    # Blocks the event loop from its (async) hub_run, once, for 2.5 s.
    "blocks_loop": """
        @hookimpl
        async def hub_run(hub):
            await asyncio.sleep(0.5)
            time.sleep(2.5)
            await asyncio.Event().wait()
    """,
    # Swallows every cancellation: asyncio.run waited for it forever, so SIGTERM never ended the hub.
    "swallows_cancel": """
        @hookimpl
        async def hub_run(hub):
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass
    """,
    # A task the plugin starts itself ends with sys.exit(): asyncio let it out of the loop.
    "exits_in_own_task": """
        async def poll():
            await asyncio.sleep(0.05)
            sys.exit(4)

        @hookimpl
        async def hub_run(hub):
            task = asyncio.create_task(poll())
            await asyncio.Event().wait()
    """,
    "healthy": """
        @hookimpl
        def hub_discover(hub):
            hub.add_device(Device(id="relay", name="Relay"), [EntitySpec(key="out", capability="switch")])["out"].set("off")

        @hookimpl
        def hub_handle_command(entity, command, args):
            entity.set("on" if command == "turn_on" else "off")
    """,
}


def start_hub(tmp_path, plugins: dict[str, str]) -> HubProcess:
    directory = tmp_path / "plugins"
    directory.mkdir()
    for name, body in plugins.items():
        (directory / f"{name}.py").write_text(HEADER + textwrap.dedent(body))
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(CONFIG)
    return HubProcess(data, plugins_dir=directory, extra_env=NO_ENTRYPOINTS).start()


def plugin_info(proc: HubProcess) -> dict[str, dict]:
    return {p["name"]: p for p in proc.get("/api/plugins")}


def test_plugins_that_exit_or_block_never_stop_the_hub(tmp_path):
    proc = start_hub(tmp_path, PLUGINS)
    try:
        info = plugin_info(proc)
        assert info["exits_in_async_setup"]["status"] == "failed"
        assert "SystemExit: 2" in info["exits_in_async_setup"]["error"]
        assert info["interrupts_discovery"]["status"] == "failed"
        assert "KeyboardInterrupt: not a real Ctrl-C" in info["interrupts_discovery"]["error"]
        assert info["blocks_setup"]["status"] == "failed"
        assert "did not finish within 1 s" in info["blocks_setup"]["error"]
        assert info["healthy"]["status"] == "running"

        # sys.exit() in hub_run is a crash like any other: restarted with a back-off, the hub runs on.
        restarted = proc.wait_for(lambda: (p := plugin_info(proc)["exits_in_run"])["restarts"] >= 2 and p,
                                  what="exits_in_run restarted twice")
        assert "SystemExit: 3" in restarted["error"]
        assert proc.proc.poll() is None

        # sys.exit() in a task the plugin started itself: contained, logged with where it came from.
        proc.wait_for(lambda: "raised SystemExit: 4" in proc.log(), what="the plugin task's exit logged")
        assert "poll (" in proc.log() and "exits_in_own_task.py" in proc.log()
        assert proc.get("/api/health")["status"] == "ok"

        # sys.exit() in a command's driver: a 502 with the reason, in the command log like any failure.
        status, body = proc.request("POST", "/api/entities/switch.quitter_s/commands/turn_on", {})
        assert status == 502, body
        assert body["error"] == "command_failed" and "SystemExit: the driver gave up" in body["message"]
        assert proc.request("POST", "/api/entities/switch.relay_out/commands/turn_on", {})[0] == 200

        # The plugin that blocked the loop is named, with the stall's length and where it was.
        stalled = proc.wait_for(lambda: (p := plugin_info(proc)["blocks_loop"])["stalls"] and p,
                                what="a stall recorded against blocks_loop")
        assert stalled["status"] == "running" and stalled["last_stall"] >= 2.0
        assert "blocked the event loop" in stalled["note"] and "blocks_loop.py" in stalled["note"]
        assert "plugin blocks_loop blocked the event loop for" in proc.log()
        assert "blocked for" in proc.log() and "by plugin blocks_loop" in proc.log()  # while it was blocked
        assert all(p["stalls"] == 0 for name, p in plugin_info(proc).items() if name != "blocks_loop")

        table = run_cli(proc.data, "plugins")
        assert table.returncode == 0, table.stderr
        assert "blocked the event loop" in table.stdout and "stalls" in table.stdout
    finally:
        assert proc.stop() == 0  # within hubproc's 15 s, despite swallows_cancel
    log = proc.log()
    assert "swallows_cancel: hub_run did not end within 1 s of being cancelled" in log
    assert log.count("plugin blocks_loop blocked the event loop") == 1  # logged once, not per sample

    failed = [row for row in Store(proc.data).command_log("switch.quitter_s") if not row["ok"]]
    assert failed and "SystemExit: the driver gave up" in failed[0]["error"]


def test_an_installed_plugin_that_exits_at_load_does_not_take_the_cli_with_it(tmp_path):
    """Every ``hub`` command loads the installed plugins to let them add subcommands; a plugin's
    sys.exit() there ended every command before any ran."""
    site = tmp_path / "site"
    dist = site / "ruffhub_quitter-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ruffhub-quitter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ruffhub.plugins]\nquitter = hub_quitter\n")
    (site / "hub_quitter.py").write_text(textwrap.dedent("""
        import sys
        from hub import hookimpl

        @hookimpl
        def hub_register_commands(cli):
            sys.exit("no commands today")
    """))
    import os

    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    out = run_cli(tmp_path / "data", "plugins", "--json", "--url", "http://127.0.0.1:1", env=env)
    assert out.returncode == 0, out.stderr
    assert "plugin quitter: could not add its commands: SystemExit: no commands today" in out.stderr
    assert '"quitter"' in out.stdout

"""The README's plugin example is the first code a plugin author copies: it must work as printed."""

import asyncio
import re
from pathlib import Path

from hub.runtime import Hub

README = Path(__file__).resolve().parents[1] / "README.md"


def plugin_example() -> str:
    text = README.read_text()
    section = text[text.index("## Writing a driver plugin"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


async def test_readme_plugin_example_runs(tmp_path):
    plugins = tmp_path / "my_plugins"
    plugins.mkdir()
    (plugins / "hub_sysmon.py").write_text(plugin_example())
    (tmp_path / "configuration.yaml").write_text("hub: {commit_interval: 0.1}\n")
    hub = Hub(tmp_path, entrypoints=False, plugins_dir=plugins)
    hub.plugins.load(plugins, entrypoints=False)  # load now so the test can redirect the flag file
    hub.plugins.pm.get_plugin("hub_sysmon").FLAG = tmp_path / "maintenance"
    hub.plugins.load = lambda *a, **k: None  # already loaded
    await hub.start()
    try:
        assert hub.plugins.info["hub_sysmon"].status == "running", hub.plugins.info["hub_sysmon"].error
        for _ in range(200):
            load = hub.states.get("sensor.load_1m")
            if load is not None and load.available:
                break
            await asyncio.sleep(0.01)
        assert isinstance(load.value, float) and load.available
        await hub.commands.call("switch.maintenance", "turn_on")
        assert (tmp_path / "maintenance").exists()
        assert hub.states.get("switch.maintenance").value == "on"
        await hub.commands.call("switch.maintenance", "toggle")
        assert not (tmp_path / "maintenance").exists()
        assert hub.states.get("switch.maintenance").value == "off"
    finally:
        await hub.stop()


async def test_readme_rule_example_loads_against_the_demo_home(tmp_path):
    import yaml

    import hub_demo

    text = README.read_text()
    section = text[text.index("## Rules"):]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "automations.yaml").write_text(example)
    (tmp_path / "configuration.yaml").write_text("demo:\n")
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("demo", hub_demo)
    await hub.start()
    try:
        assert hub.rules.issues == []
        [rule_id] = [r["id"] for r in yaml.safe_load(example)]
        assert hub.rules.rules[rule_id].status == "on"
    finally:
        await hub.stop()

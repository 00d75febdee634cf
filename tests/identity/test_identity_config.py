"""The ``identity:`` section: optional (the gate runs on its defaults), and a bad value is named."""

from __future__ import annotations

import pytest

from hub.config import load_config
from hub.identity.plugin import IdentityConfig


@pytest.mark.parametrize("text, key, words", [
    ("identity:\n  window: 0\n", "identity.window", "greater than 0"),
    ("identity:\n  windwo: 30\n", "identity.windwo", "not permitted"),
])
def test_a_bad_identity_section_names_the_key(tmp_path, text, key, words):
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    issues = load_config(path, {"identity": IdentityConfig}).issues
    assert [(i.key, i.line) for i in issues] == [(key, 2)]
    assert words in issues[0].message


async def test_the_gate_runs_with_no_identity_section_and_no_chain(tmp_path):
    from hub.runtime import Hub

    (tmp_path / "configuration.yaml").write_text("demo:\n  update_interval: 0.05\n")
    hub = Hub(tmp_path, entrypoints=True)
    await hub.start()
    try:
        assert hub.plugins.info["identity"].status == "running", hub.plugins.info["identity"].error
        identity = hub.services["identity"]
        assert identity.network is None  # no chain: signed control off ...
        await hub.commands.call("switch.smart_plug", "turn_on", source="api:owner")  # ... local commands as ever
        assert hub.states.get("switch.smart_plug").value == "on"
        assert (tmp_path / "identity" / "identity.db").stat().st_mode & 0o077 == 0
    finally:
        await hub.stop()

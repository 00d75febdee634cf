"""``GET /api/metrics`` of a real ``hub run``: Prometheus text, behind the token, with figures that
follow what the hub does (states written, commands ok and failed, plugins by status)."""

from __future__ import annotations

import urllib.error
import urllib.request


def scrape(hub, token: str | None) -> tuple[int, str, dict[str, float]]:
    req = urllib.request.Request(hub.url + "/api/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            ctype = resp.headers["content-type"]
    except urllib.error.HTTPError as exc:
        return exc.code, "", {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return 200, ctype, samples


def test_metrics_need_the_token_and_follow_the_hub(hub):
    assert scrape(hub, None)[0] == 401
    assert scrape(hub, "not-a-token")[0] == 401
    status, ctype, before = scrape(hub, hub.token)
    assert status == 200 and ctype.startswith("text/plain")
    assert before["ruff_hub_entities"] == len(hub.get("/api/entities")) > 0
    # The gauge agrees with what /api/plugins says, whichever built-in parts run on their defaults.
    plugins = hub.get("/api/plugins")
    statuses = [p["status"] for p in (plugins.values() if isinstance(plugins, dict) else plugins)]
    assert before['ruff_hub_plugins{status="running"}'] == statuses.count("running") >= 2
    assert before['ruff_hub_plugins{status="failed"}'] == statuses.count("failed") == 0
    assert before["ruff_hub_recorder_backlog"] >= 0 and "ruff_hub_rule_runs_total" in before

    hub.post("/api/entities/light.living_room/commands/turn_on", {"brightness": 42})
    assert hub.request("POST", "/api/entities/light.nowhere/commands/turn_on")[0] == 404
    _, _, after = scrape(hub, hub.token)
    assert after['ruff_hub_commands_total{outcome="ok"}'] == before['ruff_hub_commands_total{outcome="ok"}'] + 1
    assert after['ruff_hub_commands_total{outcome="failed"}'] == before['ruff_hub_commands_total{outcome="failed"}'] + 1
    assert after["ruff_hub_states_written_total"] > before["ruff_hub_states_written_total"]

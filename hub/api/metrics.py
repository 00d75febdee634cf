"""``GET /api/metrics``: the hub in Prometheus's text format, like a chain node's ``GET /metrics``.

Behind the API token like every route but health: entity names and plugin statuses describe the
installation. A scraper sends the token (Prometheus: ``authorization: {credentials_file: ...}``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hub.api.auth import require_token
from hub.net.prom import CONTENT_TYPE, counter, gauge, render

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

#: Every status a plugin can have, so a scrape shows zeros rather than missing series.
PLUGIN_STATUSES = ("loaded", "import_failed", "config_error", "not_configured", "setting_up", "running", "failed",
                   "restarting", "stopped")


@router.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    hub = request.app.state.hub
    statuses = dict.fromkeys(PLUGIN_STATUSES, 0)
    for info in hub.plugins.info.values():
        statuses[info.status] = statuses.get(info.status, 0) + 1
    recorder = getattr(hub, "recorder", None)
    rules = getattr(hub, "rules", None)
    started = getattr(hub, "started_at", None)
    text = render([
        gauge("ruff_hub_devices", "Devices registered", len(hub.devices)),
        gauge("ruff_hub_entities", "Entities registered", len(hub.entities)),
        counter("ruff_hub_states_written", "State changes since the hub started", hub.states.writes),
        counter("ruff_hub_commands", "Commands since the hub started, by outcome", label="outcome",
                values=hub.commands.outcomes),
        counter("ruff_hub_rule_runs", "Rule runs since the hub started (skipped and condition-failed ones too)",
                rules.traces.added if rules is not None else 0),
        gauge("ruff_hub_plugins", "Plugins by status", label="status", values=statuses),
        gauge("ruff_hub_plugin_restarts", "Restarts of each plugin since the hub started", label="plugin",
              values={name: info.restarts for name, info in hub.plugins.info.items()}),
        gauge("ruff_hub_recorder_backlog", "History rows waiting for the recorder's next commit",
              recorder.backlog if recorder is not None else 0),
        gauge("ruff_hub_recorder_crashes", "Times the recorder crashed and was restarted",
              recorder.crashes if recorder is not None else 0),
        gauge("ruff_hub_uptime_seconds", "Seconds since the hub started",
              max(0.0, hub.now() - started) if started else 0),
    ])
    return Response(text, media_type=CONTENT_TYPE)

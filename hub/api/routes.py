"""REST routes: devices, entities, states, commands, history, plugins."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request

from hub import __version__
from hub.api.auth import require_token
from hub.core.commands import CommandError
from hub.core.events import CustomEvent
from hub.core.state import iso
from hub.devices.capabilities import CAPABILITIES
from hub.identity.api import identity_of

public = APIRouter(prefix="/api")
router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])


def _hub(request: Request):
    return request.app.state.hub


def _entity_or_404(hub, entity_id: str):
    entry = hub.entities.get(entity_id)
    if entry is None:
        raise HTTPException(404, f"unknown entity {entity_id!r}")
    return entry


def _entity_dict(hub, entry) -> dict[str, Any]:
    data = entry.as_dict()
    data["commands"] = sorted(CAPABILITIES[entry.capability].commands)
    state = hub.states.get(entry.entity_id)
    data["state"] = state.as_dict() if state else None
    return data


#: Times the API takes: from the unix epoch (no hub recorded anything before) to the last day
#: an ISO 8601 answer can show (year 9999), so every accepted time can also be given back.
MIN_TIME = 0.0
MAX_TIME = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()

#: Encoded size of a custom event's data: events are queued for every WebSocket subscriber.
MAX_EVENT_DATA_BYTES = 64 * 1024
#: No event type is longer (POST /api/events and the WebSocket's subscribe_events).
MAX_EVENT_TYPE_LENGTH = 100


def parse_time(value: str | None, name: str) -> float | None:
    """Accept unix seconds or ISO 8601, the two forms people paste. An ISO time without a UTC
    offset is UTC, like every time the API gives back, whatever the server's time zone is."""
    if value is None or value == "":
        return None
    shown = value if len(value) <= 64 else value[:64] + "..."
    try:
        ts = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ts = dt.timestamp()
        except (ValueError, OverflowError):
            raise HTTPException(422, f"{name}: expected unix seconds or an ISO 8601 time, got {shown!r}") from None
    if not (math.isfinite(ts) and MIN_TIME <= ts <= MAX_TIME):
        raise HTTPException(422, f"{name}: {shown!r} is outside 1970-01-01 .. 9999-12-30 (unix seconds 0 .. {MAX_TIME:.0f})")
    return ts


@public.get("/health", summary="Liveness; the only route without a token")
async def health(request: Request) -> dict[str, Any]:
    hub = _hub(request)
    return {"status": "ok", "version": __version__, "started_at": iso(hub.started_at)}


@router.get("/devices", summary="Devices with their entity ids")
async def list_devices(request: Request) -> list[dict[str, Any]]:
    hub = _hub(request)
    return [
        {**d.as_dict(), "entities": [e.entity_id for e in hub.entities.for_device(d.id)],
         "identity": identity_of(hub, d.id)} for d in hub.devices
    ]


@router.get("/devices/{device_id:path}")
async def get_device(device_id: str, request: Request) -> dict[str, Any]:
    hub = _hub(request)
    device = hub.devices.get(device_id)
    if device is None:
        raise HTTPException(404, f"unknown device {device_id!r}")
    return {**device.as_dict(), "entities": [_entity_dict(hub, e) for e in hub.entities.for_device(device_id)],
            "identity": identity_of(hub, device_id)}


@router.get("/entities", summary="Entities with capability, commands and current state")
async def list_entities(request: Request) -> list[dict[str, Any]]:
    hub = _hub(request)
    return [_entity_dict(hub, e) for e in hub.entities]


@router.get("/entities/{entity_id}")
async def get_entity(entity_id: str, request: Request) -> dict[str, Any]:
    hub = _hub(request)
    return _entity_dict(hub, _entity_or_404(hub, entity_id))


@router.get("/states")
async def list_states(request: Request) -> list[dict[str, Any]]:
    return [s.as_dict() for s in _hub(request).states]


@router.get("/states/{entity_id}")
async def get_state(entity_id: str, request: Request) -> dict[str, Any]:
    state = _hub(request).states.get(entity_id)
    if state is None:
        raise HTTPException(404, f"unknown entity {entity_id!r}")
    return state.as_dict()


@router.post(
    "/entities/{entity_id}/commands/{command}",
    summary="Call a capability command",
    description="The body is the command's arguments as a JSON object (may be empty). Arguments are "
    "validated against the capability's model; errors name the field.",
)
async def call_command(
    entity_id: str,
    command: str,
    request: Request,
    args: dict[str, Any] | None = Body(default=None),
    token_name: str = Depends(require_token),
) -> dict[str, Any]:
    hub = _hub(request)
    result = await hub.commands.call(entity_id, command, args, source=f"api:{token_name}")
    state = hub.states.get(entity_id)
    return {"entity_id": entity_id, "command": command, "result": result, "state": state.as_dict() if state else None}


@router.get("/history/{entity_id}", summary="Recorded states of one entity in a time range")
async def history(
    entity_id: str,
    request: Request,
    start: str | None = Query(None, description="unix seconds or ISO 8601 (UTC without an offset); default 24 h ago"),
    end: str | None = Query(None, description="unix seconds or ISO 8601 (UTC without an offset); default now"),
    limit: int = Query(10000, ge=1, le=100000),
) -> dict[str, Any]:
    hub = _hub(request)
    _entity_or_404(hub, entity_id)
    start_ts = parse_time(start, "start")
    end_ts = parse_time(end, "end")
    if start_ts is None:
        start_ts = (end_ts if end_ts is not None else hub.now()) - 86400
    if end_ts is not None and end_ts < start_ts:
        raise HTTPException(422, "end: must not be before start")
    if hub.recorder is not None:
        await hub.recorder.flush()  # so the answer includes the last second too
    rows = await asyncio.to_thread(hub.store.history, entity_id, start_ts, end_ts, limit)
    return {
        "entity_id": entity_id,
        "start": iso(start_ts),
        "end": iso(end_ts),
        "states": [
            {
                "state": r.value if r.available else "unavailable",
                "value": r.value,
                "available": r.available,
                "attributes": r.attributes,
                "last_changed": iso(r.last_changed),
                "last_updated": iso(r.last_updated),
            }
            for r in rows
        ],
    }


@router.get("/plugins", summary="Installed plugins, their status and errors")
async def plugins(request: Request) -> list[dict[str, Any]]:
    return [info.as_dict() for info in _hub(request).plugins.info.values()]


@router.get("/capabilities", summary="The unified device model: capabilities and their commands")
async def capabilities() -> dict[str, Any]:
    return {
        name: {
            "description": cap.description,
            "numeric": cap.numeric,
            "states": list(cap.states),
            "attributes": list(cap.attributes),
            "device_classes": sorted(cap.device_classes),
            "commands": {c.name: {"description": c.description, "args": c.args.model_json_schema()} for c in cap.commands.values()},
            # What an entity of this capability must declare (a number's range, a select's options).
            "options": cap.options_model.model_json_schema() if cap.options_model is not None else None,
        }
        for name, cap in CAPABILITIES.items()
    }


@router.post("/events/{event_type}", summary="Fire a custom event (rules can trigger on it)",
             description=f"The body (a JSON object, at most {MAX_EVENT_DATA_BYTES} bytes) is the event's data.")
async def fire_event(
    request: Request,
    event_type: str = Path(max_length=MAX_EVENT_TYPE_LENGTH),
    data: dict[str, Any] | None = Body(default=None),
) -> dict[str, Any]:
    hub = _hub(request)
    if event_type in ("state_changed", "command_called", "entity_registered", "plugin_status", "hub_start", "hub_stop"):
        raise HTTPException(422, f"event_type: {event_type!r} is fired by the hub itself")
    if data and len(json.dumps(data)) > MAX_EVENT_DATA_BYTES:
        raise HTTPException(422, f"body: event data larger than {MAX_EVENT_DATA_BYTES} bytes once encoded")
    hub.bus.publish(CustomEvent(hub.now(), event_type, data or {}))
    return {"fired": event_type}


def command_error_response(exc: CommandError):
    from fastapi.responses import JSONResponse

    return JSONResponse(exc.as_dict(), status_code=exc.status)

"""The anchored command log over the API (owner's token): recent commands with their anchor status,
one command's proof, and the anchoring's progress. ``hub device log`` reads these."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from hub.api.auth import require_token

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)], tags=["command log"])


def _anchorer(request: Request) -> Any:
    anchorer = request.app.state.hub.services.get("anchor")
    if anchorer is None:
        raise HTTPException(503, "the command log's anchoring is not running (see `hub plugins`: anchor)")
    return anchorer


@router.get("/commands", summary="Recent commands (newest first) with their anchor status")
async def commands(request: Request, device: str | None = Query(None, description="Only this device's entities."),
                   limit: int = Query(50, ge=1, le=1000)) -> list[dict]:
    import asyncio

    hub = request.app.state.hub
    # The recorder logs every command whether or not anchoring runs: without it each row is "logged".
    anchorer = hub.services.get("anchor")
    if anchorer is not None:
        log = anchorer.anchors
    else:
        from hub.store.anchors import LogAnchors

        log = LogAnchors(hub.store)
    entity_ids = None
    if device is not None:
        if hub.devices.get(device) is None:
            raise HTTPException(404, f"unknown device {device!r}")
        entity_ids = [e.entity_id for e in hub.entities.for_device(device)]
    if hub.recorder is not None:
        await hub.recorder.flush()  # so the answer includes the command just made
    return await asyncio.to_thread(log.entries_with_status, entity_ids, limit)


@router.get("/commands/{command_id}/proof", summary="A logged command's inclusion proof and its anchor on chain")
async def proof(request: Request, command_id: int) -> dict:
    found = await _anchorer(request).proof(command_id)
    if found is None:
        raise HTTPException(404, f"no command {command_id} in the command log (never logged, or purged)")
    return found


@router.get("/anchors", summary="How far the command log is anchored")
async def anchors(request: Request) -> dict:
    import asyncio

    anchorer = _anchorer(request)
    counts = await asyncio.to_thread(anchorer.anchors.counts)
    pending = await asyncio.to_thread(anchorer.anchors.open_batches, 20)
    return {**counts, "open_batches": [b.as_dict() for b in pending], "last_error": anchorer.last_error,
            "batch_size": anchorer.config.batch_size, "interval": anchorer.config.interval}

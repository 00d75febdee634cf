"""Scripts over the API: list them with their fields, read their traces, run one.

``POST /api/scripts/<id>`` takes the script's field values as a JSON object, checked against its
``fields`` before anything runs (422 naming the field), and answers once the run has started, or,
with ``?wait=true``, once it has ended, with its outcome.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from hub.api.auth import require_token
from hub.api.limits import MAX_SCRIPT_BODY_BYTES, MAX_SCRIPT_WAIT
from hub.core.state import iso
from hub.rules.scripts import ScriptError

router = APIRouter(prefix="/api/scripts", dependencies=[Depends(require_token)], tags=["scripts"])


def _runner(request: Request):
    engine = request.app.state.hub.rules
    if engine is None:
        raise HTTPException(409, "the rule engine is not running")
    return engine.scripts


def _get(request: Request, script_id: str):
    lr = _runner(request).loaded.get(script_id)
    if lr is None:
        raise HTTPException(404, f"unknown script {script_id!r}")
    return lr


def _summary(request: Request, lr) -> dict[str, Any]:
    script = lr.script
    head = script.head if script else None
    traces = request.app.state.hub.rules.traces.for_rule(lr.id)
    last = traces[-1] if traces else None
    return {
        "id": script.id,
        "entity_id": f"script.{script.id}",
        "alias": head.alias if head else None,
        "description": head.description if head else None,
        "icon": head.icon if head else None,
        "mode": head.mode if head else None,
        "fields": script.describe_fields(),
        "status": "error" if lr.rule is None else "running" if (lr.runs or lr.queue) else "off",
        "running": len(lr.runs),
        "last_run": iso(lr.last_triggered),
        "last_outcome": last.outcome if last else None,
        "source": lr.source,
        "issues": [str(i) for i in lr.issues],
    }


@router.get("", summary="Every script with its fields, status, last run and source")
async def list_scripts(request: Request) -> dict[str, Any]:
    return {"scripts": [_summary(request, lr) for lr in _runner(request).loaded.values()]}


@router.get("/{script_id}", summary="One script, with its definition")
async def show_script(script_id: str, request: Request) -> dict[str, Any]:
    lr = _get(request, script_id)
    return {**_summary(request, lr), "definition": lr.rule.raw if lr.rule else None}


@router.get("/{script_id}/traces", summary="The last runs of a script, newest first")
async def traces(script_id: str, request: Request) -> list[dict[str, Any]]:
    lr = _get(request, script_id)
    return [t.as_dict() for t in reversed(request.app.state.hub.rules.traces.for_rule(lr.id))]


async def _fields(request: Request) -> dict[str, Any]:
    """The body: a JSON object of field values, read up to a bound (a script's fields are a few
    values, and each run keeps them in its trace)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SCRIPT_BODY_BYTES:
            raise HTTPException(413, f"request body: a script's field values may be at most {MAX_SCRIPT_BODY_BYTES} "
                                     f"bytes of JSON")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(422, f"body: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "body: a JSON object of the script's field values, e.g. {\"minutes\": 5}")
    return data


@router.post("/{script_id}", summary="Run a script with field values; ?wait=true answers when it ends")
async def run_script(script_id: str, request: Request, wait: bool = False,
                     token: str = Depends(require_token)) -> dict[str, Any]:
    lr = _get(request, script_id)
    if lr.rule is None:
        raise HTTPException(409, f"script {script_id!r} is not loaded: {'; '.join(str(i) for i in lr.issues)}")
    data = await _fields(request)
    try:
        run = _runner(request).start(script_id, data, description=f"run through the API (token {token!r})")
    except ScriptError as exc:
        raise HTTPException(422, f"{exc.field}: {exc.message}" if exc.field else exc.message) from None
    trace = run.trace
    if trace.outcome == "skipped":
        raise HTTPException(409, f"script {script_id!r} not run: {trace.error}")
    if wait:
        try:  # shielded: a client that goes away, or a wait that ends, does not stop the run
            await asyncio.wait_for(asyncio.shield(run.done), MAX_SCRIPT_WAIT)
        except TimeoutError:
            return {"script": script_id, "run_id": trace.run_id, "outcome": trace.outcome, "error": None,
                    "note": f"still running after {MAX_SCRIPT_WAIT:g} s: `hub scripts trace {script_id}` shows how it ends"}
    return {"script": script_id, "run_id": trace.run_id, "outcome": trace.outcome, "error": trace.error}

"""Rules over the API: list, show, traces, create, change, delete, enable, disable, reload, check.

Rules written in ``automations.yaml`` belong to their author: the API reads them but does not
rewrite a hand-written file (that would lose its comments); rules created through the API live in
``automations/api.yaml``, which the API owns.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from hub.api.auth import require_token
from hub.core.state import iso
from hub.rules import loader

router = APIRouter(prefix="/api/rules", dependencies=[Depends(require_token)], tags=["rules"])


def _engine(request: Request):
    engine = request.app.state.hub.rules
    if engine is None:
        raise HTTPException(409, "the rule engine is not running")
    return engine


def _config_dir(request: Request):
    return request.app.state.hub.config_path.parent


def _summary(lr) -> dict[str, Any]:
    rule = lr.rule
    return {
        "id": lr.id,
        "alias": rule.alias if rule else None,
        "status": lr.status,
        "enabled": lr.enabled,
        "mode": rule.mode if rule else None,
        "source": lr.source,
        "managed_by": "api" if loader.is_api_source(lr.source) else "file",
        "last_triggered": iso(lr.last_triggered),
        "running": len(lr.runs),
        "issues": [str(i) for i in lr.issues],
    }


def _get(request: Request, rule_id: str):
    lr = _engine(request).rules.get(rule_id)
    if lr is None:
        raise HTTPException(404, f"unknown rule {rule_id!r}")
    return lr


@router.get("", summary="Every rule with its status, source and problems")
async def list_rules(request: Request) -> dict[str, Any]:
    engine = _engine(request)
    return {"rules": [_summary(lr) for lr in engine.rules.values()], "issues": [str(i) for i in engine.issues]}


@router.get("/{rule_id}")
async def show_rule(rule_id: str, request: Request) -> dict[str, Any]:
    lr = _get(request, rule_id)
    return {**_summary(lr), "description": lr.rule.description if lr.rule else None,
            "definition": lr.rule.raw if lr.rule else None}


@router.get("/{rule_id}/traces", summary="The last runs of a rule, newest first")
async def traces(rule_id: str, request: Request) -> list[dict[str, Any]]:
    _get(request, rule_id)
    return [t.as_dict() for t in reversed(_engine(request).traces.for_rule(rule_id))]


@router.post("/{rule_id}/enable")
async def enable(rule_id: str, request: Request) -> dict[str, Any]:
    _get(request, rule_id)
    return _summary(_engine(request).set_enabled(rule_id, True))


@router.post("/{rule_id}/disable")
async def disable(rule_id: str, request: Request) -> dict[str, Any]:
    _get(request, rule_id)
    return _summary(_engine(request).set_enabled(rule_id, False))


@router.post("/{rule_id}/trigger", summary="Run a rule now, skipping its triggers and conditions")
async def trigger(rule_id: str, request: Request) -> dict[str, Any]:
    lr = _get(request, rule_id)
    if lr.rule is None:
        raise HTTPException(409, f"rule {rule_id!r} is not loaded: {'; '.join(str(i) for i in lr.issues)}")
    engine = _engine(request)
    conditions, lr.rule.conditions = lr.rule.conditions, []
    try:
        engine._fire(lr, {"id": "manual", "platform": "manual", "description": "run by hand through the API"})
    finally:
        lr.rule.conditions = conditions
    return _summary(lr)


@router.post("/reload", summary="Read the rule files again; unchanged rules keep running")
async def reload(request: Request) -> dict[str, Any]:
    summary = await request.app.state.hub.reload_rules()
    return {**summary, "issues": [str(i) for i in _engine(request).issues]}


@router.post("/check", summary="Check the rule files (or one rule in the body) without loading them")
async def check(request: Request, rule: dict[str, Any] | None = Body(default=None)) -> dict[str, Any]:
    engine = _engine(request)
    if rule is not None:
        _, issues = loader.parse_api_rule(engine.rules_ctx, rule)
    else:
        _, issues = request.app.state.hub.load_rules()
    return {"ok": not issues, "issues": [str(i) for i in issues]}


def _validated(request: Request, body: dict[str, Any]):
    rule, issues = loader.parse_api_rule(_engine(request).rules_ctx, body)
    if rule is None:
        raise HTTPException(422, "; ".join(str(i) for i in issues) or "invalid rule")
    return rule


@router.post("", status_code=201, summary="Create a rule (kept in automations/api.yaml)")
async def create(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    rule = _validated(request, body)
    if rule.id in _engine(request).rules:
        raise HTTPException(409, f"a rule with id {rule.id!r} exists ({_engine(request).rules[rule.id].source})")
    config_dir = _config_dir(request)
    loader.write_api_rules(config_dir, [*loader.read_api_rules(config_dir), body])
    await request.app.state.hub.reload_rules()
    return _summary(_get(request, rule.id))


@router.put("/{rule_id}", summary="Change a rule made through the API")
async def change(rule_id: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    config_dir = _config_dir(request)
    rules = loader.read_api_rules(config_dir)
    index = next((i for i, r in enumerate(rules) if isinstance(r, dict) and r.get("id") == rule_id), None)
    if index is None:
        lr = _get(request, rule_id)
        raise HTTPException(409, f"rule {rule_id!r} is defined in {lr.source}: edit that file, then reload")
    body = {**body, "id": rule_id}
    _validated(request, body)
    rules[index] = body
    loader.write_api_rules(config_dir, rules)
    await request.app.state.hub.reload_rules()
    return _summary(_get(request, rule_id))


@router.delete("/{rule_id}", summary="Delete a rule made through the API")
async def delete(rule_id: str, request: Request) -> dict[str, Any]:
    config_dir = _config_dir(request)
    rules = loader.read_api_rules(config_dir)
    remaining = [r for r in rules if not (isinstance(r, dict) and r.get("id") == rule_id)]
    if len(remaining) == len(rules):
        lr = _get(request, rule_id)
        raise HTTPException(409, f"rule {rule_id!r} is defined in {lr.source}: remove it there, then reload")
    loader.write_api_rules(config_dir, remaining)
    await request.app.state.hub.reload_rules()
    return {"deleted": rule_id}

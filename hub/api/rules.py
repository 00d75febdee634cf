"""Rules over the API: list, show, traces, create, change, delete, enable, disable, reload, check.

Rules written in ``automations.yaml`` belong to their author: the API reads them but does not
rewrite a hand-written file (that would lose its comments); rules created through the API live in
``automations/api.yaml``, which the API owns. The embedded default's example rules run only while
no rule file exists, so the API's first change copies them into its file rather than let them vanish.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from hub.api.auth import require_token
from hub.core.state import iso
from hub.rules import loader

log = logging.getLogger("hub.rules")
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


#: The largest rule the API takes, as JSON: the longest real rules are a few kilobytes.
MAX_BODY_BYTES = 64 * 1024


async def _small_body(request: Request) -> None:
    """A rule is kept in memory and in ``api.yaml`` for good: refuse a huge one by its size before
    parsing it into a rule, with a message that says the limit."""
    size = len(await request.body())
    if size > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body: a rule may be at most {MAX_BODY_BYTES} bytes of JSON, got {size}")


def _api_rules(request: Request) -> tuple[list[dict], bool]:
    hub = request.app.state.hub
    return loader.api_rules_to_edit(_config_dir(request), embedded=not hub.config_path.exists())


def _examples_note(copied: bool, rules: list[dict]) -> dict[str, Any]:
    if not copied or not rules:
        return {}
    ids = [r["id"] for r in rules]
    log.info("rules: the example rules %s were copied to %s so they keep running", ", ".join(ids),
             f"{loader.RULES_DIR}/{loader.API_FILE}")
    return {"note": f"the example rules ({', '.join(ids)}) were copied to {loader.RULES_DIR}/{loader.API_FILE}: "
                    "they keep running, and can now be changed or deleted like this one"}


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


@router.post("/check", summary="Check the rule files (or one rule in the body) without loading them",
             dependencies=[Depends(_small_body)])
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


@router.post("", status_code=201, summary="Create a rule (kept in automations/api.yaml)",
             dependencies=[Depends(_small_body)])
async def create(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    rule = _validated(request, body)
    if rule.id in _engine(request).rules:
        raise HTTPException(409, f"a rule with id {rule.id!r} exists ({_engine(request).rules[rule.id].source})")
    rules, copied = _api_rules(request)
    loader.write_api_rules(_config_dir(request), [*rules, body])
    await request.app.state.hub.reload_rules()
    return {**_summary(_get(request, rule.id)), **_examples_note(copied, rules)}


@router.put("/{rule_id}", summary="Change a rule made through the API", dependencies=[Depends(_small_body)])
async def change(rule_id: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    rules, copied = _api_rules(request)
    index = next((i for i, r in enumerate(rules) if isinstance(r, dict) and r.get("id") == rule_id), None)
    if index is None:
        lr = _get(request, rule_id)
        raise HTTPException(409, f"rule {rule_id!r} is defined in {lr.source}: edit that file, then reload")
    body = {**body, "id": rule_id}
    _validated(request, body)
    note = _examples_note(copied, rules)
    rules[index] = body
    loader.write_api_rules(_config_dir(request), rules)
    await request.app.state.hub.reload_rules()
    return {**_summary(_get(request, rule_id)), **note}


@router.delete("/{rule_id}", summary="Delete a rule made through the API")
async def delete(rule_id: str, request: Request) -> dict[str, Any]:
    rules, copied = _api_rules(request)
    remaining = [r for r in rules if not (isinstance(r, dict) and r.get("id") == rule_id)]
    if len(remaining) == len(rules):
        lr = _get(request, rule_id)
        raise HTTPException(409, f"rule {rule_id!r} is defined in {lr.source}: remove it there, then reload")
    note = _examples_note(copied, remaining)
    loader.write_api_rules(_config_dir(request), remaining)
    await request.app.state.hub.reload_rules()
    return {"deleted": rule_id, **note}

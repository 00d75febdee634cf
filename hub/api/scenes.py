"""Scenes over the API: ``GET /api/scenes`` lists what loaded (and why the rest did not),
``POST /api/scenes/<id>`` applies one and answers per entity. The scenes are the rule engine's,
loaded from ``scenes.yaml`` with the rules (``hub rules reload`` reloads them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.api.auth import require_token
from hub.rules import scenes

router = APIRouter(prefix="/api/scenes", dependencies=[Depends(require_token)], tags=["scenes"])

#: The body of an apply is at most ``{"transition": 2.5}``.
MAX_BODY_BYTES = 1024


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transition: float | None = Field(default=None, ge=0, le=300, description="seconds, passed to the lights")


def _engine(request: Request):
    engine = getattr(request.app.state.hub, "rules", None)
    if engine is None:
        raise HTTPException(409, "the rule engine is not running")
    return engine


@router.get("", summary="The scenes of scenes.yaml, and the problems of those that did not load")
async def list_scenes(request: Request) -> dict[str, Any]:
    engine = _engine(request)
    loaded = engine.scenes
    return {
        "scenes": [scene.summary() for scene in loaded.values()],
        "issues": [str(i) for i in engine.issues if scenes.is_scene_file(i.file)],
    }


@router.post("/{scene_id}", summary="Apply a scene: every entity commanded at once; the answer says how each went")
async def apply_scene(scene_id: str, request: Request, token_name: str = Depends(require_token)) -> JSONResponse:
    engine = _engine(request)
    scene = scenes.find(engine.scenes, scene_id)
    if scene is None:
        raise HTTPException(404, f"unknown scene {scene_id!r}")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body: at most {MAX_BODY_BYTES} bytes")
    try:
        body = ApplyBody.model_validate_json(raw) if raw.strip() else ApplyBody()
    except ValidationError as exc:
        errors = [{"field": ".".join(map(str, e["loc"])) or None, "message": e["msg"]}
                  for e in exc.errors(include_url=False, include_input=False)]
        return JSONResponse({"error": "invalid_body", "message": "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors), "errors": errors},
            status_code=422)
    results = await scenes.apply(engine.hub, scene.plan, scene.capabilities,
                                 source=f"api:{token_name}/scene:{scene.id}", transition=body.transition)
    ok = all(r["ok"] for r in results.values())
    # 502 when a device failed, as a single command's failure is: the request was right, a device was not.
    return JSONResponse({"scene": scene.id, "entity_id": scene.entity_id, "ok": ok, "entities": results,
                         **({} if ok else {"errors": scenes.failures(results)})}, status_code=200 if ok else 502)

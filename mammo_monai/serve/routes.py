"""The routes of ``mammo-monai serve`` besides ``POST /v1/predict`` (:mod:`.predict_route`), and what the routes
share: the bearer-token dependency and JSON errors.

A route reads what the app holds from ``request.app.state``: ``settings`` (:class:`~.app.ServeSettings`),
``session`` (:class:`~.session.ModelSession`) and ``queue`` (:class:`~.queue.InferenceQueue`), both set at
start-up, and ``overlays`` (request id -> file position -> layer -> PNG bytes, for the last requests only).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mammo_monai.serve.queue import QueueFull
from mammo_monai.serve.responses import model_json

__all__ = ["PAGE", "api", "authorised", "busy", "error", "service"]

PAGE = Path(__file__).parent / "page"

_bearer = HTTPBearer(auto_error=False)


def authorised(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Refuse a request without the service's bearer token (when it was started with one): 401."""
    token = request.app.state.settings.token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A JSON error: ``{"detail": ..., **extra}``."""
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


async def busy(_request: Request, err: QueueFull) -> JSONResponse:
    """The app's answer to a full queue: 503 with ``Retry-After``."""
    return error(503, str(err), headers={"Retry-After": str(err.retry_after)})


#: the service's own routes: open without a token
service = APIRouter(tags=["service"])
#: the model's routes: behind the token
api = APIRouter(tags=["model"], dependencies=[Depends(authorised)])


@service.get("/health", summary="The process answers")
def health() -> dict[str, str]:
    return {"status": "ok"}


@service.get("/ready", summary="The model is loaded and requests are taken")
def ready(request: Request) -> JSONResponse:
    state = request.app.state
    if state.session is None or state.queue is None:
        return error(503, "the model is loading")
    return JSONResponse({"ready": True, "queue": state.queue.depth, "max_queue": state.settings.max_queue})


@service.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(PAGE / "index.html")


@api.get("/v1/model", summary="The bundle's metadata")
def model(request: Request) -> dict[str, Any]:
    state = request.app.state
    return model_json(state.session.opened, state.session.has_overlays, state.settings.limits())


@api.get("/v1/overlays/{request_id}/{file}/{layer}.png", summary="One layer of a view's overlay")
def overlay(request: Request, request_id: str, file: int, layer: str) -> Response:
    """One layer (``image`` or ``heatmap``) of the overlay of the request's ``file`` (its position, from 1), kept
    for the last requests; the links are in ``POST /v1/predict``'s answer."""
    found = request.app.state.overlays.get(request_id, {}).get(file, {}).get(layer)
    if found is None:
        return error(404, "no such overlay (only the last requests' overlays are kept)")
    return Response(found, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})

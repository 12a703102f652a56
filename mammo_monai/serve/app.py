"""The HTTP service of ``mammo-monai serve`` (FastAPI): routes, limits, the optional bearer token.

Routes: ``POST /v1/predict`` (multipart ``files``: one exam), ``GET /v1/model``, ``GET /v1/overlays/...``,
``GET /health``, ``GET /ready``, the page at ``/`` (``/static/`` its script and style), and FastAPI's OpenAPI
schema at ``/openapi.json`` with its interactive docs at ``/docs``. Nothing identifying is logged: a
request is logged as counts and seconds, never with a file name.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from mammo_monai.serve.limits import BodyLimit, TokenGate
from mammo_monai.serve.queue import InferenceQueue, QueueFull
from mammo_monai.serve.responses import decision_json, model_json, table_json
from mammo_monai.serve.session import ModelSession, Upload
from mammo_monai.serve.uploads import client_label, private_folder, store_upload

__all__ = ["ServeSettings", "app_from_environment", "create_app"]

logger = logging.getLogger("mammo_monai.serve")
PAGE = Path(__file__).parent / "page"
#: the requests whose overlays are kept in memory for the page to fetch (oldest dropped first)
KEPT_OVERLAYS = 16


@dataclass
class ServeSettings:
    """What ``mammo-monai serve`` was started with (defaults: the documented limits)."""

    bundle: str
    patch_bundle: str | None = None
    backend: str = "auto"
    stride: int | None = None
    batch_size: int = 4
    token: str | None = None
    max_queue: int = 8
    max_upload_mb: float = 200.0
    max_files: int = 16

    def limits(self) -> dict[str, Any]:
        return {"max_upload_mb": self.max_upload_mb, "max_files": self.max_files, "max_queue": self.max_queue}


_bearer = HTTPBearer(auto_error=False)


def authorised(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Refuse a request without the service's bearer token (when it was started with one): 401."""
    token = request.app.state.settings.token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def _error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A JSON error: ``{"detail": ..., **extra}``."""
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def create_app(settings: ServeSettings, session: ModelSession | None = None) -> FastAPI:
    """The service; the model session is opened once at start-up (or ``session``, already open)."""
    state: dict[str, Any] = {"session": session, "overlays": OrderedDict()}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if state["session"] is None:
            state["session"] = ModelSession(
                settings.bundle, settings.patch_bundle, settings.backend, settings.stride, settings.batch_size
            )
        state["queue"] = InferenceQueue(settings.max_queue)
        _app.state.session = state["session"]
        logger.info("serving %s %s", state["session"].opened.name, state["session"].opened.version)
        yield
        state["queue"].close()
        if session is None:
            state["session"].close()

    app = FastAPI(
        title="mammo-monai",
        summary="Scores, decisions and heatmaps of a mammography model for one exam at a time.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, limit=int(settings.max_upload_mb * 2**20), paths=("/v1/predict",))
    app.add_middleware(TokenGate, token=settings.token)  # added last: runs first, before the body is read

    @app.exception_handler(QueueFull)
    async def busy(_request: Request, err: QueueFull) -> JSONResponse:
        return _error(503, str(err), headers={"Retry-After": str(err.retry_after)})

    @app.get("/health", tags=["service"], summary="The process answers")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["service"], summary="The model is loaded and requests are taken")
    def ready() -> JSONResponse:
        if state["session"] is None or "queue" not in state:
            return _error(503, "the model is loading")
        queue: InferenceQueue = state["queue"]
        return JSONResponse({"ready": True, "queue": queue.depth, "max_queue": settings.max_queue})

    @app.get("/v1/model", tags=["model"], dependencies=[Depends(authorised)], summary="The bundle's metadata")
    def model() -> dict[str, Any]:
        s: ModelSession = state["session"]
        return model_json(s.opened, s.has_overlays, settings.limits())

    @app.post("/v1/predict", tags=["model"], dependencies=[Depends(authorised)], summary="Score one exam")
    async def predict(
        files: Annotated[list[UploadFile], File(description="the exam's DICOM, PNG, PGM or TIFF files")],
    ) -> JSONResponse:
        """Per-image, per-breast and per-exam probabilities (calibrated where the bundle carries a
        calibration) and decisions; files that cannot be read are listed under ``refused``."""
        start = time.perf_counter()
        if len(files) > settings.max_files:
            return _error(413, f"{len(files)} files; at most {settings.max_files} per request")
        s: ModelSession = state["session"]
        queue: InferenceQueue = state["queue"]
        try:
            with private_folder() as folder:
                labels, uploads, refused = {}, [], {}
                for i, f in enumerate(files):
                    labels[i] = client_label(f.filename, i)
                    path, reason = store_upload(f.file, folder, i)
                    if path is None:
                        refused[i] = reason
                    else:
                        uploads.append(Upload(i, path, labels[i]))
                stored = time.perf_counter()
                scored, waited = await queue.run(lambda: s.score(uploads) if uploads else None)
        except QueueFull:
            raise  # 503 with Retry-After (the handler above)
        except Exception as err:  # noqa: BLE001 - the service keeps serving; the client gets one line
            logger.error("predict failed: %s", type(err).__name__)
            return _error(500, f"internal error ({type(err).__name__}); the service is still running")
        refused |= scored.refused if scored else {}
        body = _body(s, scored, labels, refused, state["overlays"])
        body["timings"] = {
            "upload_s": round(stored - start, 4),
            "queue_s": round(waited, 4),
            **(scored.timings if scored else {}),
            "total_s": round(time.perf_counter() - start, 4),
        }
        logger.info(
            "predict: %d files, %d scored, %d refused, %.2f s",
            len(files),
            len(body["images"]),
            len(refused),
            body["timings"]["total_s"],
        )
        if not body["images"]:
            return _error(422, "no file of this request could be read", refused=body["refused"])
        return JSONResponse(body)

    @app.get("/v1/overlays/{request_id}/{index}/{layer}.png", tags=["model"], dependencies=[Depends(authorised)])
    def overlay(request_id: str, index: int, layer: str) -> Response:
        """One layer (``image`` or ``heatmap``) of a view's overlay, kept for the last requests."""
        found = state["overlays"].get(request_id, {}).get(index, {}).get(layer)
        if found is None:
            return _error(404, "no such overlay (only the last requests' overlays are kept)")
        return Response(found, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    app.mount("/static", StaticFiles(directory=PAGE), name="static")
    return app


def _body(s: ModelSession, scored, labels: dict[int, str], refused: dict[int, str], kept: OrderedDict) -> dict:
    """The response of a scored request; its overlays are kept under a random id for the page to fetch."""
    links: dict[int, dict[str, str]] = {}
    if scored and scored.overlays:
        rid = secrets.token_urlsafe(12)
        kept[rid] = scored.overlays
        while len(kept) > KEPT_OVERLAYS:
            kept.popitem(last=False)
        links = {i: {k: f"/v1/overlays/{rid}/{i}/{k}.png" for k in v} for i, v in scored.overlays.items()}
    body = {"model": {"name": s.opened.name, "version": s.opened.version}}
    body |= table_json(scored.table if scored else pd.DataFrame(), labels, links)
    body["decision"] = decision_json(s.opened)
    body["refused"] = [{"index": i, "name": labels[i], "reason": r} for i, r in sorted(refused.items())]
    return body


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mammo-monai")
    except PackageNotFoundError:
        return "0"


def app_from_environment() -> FastAPI:
    """The app of one ``--workers`` process: the settings ``serve`` left in ``MAMMO_MONAI_SERVE_SETTINGS``, and
    this process's share of the cores."""
    import json
    import os

    import torch

    given = json.loads(os.environ["MAMMO_MONAI_SERVE_SETTINGS"])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, int(given.pop("workers", 1)))))
    return create_app(ServeSettings(**given))

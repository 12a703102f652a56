"""The HTTP service of ``mammo-monai serve`` (FastAPI): its settings, and the app assembled from its routes.

Routes: ``POST /v1/predict`` (multipart ``files``: one exam; :mod:`.predict_route`), ``GET /v1/model``,
``GET /v1/overlays/...``, ``GET /health``, ``GET /ready``, the page at ``/`` (:mod:`.routes`; ``/static/`` its
script and style), and FastAPI's OpenAPI schema at ``/openapi.json`` with its interactive docs at ``/docs``.
Nothing identifying is logged: a request is logged as counts and seconds, never with a file name, and answers
name files by their position unless the client asks for its names.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mammo_monai.serve import predict_route
from mammo_monai.serve.limits import BodyLimit, TokenGate
from mammo_monai.serve.queue import InferenceQueue, QueueFull
from mammo_monai.serve.routes import PAGE, api, busy, service
from mammo_monai.serve.session import ModelSession

__all__ = ["ServeSettings", "app_from_environment", "create_app"]

logger = logging.getLogger("mammo_monai.serve")


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


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """Open the model session (unless ``create_app`` was given one) and start the queue; stop them at shutdown."""
    settings: ServeSettings = app.state.settings
    own = app.state.session is None
    if own:
        app.state.session = ModelSession(
            settings.bundle, settings.patch_bundle, settings.backend, settings.stride, settings.batch_size
        )
    app.state.queue = InferenceQueue(settings.max_queue)
    logger.info("serving %s %s", app.state.session.opened.name, app.state.session.opened.version)
    yield
    app.state.queue.close()
    app.state.queue = None
    if own:
        app.state.session.close()
        app.state.session = None


def create_app(settings: ServeSettings, session: ModelSession | None = None) -> FastAPI:
    """The service; the model session is opened once at start-up (or ``session``, already open, is used and left
    open)."""
    app = FastAPI(
        title="mammo-monai",
        summary="Scores, decisions and heatmaps of a mammography model for one exam at a time.",
        description="Uploaded files are identified by their position in the request (`file`: 1, 2, ...), not by "
        "their names unless the client asks (`POST /v1/predict?echo_names=true`): file names often identify patients.",
        version=_version(),
        lifespan=_lifespan,
    )
    app.state.settings, app.state.session, app.state.queue = settings, session, None
    app.state.overlays = OrderedDict()  # request id -> file -> layer -> PNG, the last requests' (predict_route)
    app.add_middleware(BodyLimit, limit=int(settings.max_upload_mb * 2**20), paths=("/v1/predict",))
    app.add_middleware(TokenGate, token=settings.token)  # added last: runs first, before the body is read
    app.add_exception_handler(QueueFull, busy)
    for router in (service, api, predict_route.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=PAGE), name="static")
    return app


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

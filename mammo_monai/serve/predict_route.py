"""``POST /v1/predict``: one exam's uploads, stored by content, scored in the model's queue, answered as JSON.

Files are known by their position in the request (``file``: 1, 2, ... in upload order), never by the multipart
filename a client sent: names such as ``SMITH_J_L_CC.dcm`` identify patients. A client that wants its own names
back asks with ``?echo_names=true``; they are then in its answer (``name``) and nowhere else (never logged, never
a path). The page sends neutral names (``file-1``, ``file-2``, ...) and shows the local names itself.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from mammo_monai.serve.queue import QueueFull
from mammo_monai.serve.responses import answer_json
from mammo_monai.serve.routes import authorised, error
from mammo_monai.serve.session import Scored, Upload
from mammo_monai.serve.uploads import client_label, private_folder, store_upload

__all__ = ["KEPT_OVERLAYS", "router"]

logger = logging.getLogger("mammo_monai.serve")
#: the requests whose overlays are kept in memory for the page to fetch (oldest dropped first)
KEPT_OVERLAYS = 16

router = APIRouter(tags=["model"], dependencies=[Depends(authorised)])

Files = Annotated[
    list[UploadFile],
    File(
        description="the exam's DICOM, PNG, PGM or TIFF files, one part each; the answer calls each by its "
        "position (`file`: 1, 2, ... in upload order), not by its filename"
    ),
]
EchoNames = Annotated[
    bool,
    Query(
        description="also answer each file's multipart filename (`name`, to this client only, never logged); "
        "off by default because file names often carry patient identifiers"
    ),
]


@router.post("/v1/predict", summary="Score one exam")
async def predict(request: Request, files: Files, echo_names: EchoNames = False) -> JSONResponse:
    """Per-image, per-breast and per-exam probabilities (calibrated where the bundle carries a calibration) and
    decisions; files that cannot be read are listed under ``refused`` with the reason. Each file is ``file`` N,
    its position in the request (from 1); its filename is answered (``name``) only with ``echo_names=true``."""
    start = time.perf_counter()
    state = request.app.state
    if len(files) > state.settings.max_files:
        return error(413, f"{len(files)} files; at most {state.settings.max_files} per request")
    session = state.session
    try:
        with private_folder() as folder:
            uploads, refused = _store(files, folder)
            stored = time.perf_counter()
            scored, waited = await state.queue.run(lambda: session.score(uploads) if uploads else None)
    except QueueFull:
        raise  # 503 with Retry-After (routes.busy)
    except Exception as err:  # noqa: BLE001 - the service keeps serving; the client gets one line
        logger.error("predict failed: %s", type(err).__name__)
        return error(500, f"internal error ({type(err).__name__}); the service is still running")
    refused |= scored.refused if scored else {}
    labels = {n: client_label(f.filename, n) for n, f in enumerate(files, 1)} if echo_names else {}
    body = answer_json(session.opened, scored, refused, _keep_overlays(state.overlays, scored), labels)
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
        return error(422, "no file of this request could be read", refused=body["refused"])
    return JSONResponse(body)


def _store(files: list[UploadFile], folder: Path) -> tuple[list[Upload], dict[int, str]]:
    """The uploads stored in ``folder`` by content, and those refused there (position -> reason)."""
    uploads, refused = [], {}
    for n, f in enumerate(files, 1):
        path, reason = store_upload(f.file, folder, n)
        if path is None:
            refused[n] = reason
        else:
            uploads.append(Upload(n, path))
    return uploads, refused


def _keep_overlays(kept: OrderedDict, scored: Scored | None) -> dict[int, dict[str, str]]:
    """Keep the request's overlays under a random id for the page to fetch; their links, by file position."""
    if not scored or not scored.overlays:
        return {}
    rid = secrets.token_urlsafe(12)
    kept[rid] = scored.overlays
    while len(kept) > KEPT_OVERLAYS:
        kept.popitem(last=False)
    return {n: {k: f"/v1/overlays/{rid}/{n}/{k}.png" for k in v} for n, v in scored.overlays.items()}

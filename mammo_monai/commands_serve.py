"""``mammo-monai serve``: its options (:func:`add_serve`, registered by :mod:`mammo_monai.cli`) and the
function of the parsed arguments that starts the HTTP service (:mod:`mammo_monai.serve`)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os

from mammo_monai.commands import EXIT_OK

TOKEN_VARIABLE = "MAMMO_MONAI_TOKEN"
#: how ``--workers`` > 1 hands the settings to each worker process (uvicorn imports the app per process)
SETTINGS_VARIABLE = "MAMMO_MONAI_SERVE_SETTINGS"


def add_serve(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai serve`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "serve",
        help="an HTTP service and web page: upload an exam, get scores, decisions and heatmaps",
        description="Load a whole-image bundle (and a patch bundle for heatmap overlays) once and serve: POST "
        "/v1/predict (multipart files of one exam: DICOM, PNG, PGM, TIFF) -> per-image, per-breast and per-exam "
        "probabilities, calibrated with decisions at the bundle's operating points when it carries a calibration; "
        "GET /v1/model, /health, /ready; OpenAPI at /docs and /openapi.json; the page at /. Requests run one at a "
        "time on one model instance behind a bounded queue (a full queue answers 503 with Retry-After).",
        epilog="exit status: 0 the server stopped (Ctrl-C); 2 it could not start (a bundle that cannot be read, a "
        "non-loopback --host without a token)",
    )
    p.add_argument("--bundle", required=True, help="whole-image bundle: folder, exported zip or shipped name")
    p.add_argument("--patch-bundle", default=None, help="patch classifier bundle: heatmap overlays on the page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token every /v1 request must send (default: ${TOKEN_VARIABLE}); required for a --host that "
        "other machines reach",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); each loads its own model copy and queue and gets cores / workers "
        "threads: more throughput for more memory",
    )
    p.add_argument("--max-queue", type=int, default=8, help="requests waiting behind the running one (default 8)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="request body limit in MB (default 200)")
    p.add_argument("--max-files", type=int, default=16, help="files per request (default 16)")
    p.add_argument(
        "--backend",
        choices=["auto", "eager", "onnxruntime", "openvino"],
        default="auto",
        help="how the classifier runs, as predict --backend (default auto)",
    )
    p.add_argument("--stride", type=int, default=None, help="heatmap window stride in pixels (default: patch / 4)")
    p.set_defaults(func=serve)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mammo_monai.bundle_names import resolve_bundle
    from mammo_monai.serve.app import ServeSettings, create_app
    from mammo_monai.serve.session import ModelSession

    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    if not _loopback(args.host) and not token:
        raise ValueError(
            f"--host {args.host} is reachable from other machines: set --token or ${TOKEN_VARIABLE} (or bind 127.0.0.1)"
        )
    if args.workers < 1 or args.max_files < 1 or args.max_queue < 0 or args.max_upload_mb <= 0:
        raise ValueError("--workers and --max-files must be 1 or more, --max-queue 0 or more, --max-upload-mb > 0")
    if args.workers > 1 and args.patch_bundle:
        raise ValueError(
            "--patch-bundle needs --workers 1: each worker keeps the overlays it drew, and the page's next request "
            "for them may reach another worker"
        )
    settings = ServeSettings(
        bundle=str(resolve_bundle(args.bundle)),
        patch_bundle=str(resolve_bundle(args.patch_bundle)) if args.patch_bundle else None,
        backend=args.backend,
        stride=args.stride,
        token=token,
        max_queue=args.max_queue,
        max_upload_mb=args.max_upload_mb,
        max_files=args.max_files,
    )
    # opened here, before the server starts: a bundle that cannot be used is one line and exit 2, not a
    # traceback in uvicorn's start-up (each of --workers N processes opens its own copy again)
    session = ModelSession(
        settings.bundle, settings.patch_bundle, settings.backend, settings.stride, settings.batch_size
    )
    print(f"serve: http://{args.host}:{args.port}/ (API docs /docs); Ctrl-C stops it")
    if args.workers == 1:
        try:
            uvicorn.run(create_app(settings, session), host=args.host, port=args.port, log_level="info")
        finally:
            session.close()
        return EXIT_OK
    session.close()
    os.environ[SETTINGS_VARIABLE] = json.dumps({**settings.__dict__, "workers": args.workers})
    uvicorn.run(
        "mammo_monai.serve.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return EXIT_OK

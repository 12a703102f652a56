"""Batch preprocessing: mammogram files -> masked, oriented, resized 16-bit PNGs plus a report CSV."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from mammo_monai.data.preprocessing_settings import PreprocessingSettings
from mammo_monai.io.atomic import write_csv
from mammo_monai.io.errors import WriteError, describe_error
from mammo_monai.io.raster import atomic_write_png, to_uint16
from mammo_monai.io.walk import find_images
from mammo_monai.parallel import run_parallel
from mammo_monai.transforms import pipelines  # noqa: F401  (imported once by the workers' fork server)

logger = logging.getLogger(__name__)

REPORT_COLUMNS = [
    "file",
    "status",
    "output",
    "mask",
    "laterality",
    "view",
    "flipped",
    "pixel_side",
    "laterality_mismatch",
    "mask_fraction",
    "rows",
    "columns",
]
RECORD = "preprocess.json"
#: files processed between two writes of ``preprocess.csv``: a killed run or a full disk leaves the table of
#: what finished until then (at least this many per worker, so that each batch keeps every worker busy)
REPORT_EVERY = 64
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def preprocess_file(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str,
    size: Sequence[int] = (1152, 896),
    settings: PreprocessingSettings | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Process one file with ``settings`` (default: ``size`` and ``options``, see
    :meth:`PreprocessingSettings.from_options`); never raises for bad input, returns its report row instead.

    An output that cannot be written (a full disk) gives an error row naming that output; its ``_errno``
    (not a report column) lets the batch stop when the disk is full."""
    out_dir = Path(out_dir)
    row: dict[str, Any] = {
        "file": str(path),
        "output": str(out_dir / f"{name}.png"),
        "mask": str(out_dir / f"{name}_mask.png"),
    }
    try:
        if settings is None:
            settings = PreprocessingSettings.from_options(size, options)
        d = settings.transforms()({"image": str(path)})
        image, mask = d["image"], d["mask"]
        atomic_write_png(row["mask"], (mask[0].numpy() > 0.5).astype("uint8") * 255)
        atomic_write_png(row["output"], to_uint16(image[0].numpy()))  # written last: its presence means done
        meta = image.meta
        row.update(
            status="ok",
            laterality=meta.get("laterality", ""),
            view=meta.get("view", ""),
            flipped=bool(d.get("flipped")),
            pixel_side=d.get("pixel_side", ""),
            laterality_mismatch=bool(d.get("laterality_mismatch", False)),
            mask_fraction=round(float(meta.get("mask_fraction", float("nan"))), 4),
            rows=meta["original_shape"][0],
            columns=meta["original_shape"][1],
        )
    except Exception as err:  # one bad file must not stop the batch
        row.update(status=f"error: {describe_error(err, path)}", output="", mask="")
        if isinstance(err, OSError):
            row["_errno"] = err.errno
    return row


def _preprocess_job(path: Path, out: Path, name: str, settings: PreprocessingSettings) -> dict[str, Any]:
    return preprocess_file(path, out, name, settings=settings)


def _write_report(path: Path, rows: list[dict[str, Any]]) -> None:
    write_csv(pd.DataFrame(rows, columns=REPORT_COLUMNS).sort_values("file"), path)


def _run_batches(
    todo: list[tuple[Path, str]],
    rows: list[dict[str, Any]],
    out: Path,
    settings: PreprocessingSettings,
    workers: int | None,
    progress: bool,
) -> int:
    """Process ``todo`` with ``settings`` in batches, appending to ``rows`` and rewriting the report
    after each batch; stop at a full disk (the files not processed get a row saying so). Returns how many
    rows the last report that could be written holds."""
    report = out / "preprocess.csv"
    n = workers or os.cpu_count() or 1
    batch = REPORT_EVERY if n == 1 else max(REPORT_EVERY, 4 * n)
    written = 0
    with tqdm(total=len(todo), desc="preprocess", disable=not progress, unit="item") as bar:
        for start in range(0, len(todo), batch):
            done = run_parallel(
                _preprocess_job,
                [(f, out, name, settings) for f, name in todo[start : start + batch]],
                workers,
                progress=False,
                on_error=lambda job, err: {"file": str(job[0]), "status": f"error: {job[0]}: {describe_error(err)}"},
            )
            bar.update(len(done))
            rows += done
            if _disk_full(done, todo[start + batch :], rows, out):
                break
            try:
                _write_report(report, rows)
                written = len(rows)
            except OSError as err:  # the final write reports it
                logger.warning("preprocess: %s", err)
    return written


def _disk_full(done: list[dict[str, Any]], rest: list[tuple[Path, str]], rows: list[dict[str, Any]], out: Path) -> bool:
    """True when a row of ``done`` failed on a full disk; then every file of ``rest`` gets a row saying so."""
    full = next((r for r in done if r.get("_errno") in DISK_FULL), None)
    if full is None:
        return False
    rows += [
        {"file": str(f), "status": f"error: {f}: not processed: no space left on device in {out}"} for f, _ in rest
    ]
    logger.error("preprocess: %s; stopped", full["status"].removeprefix("error: "))
    return True


def preprocess(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    size: Sequence[int] = (1152, 896),
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Preprocess every image under ``inputs`` into ``out_dir`` and write ``preprocess.csv``.

    Runs ``workers`` processes (default: all cores). A file whose PNG already exists and whose row
    in a previous ``preprocess.csv`` says ``ok`` is skipped, provided ``preprocess.json`` shows the
    outputs were made with the same settings and preprocessing version; otherwise the run is refused (``overwrite``
    redoes everything). Bad files, unreadable folders, link loops and skipped files that may be images
    (compressed, other formats) become error rows. ``preprocess.csv`` is rewritten after every batch of
    :data:`REPORT_EVERY` files, so a killed run or a full disk leaves the table of what finished; a full
    disk stops the run with a row naming the output it could not write. Temporaries of a killed run are
    deleted at the start.

    Args:
        options: keep_aspect, crop, intensity, threshold (see
            :func:`mammo_monai.transforms.preprocess_transforms`) and modalities (accepted DICOM
            Modality values; None for any).

    Raises:
        CacheMismatchError: earlier outputs in ``out_dir`` were made differently and not ``overwrite``.
        WriteError: ``preprocess.csv`` itself cannot be written (the last one written is kept).

    Returns:
        The report, one row per input file.
    """
    from mammo_monai.data.cache_record import claim_cache

    out = Path(out_dir)
    report = out / "preprocess.csv"
    settings = PreprocessingSettings.from_options(size, options)
    claim_cache(
        out, settings, overwrite, cached_dirs=(), record=RECORD, has_outputs=report.exists(), flag="--overwrite"
    )
    previous: dict[str, dict[str, Any]] = {}
    if report.exists() and not overwrite:
        old = pd.read_csv(report, dtype=str, keep_default_na=False)
        previous = {r["file"]: r for r in old.to_dict("records") if r["status"] == "ok" and Path(r["output"]).exists()}
    problems: list[dict[str, str]] = []
    found = find_images(inputs, problems)
    rows: list[dict[str, Any]] = [{"file": p["file"], "status": f"error: {p['file']}: {p['reason']}"} for p in problems]
    todo = []
    for f, name in found:
        if str(f) in previous and previous[str(f)]["output"] == str(out / f"{name}.png"):
            rows.append(previous[str(f)])
        else:
            todo.append((f, name))
    if previous:
        logger.info("preprocess: %d finished outputs skipped, %d to do", len(found) - len(todo), len(todo))
    written = _run_batches(todo, rows, out, settings, workers, progress)
    try:
        _write_report(report, rows)
    except OSError as err:
        kept = f"; the table written before, of {written} files, is kept" if written else ""
        raise WriteError(err.errno, f"{err.strerror or err}{kept}", str(report)) from None
    return pd.read_csv(report, keep_default_na=False)

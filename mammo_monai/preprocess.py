"""Batch preprocessing: mammogram files -> masked, oriented, resized 16-bit PNGs plus a report CSV."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.io.atomic import write_csv
from mammo_monai.io.errors import describe_error
from mammo_monai.io.raster import RASTER_SUFFIXES, atomic_write_png, to_uint16
from mammo_monai.io.reader import DICOM_SUFFIXES, is_dicom
from mammo_monai.parallel import run_parallel

logger = logging.getLogger(__name__)

REPORT_COLUMNS = ["file", "status", "output", "mask", "laterality", "view", "flipped", "mask_fraction", "rows", "columns"]


def find_images(inputs: Iterable[str | os.PathLike]) -> list[tuple[Path, str]]:
    """Expand files and folders into (file, output name) pairs.

    Files named on the command line are always taken (an unknown type becomes an error row later);
    inside folders, files with a DICOM/PNG/PGM/TIFF suffix and suffix-less DICOMs (as TCIA ships
    them) are taken and everything else (CSV, XML, text) is left alone. Output names are the path
    below the given folder with ``__`` for ``/``, so the many ``1-1.dcm`` of a TCIA download do not
    collide; a remaining clash gets a short hash of the full path.
    """
    found: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
                suffix = f.suffix.lower()
                if suffix in DICOM_SUFFIXES + RASTER_SUFFIXES or (suffix == "" and is_dicom(f)):
                    found.append((f, "__".join(f.relative_to(p).with_suffix("").parts)))
        else:
            found.append((p, p.stem))
    seen: dict[str, int] = {}
    for _, name in found:
        seen[name] = seen.get(name, 0) + 1
    return [
        (f, f"{name}-{hashlib.sha1(str(f.resolve()).encode()).hexdigest()[:8]}" if seen[name] > 1 else name)
        for f, name in found
    ]


def preprocess_file(
    path: str | os.PathLike, out_dir: str | os.PathLike, name: str, size: Sequence[int] = (1152, 896), **options: Any
) -> dict[str, Any]:
    """Process one file; never raises for bad input, returns its report row instead."""
    from mammo_monai.transforms.pipelines import preprocess_transforms

    out_dir = Path(out_dir)
    row: dict[str, Any] = {"file": str(path), "output": str(out_dir / f"{name}.png"), "mask": str(out_dir / f"{name}_mask.png")}
    try:
        d = preprocess_transforms(size=size, **options)({"image": str(path)})
        image, mask = d["image"], d["mask"]
        atomic_write_png(row["mask"], (mask[0].numpy() > 0.5).astype("uint8") * 255)
        atomic_write_png(row["output"], to_uint16(image[0].numpy()))  # written last: its presence means done
        meta = image.meta
        row.update(
            status="ok", laterality=meta.get("laterality", ""), view=meta.get("view", ""), flipped=bool(d.get("flipped")),
            mask_fraction=round(float(meta.get("mask_fraction", float("nan"))), 4),
            rows=meta["original_shape"][0], columns=meta["original_shape"][1],
        )
    except Exception as err:  # one bad file must not stop the batch
        row.update(status=f"error: {describe_error(err, path)}", output="", mask="")
    return row


def _preprocess_job(path: Path, out: Path, name: str, size: Sequence[int], options: dict[str, Any]) -> dict[str, Any]:
    return preprocess_file(path, out, name, size, **options)


def _write_report(path: Path, rows: list[dict[str, Any]]) -> None:
    write_csv(pd.DataFrame(rows, columns=REPORT_COLUMNS).sort_values("file"), path)


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
    in a previous ``preprocess.csv`` says ``ok`` is skipped. Bad files become error rows.

    Args:
        options: passed to :func:`mammo_monai.transforms.preprocess_transforms` (keep_aspect, crop,
            intensity, threshold).

    Returns:
        The report, one row per input file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = out / "preprocess.csv"
    previous: dict[str, dict[str, Any]] = {}
    if report.exists() and not overwrite:
        old = pd.read_csv(report, dtype=str, keep_default_na=False)
        previous = {r["file"]: r for r in old.to_dict("records") if r["status"] == "ok" and Path(r["output"]).exists()}
    rows, todo = [], []
    for f, name in find_images(inputs):
        if str(f) in previous and previous[str(f)]["output"] == str(out / f"{name}.png"):
            rows.append(previous[str(f)])
        else:
            todo.append((f, name))
    if previous:
        logger.info("preprocess: %d finished outputs skipped, %d to do", len(rows), len(todo))
    rows += run_parallel(
        _preprocess_job, [(f, out, name, size, options) for f, name in todo], workers, "preprocess", progress,
        on_error=lambda job, err: {"file": str(job[0]), "status": f"error: {job[0]}: worker failed: {err}"},
    )
    _write_report(report, rows)
    return pd.read_csv(report, keep_default_na=False)

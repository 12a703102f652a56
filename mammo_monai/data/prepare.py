"""``mammo-monai prepare``: dataset on disk -> manifest (images.csv, lesions.csv) + preprocessing cache."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.data.adapters import ADAPTERS
from mammo_monai.data.cache import cache_image
from mammo_monai.io.atomic import write_csv
from mammo_monai.data.manifest import validate, write_manifest
from mammo_monai.data.splits import assign_splits
from mammo_monai.parallel import run_parallel

logger = logging.getLogger(__name__)


def prepare(
    dataset: str,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: tuple[int, int] = (1152, 896),
    split_seed: int = 0,
    official_split: bool = False,
    workers: int | None = None,
    progress: bool = True,
    adapter_options: dict[str, Any] | None = None,
    transform_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read ``dataset`` under ``root``, split it by patient, cache every image and write the manifest.

    Writes ``images.csv`` and ``lesions.csv`` (pointing at the cached PNGs; lesion geometry stays in
    the original images' pixels), ``errors.csv`` (file, reason) and the cache under ``out_dir``.
    Returns a summary with counts and images/s.
    """
    if dataset not in ADAPTERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(ADAPTERS)}")
    t0 = time.time()
    kwargs = dict(adapter_options or {})
    if dataset == "cbis-ddsm":
        kwargs["official_split"] = official_split
    found = ADAPTERS[dataset](root, **kwargs)
    images = found.images
    if images.empty:
        raise ValueError(f"{root}: the {dataset} adapter found no images ({len(found.errors)} problems, e.g. {found.errors[:3]})")
    if dataset == "folder":
        pass  # the folder layout names the split
    elif official_split and dataset == "cbis-ddsm":
        images = assign_splits(images, seed=split_seed, keep_test=True)
    else:
        images = assign_splits(images, seed=split_seed)
    by_image = {k: g.to_dict("records") for k, g in found.lesions.groupby("image_id")} if not found.lesions.empty else {}
    jobs = [(row, by_image.get(row["image_id"], []), str(out_dir), size, transform_options) for row in images.to_dict("records")]
    t1 = time.time()
    results = run_parallel(cache_image, jobs, workers, "prepare", progress,
                           on_error=lambda job, err: (None, [], [{"file": job[0]["image"], "reason": f"worker failed: {err}"}]))
    seconds = time.time() - t1
    rows = [r[0] for r in results if r[0] is not None]
    lesions = [les for r in results for les in r[1]]
    errors = found.errors + [e for r in results for e in r[2]]
    out = Path(out_dir)
    img_df = pd.DataFrame(rows)
    les_df = pd.DataFrame(lesions)
    write_manifest(out, img_df, les_df)
    write_csv(pd.DataFrame(errors, columns=["file", "reason"]), out / "errors.csv")
    validate(img_df, les_df if not les_df.empty else None, where=str(out))
    summary = {
        "dataset": dataset, "images": len(rows), "lesions": len(lesions), "problems": len(errors),
        "failed_images": len(jobs) - len(rows),
        "splits": img_df["split"].value_counts().to_dict(), "malignant_fraction": round(float(img_df["label"].mean()), 3),
        "images_per_second": round(len(jobs) / max(seconds, 1e-9), 2), "seconds": round(time.time() - t0, 1),
    }
    logger.info("prepare: %s", summary)
    return summary

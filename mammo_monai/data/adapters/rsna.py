"""RSNA Screening Mammography: ``train.csv`` and ``train_images/<patient_id>/<image_id>.dcm``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult


def load_rsna(root: str | os.PathLike, table: str = "train.csv", images_dir: str = "train_images") -> AdapterResult:
    """Read the RSNA layout. Label: ``cancer``. Exam: ``<patient_id>_<laterality>`` (the unit the
    competition scored). No lesion geometry exists in this dataset."""
    root = Path(root)
    csv_path = root / table
    if not csv_path.is_file():
        raise FileNotFoundError(f"{root}: {table} not found")
    df = pd.read_csv(csv_path, dtype={"patient_id": str, "image_id": str})
    missing = [c for c in ("patient_id", "image_id", "laterality", "view", "cancer") if c not in df.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}")
    images, errors = [], []
    for r in df.to_dict("records"):
        path = root / images_dir / r["patient_id"] / f"{r['image_id']}.dcm"
        if not path.is_file():
            errors.append({"file": str(path), "reason": "listed in train.csv but not found; skipped"})
            continue
        row = {"image_id": f"{r['patient_id']}_{r['image_id']}", "image": str(path), "patient_id": r["patient_id"],
               "laterality": str(r["laterality"]).upper(), "view": str(r["view"]).upper(), "label": int(r["cancer"]),
               "dataset": "rsna", "split": "", "exam": f"{r['patient_id']}_{str(r['laterality']).upper()}"}
        row.update({k: r[k] for k in ("site_id", "age", "machine_id", "density", "implant") if k in r})
        images.append(row)
    return AdapterResult.from_rows(images, [], errors)

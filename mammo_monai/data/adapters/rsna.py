"""RSNA Screening Mammography: ``train.csv`` and ``train_images/<patient_id>/<image_id>.dcm``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult, read_table
from mammo_monai.io.exam_key import breast_key

REQUIRED = ["patient_id", "image_id", "laterality", "view", "cancer"]
EXTRA = ("site_id", "age", "machine_id", "density", "implant")


def load_rsna(root: str | os.PathLike, table: str = "train.csv", images_dir: str = "train_images") -> AdapterResult:
    """Read the RSNA layout. Label: ``cancer``. Exam: ``<patient_id>_<laterality>`` (the unit the
    competition scored). No lesion geometry exists in this dataset. A row whose ``cancer`` is not
    0/1 or whose file is missing is reported and skipped.

    Raises:
        FileNotFoundError: ``table`` is not in ``root``.
        DatasetTableError: the table cannot be read or lacks one of :data:`REQUIRED`.
    """
    root = Path(root)
    csv_path = root / table
    if not csv_path.is_file():
        raise FileNotFoundError(f"{root}: {table} not found")
    df = read_table(csv_path, required=REQUIRED, dtype={"patient_id": str, "image_id": str})
    df["laterality"] = df["laterality"].astype(str).str.strip().str.upper()
    df["view"] = df["view"].astype(str).str.strip().str.upper()
    df["label"] = pd.to_numeric(df["cancer"], errors="coerce")
    df["path"] = [root / images_dir / str(p) / f"{i}.dcm" for p, i in zip(df["patient_id"], df["image_id"])]
    truth_rows = len(df)
    bad = df[~df["label"].isin([0, 1])]
    errors = [
        {"file": f"{csv_path.name}: image {i}", "reason": f"cancer {c!r} is not 0 or 1; skipped"}
        for i, c in zip(bad["image_id"], bad["cancer"])
    ]
    df = df[df["label"].isin([0, 1])]
    found = df["path"].map(Path.is_file).astype(bool)
    errors += [{"file": str(p), "reason": f"listed in {table} but not found; skipped"} for p in df.loc[~found, "path"]]
    df = df[found]
    images = pd.DataFrame(
        {
            "image_id": df["patient_id"] + "_" + df["image_id"],
            "image": df["path"].map(str),
            "patient_id": df["patient_id"],
            "laterality": df["laterality"],
            "view": df["view"],
            "label": df["label"].astype(int),
            "dataset": "rsna",
            "split": "",
            "exam": breast_key(df["patient_id"], df["laterality"]),
        }
    )
    for col in EXTRA:
        if col in df.columns:
            images[col] = df[col]
    return AdapterResult.from_rows(images, [], errors, truth_rows=truth_rows)

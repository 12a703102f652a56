"""A CMMD-like miniature in the TCIA layout the NBIA Data Retriever writes.

``manifest-<n>/CMMD/<ID1>/<study folder>/<series folder>/1-1.dcm ...`` with the clinical table
``CMMD_clinicaldata_revision.xlsx`` beside the manifest folder. Quirks written: file names that carry
neither side nor view (both only in the header: ``ImageLaterality`` and the View Code Sequence, no
``ViewPosition``), patients imaged on one breast only and some on both (two rows of the table),
``subtype`` only for the D2 cases, a row per breast with ``classification`` Benign/Malignant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mammo_monai.io.atomic import atomic_path
from mammo_monai.synthetic.dicom_writer import build_dataset, save_dataset
from mammo_monai.synthetic.lesion_views import render_view, to_uint

COLUMNS = ["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"]
VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
SUBTYPES = ["Luminal A", "Luminal B", "HER2-enriched", "triple negative"]
MANIFEST = "manifest-1616439774456"


def _view_code(view: str) -> Sequence:
    code, meaning = VIEW_CODES[view]
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "SCT", meaning
    return Sequence([item])


def write_clinical_table(table: pd.DataFrame, path: Path) -> None:
    """The clinical table as ``.xlsx`` (``.csv`` when ``path`` says so), atomically."""
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_excel(tmp, index=False, engine="openpyxl")


def make_cmmd_tree(
    root: str | os.PathLike, patients: int = 6, seed: int = 0, size: tuple[int, int] = (256, 200)
) -> dict[str, Any]:
    """Write ``patients`` CMMD-like cases under ``root``; return the truth.

    Patients alternate D1 (no subtype) and D2 (subtype on malignant rows); every third patient has
    both breasts imaged and listed, the others one breast (CC and MLO). Labels alternate so that every
    miniature holds both classes. Returns ``table`` (path of the clinical table) and ``images`` (rows:
    path, patient_id, laterality, view, label).
    """
    rng = np.random.default_rng([seed, 2021])
    root = Path(root)
    images, rows = [], []
    for i in range(patients):
        pid = f"D{1 + i % 2}-{i + 1:04d}"
        sides = ["L", "R"] if i % 3 == 2 else [str(rng.choice(["L", "R"]))]
        series_dir = root / MANIFEST / "CMMD" / pid / f"01-01-2010-NA-NA-{70000 + i}" / f"1.000000-NA-{80000 + i}"
        series_dir.mkdir(parents=True, exist_ok=True)
        number = 0
        for k, side in enumerate(sides):
            malignant = (i + k) % 2 == 0
            abnormality = str(rng.choice(["calcification", "mass", "both"]))
            kind = "calc" if abnormality == "calcification" else "mass"
            for view in ("CC", "MLO"):
                number += 1
                img, _ = render_view(rng, size, view, side, [(kind, malignant)])
                ds = build_dataset(to_uint(img, 12), laterality=side, laterality_tag="ImageLaterality", patient_id=pid)
                ds.ViewCodeSequence = _view_code(view)
                ds.BitsStored, ds.HighBit = 12, 11
                path = series_dir / f"1-{number}.dcm"
                save_dataset(ds, path)
                images.append(
                    {"path": str(path), "patient_id": pid, "laterality": side, "view": view, "label": int(malignant)}
                )
            rows.append(
                {
                    "ID1": pid,
                    "LeftRight": side,
                    "Age": int(rng.integers(30, 80)),
                    "number": 2,
                    "abnormality": abnormality,
                    "classification": "Malignant" if malignant else "Benign",
                    "subtype": str(rng.choice(SUBTYPES)) if pid.startswith("D2") and malignant else "",
                }
            )
    table = root / "CMMD_clinicaldata_revision.xlsx"
    write_clinical_table(pd.DataFrame(rows, columns=COLUMNS), table)
    return {"table": str(table), "images": images}

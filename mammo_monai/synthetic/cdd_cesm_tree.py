"""A CDD-CESM-like miniature in the TCIA layout.

``CDD-CESM/Low energy images of CDD-CESM/P<n>_<L|R>_DM_<CC|MLO>.jpg`` and ``CDD-CESM/Subtracted
images of CDD-CESM/P<n>_<L|R>_CM_<CC|MLO>.jpg`` (8-bit JPEG), the annotation spreadsheet
``Radiology-manual-annotations.xlsx`` (sheet ``all``) and the VGG Image Annotator table
``Radiology_hand_drawn_segmentations_v2.csv``. Quirks written: an ``Image_name`` with a trailing
space, a ``#filename`` written ``P1_L_DM_MLO .jpg``, two rows for one image (two findings), polygon
and ellipse shapes, images without regions (``{}``), Normal breasts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from mammo_monai.io.atomic import atomic_path, write_csv
from mammo_monai.synthetic.lesion_views import render_view, to_uint

COLUMNS = [
    "Image_name",
    "Patient_ID",
    "Side",
    "Type",
    "Age",
    "Breast density (ACR)",
    "BIRADS",
    "Findings",
    "View",
    "Tags",
    "Machine",
    "Pathology Classification/ Follow up",
]
VIA_COLUMNS = [
    "#filename",
    "file_size",
    "file_attributes",
    "region_count",
    "region_id",
    "region_shape_attributes",
    "region_attributes",
]
FOLDERS = {"DM": "Low energy images of CDD-CESM", "CESM": "Subtracted images of CDD-CESM"}
CODES = {"DM": "DM", "CESM": "CM"}


def _save_jpeg(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint(img, 8)).save(tmp, format="JPEG", quality=95)


def _shape(lesion, ellipse: bool) -> dict:
    """The VIA shape of one lesion: its contour as a polygon, or the ellipse inscribed in its box."""
    if ellipse:
        r0, c0, r1, c1 = lesion.box
        return {"name": "ellipse", "cx": (c0 + c1) / 2, "cy": (r0 + r1) / 2, "rx": (c1 - c0) / 2, "ry": (r1 - r0) / 2}
    pts = lesion.outline[:: max(1, len(lesion.outline) // 24)]
    return {
        "name": "polygon",
        "all_points_x": [round(float(c), 1) for c in pts[:, 1]],
        "all_points_y": [round(float(r), 1) for r in pts[:, 0]],
    }


def _via_row(filename: str, path: Path, drawn: list, ellipse: bool) -> tuple[dict, dict | None]:
    """One row of the segmentation table (``{}`` without a lesion) and the truth of its outline."""
    common = {"#filename": filename, "file_size": path.stat().st_size, "file_attributes": "{}"}
    if not drawn:
        return {**common, "region_count": 0, "region_id": 0, "region_shape_attributes": "{}"}, None
    shape = _shape(drawn[0], ellipse)
    row = {
        **common,
        "region_count": 1,
        "region_id": 0,
        "region_shape_attributes": json.dumps(shape),
        "region_attributes": "{}",
    }
    if ellipse:
        box = (
            shape["cy"] - shape["ry"],
            shape["cx"] - shape["rx"],
            shape["cy"] + shape["ry"],
            shape["cx"] + shape["rx"],
        )
    else:
        ys, xs = shape["all_points_y"], shape["all_points_x"]
        box = (min(ys), min(xs), max(ys), max(xs))
    return row, {"box": box, "shape": shape["name"]}


def _table_row(rng: np.random.Generator, name: str, key: tuple, cls: str, findings: str) -> dict[str, Any]:
    """One row of the annotation table; ``key``: (patient, side, view, type). Patient 1's CC names carry
    a trailing space (a quirk of the real table)."""
    p, side, view, kind_code = key
    return {
        "Image_name": name + (" " if p == 1 and view == "CC" else ""),
        "Patient_ID": p,
        "Side": side,
        "Type": kind_code,
        "Age": int(rng.integers(30, 75)),
        "Breast density (ACR)": str(rng.choice(list("ABCD"))),
        "BIRADS": {"Malignant": 5, "Benign": 2, "Normal": 1}[cls],
        "Findings": findings,
        "View": view,
        "Tags": "",
        "Machine": "synthetic",
        "Pathology Classification/ Follow up": cls,
    }


def make_cdd_cesm_tree(
    root: str | os.PathLike, patients: int = 4, seed: int = 0, size: tuple[int, int] = (256, 200)
) -> dict[str, Any]:
    """Write ``patients`` CDD-CESM-like cases (both breasts, CC and MLO, low energy and subtracted).

    Breast classes cycle Malignant, Benign, Normal; an abnormal breast carries one lesion on both
    views, outlined in the segmentation table for both image types (polygons, every third one an
    ellipse). Returns ``images`` (rows: name, patient_id, laterality, view, type, label, path,
    pathology) and ``lesions`` (rows: name, kind, box = (row0, col0, row1, col1) of the outline's
    points, shape).
    """
    rng = np.random.default_rng([seed, 2022])
    base = Path(root) / "CDD-CESM"
    rows, via, images, lesions = [], [], [], []
    k = 0
    for p in range(1, patients + 1):
        for side in ("L", "R"):
            cls = ["Malignant", "Benign", "Normal"][k % 3]
            k += 1
            kind = None if cls == "Normal" else ("calc" if rng.random() < 0.4 else "mass")
            findings = "" if kind is None else ("grouped microcalcifications" if kind == "calc" else "irregular mass")
            for view in ("CC", "MLO"):
                img, drawn = render_view(rng, size, view, side, [(kind, cls == "Malignant")] if kind else [])
                for kind_code in ("DM", "CESM"):
                    name = f"P{p}_{side}_{CODES[kind_code]}_{view}"
                    shown = img if kind_code == "DM" else np.clip(0.6 * img**2, 0, 1)
                    path = base / FOLDERS[kind_code] / f"{name}.jpg"
                    _save_jpeg(shown, path)
                    row = _table_row(rng, name, (p, side, view, kind_code), cls, findings)
                    rows.append(row)
                    if kind and p == 1:  # a second finding row for the same image
                        rows.append({**row, "Findings": "skin thickening"})
                    images.append(
                        {
                            "name": name,
                            "patient_id": str(p),
                            "laterality": side,
                            "view": view,
                            "type": kind_code,
                            "label": int(cls == "Malignant"),
                            "pathology": cls,
                            "path": str(path),
                        }
                    )
                    filename = f"{name} .jpg" if p == 1 and view == "MLO" else f"{name}.jpg"
                    region, lesion = _via_row(filename, path, drawn, ellipse=len(lesions) % 3 == 2)
                    via.append(region)
                    lesions += [{"name": name, "kind": kind, **lesion}] if lesion else []
    table = base / "Radiology-manual-annotations.xlsx"
    with atomic_path(table) as tmp:
        pd.DataFrame(rows, columns=COLUMNS).to_excel(tmp, index=False, sheet_name="all", engine="openpyxl")
    write_csv(pd.DataFrame(via, columns=VIA_COLUMNS), base / "Radiology_hand_drawn_segmentations_v2.csv")
    return {"base": str(base), "table": str(table), "images": images, "lesions": lesions}

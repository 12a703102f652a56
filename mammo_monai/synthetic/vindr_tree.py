"""A VinDr-Mammo-like miniature in the PhysioNet layout (version 1.0.0).

``physionet.org/files/vindr-mammo/1.0.0/`` holds ``breast-level_annotations.csv``,
``finding_annotations.csv`` and ``images/<study_id>/<image_id>.dicom`` (hex ids, the ``.dicom``
suffix). Quirks written: ``BI-RADS n`` / ``DENSITY x`` strings, ``finding_categories`` as a
Python-list string (``['No Finding']`` rows with empty boxes for images without findings, a
``['Mass', 'Skin Retraction']`` pair, findings that are not lesions), a box reaching outside the image
(negative ``xmin``), the split as ``training``/``test``, and MONOCHROME1 files beside MONOCHROME2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.io.atomic import write_csv
from mammo_monai.synthetic.dicom_writer import build_dataset, save_dataset
from mammo_monai.synthetic.lesion_views import render_view, to_uint

BREAST_COLUMNS = [
    "study_id",
    "series_id",
    "image_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "split",
]
FINDING_COLUMNS = [
    *BREAST_COLUMNS[:-1],
    "finding_categories",
    "finding_birads",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "split",
]
RELEASE = Path("physionet.org/files/vindr-mammo/1.0.0")


def _hex(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), 32))


def _breast_birads(rng: np.random.Generator) -> int:
    return int(rng.choice([1, 2, 3, 4, 5], p=[0.35, 0.25, 0.15, 0.15, 0.1]))


def _write_dicom(path: Path, img: np.ndarray, side: str, view: str, study: str, rng: np.random.Generator) -> None:
    """A 12-bit mammogram, MONOCHROME1 (stored inverted) for about a third of the files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mono1 = rng.random() < 0.3
    ds = build_dataset(
        to_uint(1 - img if mono1 else img, 12),
        laterality=side,
        laterality_tag="ImageLaterality",
        photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
        patient_id=study[:8],
    )
    ds.ViewPosition = view
    ds.BitsStored, ds.HighBit = 12, 11
    save_dataset(ds, path)


def _findings(
    common: dict, drawn: list, birads: int, first: bool, rng: np.random.Generator
) -> tuple[list[dict], dict | None]:
    """The finding rows of one image and the truth of its lesion (None without one). The ``first``
    lesion of the tree gets a box that starts left of the image."""
    if not drawn:
        return [{**common, "finding_categories": "['No Finding']", "finding_birads": ""}], None
    les = drawn[0]
    r0, c0, r1, c1 = les.box
    r1, c1 = r1 + 1, c1 + 1  # VinDr's xmax/ymax are edges (floats): one past the last pixel
    cats = ["Mass"] if les.kind == "mass" else ["Suspicious Calcification"]
    if les.kind == "mass" and rng.random() < 0.5:
        cats.append("Skin Retraction")
    xmin = -3.5 if first else float(c0)
    rows = [
        {
            **common,
            "finding_categories": str(cats),
            "finding_birads": f"BI-RADS {birads}",
            "xmin": xmin,
            "ymin": float(r0),
            "xmax": float(c1),
            "ymax": float(r1),
        }
    ]
    if rng.random() < 0.5:  # a finding that is not a lesion of the manifest's types
        box = {"xmin": 10.0, "ymin": 10.0, "xmax": 30.0, "ymax": 30.0}
        rows.append(
            {**common, "finding_categories": "['Architectural Distortion']", "finding_birads": "BI-RADS 3", **box}
        )
    truth = {
        "image_id": common["image_id"],
        "kind": les.kind,
        "finding_birads": birads,
        "box": (float(r0), max(0.0, xmin), float(r1), float(c1)),
        "categories": cats,
    }
    return rows, truth


def make_vindr_tree(
    root: str | os.PathLike, studies: int = 6, seed: int = 0, size: tuple[int, int] = (256, 200)
) -> dict[str, Any]:
    """Write ``studies`` four-view exams under ``root``; return the truth.

    A breast of BI-RADS 3-5 carries one lesion (a Mass, or a Suspicious Calcification) seen on both
    views with ``finding_birads`` equal to the breast's; the first study's left breast is BI-RADS 4
    and its right breast BI-RADS 1, so every miniature has both labels. The last ``studies // 3``
    studies are ``test``. One box of the first lesion starts left of the image (``xmin`` < 0).

    Returns:
        ``base`` (the release folder), ``images`` (rows: image_id, study_id, laterality, view, birads,
        split, path) and ``lesions`` (rows: image_id, kind, finding_birads, box = (row0, col0, row1,
        col1) clipped to the image, categories).
    """
    rng = np.random.default_rng([seed, 2022])
    base = Path(root) / RELEASE
    h, w = size
    breast_rows, finding_rows, images, lesions = [], [], [], []
    for s in range(studies):
        study, split = _hex(rng), "test" if s >= studies - studies // 3 else "training"
        density = str(rng.choice(list("ABCD")))
        for side in ("L", "R"):
            birads = (4 if side == "L" else 1) if s == 0 else _breast_birads(rng)
            kind = ("mass" if rng.random() < 0.6 else "calc") if birads >= 3 else None
            series = _hex(rng)
            for view in ("CC", "MLO"):
                image = _hex(rng)
                img, drawn = render_view(rng, size, view, side, [(kind, birads >= 4)] if kind else [])
                path = base / "images" / study / f"{image}.dicom"
                _write_dicom(path, img, side, view, study, rng)
                common = {
                    "study_id": study,
                    "series_id": series,
                    "image_id": image,
                    "laterality": side,
                    "view_position": view,
                    "height": h,
                    "width": w,
                    "breast_birads": f"BI-RADS {birads}",
                    "breast_density": f"DENSITY {density}",
                    "split": split,
                }
                breast_rows.append(common)
                images.append({**common, "birads": birads, "view": view, "path": str(path)})
                rows, lesion = _findings(common, drawn, birads, not lesions, rng)
                finding_rows += rows
                lesions += [lesion] if lesion else []
    write_csv(pd.DataFrame(breast_rows, columns=BREAST_COLUMNS), base / "breast-level_annotations.csv")
    write_csv(pd.DataFrame(finding_rows, columns=FINDING_COLUMNS), base / "finding_annotations.csv")
    return {"base": str(base), "images": images, "lesions": lesions}

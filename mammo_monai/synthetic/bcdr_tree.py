"""A miniature BCDR (Breast Cancer Digital Repository) with a film set, a digital set and a normal set.

Each set is a folder ``BCDR-<X>_dataset`` with ``bcdr_<x>_img.csv``, ``bcdr_<x>_outlines.csv`` (not in
the normal set) and TIFFs under ``patient_<id>/study_<id>/``. Published quirks kept: every value after
the first written after ``", "`` (leading spaces in file names, classes and point lists), ``density``
``NaN`` for some images, ``classification`` ``Malign``, 8-bit film and 14-bit-in-16 digital TIFFs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mammo_monai.synthetic.view_render import render_view

IMG_COLUMNS = [
    "patient_id",
    "study_id",
    "series",
    "image_filename",
    "image_type_name",
    "image_type_id",
    "age",
    "density",
]
OUTLINE_COLUMNS = [
    "patient_id", "study_id", "series", "lesion_id", "segmentation_id", "image_view", "image_filename",
    "lw_x_points", "lw_y_points", "mammography_type", "mammography_nodule", "mammography_calcification",
    "mammography_microcalcification", "mammography_axillary_adenopathy", "mammography_architectural_distortion",
    "mammography_stroma_distortion", "age", "density", "classification",
]  # fmt: skip
CODES = {"RCC": 0, "LCC": 1, "RO": 2, "LO": 3}  # image_type_id; image_view in the outlines is this + 1


def _line(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values) + "\n"


def _write_tiff(path: Path, img: np.ndarray, film: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (img * 255).astype(np.uint8) if film else (img * 16383).astype(np.uint16)
    Image.fromarray(pixels).save(path)


def _outline_line(image: tuple, n: int, cols: np.ndarray, rows: np.ndarray, kind: str, malignant: bool) -> str:
    """One row of the outlines table: the ``n``-th outline of ``image`` = (patient, study, image type id,
    file name, density); points as space-separated whole pixels; age and density as in the images table."""
    pid, study, type_id, file_name, density = image
    flags = [int(kind == "mass"), 0, int(kind != "mass"), 0, 0, 0]
    values = [pid, study, 1, n + 1, n + 1, type_id + 1, file_name, " ".join(map(str, cols)), " ".join(map(str, rows))]
    return _line([*values, 1, *flags, 50 + pid, density, "Malign" if malignant else "Benign"])


def _write_set(
    root: Path, name: str, patients: list[int], rng: np.random.Generator, size: tuple[int, int], truth: dict
) -> None:
    """One set folder; patients whose id is a multiple of 2 (not in the normal set) have one lesion."""
    folder = root / f"BCDR-{name.upper()}_dataset"
    film, normal = name.startswith("f"), name.startswith("dn")
    img_lines, outline_lines = [_line(IMG_COLUMNS)], [_line(OUTLINE_COLUMNS)]
    for pid in patients:
        study = pid + 1000
        lesion_side = "R" if pid % 4 == 0 else "L"
        has_lesion = not normal and pid % 2 == 0
        malignant, kind = pid % 4 == 0, "mass" if pid % 3 else "calcification"
        for code, type_id in CODES.items():
            side, view = code[0], "CC" if code.endswith("CC") else "MLO"
            wanted = [(kind, malignant)] if has_lesion and side == lesion_side else []
            img, drawn = render_view(rng, size, side, view, wanted)
            file_name = f"patient_{pid}/study_{study}/img_{pid}_{study}_1_{code}.tif"
            _write_tiff(folder / file_name, img, film)
            density = "NaN" if pid % 5 == 0 else 1 + pid % 4
            img_lines.append(_line([pid, study, 1, file_name, code, type_id, 50 + pid, density]))
            truth["images"].append(
                {
                    "set": f"BCDR-{name.upper()}",
                    "file": file_name,
                    "patient_id": str(pid),
                    "laterality": side,
                    "view": view,
                    "label": int(bool(drawn) and malignant),
                }
            )
            for n, d in enumerate(drawn):
                cols, rows = d.outline()
                outline_lines.append(
                    _outline_line((pid, study, type_id, file_name, density), n, cols, rows, kind, malignant)
                )
                truth["lesions"].append(
                    {
                        "set": f"BCDR-{name.upper()}",
                        "file": file_name,
                        "type": "mass" if kind == "mass" else "calc",
                        "pathology": "malignant" if malignant else "benign",
                        "cols": cols,
                        "rows": rows,
                    }
                )
    (folder / f"bcdr_{name}_img.csv").write_text("".join(img_lines))
    if not normal:
        (folder / f"bcdr_{name}_outlines.csv").write_text("".join(outline_lines))


def make_bcdr_tree(
    root: str | os.PathLike, patients: int = 3, seed: int = 0, size: tuple[int, int] = (96, 72)
) -> dict[str, Any]:
    """Write sets ``f01`` (film), ``d01`` (digital) and ``dn01`` (normal) of ``patients`` patients each
    under ``root``; returns the truth: every image (set, file, patient, side, view, label) and every
    lesion outline (set, file, type, pathology, outline columns and rows)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    truth: dict[str, list] = {"images": [], "lesions": []}
    for k, name in enumerate(("f01", "d01", "dn01")):
        _write_set(root, name, [k * patients + i + 1 for i in range(patients)], rng, size, truth)
    return truth

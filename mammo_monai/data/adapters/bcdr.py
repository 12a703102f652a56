"""BCDR (Breast Cancer Digital Repository, bcdr.eu): the film (BCDR-F0x) and digital (BCDR-D0x, and the
normal BCDR-DN0x) sets, each a folder with ``<set>_img.csv``, ``<set>_outlines.csv`` and TIFF images.

Tables read (column names as published with the sets, e.g. ``bcdr_d01_img.csv``):

- images: ``patient_id, study_id, series, image_filename, image_type_name, image_type_id, age, density``
  (``image_type_name`` ``RCC`` / ``LCC`` / ``RO`` / ``LO``: side then view, ``O`` = MLO);
- outlines: ``patient_id, study_id, series, lesion_id, segmentation_id, image_view, image_filename,
  lw_x_points, lw_y_points, mammography_type, mammography_nodule, mammography_calcification,
  mammography_microcalcification, mammography_axillary_adenopathy, mammography_architectural_distortion,
  mammography_stroma_distortion, age, density, classification``.

Quirks handled: values written after ``", "`` (a leading space in file names, classifications and
point lists), ``density`` ``NaN``, ``classification`` ``Malign`` (also accepted: ``Malignant``).
Sources: bcdr.eu's set descriptions and the column lists that public BCDR readers parse (the ``image_view``
codes 1-4 and the film sets' 8-bit TIFFs from the same readers); no set's files were available here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult, read_table, safe_name
from mammo_monai.data.adapters.geometry import outline_geometry

IMG_REQUIRED = ["patient_id", "study_id", "image_filename", "image_type_name"]
OUTLINE_REQUIRED = ["image_filename", "lw_x_points", "lw_y_points", "classification"]
CLASSIFICATION = {"malign": "malignant", "malignant": "malignant", "benign": "benign"}
_SET = re.compile(r"^(bcdr_([a-z]+)(\d+))_img$", re.I)


def find_sets(root: Path) -> list[tuple[str, Path, Path | None]]:
    """``(set name, images table, outlines table or None)`` for every ``*_img.csv`` up to two folders down."""
    sets = []
    for path in sorted({*root.glob("*_img.csv"), *root.glob("*/*_img.csv"), *root.glob("*/*/*_img.csv")}):
        m = _SET.match(path.stem)
        if m:
            outlines = path.with_name(f"{m.group(1)}_outlines.csv")
            sets.append((f"BCDR-{m.group(2).upper()}{m.group(3)}", path, outlines if outlines.is_file() else None))
    return sets


def _read(path: Path, required: list[str]) -> pd.DataFrame:
    table = read_table(path, required=required, dtype=str, keep_default_na=False, skipinitialspace=True)
    return table.apply(lambda col: col.str.strip())


def _side_view(code: str) -> tuple[str, str] | None:
    """("R", "CC") from ``RCC``; ("L", "MLO") from ``LO`` or ``LMLO``; None for anything else."""
    code = code.upper()
    view = {"CC": "CC", "O": "MLO", "MLO": "MLO"}.get(code[1:])
    return (code[0], view) if code[:1] in ("L", "R") and view else None


def _lesion_type(row: dict[str, str]) -> str | None:
    if row.get("mammography_nodule", "0") == "1":
        return "mass"
    if "1" in (row.get("mammography_calcification", "0"), row.get("mammography_microcalcification", "0")):
        return "calc"
    return None


def _outlines(path: Path | None, errors: list[dict[str, str]]) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """Outline rows by image file name (with parsed points and pathology), and the images whose
    classification is unknown (their label cannot be told)."""
    by_image: dict[str, list[dict[str, Any]]] = {}
    unknown: set[str] = set()
    if path is None:
        return by_image, unknown
    for row in _read(path, OUTLINE_REQUIRED).to_dict("records"):
        name = row["image_filename"]
        pathology = CLASSIFICATION.get(row["classification"].lower())
        if pathology is None:
            errors.append(
                {
                    "file": f"{path.name}: {name}",
                    "reason": f"unknown classification {row['classification']!r} (the image's label is unknown); skipped",
                }
            )
            unknown.add(name)
            continue
        try:
            cols = np.array(row["lw_x_points"].split(), float)
            rows = np.array(row["lw_y_points"].split(), float)
            geometry = outline_geometry(rows=rows, cols=cols) if len(cols) == len(rows) and len(cols) else None
        except ValueError:
            geometry = None
        if geometry is None:
            errors.append(
                {"file": f"{path.name}: {name}", "reason": "outline points unreadable; lesion kept without geometry"}
            )
        by_image.setdefault(name, []).append({"pathology": pathology, "type": _lesion_type(row), "geometry": geometry})
    return by_image, unknown


def load_bcdr(root: str | os.PathLike) -> AdapterResult:
    """Read every BCDR set under ``root`` (a set folder, or a folder holding several).

    Label (``label_source`` column): 1 when any outline of the image is classified ``Malign``, else 0
    (an image of a lesion study without an outline of its own, and every image of a normal set, is 0).
    Lesions: one per outline of a nodule (``mass``) or a (micro)calcification (``calc``), centre = mean
    of the outline points, radius = farthest point, bounding box kept; outlines of other findings count
    for the label only. Patient: ``patient_id`` (BCDR's repository-wide id). BCDR defines no split.

    Not verified without the real files: the exact image file names inside a set folder (the adapter
    takes them from ``image_filename``, relative to the table's folder), the digital sets' TIFF bit
    depth (read as the bit depth the data use), and whether ``patient_id`` is unique across sets.

    Raises:
        FileNotFoundError: no ``*_img.csv`` in ``root`` or two folders down.
        DatasetTableError: a table cannot be read or lacks a needed column.
    """
    root = Path(root)
    sets = find_sets(root)
    if not sets:
        raise FileNotFoundError(f"{root}: no BCDR images table (bcdr_*_img.csv) here or two folders down")
    images: list[dict[str, Any]] = []
    lesions: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    truth_rows = 0
    for name, img_path, outline_path in sets:
        truth_rows += _read_set(name, img_path, outline_path, images, lesions, errors)
    return AdapterResult.from_rows(images, lesions, errors, truth_rows=truth_rows)


def _read_set(
    name: str,
    img_path: Path,
    outline_path: Path | None,
    images: list[dict[str, Any]],
    lesions: list[dict[str, Any]],
    errors: list[dict[str, str]],
) -> int:
    """Add set ``name``'s images and lesions to ``images`` and ``lesions`` (problems to ``errors``);
    return the number of rows of its images table."""
    table = _read(img_path, IMG_REQUIRED)
    outlines, unknown = _outlines(outline_path, errors)
    source = "bcdr: any outline classified Malign = 1, else 0" if outline_path else "bcdr normal set: 0"
    for row in table.to_dict("records"):
        file_name = row["image_filename"]
        side_view = _side_view(row["image_type_name"])
        if side_view is None:
            where = f"{img_path.name}: {file_name}"
            errors.append({"file": where, "reason": f"unknown image_type_name {row['image_type_name']!r}; skipped"})
            continue
        if file_name in unknown:
            continue
        path = img_path.parent / file_name
        if not path.is_file():
            errors.append({"file": str(path), "reason": f"listed in {img_path.name} but not found; skipped"})
            continue
        found = outlines.get(file_name, [])
        image_id = safe_name(f"{name}_{Path(file_name).stem}")
        images.append(
            {
                "image_id": image_id,
                "image": str(path),
                "patient_id": row["patient_id"],
                "laterality": side_view[0],
                "view": side_view[1],
                "label": int(any(o["pathology"] == "malignant" for o in found)),
                "dataset": "bcdr",
                "split": "",
                "label_source": source,
                "bcdr_set": name,
                "acquisition": "film" if name.startswith("BCDR-F") else "digital",
                "density": row.get("density", ""),
            }
        )
        lesions += [_lesion(image_id, path, o) for o in found if o["type"] is not None]
    return len(table)


def _lesion(image_id: str, path: Path, outline: dict[str, Any]) -> dict[str, Any]:
    """The lesion row of one outline (NaN geometry when its points were unreadable)."""
    nan = float("nan")
    geometry = outline["geometry"] or {"center_row": nan, "center_col": nan, "radius": nan}
    return {
        "image_id": image_id,
        "image": str(path),
        "lesion_type": outline["type"],
        "pathology": outline["pathology"],
        "mask": "",
        **geometry,
    }

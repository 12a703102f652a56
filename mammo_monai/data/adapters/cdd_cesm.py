"""CDD-CESM, the Categorized Digital Database for Low energy and Subtracted Contrast Enhanced Spectral
Mammography images (TCIA; Khaled et al., Sci Data 9:122, 2022).

Files read (TCIA collection page, the paper, and public code that reads the release): the annotation
table ``Radiology-manual-annotations.xlsx`` (sheet ``all`` when present, else the first; or a ``.csv``
export), one row per finding with ``Image_name`` (``P1_L_DM_MLO``: patient, side, DM for low energy
or CM for subtracted, view), ``Patient_ID``, ``Side``, ``Type`` (``DM``/``CESM``), ``View``,
``Findings`` and ``Pathology Classification/ Follow up`` (Normal/Benign/Malignant); the
hand-drawn segmentation table ``Radiology_hand_drawn_segmentations_v2.csv`` in VGG Image
Annotator form (``#filename``, ``region_shape_attributes`` a JSON shape: polygon/polyline
``all_points_x``/``all_points_y``, ellipse ``cx, cy, rx, ry``, circle ``cx, cy, r``, point, rect);
and the JPEG images in ``Low energy images of CDD-CESM/`` and ``Subtracted images of CDD-CESM/``.
Quirks handled: ``Image_name`` with trailing spaces, ``#filename`` written ``P1_L_DM_MLO .jpg``,
several rows per image (one per finding).

Not verified without the real files: the sheet layout of the spreadsheet beyond its column names, every
shape type the segmentation table uses (unknown shapes are reported and skipped), and whether an
ellipse's ``theta`` is ever set (its box is taken axis-aligned, the radius from the larger axis).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult, read_table, walk_files
from mammo_monai.data.adapters.geometry import outline_geometry, sized_box_geometry
from mammo_monai.data.adapters.tables import find_table, read_sheet

ANNOTATION_NAMES = [
    "Radiology-manual-annotations.xlsx",
    "Radiology manual annotations.xlsx",
    "Radiology_manual_annotations.xlsx",
    "Radiology-manual-annotations.csv",
]
SEGMENTATION_NAMES = ["Radiology_hand_drawn_segmentations_v2.csv", "Radiology_hand_drawn_segmentations*.csv"]
PATHOLOGY = "Pathology Classification/ Follow up"
REQUIRED = ["Image_name", "Patient_ID", "Side", "Type", "View", PATHOLOGY]
CLASSES = {"malignant": 1, "benign": 0, "normal": 0}
TYPES = {"DM": "low-energy", "CESM": "subtracted"}


def shape_points(shape: dict) -> tuple[list[float], list[float]] | None:
    """(rows, cols) of the points that outline one VIA shape; None for a shape type not known here."""
    kind = str(shape.get("name", "")).lower()
    if kind in ("polygon", "polyline") and shape.get("all_points_x"):
        return [float(v) for v in shape["all_points_y"]], [float(v) for v in shape["all_points_x"]]
    if kind in ("ellipse", "circle", "point"):
        cx, cy = float(shape["cx"]), float(shape["cy"])
        rx = float(shape.get("rx", shape.get("r", 0.0)))
        ry = float(shape.get("ry", shape.get("r", 0.0)))
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        return list(cy + ry * np.sin(t)), list(cx + rx * np.cos(t))
    return None


def shape_geometry(shape: dict) -> dict[str, float] | None:
    """Manifest geometry of one VIA shape: a ``rect`` is a top-left + size box (its end edge exclusive),
    every other shape an outline of pixels; None for a shape type not known here.

    Raises:
        ValueError: not a JSON object, or a polygon or polyline with more x than y points or the reverse.
    """
    if not isinstance(shape, dict):
        raise ValueError(f"not a VIA shape object but {type(shape).__name__}")
    if str(shape.get("name", "")).lower() == "rect":
        x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
        return sized_box_geometry(top=y, left=x, height=h, width=w)
    pts = shape_points(shape)
    if pts is None or not pts[0]:
        return None
    if len(pts[0]) != len(pts[1]):
        raise ValueError(f"{len(pts[1])} x and {len(pts[0])} y points")
    return outline_geometry(rows=pts[0], cols=pts[1])


def _outlines(root: Path, errors: list[dict[str, str]]) -> dict[str, list[dict[str, float]]]:
    """Image name -> the geometry of its shapes in the segmentation table; {} (reported) without one.
    A shape that cannot be read is reported and skipped; the others are kept."""
    path = find_table(root, SEGMENTATION_NAMES)
    if path is None:
        errors.append({"file": str(root), "reason": "Radiology_hand_drawn_segmentations_v2.csv not found; no lesions"})
        return {}
    table = read_table(path, required=["#filename", "region_shape_attributes"], dtype=str, keep_default_na=False)
    outlines: dict[str, list] = {}
    for i, r in enumerate(table.to_dict("records"), start=2):
        name = Path(r["#filename"].strip()).stem.strip()  # 'P1_L_DM_MLO .jpg' -> 'P1_L_DM_MLO'
        text = r["region_shape_attributes"].strip()
        if not text or text == "{}":
            continue
        try:
            geometry = shape_geometry(json.loads(text))
        except (ValueError, KeyError, TypeError) as err:
            errors.append({"file": f"{path.name}: row {i} ({name})", "reason": f"unreadable shape ({err}); skipped"})
            continue
        if geometry is None:
            errors.append({"file": f"{path.name}: row {i} ({name})", "reason": f"unknown shape {text[:40]!r}; skipped"})
            continue
        outlines.setdefault(name, []).append(geometry)
    return outlines


def load_cdd_cesm(root: str | os.PathLike, include_cesm: bool = False, official_split: bool = False) -> AdapterResult:
    """Read a CDD-CESM download: the low-energy (``DM``) images, plus the subtracted (``CESM``) ones
    with ``include_cesm`` (column ``image_type``).

    Label: 1 when any row of the image says Malignant (biopsy; Benign and Normal follow-up give 0;
    ``label_source`` ``pathology``). Patient: ``Patient_ID``. Lesions: every outline of a Benign or
    Malignant image, in the JPEG's pixels, with the image's pathology; ``lesion_type`` ``calc`` when
    the image's findings mention calcifications and no mass, else ``mass`` (the table names no type per
    outline). An image with a row of unknown pathology, type or side is left out whole (its label
    cannot be known), reported. No official split (``official_split`` is accepted and ignored).

    Raises:
        FileNotFoundError: no annotation table in ``root`` or up to four folders down.
        DatasetTableError: a table cannot be read or lacks a needed column.
    """
    root = Path(root)
    table_path = find_table(root, ANNOTATION_NAMES)
    if table_path is None:
        raise FileNotFoundError(f"{root}: Radiology-manual-annotations.xlsx not found here or below")
    table = read_sheet(table_path, REQUIRED, sheet="all")
    errors: list[dict[str, str]] = []
    jpegs = {p.stem.strip(): p for p in walk_files(root, errors, keep=lambda n: n.lower().endswith((".jpg", ".jpeg")))}
    outlines = _outlines(root, errors)
    images = _images(table, table_path.name, include_cesm, errors)
    rows, lesions = [], []
    for name, img in images.items():
        if name not in jpegs:
            errors.append({"file": f"{name}.jpg", "reason": f"listed in {table_path.name} but not found; skipped"})
            continue
        classes = img.pop("classes")
        rows.append({**img, "image": str(jpegs[name]), "pathologies": "/".join(sorted(classes))})
        if classes == {"normal"}:
            continue
        findings = img["findings"].lower()
        kind = "calc" if "calcif" in findings and "mass" not in findings else "mass"
        for geometry in outlines.get(name, []):
            lesions.append(
                {
                    "image_id": name,
                    "image": str(jpegs[name]),
                    "lesion_type": kind,
                    "pathology": "malignant" if img["label"] else "benign",
                    **geometry,
                    "mask": "",
                }
            )
    return AdapterResult.from_rows(rows, lesions, errors, truth_rows=len(table))


def _images(
    table: pd.DataFrame, name_of_table: str, include_cesm: bool, errors: list[dict[str, str]]
) -> dict[str, dict]:
    """Image name -> its row (label from all its rows, their classes and findings); an image with an
    unreadable row is left out whole, reported."""
    images: dict[str, dict] = {}
    doubtful: set[str] = set()
    for i, r in enumerate(table.to_dict("records"), start=2):
        name, kind = r["Image_name"].strip(), r["Type"].strip().upper()
        cls = r[PATHOLOGY].strip().lower()
        if not name or (kind == "CESM" and not include_cesm):
            continue
        where = f"{name_of_table}: row {i} ({name})"
        if cls not in CLASSES or kind not in TYPES or r["Side"].strip().upper() not in ("L", "R"):
            bad = f"pathology {r[PATHOLOGY]!r}" if cls not in CLASSES else f"Type/Side {kind!r}/{r['Side']!r}"
            errors.append({"file": where, "reason": f"unknown {bad}; image skipped"})
            doubtful.add(name)  # its label cannot be known if one of its rows is unreadable
            continue
        img = images.setdefault(
            name,
            {
                "image_id": name,
                "patient_id": r["Patient_ID"].strip().removesuffix(".0"),
                "laterality": r["Side"].strip().upper(),
                "view": r["View"].strip().upper(),
                "label": 0,
                "dataset": "cdd-cesm",
                "split": "",
                "label_source": "pathology",
                "image_type": TYPES[kind],
                "classes": set(),
                "findings": "",
            },
        )
        img["label"] = max(img["label"], CLASSES[cls])
        img["classes"].add(cls)
        img["findings"] = "; ".join(f for f in (img["findings"], r.get("Findings", "").strip()) if f)
    return {name: img for name, img in images.items() if name not in doubtful}

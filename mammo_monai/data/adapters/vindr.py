"""VinDr-Mammo (PhysioNet, version 1.0.0): BI-RADS per breast, boxes per finding, an official split.

Files read (published layout, PhysioNet ``vindr-mammo/1.0.0`` and Nguyen et al., Sci Data 10:277, 2023):
``breast-level_annotations.csv`` (one row per image: ``study_id``, ``series_id``, ``image_id``,
``laterality``, ``view_position``, ``height``, ``width``, ``breast_birads`` such as ``BI-RADS 4``,
``breast_density`` such as ``DENSITY C``, ``split`` ``training``/``test``), ``finding_annotations.csv``
(one row per finding, the same image columns plus ``finding_categories``, a Python-list string such
as ``['Mass', 'Skin Retraction']`` or ``['No Finding']``, ``finding_birads``, and the box ``xmin``,
``ymin``, ``xmax``, ``ymax`` in the DICOM's pixels, empty for ``No Finding``), and the DICOMs at
``images/<study_id>/<image_id>.dicom``. ``metadata.csv`` is not needed.

Not verified without the real files: whether any box reaches outside the image (some users report
negative coordinates; boxes are clipped to ``height`` x ``width`` and flagged ``box_clipped``), that
``xmax``/``ymax`` are edges one past the last pixel (float coordinates; kept as the manifest's
half-open box end), and
whether a woman can have more than one study (no patient id is published; ``study_id`` is used).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult, read_table
from mammo_monai.data.adapters.geometry import box_geometry
from mammo_monai.data.adapters.tables import find_table, number

BREAST_CSV = "breast-level_annotations.csv"
FINDING_CSV = "finding_annotations.csv"
BREAST_REQUIRED = ["study_id", "image_id", "laterality", "view_position", "breast_birads"]
FINDING_REQUIRED = ["study_id", "image_id", "finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax"]
SPLITS = {"training": "train", "train": "train", "test": "test"}
#: finding categories written as lesions; the others (asymmetries, architectural distortion, skin and
#: nipple signs, lymph nodes) have no counterpart among the manifest's lesion types and are counted only
LESION_TYPES = {"mass": "mass", "suspicious calcification": "calc"}


def birads_score(value: object) -> float:
    """``'BI-RADS 4'`` -> 4.0, ``'4'`` -> 4.0; NaN for anything else."""
    m = re.fullmatch(r"\s*(?:BI-?RADS\s*)?([0-6])\s*[a-cA-C]?\s*", str(value), re.I)
    return float(m.group(1)) if m else float("nan")


def categories(value: object) -> list[str]:
    """``"['Mass', 'Skin Retraction']"`` -> ``['Mass', 'Skin Retraction']`` (a bare name is one category)."""
    text = str(value).strip()
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        parsed = [text]
    return [str(c).strip() for c in (parsed if isinstance(parsed, (list, tuple)) else [parsed]) if str(c).strip()]


def load_vindr(
    root: str | os.PathLike, official_split: bool = False, suspicious_birads: int = 4, images_dir: str = "images"
) -> AdapterResult:
    """Read a VinDr-Mammo download.

    VinDr-Mammo has no biopsy pathology. Label: 1 when the breast's BI-RADS is at least
    ``suspicious_birads`` (4: BI-RADS 4-5, suspicious), recorded per image in ``label_source``
    (``birads>=4``). Patient: ``study_id`` (one four-view exam per woman in the release). Lesions:
    findings of category Mass (``mass``) or Suspicious Calcification (``calc``) with a box, in the
    DICOM's pixels; a lesion's ``pathology`` is ``malignant`` when its own ``finding_birads`` reaches
    ``suspicious_birads`` (again BI-RADS, not pathology: ``pathology_source`` says so). With
    ``official_split`` the published ``training``/``test`` split is kept (``train``/``test``).

    Raises:
        FileNotFoundError: no ``breast-level_annotations.csv`` in ``root`` or up to four folders down.
        DatasetTableError: a table cannot be read or lacks a needed column.
    """
    root = Path(root)
    breast_path = find_table(root, [BREAST_CSV])
    if breast_path is None:
        raise FileNotFoundError(f"{root}: {BREAST_CSV} not found here or up to four folders down")
    base = breast_path.parent
    required = BREAST_REQUIRED + (["split"] if official_split else [])
    table = read_table(breast_path, required=required, dtype=str, keep_default_na=False)
    finding_path = base / FINDING_CSV
    if not finding_path.is_file():
        raise FileNotFoundError(f"{base}: {FINDING_CSV} not found beside {BREAST_CSV}")
    findings = read_table(finding_path, required=FINDING_REQUIRED, dtype=str, keep_default_na=False)
    images, errors = _images(table, breast_path, base / images_dir, official_split, suspicious_birads)
    lesions = _lesions(findings, images, suspicious_birads)
    return AdapterResult.from_rows(images, lesions, errors, truth_rows=len(table))


def _images(
    table: pd.DataFrame, csv_path: Path, images_root: Path, official_split: bool, cut: int
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    rows = []
    for r in table.to_dict("records"):
        study, image = r["study_id"].strip(), r["image_id"].strip()
        where = f"{csv_path.name}: image {image}"
        score = birads_score(r["breast_birads"])
        side = r["laterality"].strip().upper()
        if score != score or score < 1:  # NaN, or BI-RADS 0 (never used in this release)
            errors.append({"file": where, "reason": f"unknown breast_birads {r['breast_birads']!r}; skipped"})
            continue
        if side not in ("L", "R"):
            errors.append({"file": where, "reason": f"unknown laterality {r['laterality']!r}; skipped"})
            continue
        path = images_root / study / f"{image}.dicom"
        if not path.is_file():
            errors.append({"file": str(path), "reason": f"listed in {csv_path.name} but not found; skipped"})
            continue
        split = SPLITS.get(r.get("split", "").strip().lower(), "")
        rows.append(
            {
                "image_id": image,
                "image": str(path),
                "patient_id": study,
                "laterality": side,
                "view": r["view_position"].strip().upper(),
                "label": int(score >= cut),
                "dataset": "vindr",
                "split": split if official_split else "",
                "label_source": f"birads>={cut}",
                "birads": int(score),
                "breast_density": r.get("breast_density", "").replace("DENSITY", "").strip(),
                "official_split": split,
                "height": number(r.get("height")),
                "width": number(r.get("width")),
            }
        )
    return pd.DataFrame(rows), errors


def _lesions(findings: pd.DataFrame, images: pd.DataFrame, cut: int) -> list[dict]:
    if images.empty:
        return []
    by_id = images.set_index("image_id")
    lesions = []
    for r in findings.to_dict("records"):
        image = r["image_id"].strip()
        if image not in by_id.index:
            continue
        kinds = [LESION_TYPES[c.lower()] for c in categories(r["finding_categories"]) if c.lower() in LESION_TYPES]
        box = [number(r[k]) for k in ("ymin", "xmin", "ymax", "xmax")]
        if not kinds or any(v != v for v in box):
            continue
        img = by_id.loc[image]
        h, w = img["height"], img["width"]
        clipped = [min(max(v, 0.0), lim) if lim == lim else max(v, 0.0) for v, lim in zip(box, (h, w, h, w))]
        score = birads_score(r["finding_birads"])
        lesions.append(
            {
                "image_id": image,
                "image": img["image"],
                "lesion_type": kinds[0],
                "pathology": "malignant" if score == score and score >= cut else "benign",
                **box_geometry(row0=clipped[0], col0=clipped[1], row1=clipped[2], col1=clipped[3]),
                "mask": "",
                "pathology_source": f"finding_birads>={cut}",
                "finding_birads": int(score) if score == score else "",
                "finding_categories": "; ".join(categories(r["finding_categories"])),
                "box_clipped": clipped != box,
            }
        )
    return lesions

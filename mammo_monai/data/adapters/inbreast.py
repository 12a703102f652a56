"""INbreast: ``<id>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm``, ``INbreast.csv`` (Bi-Rads) and XML ROIs."""

from __future__ import annotations

import os
import plistlib
import re
from pathlib import Path

import numpy as np

from mammo_monai.data.adapters.base import AdapterResult, read_table, walk_files
from mammo_monai.data.adapters.geometry import outline_geometry

_NAME = re.compile(r"^(\d+)_([0-9a-f]+)_MG_([LR])_([A-Z]+)_ANON$", re.I)
_POINT = re.compile(r"\(\s*([-\d.]+)\s*,\s*([-\d.]+)")


def birads_number(value: object) -> float:
    """'4a' -> 4, '6' -> 6, '' -> nan."""
    m = re.match(r"\s*(\d)", str(value))
    return float(m.group(1)) if m else float("nan")


def read_xml_rois(path: Path) -> list[dict]:
    """ROIs of one INbreast XML (an Apple plist): type and (row, col) points, rows from the top."""
    with open(path, "rb") as fh:
        doc = plistlib.load(fh)
    rois = []
    for image in doc.get("Images", []):
        for roi in image.get("ROIs", []):
            pts = [
                (float(y), float(x))
                for x, y in (_POINT.match(p).groups() for p in roi.get("Point_px", []) if _POINT.match(p))
            ]
            if pts:
                rois.append({"name": str(roi.get("Name", "")), "points": np.array(pts)})
    return rois


def _lesions(xml: Path | None, file_id: str, dcm: Path, label: int, errors: list[dict[str, str]]) -> list[dict]:
    """The mass and calcification ROIs of image ``file_id`` (from its ``xml``, when it has one) as lesion
    rows with the image's pathology; an unreadable XML is reported and gives none."""
    try:
        rois = read_xml_rois(xml) if xml is not None else []
    except Exception as err:  # plistlib raises InvalidFileException, ExpatError or ValueError
        errors.append(
            {
                "file": str(xml),
                "reason": f"ROI file cannot be read ({type(err).__name__}: {err}); image kept without lesions",
            }
        )
        return []
    lesions = []
    for roi in rois:
        kind = {"mass": "mass", "calcification": "calc", "cluster": "calc"}.get(roi["name"].lower())
        if kind is not None:
            lesions.append(
                {
                    "image_id": file_id,
                    "image": str(dcm),
                    "lesion_type": kind,
                    "pathology": "malignant" if label else "benign",
                    **outline_geometry(rows=roi["points"][:, 0], cols=roi["points"][:, 1]),
                    "mask": "",
                }
            )
    return lesions


def load_inbreast(root: str | os.PathLike, birads_cut: int = 4) -> AdapterResult:
    """Read INbreast. Label: 1 when Bi-Rads >= ``birads_cut`` (4: 4a/4b/4c, 5, 6).

    Patient: the hash in the file name (INbreast's study key). Lesions from ``AllXML/<id>.xml``:
    Mass -> mass, Calcification/Cluster -> calc, others skipped; pathology follows the image's
    Bi-Rads (INbreast gives no per-lesion pathology); centre = mean of the outline points, radius = the
    farthest point (at least 3 px for single-point calcifications), bounding box in the box columns
    (:mod:`~mammo_monai.data.adapters.geometry`). A broken XML keeps its image (label from Bi-Rads)
    without lesions, reported.

    Raises:
        FileNotFoundError: no ``INbreast.csv`` in ``root`` or one folder down.
        DatasetTableError: ``INbreast.csv`` cannot be read or lacks ``File Name`` or ``Bi-Rads``.
    """
    root = Path(root)
    table_path = next((p for p in (root / "INbreast.csv", *root.glob("*/INbreast.csv")) if p.is_file()), None)
    if table_path is None:
        raise FileNotFoundError(f"{root}: INbreast.csv not found here or one folder down")
    table = read_table(table_path, required=["File Name", "Bi-Rads"], sep=";", dtype=str, keep_default_na=False)
    table = table[table["File Name"].str.strip() != ""]
    birads = dict(zip(table["File Name"].str.strip(), table["Bi-Rads"].map(birads_number)))
    images, lesions, errors = [], [], []
    files = walk_files(root, errors, keep=lambda n: n.lower().endswith((".xml", ".dcm")))
    xmls = {p.stem: p for p in files if p.suffix.lower() == ".xml"}
    for dcm in (p for p in files if p.suffix.lower() == ".dcm"):
        m = _NAME.match(dcm.stem)
        if not m:
            errors.append(
                {"file": str(dcm), "reason": "name does not follow <id>_<hash>_MG_<L|R>_<view>_ANON.dcm; skipped"}
            )
            continue
        file_id, key, side, view = m.groups()
        score = birads.get(file_id, float("nan"))
        if np.isnan(score):
            errors.append({"file": str(dcm), "reason": f"no Bi-Rads for file {file_id} in {table_path.name}; skipped"})
            continue
        label = int(score >= birads_cut)
        images.append(
            {
                "image_id": file_id,
                "image": str(dcm),
                "patient_id": key,
                "laterality": side.upper(),
                "view": view.upper(),
                "label": label,
                "dataset": "inbreast",
                "split": "",
                "birads": score,
            }
        )
        lesions += _lesions(xmls.get(file_id), file_id, dcm, label, errors)
    return AdapterResult.from_rows(images, lesions, errors, truth_rows=len(table))

"""EMBED, the Emory Breast Imaging Dataset, AWS Open Data release (for users granted access).

Files read (the release's data descriptor, github.com/Emory-HITI/EMBED_Open_Data README and sample
notebooks): ``tables/EMBED_OpenData_clinical.csv`` (one row per finding: ``empi_anon`` patient,
``acc_anon`` exam, ``side`` L/R/B or empty, ``asses`` BI-RADS letter A/N/B/P/S/M/K,
``path_severity`` 0 invasive cancer, 1 non-invasive cancer, 2 high-risk, 3 borderline, 4 benign,
5 negative, 6 non-breast cancer, empty when never biopsied; ``massshape``, ``calcfind`` descriptors)
and ``tables/EMBED_OpenData_metadata.csv`` (one row per file: ``empi_anon``, ``acc_anon``,
``anon_dicom_path``, ``ImageLateralityFinal``, ``ViewPosition``, ``FinalImageType`` 2D/cview,
``spot_mag``, ``num_roi``, ``ROI_coords`` such as ``((ymin, xmin, ymax, xmax), ...)`` or ``()``,
``match_level``); the ``_reduced`` tables are taken when the full ones are absent. Files lie at
``images/cohort_<n>/<empi_anon>/<study>/<series>/<sop>.dcm``; ``anon_dicom_path`` is read from its
``cohort_<n>/`` component on, since its prefix is the site's own mount point.

Findings are joined to images as the descriptor says: same exam, and the finding's side equal to the
image's laterality, or ``B``, or empty (all images of the exam).

Not verified without the real files: that ``ROI_coords`` are in the DICOM's pixels in this release
(a later release has ``DCM_ROI_coords`` beside ``PNG_ROI_coords``, flipped for the PNGs; the DCM
column is preferred when present), the match-level column's name (``match_level`` or
``ROI_match_level``), whether a ROI's ``ymax, xmax`` is its last pixel (read so: the manifest's
half-open box ends one past it, at worst one pixel too large), and the spelling of the C-view image type (``cview`` in the notebooks,
``C-view`` in the descriptor; both accepted).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult
from mammo_monai.data.adapters.geometry import pixel_box_geometry
from mammo_monai.data.adapters.tables import find_table, number, read_sheet

CLINICAL = ["EMBED_OpenData_clinical.csv", "EMBED_OpenData_clinical_reduced.csv"]
METADATA = ["EMBED_OpenData_metadata.csv", "EMBED_OpenData_metadata_reduced.csv"]
CLINICAL_REQUIRED = ["empi_anon", "acc_anon", "side", "asses", "path_severity"]
METADATA_REQUIRED = [
    "empi_anon",
    "acc_anon",
    "anon_dicom_path",
    "ImageLateralityFinal",
    "ViewPosition",
    "FinalImageType",
]
IMAGE_TYPES = {"2d": "2D", "cview": "C-view", "c-view": "C-view"}
#: path_severity: 0-1 malignant; 2-6 biopsied and not breast cancer (high-risk, borderline, benign,
#: negative, non-breast cancer) count as benign
MALIGNANT, BENIGN = {0, 1}, {2, 3, 4, 5, 6}
_ROI = re.compile(
    r"\(\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*\)"
)


def parse_rois(text: str) -> list[tuple[float, float, float, float]]:
    """``'((1365, 272, 1610, 508), (1, 2, 3, 4))'`` -> [(ymin, xmin, ymax, xmax), ...]; ``'()'`` -> []."""
    return [tuple(float(v) for v in m) for m in _ROI.findall(str(text))]


def _severity(table: pd.DataFrame, name: str, errors: list[dict[str, str]]) -> pd.DataFrame:
    """``severity`` (float, NaN when never biopsied); rows with another value reported and dropped."""
    sev = table["path_severity"].map(number)
    bad = table["path_severity"].str.strip().ne("") & ~sev.isin(MALIGNANT | BENIGN)
    for i, value in zip(table.index[bad], table.loc[bad, "path_severity"]):
        errors.append({"file": f"{name}: row {i + 2}", "reason": f"unknown path_severity {value!r}; finding skipped"})
    return table[~bad].assign(severity=sev[~bad])


def _label(findings: pd.DataFrame, negative: set[str]) -> tuple[int, str] | None:
    """(label, label_source) of an image from its matched findings; None when it cannot be known."""
    sev = findings["severity"].dropna()
    if sev.isin(MALIGNANT).any():
        return 1, "pathology"
    if len(sev):
        return 0, "pathology"
    if len(findings) and findings["asses"].str.strip().str.upper().isin(negative).all():
        return 0, "birads_negative"
    return None


def _resolve(root: Path, anon_path: str) -> Path:
    """The file of an ``anon_dicom_path`` below ``root`` (``images/cohort_<n>/...`` or ``cohort_<n>/...``)."""
    parts = Path(anon_path.replace("\\", "/")).parts
    tail = next((Path(*parts[i:]) for i, p in enumerate(parts) if p.startswith("cohort_")), Path(*parts[-5:]))
    for base in (root / "images", root):
        if (base / tail).is_file():
            return base / tail
    return root / "images" / tail


def load_embed(
    root: str | os.PathLike,
    image_types: tuple[str, ...] = ("2D",),
    include_spot_mag: bool = False,
    roi_match_levels: tuple[int, ...] = (1, 2),
    negative_birads: tuple[str, ...] = ("N", "B"),
    official_split: bool = False,
) -> AdapterResult:
    """Read the EMBED open-data tables and the DICOMs they list.

    Label rule (``label_source``): 1 when a matched finding's ``path_severity`` is 0 or 1 (invasive or
    in-situ cancer, ``pathology``); 0 when findings were biopsied with severity 2-6 only
    (``pathology``); 0 when nothing was biopsied and every matched finding's BI-RADS is in
    ``negative_birads`` (N negative, B benign: ``birads_negative``); otherwise (BI-RADS 0/3/4/5/6
    without a pathology result) the image is left out, counted in one problem row. Patient:
    ``empi_anon``; ``exam``: ``acc_anon``. Images of ``image_types`` only (2D; add "C-view"), spot
    compression / magnification views (``spot_mag`` 1) only with ``include_spot_mag``. Lesions: the
    image's ROIs whose match level is in ``roi_match_levels``, as boxes, with the image's pathology and
    ``lesion_type`` ``calc`` when its findings describe calcifications and no mass, else ``mass``. No
    official split (``official_split`` is accepted and ignored).

    Raises:
        FileNotFoundError: a table is not in ``root``, ``root/tables`` or further down.
        DatasetTableError: a table cannot be read or lacks a needed column.
    """
    root = Path(root)
    errors: list[dict[str, str]] = []
    clinical, meta, paths = _read_tables(root, errors)
    wanted = {IMAGE_TYPES.get(t.lower(), t) for t in image_types}
    meta = meta[meta["FinalImageType"].str.strip().str.lower().map(IMAGE_TYPES).isin(wanted)]
    if not include_spot_mag and "spot_mag" in meta.columns:
        meta = meta[meta["spot_mag"].map(number).fillna(0) != 1]
    by_exam = {k: g for k, g in clinical.groupby(clinical["acc_anon"].str.strip())}
    negative = {b.upper() for b in negative_birads}
    rows, lesions, unlabelled = [], [], 0
    for r in meta.to_dict("records"):
        side = r["ImageLateralityFinal"].strip().upper()
        exam = by_exam.get(r["acc_anon"].strip())
        found = pd.DataFrame() if exam is None else exam[exam["side"].str.strip().str.upper().isin([side, "B", ""])]
        label = _label(found, negative) if not found.empty else None
        if label is None:
            unlabelled += 1
            continue
        path = _resolve(root, r["anon_dicom_path"])
        if not path.is_file():
            errors.append({"file": str(path), "reason": f"listed in {paths[1].name} but not found; skipped"})
            continue
        rows.append(_image_row(r, path, side, label, found))
        lesions += _roi_lesions(r, rows[-1], found, roi_match_levels)
    if unlabelled:
        errors.append(
            {
                "file": str(paths[0]),
                "reason": f"{unlabelled} image(s) without a pathology result and with a BI-RADS outside "
                f"{sorted(negative)} (or no finding row): left out, their label is unknown",
            }
        )
    return AdapterResult.from_rows(rows, lesions, errors, truth_rows=len(clinical))


def _read_tables(root: Path, errors: list[dict[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """The clinical table (with ``severity``) and the metadata table, and their paths."""
    paths = [find_table(root, names) for names in (CLINICAL, METADATA)]
    for path, names in zip(paths, (CLINICAL, METADATA)):
        if path is None:
            raise FileNotFoundError(f"{root}: {names[0]} not found here, in tables/ or below")
    clinical = _severity(read_sheet(paths[0], CLINICAL_REQUIRED), paths[0].name, errors)
    return clinical, read_sheet(paths[1], METADATA_REQUIRED), paths


def _image_row(r: dict, path: Path, side: str, label: tuple[int, str], found: pd.DataFrame) -> dict:
    return {
        "image_id": "embed_" + hashlib.sha1(r["anon_dicom_path"].encode()).hexdigest()[:16],
        "image": str(path),
        "patient_id": r["empi_anon"].strip(),
        "laterality": side,
        "view": r["ViewPosition"].strip().upper(),
        "label": label[0],
        "dataset": "embed",
        "split": "",
        "label_source": label[1],
        "exam": r["acc_anon"].strip(),
        "image_type": IMAGE_TYPES[r["FinalImageType"].strip().lower()],
        "path_severity": found["severity"].min(),
    }


def _roi_lesions(r: dict, image: dict, found: pd.DataFrame, match_levels: tuple[int, ...]) -> list[dict]:
    """The image's ROIs of ``match_levels`` as box lesions (``DCM_ROI_coords`` preferred when present)."""
    rois = parse_rois(r.get("DCM_ROI_coords", r.get("ROI_coords", "")))
    level_text = r.get("match_level", r.get("ROI_match_level", ""))
    levels = [int(v) for v in re.findall(r"\d", level_text)]
    calc = found.get("calcfind", pd.Series(dtype=str)).str.strip().ne("").any()
    mass = found.get("massshape", pd.Series(dtype=str)).str.strip().ne("").any()
    out = []
    for k, roi in enumerate(rois):
        level = levels[k] if k < len(levels) else ""
        if level != "" and level not in match_levels:
            continue
        out.append(
            {
                "image_id": image["image_id"],
                "image": image["image"],
                "lesion_type": "calc" if calc and not mass else "mass",
                "pathology": "malignant" if image["label"] else "benign",
                **pixel_box_geometry(row0=roi[0], col0=roi[1], row1=roi[2], col1=roi[3]),
                "mask": "",
                "match_level": level,
            }
        )
    return out

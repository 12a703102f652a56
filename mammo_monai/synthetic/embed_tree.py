"""An EMBED-like miniature in the AWS Open Data layout.

``tables/EMBED_OpenData_clinical.csv`` (one row per finding), ``tables/EMBED_OpenData_metadata.csv``
(one row per file) and ``images/cohort_1/<empi_anon>/<study>/<series>/<sop>.dcm``. Quirks written:
``anon_dicom_path`` under the site's own mount point (``/mnt/NAS2/mammo/anon_dicom/cohort_1/...``),
``side`` empty for a negative exam and ``B`` for a bilateral finding, a BI-RADS 0 finding without
pathology (its breast's label is unknown), ``ROI_coords`` as ``((ymin, xmin, ymax, xmax),)`` or
``()``, two ROIs with match levels ``(1, 2)``, C-view (``cview``) and spot-magnification files beside
the 2D ones. Exams cycle through four kinds (see :func:`make_embed_tree`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.uid import generate_uid

from mammo_monai.io.atomic import write_csv
from mammo_monai.synthetic.dicom_writer import build_dataset, save_dataset
from mammo_monai.synthetic.lesion_views import render_view, to_uint

CLINICAL_COLUMNS = [
    "empi_anon",
    "acc_anon",
    "desc",
    "side",
    "asses",
    "numfind",
    "massshape",
    "calcfind",
    "path_severity",
    "tissueden",
]
METADATA_COLUMNS = [
    "empi_anon",
    "acc_anon",
    "anon_dicom_path",
    "FinalImageType",
    "ImageLateralityFinal",
    "ViewPosition",
    "spot_mag",
    "num_roi",
    "ROI_coords",
    "match_level",
]
SITE_PREFIX = "/mnt/NAS2/mammo/anon_dicom"
#: exam kinds: (description, {side: (asses, path_severity or None, lesion kind or None)}, sides imaged)
EXAMS = [
    ("MG Screening Bilateral", {"": ("N", None, None)}, ("L", "R")),
    ("MG Screening Bilateral", {"L": ("A", None, "mass"), "R": ("N", None, None)}, ("L", "R")),
    ("MG Diagnostic Left", {"L": ("S", 0, "mass")}, ("L",)),
    ("MG Diagnostic Bilateral", {"B": ("S", 4, "calc")}, ("L", "R")),
]


def _nested(items: list) -> str:
    """Python's tuple text, as the release writes it: ``()``, ``((1, 2, 3, 4),)``, ``((..), (..))``."""
    return str(tuple(tuple(int(v) for v in i) if isinstance(i, tuple) else int(i) for i in items))


def _label(findings: dict, side: str) -> tuple[int | None, str]:
    matched = [v for k, v in findings.items() if k in (side, "B", "")]
    sev = [v[1] for v in matched if v[1] is not None]
    if sev:
        return int(min(sev) <= 1), "pathology"
    if matched and all(v[0] in ("N", "B") for v in matched):
        return 0, "birads_negative"
    return None, ""


def _clinical_rows(empi: str, acc: str, desc: str, findings: dict, rng: np.random.Generator) -> list[dict]:
    """One clinical row per finding of an exam, numbered from 1."""
    return [
        {
            "empi_anon": empi,
            "acc_anon": acc,
            "desc": desc,
            "side": side,
            "asses": asses,
            "numfind": n,
            "massshape": "IR" if kind == "mass" else "",
            "calcfind": "P" if kind == "calc" else "",
            "path_severity": "" if sev is None else sev,
            "tissueden": int(rng.integers(1, 5)),
        }
        for n, (side, (asses, sev, kind)) in enumerate(findings.items(), start=1)
    ]


def _write_dicom(path: Path, img: np.ndarray, side: str, view: str, empi: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = build_dataset(to_uint(img, 12), laterality=side, laterality_tag="ImageLaterality", patient_id=empi)
    ds.ViewPosition = view
    ds.BitsStored, ds.HighBit = 12, 11
    save_dataset(ds, path)


def _write_view(
    root: Path, rng: np.random.Generator, size: tuple[int, int], exam: tuple, spec: tuple, two_rois: bool
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Write one image of an exam; return its metadata row, its truth row and its lesions' truth.

    ``exam``: (empi, acc, study UID, series UID, findings); ``spec``: (side, view, image type, spot_mag);
    ``two_rois``: draw two lesions (match levels 1 and 2) instead of one."""
    empi, acc, study, series, findings = exam
    side, view, image_type, spot = spec
    kind = next((f[2] for k, f in findings.items() if k in (side, "B") and f[2]), None)
    img, drawn = render_view(rng, size, view, side, [(kind, True)] * (2 if two_rois else 1) if kind else [])
    name = f"{generate_uid(entropy_srcs=[acc, side, view, image_type, str(spot)])}.dcm"
    rel = Path("cohort_1") / empi / study / series / name
    path = root / "images" / rel
    _write_dicom(path, img, side, view, empi)
    boxes = [d.box for d in drawn]
    levels = [1, 2][: len(boxes)]
    metadata = {
        "empi_anon": empi,
        "acc_anon": acc,
        "anon_dicom_path": f"{SITE_PREFIX}/{rel.as_posix()}",
        "FinalImageType": image_type,
        "ImageLateralityFinal": side,
        "ViewPosition": view,
        "spot_mag": spot,
        "num_roi": len(boxes),
        "ROI_coords": _nested(boxes),
        "match_level": _nested(levels),
    }
    label, source = _label(findings, side)
    image = {
        "anon_dicom_path": metadata["anon_dicom_path"],
        "path": str(path),
        "patient_id": empi,
        "exam": acc,
        "laterality": side,
        "view": view,
        "image_type": image_type,
        "spot_mag": spot,
        "label": label,
        "label_source": source,
    }
    lesions = [{"path": str(path), "box": b, "match_level": lv, "kind": kind} for b, lv in zip(boxes, levels)]
    return metadata, image, lesions


def make_embed_tree(
    root: str | os.PathLike, patients: int = 4, seed: int = 0, size: tuple[int, int] = (256, 200)
) -> dict[str, Any]:
    """Write ``patients`` EMBED-like patients under ``root``, patient ``i`` with exam kind ``i % 4``:
    a negative screening (``side`` empty, BI-RADS N), a screening recall of the left breast (BI-RADS A,
    no pathology: its images have no label) with a negative right breast, a left diagnostic exam with
    invasive cancer (``path_severity`` 0, two ROIs on the CC view, match levels 1 and 2) plus a C-view
    and a spot-magnification view, and a bilateral benign biopsy (``side`` B, severity 4).

    Returns:
        ``images`` (rows: anon_dicom_path, path, patient_id, exam, laterality, view, image_type,
        spot_mag, label (None: unknown), label_source) and ``lesions`` (rows: path, box = (row0,
        col0, row1, col1), match_level, kind).
    """
    rng = np.random.default_rng([seed, 2023])
    root = Path(root)
    clinical, metadata, images, lesions = [], [], [], []
    for i in range(patients):
        desc, findings, sides = EXAMS[i % len(EXAMS)]
        empi, acc = str(10000000 + 7919 * i), str(60000000 + 104729 * i)
        study, series = generate_uid(entropy_srcs=["embed", acc]), generate_uid(entropy_srcs=["embed", acc, "s"])
        clinical += _clinical_rows(empi, acc, desc, findings, rng)
        views = [(s, v, "2D", 0) for s in sides for v in ("CC", "MLO")]
        if i % len(EXAMS) == 2:
            views += [("L", "CC", "cview", 0), ("L", "CC", "2D", 1)]
        for side, view, image_type, spot in views:
            two = i % len(EXAMS) == 2 and view == "CC" and image_type == "2D" and not spot
            made = _write_view(
                root, rng, size, (empi, acc, study, series, findings), (side, view, image_type, spot), two
            )
            metadata.append(made[0])
            images.append(made[1])
            lesions += made[2]
    write_csv(pd.DataFrame(clinical, columns=CLINICAL_COLUMNS), root / "tables" / "EMBED_OpenData_clinical.csv")
    write_csv(pd.DataFrame(metadata, columns=METADATA_COLUMNS), root / "tables" / "EMBED_OpenData_metadata.csv")
    return {"images": images, "lesions": lesions}

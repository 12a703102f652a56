"""CMMD, the Chinese Mammography Database (TCIA, doi:10.7937/tcia.eqde-4b16): biopsy-confirmed benign or
malignant per breast, no lesion geometry.

Files read (TCIA collection page and the NBIA Data Retriever's layout): the clinical table
``CMMD_clinicaldata_revision.xlsx`` (or a ``.csv`` export of it: comma or semicolon), one row per
breast with ``ID1`` (``D1-0001``, ``D2-0001``), ``LeftRight`` (L/R), ``Age``, ``number``,
``abnormality`` (calcification/mass/both), ``classification`` (Benign/Malignant) and ``subtype``
(molecular subtype, D2 cases only); and the DICOM tree ``CMMD/<ID1>/<study folder>/<series
folder>/1-1.dcm ...`` below the download's ``manifest-<n>`` folder. Laterality and view are read from
each DICOM's header (``ImageLaterality``; ``ViewPosition`` or the View Code Sequence), since the file
names (``1-1.dcm``) carry neither.

Not verified without the real files: which header attribute carries the view in every file (the
reader tries ``ViewPosition``, then the View Code Sequence's code meaning); the patient folder is
taken as the path component that looks like ``D1-0001`` (the DICOM PatientID is not used).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pydicom

from mammo_monai.data.adapters.base import AdapterResult, safe_name, walk_files
from mammo_monai.data.adapters.tables import find_table, read_sheet
from mammo_monai.io.dicom import dicom_metadata

TABLE_NAMES = ["CMMD_clinicaldata_revision.xlsx", "CMMD_clinicaldata_revision.csv", "CMMD_clinicaldata*.xlsx"]
REQUIRED = ["ID1", "LeftRight", "classification"]
CLASSES = {"malignant": 1, "benign": 0}
_SUBJECT = re.compile(r"^D\d-\d{4}$", re.I)


def _read_clinical(path: Path) -> pd.DataFrame:
    """The clinical table; a CSV export may use ``;`` (as some users save it)."""
    if path.suffix.lower() == ".csv":
        head = path.read_text(errors="replace").split("\n", 1)[0]
        return read_sheet(path, REQUIRED, sep=";" if head.count(";") > head.count(",") else ",")
    return read_sheet(path, REQUIRED)


def _breasts(table: pd.DataFrame, name: str, errors: list[dict[str, str]]) -> dict[tuple[str, str], dict]:
    """(ID1, side) -> row of the clinical table; unknown classes and sides reported, duplicates merged
    (malignant wins, reported)."""
    breasts: dict[tuple[str, str], dict] = {}
    for i, r in enumerate(table.to_dict("records"), start=2):  # row 1 is the header
        pid, side, cls = r["ID1"].strip(), r["LeftRight"].strip().upper(), r["classification"].strip().lower()
        where = f"{name}: row {i} ({pid} {side})"
        if not pid:
            continue
        if cls not in CLASSES or side not in ("L", "R"):
            what = f"classification {r['classification']!r}" if cls not in CLASSES else f"LeftRight {side!r}"
            errors.append({"file": where, "reason": f"unknown {what}; breast skipped"})
            continue
        row = {**r, "label": CLASSES[cls]}
        if (pid, side) in breasts:
            errors.append({"file": where, "reason": "breast listed twice; malignant kept where they differ"})
            row["label"] = max(row["label"], breasts[(pid, side)]["label"])
        breasts[(pid, side)] = row
    return breasts


def load_cmmd(root: str | os.PathLike, official_split: bool = False) -> AdapterResult:
    """Read a CMMD download. Label: ``classification`` of the image's breast (biopsy: Malignant 1,
    Benign 0; ``label_source`` ``pathology``). Patient: ``ID1``. CMMD images mostly the affected
    breast; an image of a breast the table does not list is reported and skipped, as is a listed
    breast without images. No official split (``official_split`` is accepted and ignored); no lesions.

    Raises:
        FileNotFoundError: no clinical table in ``root`` or up to four folders down.
        DatasetTableError: the table cannot be read or lacks ``ID1``, ``LeftRight`` or ``classification``.
    """
    root = Path(root)
    table_path = find_table(root, TABLE_NAMES)
    if table_path is None:
        raise FileNotFoundError(f"{root}: CMMD_clinicaldata_revision.xlsx (or .csv) not found here or below")
    table = _read_clinical(table_path)
    errors: list[dict[str, str]] = []
    breasts = _breasts(table, table_path.name, errors)
    rows, seen = [], defaultdict(int)
    for path in walk_files(root, errors, keep=lambda n: n.lower().endswith(".dcm")):
        subject = next((p for p in reversed(path.relative_to(root).parts[:-1]) if _SUBJECT.match(p)), "")
        if not subject:
            errors.append({"file": str(path), "reason": "no D<n>-<nnnn> patient folder in its path; skipped"})
            continue
        try:
            meta = dicom_metadata(pydicom.dcmread(path, stop_before_pixels=True), path)
        except Exception as err:  # pydicom's InvalidDicomError, a truncated header: one line, keep going
            errors.append(
                {"file": str(path), "reason": f"cannot read the DICOM header ({type(err).__name__}); skipped"}
            )
            continue
        side, view = meta["laterality"], meta["view"]
        breast = breasts.get((subject.upper(), side))
        if breast is None:
            errors.append(
                {"file": str(path), "reason": f"{subject} {side or '?'}: no row in {table_path.name}; skipped"}
            )
            continue
        seen[(subject.upper(), side)] += 1
        rows.append(
            {
                "image_id": safe_name(f"{subject}_{side}_{view or 'NA'}_{path.stem}"),
                "image": str(path),
                "patient_id": subject.upper(),
                "laterality": side,
                "view": view,
                "label": breast["label"],
                "dataset": "cmmd",
                "split": "",
                "label_source": "pathology",
                "abnormality": breast.get("abnormality", "").strip(),
                "subtype": breast.get("subtype", "").strip(),
            }
        )
    for pid, side in sorted(set(breasts) - set(seen)):
        errors.append({"file": f"{table_path.name}: {pid} {side}", "reason": "listed but no image of it found"})
    return AdapterResult.from_rows(rows, [], errors, truth_rows=len(table))

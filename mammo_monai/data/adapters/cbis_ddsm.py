"""CBIS-DDSM: the four description CSVs matched to DICOMs in the old (UID) or the current TCIA layout.

The tables are read and merged to one row per physical film in :mod:`.cbis_tables`; this module
finds the files on disk.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pydicom

from mammo_monai.data.adapters.base import AdapterResult, walk_files
from mammo_monai.data.adapters.cbis_tables import (
    CSV_GLOB,
    LESION_TYPE,
    PATHOLOGY,
    find_csvs,
    merge_images,
    read_cbis_csv,
)

__all__ = ["CSV_GLOB", "LESION_TYPE", "PATHOLOGY", "index_dicoms", "load_cbis_ddsm", "pick_mask", "read_cbis_csv"]


def index_dicoms(root: Path, errors: list[dict[str, str]] | None = None) -> dict[str, list[Path]]:
    """Every ``.dcm`` below ``root`` by its case folder (the first folder below ``CBIS-DDSM`` or below
    ``root``, e.g. ``Mass-Training_P_00001_LEFT_CC`` or ``..._CC_1``), in one walk. Unreadable folders
    and symlink loops are appended to ``errors``."""
    index: dict[str, list[Path]] = defaultdict(list)
    for p in walk_files(root, errors if errors is not None else [], keep=lambda n: n.lower().endswith(".dcm")):
        parts = p.relative_to(root).parts
        if len(parts) < 2:
            continue
        case = parts[1] if parts[0] == "CBIS-DDSM" and len(parts) > 2 else parts[0]
        index[case].append(p)
    return index


def _resolve(csv_path: str, root: Path, index: dict[str, list[Path]]) -> list[Path]:
    """Files for a CSV path: the exact old-layout file if present, else all files of its case folder."""
    for base in (root, root / "CBIS-DDSM"):
        if (base / csv_path).is_file():
            return [base / csv_path]
    return sorted(index.get(csv_path.split("/")[0], []))


def pick_mask(files: list[Path]) -> Path | None:
    """The ROI mask of a mask/crop pair: the 8-bit file, else the larger image (crops are small)."""
    if len(files) == 1:
        return files[0]
    heads = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            heads.append((int(ds.get("BitsAllocated", 16)) == 8, int(ds.get("Rows", 0)) * int(ds.get("Columns", 0)), f))
        except Exception:
            continue
    return max(heads)[2] if heads else None


def _full_image(csv_paths: str, root: Path, index: dict[str, list[Path]]) -> tuple[str, list[str]]:
    """The file of one film: the first of its listed paths (mass folder first) that resolves to
    exactly one file; else ``""`` and what each candidate gave."""
    tried = []
    for path in csv_paths.split(";"):
        files = _resolve(path, root, index)
        if len(files) == 1:
            return str(files[0]), []
        tried.append(f"{len(files)} candidate files for {path.split('/')[0]}")
    return "", tried


def load_cbis_ddsm(root: str | os.PathLike, official_split: bool = False) -> AdapterResult:
    """Read a CBIS-DDSM download (or the output of ``mammo-monai synth``).

    One row per physical film, keyed by (patient, side, view): a film listed in both the mass and
    the calcification tables (under a ``Mass-...`` and a ``Calc-...`` folder) is one image with the
    lesions of both tables; ``image_id`` is ``P_00001_LEFT_CC``; ``case_folders`` lists the folders
    it came from (mass first; the pixels are read from the first one found on disk). Image label:
    1 if ANY abnormality of either table is MALIGNANT (BENIGN_WITHOUT_CALLBACK is benign). Patient:
    the CSV ``patient_id`` (the DICOM PatientID is per view). With ``official_split`` the Training /
    Test parts give ``train`` / ``test``, and a patient in the training part of one table and the
    test part of another goes to ``test`` (reported); otherwise ``split`` is left for
    :func:`assign_splits`.

    Raises:
        FileNotFoundError: no description CSV in ``root`` or one folder down.
        DatasetTableError: a CSV cannot be read or lacks a needed column.
    """
    root = Path(root)
    csvs = find_csvs(root)
    if not csvs:
        raise FileNotFoundError(f"{root}: no CBIS-DDSM description CSV ({CSV_GLOB}) here or one folder down")
    table = pd.concat([read_cbis_csv(p) for p in csvs], ignore_index=True)
    images, lesions, errors = merge_images(table, official_split=official_split)
    index = index_dicoms(root, errors)
    resolved = [_full_image(p, root, index) for p in images["csv_paths"]]
    images["image"] = [path for path, _ in resolved]
    for image_id, (path, tried) in zip(images["image_id"], resolved):
        if not path:
            errors.append({"file": image_id, "reason": f"full image not found ({'; '.join(tried)}); image excluded"})
    images = images[images["image"] != ""].drop(columns="csv_paths")
    lesions = lesions[lesions["image_id"].isin(images["image_id"])].copy()
    lesions["image"] = lesions["image_id"].map(images.set_index("image_id")["image"])
    masks = [pick_mask(_resolve(p, root, index)) for p in lesions["roi_path"]]
    lesions["mask"] = [str(m) if m else "" for m in masks]
    for csv, case, abn, m in zip(lesions["csv"], lesions["case_folder"], lesions["abnormality_id"], masks):
        if m is None:
            errors.append(
                {
                    "file": f"{csv}: {case} abnormality {abn}",
                    "reason": "ROI mask not found; abnormality kept without geometry",
                }
            )
    lesions = lesions.drop(columns=["roi_path", "csv"])
    return AdapterResult.from_rows(images, lesions, errors, truth_rows=len(table))

"""CBIS-DDSM: the four description CSVs matched to DICOMs in the old (UID) or the current TCIA layout."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pydicom

from mammo_monai.data.adapters.base import AdapterResult

CSV_GLOB = "*_case_description_*_set.csv"
PATHOLOGY = {"MALIGNANT": "malignant", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign"}
LESION_TYPE = {"mass": "mass", "calcification": "calc"}


def read_cbis_csv(path: str | os.PathLike) -> pd.DataFrame:
    """One description CSV with its quirks smoothed: ``breast density`` -> ``breast_density``, path
    fields stripped of the newline some carry inside their quotes, the source file recorded."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.columns = [c.strip().replace("breast density", "breast_density") for c in df.columns]
    for col in ("image file path", "cropped image file path", "ROI mask file path"):
        df[col] = df[col].str.strip()
    df["csv"] = Path(path).name
    return df


def index_dicoms(root: Path) -> dict[str, list[Path]]:
    """Every ``.dcm`` below ``root`` by its case folder (the first folder below ``CBIS-DDSM`` or below
    ``root``, e.g. ``Mass-Training_P_00001_LEFT_CC`` or ``..._CC_1``), in one walk."""
    index: dict[str, list[Path]] = defaultdict(list)
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith(".dcm"):
                p = Path(dirpath) / name
                parts = p.relative_to(root).parts
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


def load_cbis_ddsm(root: str | os.PathLike, official_split: bool = False) -> AdapterResult:
    """Read a CBIS-DDSM download (or the output of ``mammo-monai synth``).

    Image label: 1 if ANY abnormality of the image is MALIGNANT (BENIGN_WITHOUT_CALLBACK is benign).
    Patient: the CSV ``patient_id`` (the DICOM PatientID is per view). With ``official_split`` the
    Training / Test CSVs give ``train`` / ``test``; otherwise ``split`` is left for
    :func:`assign_splits`.
    """
    root = Path(root)
    csvs = sorted(root.glob(CSV_GLOB)) or sorted(root.glob(f"*/{CSV_GLOB}"))
    if not csvs:
        raise FileNotFoundError(f"{root}: no CBIS-DDSM description CSV ({CSV_GLOB}) here or one folder down")
    table = pd.concat([read_cbis_csv(p) for p in csvs], ignore_index=True)
    index = index_dicoms(root)
    images: dict[str, dict] = {}
    lesions, errors = [], []
    unlabelled: set[str] = set()
    for row in table.to_dict("records"):
        case = row["image file path"].split("/")[0]
        where = f"{row['csv']}: {case} abnormality {row['abnormality id']}"
        pathology = PATHOLOGY.get(row["pathology"].strip().upper())
        if pathology is None:  # the image label cannot be trusted either
            errors.append({"file": where, "reason": f"unknown pathology {row['pathology']!r}; image excluded"})
            unlabelled.add(case)
            continue
        if case not in images:
            files = _resolve(row["image file path"], root, index)
            if len(files) != 1:
                errors.append({"file": where, "reason": f"full image not found ({len(files)} candidate files for {case})"})
                images[case] = {}
                continue
            images[case] = {
                "image_id": case, "image": str(files[0]), "patient_id": row["patient_id"],
                "laterality": {"LEFT": "L", "RIGHT": "R"}.get(row["left or right breast"].strip().upper(), ""),
                "view": row["image view"].strip().upper(), "label": 0, "dataset": "cbis-ddsm",
                "split": ("test" if "Test" in case.split("_")[0] else "train") if official_split else "",
                "breast_density": row.get("breast_density", ""),
            }
        if not images[case]:
            continue
        mask = pick_mask(_resolve(row["ROI mask file path"], root, index))
        if mask is None:
            errors.append({"file": where, "reason": "ROI mask not found; abnormality kept without geometry"})
        lesions.append({
            "image_id": case, "image": images[case]["image"], "lesion_type": LESION_TYPE.get(row["abnormality type"], row["abnormality type"]),
            "pathology": pathology, "mask": str(mask) if mask else "", "abnormality_id": row["abnormality id"],
        })
        if pathology == "malignant":
            images[case]["label"] = 1
    keep = [r for case, r in images.items() if r and case not in unlabelled]
    return AdapterResult.from_rows(keep, [les for les in lesions if les["image_id"] not in unlabelled], errors)

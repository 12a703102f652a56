"""Plain folders: Shen et al.'s whole-image layout ``<split>/<neg|pos>/...``, or class folders alone
(``<neg|pos>/...``, split by ``prepare``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mammo_monai.data.adapters.base import AdapterResult, read_table, safe_name, walk_files
from mammo_monai.io.naming import parse_path
from mammo_monai.io.raster import RASTER_SUFFIXES
from mammo_monai.io.reader import DICOM_SUFFIXES

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
CLASS_NAMES = {"neg": 0, "pos": 1, "benign": 0, "malignant": 1, "0": 0, "1": 1}


def file_id(relative: Path) -> str:
    """A file-name-safe id from a path relative to the dataset root, suffix dropped:
    ``train/pos/a/b.png`` -> ``train__pos__a__b``."""
    return "__".join(safe_name(p) for p in relative.with_suffix("").parts)


def _subfolders(folder: Path, errors: list[dict[str, str]]) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError as err:
        errors.append({"file": str(folder), "reason": f"folder cannot be read ({err.strerror or err}); skipped"})
        return []


def read_patients_csv(path: str | os.PathLike, root: Path) -> dict[str, str]:
    """``file`` (path relative to ``root``, or absolute) -> ``patient_id`` from a mapping CSV.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        DatasetTableError: the CSV cannot be read or lacks ``file`` or ``patient_id``.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: patients CSV not found")
    table = read_table(path, required=["file", "patient_id"], dtype=str, keep_default_na=False)
    table = table[(table["file"].str.strip() != "") & (table["patient_id"].str.strip() != "")]

    def relative(f: str) -> str:
        p = Path(f.strip())
        if p.is_absolute():
            try:
                p = p.relative_to(root)
            except ValueError:
                return p.as_posix()
        return p.as_posix()

    return dict(zip(table["file"].map(relative), table["patient_id"].str.strip()))


def load_folder(root: str | os.PathLike, patients_csv: str | os.PathLike | None = None) -> AdapterResult:
    """Read ``root/<train|val|test>/<neg|pos>/<image>`` (any readable type, also in sub-folders of the
    class folders). The split is kept. ``image_id`` is the path below ``root`` without suffix
    (``train__pos__case7__a_L_CC``), so equal file names in different folders never collide; two
    files that would still share an id (``a.png`` and ``a.tif``) keep the first and report the rest.
    Without ``patients_csv`` each file is its own patient (``patient_id`` = ``image_id``);
    ``patients_csv`` (columns ``file``: path below ``root``, ``patient_id``) groups files by
    patient. Laterality and view come from the file and folder names when they carry them (else
    laterality is inferred from the tissue at caching).
    """
    root = Path(root)
    errors: list[dict[str, str]] = []
    patients = read_patients_csv(patients_csv, root) if patients_csv is not None else None
    images = []
    for split, class_dir in _class_dirs(root, errors):
        label = CLASS_NAMES.get(class_dir.name.lower())
        if label is None:
            errors.append(
                {"file": str(class_dir), "reason": f"folder name not a class ({sorted(CLASS_NAMES)}); skipped"}
            )
            continue
        found = _class_images(root, split, class_dir, label, errors)
        if not found:  # a class with no image: its split cannot train or validate a binary model
            errors.append({"file": str(class_dir), "reason": "class folder holds no image file"})
        images += found
    if not images:
        errors.append({"file": str(root), "reason": "no image found in <split>/<neg|pos>/ or <neg|pos>/ folders"})
        return AdapterResult.from_rows(images, [], errors)
    table = pd.DataFrame(images)
    first = table.drop_duplicates("image_id").set_index("image_id")["image"]
    dup = table["image_id"].duplicated()
    errors += [
        {"file": f, "reason": f"image id {i!r} already used by {first[i]}; skipped"}
        for f, i in zip(table.loc[dup, "image"], table.loc[dup, "image_id"])
    ]
    table = table[~dup].copy()
    if patients is not None:
        table = _with_patients(table, patients, Path(patients_csv).name, root, errors)
    return AdapterResult.from_rows(table.drop(columns="file"), [], errors)


def _class_dirs(root: Path, errors: list[dict[str, str]]) -> list[tuple[str, Path]]:
    """(split, class folder) pairs below ``root``: ``<split>/<class>``, or ``<class>`` alone with split ""
    (``prepare`` assigns patient-grouped splits); a folder that is no split is reported."""
    top = _subfolders(root, errors)
    if top and not any(d.name.lower() in SPLIT_NAMES for d in top) and any(d.name.lower() in CLASS_NAMES for d in top):
        return [("", d) for d in top]
    class_dirs = []
    for split_dir in top:
        split = SPLIT_NAMES.get(split_dir.name.lower())
        if split is None:
            errors.append(
                {"file": str(split_dir), "reason": f"folder name not a split ({sorted(SPLIT_NAMES)}); skipped"}
            )
            continue
        class_dirs += [(split, d) for d in _subfolders(split_dir, errors)]
    return class_dirs


def _class_images(root: Path, split: str, class_dir: Path, label: int, errors: list[dict[str, str]]) -> list[dict]:
    """The image rows of one class folder (any readable type, sub-folders too); each file its own patient."""
    suffixes = tuple(DICOM_SUFFIXES) + tuple(RASTER_SUFFIXES)
    images = []
    for f in walk_files(class_dir, errors, keep=lambda n: n.lower().endswith(suffixes)):
        rel = f.relative_to(root)
        side, view = parse_path(f, levels=len(rel.parts) - (3 if split else 2))
        images.append(
            {
                "image_id": file_id(rel),
                "image": str(f),
                "patient_id": file_id(rel),
                "laterality": side,
                "view": view,
                "label": label,
                "dataset": "folder",
                "split": split,
                "file": rel.as_posix(),
            }
        )
    return images


def _with_patients(
    table: pd.DataFrame, patients: dict[str, str], csv_name: str, root: Path, errors: list[dict[str, str]]
) -> pd.DataFrame:
    """``table`` with ``patient_id`` from the patients CSV; files it does not list (their own patient),
    rows it lists that are not found, and patients in several split folders are reported."""
    mapped = table["file"].map(patients)
    errors += [
        {"file": f, "reason": "not in the patients CSV; its own patient"} for f in table.loc[mapped.isna(), "image"]
    ]
    errors += [
        {"file": f, "reason": f"listed in {csv_name} but not found under {root}"}
        for f in sorted(set(patients) - set(table["file"]))
    ]
    table["patient_id"] = mapped.fillna(table["patient_id"])
    splits = table.groupby("patient_id")["split"].agg(lambda s: sorted(set(s)))
    errors += [
        {"file": pid, "reason": f"patient {pid} has images in the {' and '.join(s)} folders"}
        for pid, s in splits.items()
        if len(s) > 1
    ]
    return table

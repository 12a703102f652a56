"""The manifest: one table of images and one of lesions, the contract between data and training.

images.csv: image, patient_id, laterality (L/R), view, label (0/1: any malignant abnormality),
dataset, split (train/val/test), plus image_id (a unique file-name-safe name) and optional
columns (exam, source, breast_mask, flipped, ...).
lesions.csv: image_id, image, lesion_type (mass/calc), pathology (malignant/benign), and geometry in
the ORIGINAL image's pixels, rows from the top: center_row, center_col, radius and/or mask; optional
box columns (BOX_COLUMNS) where the dataset gave a box or an outline.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mammo_monai.io.atomic import write_csv

IMAGE_COLUMNS = ["image_id", "image", "patient_id", "laterality", "view", "label", "dataset", "split"]
LESION_COLUMNS = ["image_id", "image", "lesion_type", "pathology", "center_row", "center_col", "radius", "mask"]
#: optional lesion columns, written after LESION_COLUMNS: the box a dataset gave (or an outline's bounding
#: box) in the ORIGINAL image's pixels, rows from the top, HALF-OPEN like numpy slicing: the box is
#: ``image[box_row0:box_row1, box_col0:box_col1]`` (``box_row1 = top + height``, one past the last row).
#: One layout for every adapter (mammo_monai.data.adapters.geometry converts each dataset's form), empty
#: for a lesion without a box.
BOX_COLUMNS = ["box_row0", "box_col0", "box_row1", "box_col1"]
#: The smallest lesion radius (px): written by every adapter (mammo_monai.data.adapters.geometry) and
#: assumed by the lesion cache (data/cache.py) for a lesion without one. A single-point mark (INbreast's
#: calcification points, a VIA ``point`` in CDD-CESM) or a box clipped to a line would otherwise give a
#: radius of 0 or 1: a disk that no patch-overlap test accepts.
MIN_RADIUS = 3.0
LATERALITIES = {"L", "R"}
SPLITS = {"train", "val", "test"}
LESION_TYPES = {"mass", "calc"}
PATHOLOGIES = {"malignant", "benign"}


class ManifestError(ValueError):
    """Everything wrong with a manifest, one problem per line."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        super().__init__(f"{where}: {len(problems)} problem(s) in the manifest:\n  " + "\n  ".join(shown))


def patients_in_several_splits(table: pd.DataFrame) -> list[str]:
    """One line per patient whose images (or patches) lie in more than one split: a leak from training
    into validation or test that would inflate every figure."""
    if not {"patient_id", "split"} <= set(table.columns) or table.empty:
        return []
    splits = table.groupby(table["patient_id"].astype(str))["split"].agg(lambda s: sorted(set(s)))
    return [f"patient {pid!r} is in several splits {v}" for pid, v in splits.items() if len(v) > 1]


def one_class_splits(table: pd.DataFrame, splits: tuple[str, ...] = ("train", "val")) -> list[str]:
    """One line per split of ``splits`` whose rows of ``table`` hold fewer than two labels, e.g.
    ``split 'val' has only label 0 (3 rows)``: a binary model cannot learn from such a training split,
    and its validation AUC is undefined (NaN)."""
    if not {"label", "split"} <= set(table.columns):
        return []
    problems = []
    for split in splits:
        labels = sorted({str(v) for v in table.loc[table["split"] == split, "label"]})
        n = int((table["split"] == split).sum())
        if not labels:
            problems.append(f"split {split!r} has no rows")
        elif len(labels) == 1:
            problems.append(f"split {split!r} has only label {labels[0]} ({n} rows)")
    return problems


def check_one_split_per_patient(table: pd.DataFrame, where: str) -> None:
    """Raise :class:`ManifestError` when any patient lies in more than one split."""
    problems = patients_in_several_splits(table)
    if problems:
        raise ManifestError(where, problems + ["re-run `mammo-monai prepare` to assign the splits again"])


def validate(
    images: pd.DataFrame, lesions: pd.DataFrame | None = None, where: str = "manifest", check_files: bool = True
) -> None:
    """Check both tables against the contract; raise one :class:`ManifestError` listing every problem."""
    problems: list[str] = []
    missing = [c for c in IMAGE_COLUMNS if c not in images.columns]
    if missing:
        problems.append(f"images: missing column(s) {missing}")
    if lesions is not None:
        lmissing = [c for c in LESION_COLUMNS if c not in lesions.columns]
        if lmissing:
            problems.append(f"lesions: missing column(s) {lmissing}")
    if problems:
        raise ManifestError(where, problems)
    if images.empty:
        problems.append("images: no rows")
    for col, allowed in (("laterality", LATERALITIES), ("split", SPLITS)):
        bad = images.loc[~images[col].isin(allowed), ["image_id", col]]
        problems += [
            f"images: {r.image_id}: {col} {getattr(r, col)!r} not in {sorted(allowed)}" for r in bad.itertuples()
        ]
    bad_label = images[~images["label"].astype(str).isin(["0", "1"])]
    problems += [f"images: {r.image_id}: label {r.label!r} is not 0 or 1" for r in bad_label.itertuples()]
    dup = images["image_id"][images["image_id"].duplicated()]
    problems += [f"images: image_id {v!r} appears more than once" for v in dup.unique()]
    problems += patients_in_several_splits(images)
    if check_files:
        problems += [
            f"images: {i}: file not found: {p}"
            for i, p in zip(images["image_id"], images["image"])
            if not os.path.isfile(p)
        ]
    if lesions is not None and not lesions.empty:
        for col, allowed in (("lesion_type", LESION_TYPES), ("pathology", PATHOLOGIES)):
            bad = lesions.loc[~lesions[col].isin(allowed)]
            problems += [
                f"lesions: {r.image_id}: {col} {getattr(r, col)!r} not in {sorted(allowed)}" for r in bad.itertuples()
            ]
        unknown = set(lesions["image_id"]) - set(images["image_id"])
        problems += [f"lesions: image_id {v!r} has no row in images" for v in sorted(unknown)]
        if check_files:
            has_mask = lesions["mask"].fillna("").astype(str) != ""
            problems += [
                f"lesions: {r.image_id}: mask not found: {r.mask}"
                for r in lesions[has_mask].itertuples()
                if not os.path.isfile(r.mask)
            ]
    if problems:
        raise ManifestError(where, problems)


def lesion_columns(present: Iterable[str]) -> list[str]:
    """The lesion table's column order: :data:`LESION_COLUMNS` (all of them), then :data:`BOX_COLUMNS` when
    any of them is ``present``, then the other ``present`` columns in their order."""
    present = list(present)
    first = LESION_COLUMNS + (BOX_COLUMNS if set(BOX_COLUMNS) & set(present) else [])
    return first + [c for c in present if c not in first]


def write_manifest(out_dir: str | os.PathLike, images: pd.DataFrame, lesions: pd.DataFrame) -> None:
    """Write ``images.csv`` and ``lesions.csv`` (contract columns first, then the box columns when any
    lesion has them) through temporary files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = images[IMAGE_COLUMNS + [c for c in images.columns if c not in IMAGE_COLUMNS]]
    lesions = lesions.reindex(columns=lesion_columns(lesions.columns))
    write_csv(images, out / "images.csv")
    write_csv(lesions, out / "lesions.csv")


def read_manifest(manifest_dir: str | os.PathLike, check_files: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load and validate a manifest folder (``images.csv`` + ``lesions.csv``)."""
    folder = Path(manifest_dir)
    if not (folder / "images.csv").is_file():
        raise ManifestError(str(folder), ["images.csv not found"])
    images = pd.read_csv(
        folder / "images.csv",
        dtype={"patient_id": str, "image_id": str, "view": str, "laterality": str},
        keep_default_na=False,
        na_values=[""],
    )
    images["laterality"] = images["laterality"].fillna("")
    lesions_path = folder / "lesions.csv"
    lesions = (
        pd.read_csv(lesions_path, dtype={"image_id": str, "mask": str})
        if lesions_path.is_file()
        else pd.DataFrame(columns=LESION_COLUMNS)
    )
    validate(images, lesions, where=str(folder), check_files=check_files)
    return images, lesions

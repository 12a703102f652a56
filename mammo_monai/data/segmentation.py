"""Data dicts for lesion segmentation: images with their cached lesion masks, a labelled fraction
chosen by patient, normals added per lesion image, and the rest as unlabelled images for
self-supervised stages.

An image is a *lesion image* when at least one of its lesions has a usable mask: a ``cached_mask``
(the lesion in the cached image's pixels, written by ``mammo-monai prepare``) that is not flagged
``outside_breast`` (a lesion centre off the breast is an error in the truth data; the cached image
is black there). A *normal* is an image with no lesion row at all. An image whose lesions all lack a
usable mask (a note instead of coordinates, a centre off the breast) is neither: its target would
call a real lesion background, so it is only ever returned unlabelled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.data.manifest import read_manifest
from mammo_monai.io.exam_key import table_breast_key


def _usable(lesions: pd.DataFrame) -> pd.Series:
    """True for lesion rows whose cached mask the segmentation target can use."""
    path = lesions["cached_mask"].fillna("").astype(str).str.strip()
    outside = (
        lesions["outside_breast"].astype(str).str.lower().isin(["true", "1"])
        if "outside_breast" in lesions.columns
        else pd.Series(False, index=lesions.index)
    )
    return (path != "") & (path.str.lower() != "nan") & ~outside


def _lesion_table(manifest_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest's two tables, refused in one line when the lesion table cannot serve segmentation."""
    lesions_csv = Path(manifest_dir) / "lesions.csv"
    if not lesions_csv.is_file():
        raise FileNotFoundError(
            f"{lesions_csv}: not found; segmentation needs the lesion table of `mammo-monai prepare`"
        )
    images, lesions = read_manifest(manifest_dir)
    if "cached_mask" not in lesions.columns:
        raise ValueError(
            f"{lesions_csv}: no 'cached_mask' column (lesion masks in the cached images' pixels); "
            "run `mammo-monai prepare` on this manifest"
        )
    return images, lesions


def _choose_patients(patient_of: pd.Series, fraction: float, rng: np.random.Generator) -> set[str]:
    """Whole patients, in a seeded random order, until at least ``fraction`` of the images are taken.

    The order depends only on the seed and the sorted patient ids, so a smaller fraction with the
    same seed keeps a subset of a larger one's patients.
    """
    if fraction <= 0 or patient_of.empty:
        return set()
    counts = patient_of.value_counts().sort_index()
    order = counts.index[rng.permutation(len(counts))]
    target, taken, chosen = fraction * len(patient_of), 0, set()
    for pid in order:
        if taken >= target:
            break
        chosen.add(pid)
        taken += int(counts[pid])
    return chosen


def segmentation_records(
    manifest_dir: str | os.PathLike,
    split: str,
    labelled_fraction: float = 1.0,
    seed: int = 0,
    normals: float | None = 1.0,
    unlabelled: bool = False,
) -> list[dict[str, Any]]:
    """MONAI data dicts of one split for lesion segmentation.

    Each dict is ``{"image": cached PNG, "masks": [cached lesion mask PNGs], "label": image label,
    "image_id", "patient_id", "exam", "labelled": bool}`` in the manifest's row order; ``exam`` is the
    manifest's column when it has one, else ``<patient_id>_<laterality>``.
    :class:`mammo_monai.transforms.LesionMaskd` turns ``masks`` into the (1, H, W) target.

    Args:
        manifest_dir: folder of ``images.csv`` and ``lesions.csv`` written by ``mammo-monai prepare``.
        split: "train", "val" or "test".
        labelled_fraction: the fraction (0..1) of the split's lesion images kept labelled, chosen
            by whole patients (all of a patient's images together, in a random order fixed by
            ``seed``) until at least that fraction of the lesion images is reached.
        seed: fixes the labelled patients and the normals.
        normals: images without lesions added per labelled lesion image (rounded; 1.0: as many as
            the lesion images, 0: none, None: all), drawn by ``seed`` among the patients that are
            not held out, i.e. from patients without lesion images or whose lesion images are kept.
        unlabelled: also return every other image of the split (held-out lesion images, normals
            not drawn, images whose lesions have no usable mask) with ``labelled: False`` and no
            masks, for the self-supervised stages; with ``labelled_fraction=1.0`` that is every
            image of the split.

    Returns:
        The data dicts.

    Raises:
        FileNotFoundError: no ``lesions.csv``, or a cached mask file is missing.
        ValueError: a lesion table without ``cached_mask``, an argument out of range, or an empty
            selection.
    """
    if not 0.0 <= float(labelled_fraction) <= 1.0:
        raise ValueError(f"labelled_fraction must lie in [0, 1], got {labelled_fraction}")
    if normals is not None and float(normals) < 0:
        raise ValueError(f"normals must be >= 0 or None (all), got {normals}")
    images, lesions, masks = _split_tables(manifest_dir, split)
    labelled, is_lesion, is_normal = _labelled(images, lesions, set(masks), float(labelled_fraction), seed, normals)
    if not labelled.any() and not unlabelled:
        raise ValueError(
            f"{manifest_dir}: empty selection in split {split!r}: {int(is_lesion.sum())} lesion image(s) with "
            f"a usable mask, {int(is_normal.sum())} normal(s), labelled_fraction={labelled_fraction}, normals={normals}"
        )
    return _records(images, masks, labelled, unlabelled)


def _split_tables(
    manifest_dir: str | os.PathLike, split: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[str]]]:
    """The split's images (index 0..n-1), their lesion rows and ``{image_id: usable cached mask paths}``.

    Raises:
        FileNotFoundError: no ``lesions.csv``, or a cached mask file is missing.
        ValueError: no ``cached_mask`` column, or no image in the split.
    """
    images, lesions = _lesion_table(manifest_dir)
    images = images[images["split"] == split].reset_index(drop=True)
    if images.empty:
        raise ValueError(f"{manifest_dir}: no image in split {split!r}")
    lesions = lesions[lesions["image_id"].isin(set(images["image_id"]))]
    usable = lesions[_usable(lesions)]
    masks = {k: list(g["cached_mask"].astype(str)) for k, g in usable.groupby("image_id", sort=False)}
    missing = [p for paths in masks.values() for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]}: cached lesion mask not found ({len(missing)} missing in split {split!r})"
        )
    return images, lesions, masks


def _labelled(
    images: pd.DataFrame,
    lesions: pd.DataFrame,
    with_masks: set[str],
    labelled_fraction: float,
    seed: int,
    normals: float | None,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(labelled, is_lesion, is_normal) per image: the lesion images of the patients chosen for
    ``labelled_fraction`` and the normals drawn for them (see :func:`segmentation_records`)."""
    patient = images["patient_id"].astype(str)
    is_lesion = images["image_id"].isin(with_masks)
    # a normal has no lesion row AND label 0: a positive image whose lesion was never drawn is not background
    is_normal = ~images["image_id"].isin(set(lesions["image_id"])) & (
        pd.to_numeric(images["label"], errors="coerce") == 0
    )
    chosen = _choose_patients(patient[is_lesion], labelled_fraction, np.random.default_rng([seed, 0]))
    kept = is_lesion & patient.isin(chosen)
    held_out = set(patient[is_lesion]) - chosen
    pool = images.index[is_normal & ~patient.isin(held_out)]
    wanted = len(pool) if normals is None else min(len(pool), int(round(float(normals) * int(kept.sum()))))
    drawn = np.random.default_rng([seed, 1]).permutation(len(pool))[:wanted]
    return kept | images.index.isin(pool[drawn]), is_lesion, is_normal


def _records(
    images: pd.DataFrame, masks: dict[str, list[str]], labelled: pd.Series, unlabelled: bool
) -> list[dict[str, Any]]:
    """The data dicts of the labelled images (their masks) and, with ``unlabelled``, of the others (none)."""
    exams = table_breast_key(images)
    out = []
    for i, row in images.iterrows():
        if not (labelled[i] or unlabelled):
            continue
        out.append(
            {
                "image": row["image"],
                "masks": list(masks.get(row["image_id"], [])) if labelled[i] else [],
                "label": int(row["label"]),
                "image_id": row["image_id"],
                "patient_id": str(row["patient_id"]),
                "exam": exams[i],
                "labelled": bool(labelled[i]),
            }
        )
    return out

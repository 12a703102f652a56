"""Training data from the manifest / patch tables, checked before any training starts."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import WeightedRandomSampler

from mammo_monai.data.manifest import check_one_split_per_patient, one_class_splits
from mammo_monai.evaluation.report import exam_key


def records(
    table: str | os.PathLike,
    split: str,
    num_classes: int,
    image_key: str = "image",
    label_key: str = "label",
    limit: int | None = None,
    both_classes: bool | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``split`` from a CSV as MONAI data dicts ``{"image": path, "label": int, ...}``.

    Raises (before training): a missing table, a patient in more than one split, no rows for the
    split, a label outside ``0 .. num_classes - 1``, a missing image file, or (``both_classes``) a
    split with one label only. Each message names the table, the split and the first bad rows (CSV
    line and ``image_id``).

    Args:
        both_classes: require both labels in the split; None: for the ``train`` and ``val`` splits of
            a binary task (``num_classes`` 2), where one class gives nothing to learn or a NaN AUC.
    """
    if not os.path.isfile(table):
        raise FileNotFoundError(f"{table}: data table not found (run `mammo-monai prepare` / `patches` first)")
    df = pd.read_csv(table, dtype={"patient_id": str})
    for col in (image_key, label_key, "split"):
        if col not in df.columns:
            raise ValueError(f"{table}: column {col!r} missing")
    check_one_split_per_patient(df, str(table))
    df = df[df["split"] == split]
    if df.empty:
        raise ValueError(f"{table}: no rows in split {split!r}: the dataset is empty")
    labels = pd.to_numeric(df[label_key], errors="coerce")
    bad = df[~labels.isin(range(num_classes))]
    if not bad.empty:
        raise ValueError(
            f"{table}: {len(bad)} row(s) of split {split!r} have a label outside 0..{num_classes - 1}: "
            + "; ".join(f"{where} label {v}" for where, v in zip(_rows(bad), bad[label_key].head(3)))
        )
    missing = df[[not os.path.isfile(p) for p in df[image_key]]]
    if not missing.empty:
        raise FileNotFoundError(
            f"{table}: {len(missing)} image file(s) of split {split!r} not found: "
            + "; ".join(f"{where} {p}" for where, p in zip(_rows(missing), missing[image_key].head(2)))
        )
    if both_classes is None:
        both_classes = num_classes == 2 and split in ("train", "val")
    one_class = one_class_splits(df.assign(label=labels.astype(int)), (split,)) if both_classes else []
    if one_class:
        raise ValueError(
            f"{table}: {one_class[0]}: a binary model needs both classes to "
            f"{'learn' if split == 'train' else 'be validated (the AUC of one class is NaN)'}; "
            "add images of the other class or re-run `mammo-monai prepare` with other split fractions"
        )
    if limit:
        df = df.sample(n=min(limit, len(df)), random_state=0)
    if "exam" not in df.columns and {"patient_id", "laterality"} <= set(df.columns):
        df = df.assign(exam=exam_key(df))  # the breast: patient + laterality, as evaluation groups it
    keep = [c for c in ("patient_id", "image_id", "laterality", "view", "exam") if c in df.columns]
    return [
        {"image": r[image_key], "label": int(r[label_key]), **{k: r[k] for k in keep}} for r in df.to_dict("records")
    ]


def _rows(df: pd.DataFrame, n: int = 3) -> list[str]:
    """``line 7 (image_id 'P_1_L_CC')`` for the first ``n`` rows of ``df`` (a slice of a CSV read with its
    default index: row i is on line i + 2, after the header)."""
    ids = df["image_id"] if "image_id" in df.columns else pd.Series([None] * len(df), index=df.index)
    return [f"line {i + 2}" + (f" (image_id {v!r})" if v is not None else "") for i, v in ids.head(n).items()]


def make_sampler(data: list[dict[str, Any]], balance: bool | float, seed: int = 0) -> WeightedRandomSampler | None:
    """A sampler that oversamples the rarer classes, or None (plain shuffling) when ``balance`` is false.

    ``balance`` True draws every class equally often (weights 1 / class count); a number in (0, 1)
    draws the positive class (label 1) that often and the others in proportion, for screening data
    where about 2 % of the images are positive (the RSNA recipe oversamples positives, not 50/50).
    """
    if balance is False or balance is None or balance == 0:
        return None
    import torch

    labels = np.array([d["label"] for d in data])
    counts = np.bincount(labels)
    if balance is True or balance == 1:
        weights = 1.0 / counts[labels]
    else:
        fraction = float(balance)
        if not 0 < fraction < 1:
            raise ValueError(f"balance must be true/false or a positive fraction in (0, 1), got {balance}")
        if len(counts) < 2 or counts[1] == 0:
            raise ValueError("balance as a positive fraction needs positives (label 1) in the training data")
        weights = np.where(labels == 1, fraction / counts[1], (1 - fraction) / (len(labels) - counts[1]))
    return WeightedRandomSampler(
        weights.tolist(), num_samples=len(labels), replacement=True, generator=torch.Generator().manual_seed(seed)
    )

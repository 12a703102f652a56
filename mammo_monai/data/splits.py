"""Patient-grouped, label-stratified train / val / test splits (Shen et al.: 85/15, then 90/10)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _split_groups(patients: pd.Series, fraction: float, rng: np.random.Generator) -> set[str]:
    """Pick about ``fraction`` of the patients of each label stratum (patients: id -> label)."""
    chosen: set[str] = set()
    for _, group in patients.groupby(patients):
        ids = np.array(sorted(group.index))
        rng.shuffle(ids)
        n = int(np.floor(fraction * len(ids) + 0.5))
        if fraction > 0 and len(ids) >= 3:
            n = max(n, 1)  # a small dataset still gets every split
        chosen |= set(ids[:n])
    return chosen


def assign_splits(
    images: pd.DataFrame,
    test_fraction: float = 0.15,
    val_fraction: float = 0.10,
    seed: int = 0,
    keep_test: bool | pd.Series = False,
    strata: list[str] | None = None,
) -> pd.DataFrame:
    """Return ``images`` with a ``split`` column (train / val / test), grouped by ``patient_id``.

    A patient's stratum is its highest image label, so every image of a patient lands in one split
    and the malignant fraction is about equal across splits. ``val_fraction`` is taken from what is
    left after the test split (Shen et al.: 85/15, then 90/10). Deterministic for a given ``seed``.

    Args:
        keep_test: keep the rows already marked ``test`` (an official split) and carve only
            the validation set out of the rest; a boolean Series (aligned with ``images``) marks the
            rows that keep their official split this way (a dataset of several), the other patients
            are split as usual.
        strata: further columns to stratify by besides the label (e.g. ``["dataset"]``: every dataset of
            a joined manifest in every split); each must be constant within a patient.
    """
    out = images.copy()
    rng = np.random.default_rng(seed)
    per_patient = out.groupby("patient_id")["label"].max().astype(int)
    if strata:  # the stratum of a patient: its strata values and its highest label, as one string
        first = out.groupby("patient_id")[strata].first().astype(str)
        per_patient = first.agg("|".join, axis=1) + "|" + per_patient.astype(str)
    if isinstance(keep_test, pd.Series):  # the marked rows keep their official split; the rest is drawn
        official = per_patient.index.isin(set(out.loc[keep_test, "patient_id"]))
        kept = set(out.loc[keep_test & out["split"].eq("test"), "patient_id"])
        test = kept | _split_groups(per_patient[~official], test_fraction, rng)
    elif keep_test and "split" in out:
        test = set(out.loc[out["split"] == "test", "patient_id"])
    else:
        test = _split_groups(per_patient, test_fraction, rng)
    rest = per_patient[~per_patient.index.isin(test)]
    val = _split_groups(rest, val_fraction, rng)
    out["split"] = np.where(out["patient_id"].isin(test), "test", np.where(out["patient_id"].isin(val), "val", "train"))
    return out

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mammo_monai.data import ManifestError, assign_splits, read_manifest, validate, write_manifest


def _images(n_patients=400, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        positive = rng.random() < 0.3
        for k in range(int(rng.integers(2, 5))):
            rows.append(
                {
                    "image_id": f"p{p}_{k}",
                    "image": f"/x/p{p}_{k}.png",
                    "patient_id": f"p{p}",
                    "laterality": "L",
                    "view": "CC",
                    "label": int(positive and k % 2 == 0),
                    "dataset": "t",
                    "split": "",
                }
            )
    return pd.DataFrame(rows)


def test_splits_group_patients_and_keep_class_ratios():
    out = assign_splits(_images(), seed=3)
    assert out.groupby("patient_id")["split"].nunique().max() == 1
    patients = out.groupby("patient_id").agg(split=("split", "first"), label=("label", "max"))
    share = patients["split"].value_counts(normalize=True)
    assert abs(share["test"] - 0.15) < 0.02 and abs(share["val"] - 0.085) < 0.02
    ratios = patients.groupby("split")["label"].mean()
    assert ratios.max() - ratios.min() < 0.04


def test_splits_are_deterministic_by_seed():
    a, b, c = (assign_splits(_images(), seed=s)["split"] for s in (1, 1, 2))
    assert a.equals(b) and not a.equals(c)


def test_validation_lists_every_problem(tmp_path):
    images = _images(3)
    images.loc[0, "laterality"] = "X"
    images.loc[1, "label"] = 2
    images.loc[2, "split"] = "holdout"
    lesions = pd.DataFrame(
        [
            {
                "image_id": "nope",
                "image": "",
                "lesion_type": "tumour",
                "pathology": "malignant",
                "center_row": 1,
                "center_col": 1,
                "radius": 1,
                "mask": "",
            }
        ]
    )
    with pytest.raises(ManifestError) as info:
        validate(images, lesions, check_files=True)
    text = str(info.value)
    for needle in (
        "laterality 'X'",
        "label 2",
        "split 'holdout'",
        "file not found",
        "lesion_type 'tumour'",
        "'nope' has no row",
    ):
        assert needle in text


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['patient_id'"):
        validate(_images(2).drop(columns=["patient_id", "label"]), check_files=False)


def test_write_then_read_round_trip(tmp_path):
    images = assign_splits(_images(5), seed=0)
    images["image"] = [str(tmp_path / f"{i}.png") for i in images["image_id"]]
    for p in images["image"]:
        open(p, "w").close()
    write_manifest(tmp_path, images, pd.DataFrame())
    back, lesions = read_manifest(tmp_path)
    assert back["image_id"].tolist() == images["image_id"].tolist() and lesions.empty

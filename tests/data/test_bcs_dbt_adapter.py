"""BCS-DBT adapter on a synthetic miniature in TCIA's layout (mammo_monai.synthetic.bcs_dbt_tree)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest

from mammo_monai.data.adapters import ADAPTERS, DatasetTableError
from mammo_monai.data.adapters.bcs_dbt import load_bcs_dbt
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic.bcs_dbt_tree import make_bcs_dbt_tree
from tests.data.boxes import half_open_box

SIZE = (96, 72)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("bcs-dbt")
    truth = make_bcs_dbt_tree(root, patients=6, seed=3, size=SIZE, frames=6)
    return root, truth


def _load(root, tmp_path, **kw):
    return load_bcs_dbt(root, slice_dir=tmp_path / "slices", **kw)


def _copy(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree[0], root)
    return root


def test_one_image_per_boxed_slice_else_the_central_slice(tree, tmp_path):
    root, truth = tree
    found = _load(root, tmp_path)
    images = found.images.set_index("image_id")
    expected = sum(max(1, len({b["slice"] for b in v["boxes"]})) for v in truth["views"])
    assert len(images) == expected and not found.errors
    unboxed = images[~images.index.isin(found.lesions["image_id"])]
    assert (unboxed["slice"] == unboxed["slices"] // 2).all()
    assert "bcs-dbt" in ADAPTERS


def test_labels_follow_the_groups(tree, tmp_path):
    root, truth = tree
    images = _load(root, tmp_path).images
    groups = {(v["PatientID"], v["View"]): v["group"] for v in truth["views"]}
    got = {
        (p, f"{s.lower()}{v.lower()}"): g for p, s, v, g in images[["patient_id", "laterality", "view", "group"]].values
    }
    assert got == groups
    assert (images["label"] == (images["group"] == "cancer").astype(int)).all()
    assert images["label_source"].str.contains("Cancer=1").all()
    excluded = _load(root, tmp_path, actionable="exclude").images
    assert len(excluded) == len(images) - int((images["group"] == "actionable").sum())


def test_boxes_apply_to_the_derived_slice_turned_to_the_reference_frame(tree, tmp_path):
    root, truth = tree
    found = _load(root, tmp_path)
    lesions = found.lesions.merge(
        found.images[["image_id", "patient_id", "laterality", "view", "slice", "turned"]], on="image_id"
    )
    got = {
        (r.patient_id, f"{r.laterality.lower()}{r.view.lower()}", r.slice): (
            r.box_row0,
            r.box_col0,
            r.box_row1,
            r.box_col1,
            r.pathology,
            r.turned,
        )
        for r in lesions.itertuples()
    }
    want = {
        (v["PatientID"], v["View"], b["slice"]): (*half_open_box(b["box"]), b["pathology"], v["turned"])
        for v in truth["views"]
        for b in v["boxes"]
    }
    assert got == want and any(v["turned"] for v in truth["views"])


def test_derived_slice_is_the_frame_turned_back_with_its_window(tree, tmp_path):
    root, _ = tree
    found = _load(root, tmp_path)
    for turned in (False, True):
        row = found.images[found.images["turned"] == turned].iloc[0]
        derived = pydicom.dcmread(row["image"])
        frame = pydicom.dcmread(row["source_volume"]).pixel_array[row["slice"]]
        assert np.array_equal(derived.pixel_array, frame[::-1, ::-1] if turned else frame)
        assert (derived.ImageLaterality, derived.ViewPosition, float(derived.WindowWidth)) == (
            row["laterality"],
            row["view"],
            4000.0,
        )
    again = _load(root, tmp_path).images  # the derived slices are reused, their turn read back
    assert again["turned"].tolist() == found.images["turned"].tolist()


def test_patients_grouped_and_official_sets_kept(tree, tmp_path):
    root, truth = tree
    plain = _load(root, tmp_path).images
    official = _load(root, tmp_path, official_split=True).images
    sets = {v["PatientID"]: {"train": "train", "validation": "val", "test": "test"}[v["set"]] for v in truth["views"]}
    assert (plain["split"] == "").all()
    assert official.set_index("image_id")["split"].to_dict() == {
        i: sets[p] for i, p in zip(official["image_id"], official["patient_id"])
    }
    assert official["patient_id"].nunique() == truth["patients"]


def test_missing_label_column_is_one_line(tree, tmp_path):
    root = _copy(tree, tmp_path)
    path = root / "BCS-DBT labels-train-v2.csv"
    pd.read_csv(path).drop(columns="Cancer").to_csv(path, index=False)
    with pytest.raises(DatasetTableError, match=r"labels-train-v2\.csv: missing column\(s\) \['Cancer'\]") as err:
        _load(root, tmp_path)
    assert "\n" not in str(err.value)


def test_unknown_label_value_and_absent_volume_are_reported(tree, tmp_path):
    root = _copy(tree, tmp_path)
    path = root / "BCS-DBT labels-validation-v2.csv"
    table = pd.read_csv(path)
    table.loc[0, "Normal"] = 2
    table.to_csv(path, index=False)
    paths = pd.read_csv(root / "BCS-DBT file-paths-test-v2.csv")
    (root / paths.loc[0, "descriptive_path"]).unlink()
    found = _load(root, tmp_path)
    reasons = [f"{e['file']}: {e['reason']}" for e in found.errors]
    assert any("labels-validation-v2.csv" in r and "unknown label value" in r for r in reasons)
    assert any("listed in BCS-DBT file-paths-test-v2.csv but not found" in r for r in reasons)
    assert len(reasons) == 2 and all("\n" not in r for r in reasons)


def test_prepare_caches_the_derived_slices(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root, truth = tree
    summary = prepare("bcs-dbt", root, tmp_path / "out", size=(64, 48), workers=1, progress=False)
    images = pd.read_csv(tmp_path / "out" / "images.csv")
    assert summary["failed_images"] == 0 and summary["lesions"] == sum(len(v["boxes"]) for v in truth["views"])
    assert summary["laterality_mismatches"] == 0  # turned volumes come out with the chest wall where View says
    assert (images.groupby("patient_id")["split"].nunique() == 1).all()


def test_each_box_frames_its_lesion_in_the_derived_slice(tree, tmp_path):
    found = _load(tree[0], tmp_path)
    images = found.images.set_index("image_id")
    for les in found.lesions.itertuples():
        row = images.loc[les.image_id]
        slice_ = pydicom.dcmread(row["image"]).pixel_array.astype(float)
        other = pydicom.dcmread(row["source_volume"]).pixel_array[(row["slice"] + 1) % row["slices"]].astype(float)
        change = np.abs(slice_ - (other[::-1, ::-1] if row["turned"] else other))  # no lesion on the next slice
        inside = np.zeros(change.shape, bool)
        inside[int(les.box_row0) : int(les.box_row1), int(les.box_col0) : int(les.box_col1)] = True
        assert change[inside].mean() > 5 * change[~inside].mean()


def test_unknown_box_class_is_reported_and_the_box_left_out(tree, tmp_path):
    root = _copy(tree, tmp_path)
    path = root / "BCS-DBT boxes-train-v2.csv"
    table = pd.read_csv(path)
    table.loc[0, "Class"] = "maybe"
    table.to_csv(path, index=False)
    found = _load(root, tmp_path)
    assert [e["reason"] for e in found.errors] == ["unknown Class 'maybe'; box skipped"]
    assert len(found.lesions) == sum(len(v["boxes"]) for v in tree[1]["views"]) - 1

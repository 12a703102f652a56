from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.data.adapters import ADAPTERS, DatasetTableError, load_vindr
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic.vindr_tree import make_vindr_tree

SIZE = (160, 128)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("vindr")
    return root, make_vindr_tree(root, studies=6, seed=3, size=SIZE)


@pytest.fixture
def copy(tree, tmp_path):
    root, truth = tree
    shutil.copytree(root, tmp_path / "vindr")
    return tmp_path / "vindr", Path(truth["base"].replace(str(root), str(tmp_path / "vindr")))


def test_every_image_read_with_the_birads_label_rule(tree):
    root, truth = tree
    found = load_vindr(root)
    assert ADAPTERS["vindr"] is load_vindr
    assert found.errors == [] and len(found.images) == len(truth["images"]) == found.truth_rows == 24
    want = {t["image_id"]: int(t["birads"] >= 4) for t in truth["images"]}
    got = dict(zip(found.images["image_id"], found.images["label"]))
    assert got == want and set(got.values()) == {0, 1}
    assert set(found.images["label_source"]) == {"birads>=4"}
    by_study = {t["image_id"]: t["study_id"] for t in truth["images"]}
    assert (found.images["patient_id"] == found.images["image_id"].map(by_study)).all()
    assert found.images.groupby("patient_id").size().eq(4).all()


def test_suspicious_birads_option_moves_the_cut(tree):
    root, truth = tree
    found = load_vindr(root, suspicious_birads=3)
    want = {t["image_id"]: int(t["birads"] >= 3) for t in truth["images"]}
    assert dict(zip(found.images["image_id"], found.images["label"])) == want
    assert set(found.images["label_source"]) == {"birads>=3"}


def test_mass_and_calcification_boxes_in_original_pixels(tree):
    root, truth = tree
    lesions = load_vindr(root).lesions
    assert len(lesions) == len(truth["lesions"]) > 0  # architectural distortions are not lesions here
    got = {r.image_id: r for r in lesions.itertuples()}
    for t in truth["lesions"]:
        r = got[t["image_id"]]
        assert (r.box_row0, r.box_col0, r.box_row1, r.box_col1) == t["box"]
        assert r.lesion_type == t["kind"]
        assert r.pathology == ("malignant" if t["finding_birads"] >= 4 else "benign")
        assert r.center_row == pytest.approx((t["box"][0] + t["box"][2]) / 2, abs=0.05)
    assert lesions["box_clipped"].sum() == 1 and lesions.loc[lesions["box_clipped"], "box_col0"].eq(0).all()


def test_official_split_kept_only_when_asked(tree):
    root, truth = tree
    assert load_vindr(root).images["split"].eq("").all()
    images = load_vindr(root, official_split=True).images
    want = {t["image_id"]: {"training": "train", "test": "test"}[t["split"]] for t in truth["images"]}
    assert dict(zip(images["image_id"], images["split"])) == want
    assert images.groupby("patient_id")["split"].nunique().eq(1).all() and set(want.values()) == {"train", "test"}


def test_missing_column_is_one_line_naming_the_file(copy):
    root, base = copy
    table = pd.read_csv(base / "breast-level_annotations.csv").drop(columns="breast_birads")
    table.to_csv(base / "breast-level_annotations.csv", index=False)
    with pytest.raises(
        DatasetTableError, match=r"breast-level_annotations\.csv: missing column\(s\) \['breast_birads'\]"
    ):
        load_vindr(root)


def test_unknown_birads_value_skips_that_image_with_one_row(copy):
    root, base = copy
    table = pd.read_csv(base / "breast-level_annotations.csv", dtype=str)
    table.loc[0, "breast_birads"] = "BI-RADS X"
    table.to_csv(base / "breast-level_annotations.csv", index=False)
    found = load_vindr(root)
    assert len(found.images) == 23 and table.loc[0, "image_id"] not in set(found.images["image_id"])
    assert [e["reason"] for e in found.errors] == ["unknown breast_birads 'BI-RADS X'; skipped"]
    assert table.loc[0, "image_id"] in found.errors[0]["file"]


def test_listed_but_absent_image_is_an_error_row(copy):
    root, base = copy
    gone = next((base / "images").rglob("*.dicom"))
    gone.unlink()
    found = load_vindr(root)
    assert len(found.images) == 23
    assert found.errors == [
        {"file": str(gone), "reason": "listed in breast-level_annotations.csv but not found; skipped"}
    ]


def test_prepare_writes_a_valid_manifest_with_the_label_source(tree, tmp_path):
    root, truth = tree
    summary = prepare("vindr", root, tmp_path / "out", size=(64, 48), workers=1, progress=False)
    images = pd.read_csv(tmp_path / "out" / "images.csv")
    lesions = pd.read_csv(tmp_path / "out" / "lesions.csv")
    assert summary["images"] == 24 and summary["failed_images"] == 0
    assert set(images["label_source"]) == {"birads>=4"} and len(lesions) == len(truth["lesions"])

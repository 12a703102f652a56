from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.data.adapters import ADAPTERS, DatasetTableError, load_cdd_cesm
from mammo_monai.data.adapters.cdd_cesm import shape_geometry
from mammo_monai.data.prepare import prepare
from mammo_monai.io.atomic import atomic_path
from mammo_monai.synthetic.cdd_cesm_tree import make_cdd_cesm_tree

SIZE = (160, 128)
TABLE = "Radiology-manual-annotations.xlsx"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdd")
    return root, make_cdd_cesm_tree(root, patients=3, seed=4, size=SIZE)


@pytest.fixture
def copy(tree, tmp_path):
    root, _ = tree
    shutil.copytree(root, tmp_path / "cdd")
    return tmp_path / "cdd", tmp_path / "cdd" / "CDD-CESM" / TABLE


def _edit_table(path: Path, edit) -> None:
    table = edit(pd.read_excel(path, dtype=str, keep_default_na=False))
    with atomic_path(path) as tmp:
        table.to_excel(tmp, index=False, sheet_name="all", engine="openpyxl")


def test_low_energy_images_only_by_default(tree):
    root, truth = tree
    found = load_cdd_cesm(root)
    assert ADAPTERS["cdd-cesm"] is load_cdd_cesm
    dm = [t for t in truth["images"] if t["type"] == "DM"]
    assert found.errors == [] and len(found.images) == len(dm) == 12
    assert set(found.images["image_type"]) == {"low-energy"} and found.images["image"].str.contains("Low energy").all()
    got = found.images.set_index("image_id")
    for t in dm:
        row = got.loc[t["name"]]  # 'P1_L_DM_CC ' (trailing space) is read as P1_L_DM_CC
        assert (row.patient_id, row.laterality, row.view, row.label) == (
            t["patient_id"],
            t["laterality"],
            t["view"],
            t["label"],
        )
    assert set(found.images["label"]) == {0, 1} and set(found.images["label_source"]) == {"pathology"}
    assert found.images.groupby("patient_id").size().eq(4).all()


def test_include_cesm_adds_the_subtracted_images(tree):
    root, truth = tree
    images = load_cdd_cesm(root, include_cesm=True).images
    assert len(images) == len(truth["images"]) == 24
    assert images["image_type"].value_counts().to_dict() == {"low-energy": 12, "subtracted": 12}


def test_outlines_give_lesions_in_the_jpeg_pixels(tree):
    root, truth = tree
    lesions = load_cdd_cesm(root).lesions
    want = {t["name"]: t for t in truth["lesions"] if "_DM_" in t["name"]}
    assert len(lesions) == len(want) > 0 and {"polygon", "ellipse"} <= {t["shape"] for t in want.values()}
    for r in lesions.itertuples():
        t = want[r.image_id]  # 'P1_L_DM_MLO .jpg' in the segmentation table is matched too
        row0, col0, row1, col1 = t["box"]  # the outline's extreme points: the box ends one past them
        assert (r.box_row0, r.box_col0, r.box_row1, r.box_col1) == pytest.approx(
            (row0, col0, row1 + 1, col1 + 1), abs=0.06
        )
        assert r.lesion_type == t["kind"]
        assert r.pathology == ("malignant" if t["name"] in _malignant(truth) else "benign")


def _malignant(truth) -> set[str]:
    return {t["name"] for t in truth["images"] if t["label"]}


def test_missing_column_is_one_line_naming_the_file(copy):
    root, table = copy
    _edit_table(table, lambda t: t.drop(columns="Pathology Classification/ Follow up"))
    with pytest.raises(DatasetTableError, match=r"Radiology-manual-annotations\.xlsx: missing column\(s\)"):
        load_cdd_cesm(root)


def test_unknown_pathology_skips_that_image_with_one_line(copy):
    root, table = copy
    _edit_table(table, lambda t: t.assign(**{"Pathology Classification/ Follow up": ["Maybe", *t.iloc[1:, -1]]}))
    found = load_cdd_cesm(root)
    assert [e["reason"] for e in found.errors] == ["unknown pathology 'Maybe'; image skipped"]
    assert TABLE in found.errors[0]["file"] and len(found.images) == 11  # its second, readable row too
    assert "P1_L_DM_CC" not in set(found.images["image_id"])


def test_listed_but_absent_image_is_an_error_row(copy):
    root, _ = copy
    (root / "CDD-CESM" / "Low energy images of CDD-CESM" / "P2_R_DM_CC.jpg").unlink()
    found = load_cdd_cesm(root)
    assert found.errors == [{"file": "P2_R_DM_CC.jpg", "reason": f"listed in {TABLE} but not found; skipped"}]
    assert len(found.images) == 11


def test_prepare_reads_the_jpegs(tree, tmp_path):
    root, _ = tree
    summary = prepare("cdd-cesm", root, tmp_path / "out", size=(64, 48), workers=1, progress=False)
    assert summary["images"] == 12 and summary["failed_images"] == 0
    assert set(pd.read_csv(tmp_path / "out" / "images.csv")["label_source"]) == {"pathology"}


def test_a_polygon_with_unequal_point_lists_is_reported_and_the_rest_kept(tree, copy):
    root, _ = copy
    path = root / "CDD-CESM" / "Radiology_hand_drawn_segmentations_v2.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    broken = {"name": "polygon", "all_points_x": [10, 20, 30], "all_points_y": [10, 20]}
    extra = table.iloc[[0, 0]].assign(**{"#filename": "P1_L_DM_CC.jpg"})
    extra["region_shape_attributes"] = [json.dumps(broken), "[]"]  # the second: JSON, but no shape object
    pd.concat([table, extra]).to_csv(path, index=False)
    found = load_cdd_cesm(root)
    assert [e["reason"] for e in found.errors] == [
        "unreadable shape (3 x and 2 y points); skipped",
        "unreadable shape (not a VIA shape object but list); skipped",
    ]
    assert f"row {len(table) + 2} (P1_L_DM_CC)" in found.errors[0]["file"]
    assert len(found.images) == 12 and len(found.lesions) == len(load_cdd_cesm(tree[0]).lesions)


def test_a_via_rect_is_a_top_left_and_size_box():
    got = shape_geometry({"name": "rect", "x": 20, "y": 10, "width": 40, "height": 30})
    assert [got[c] for c in ("box_row0", "box_col0", "box_row1", "box_col1")] == [10.0, 20.0, 40.0, 60.0]

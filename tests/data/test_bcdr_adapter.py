"""BCDR adapter on a synthetic miniature in the published set layout (mammo_monai.synthetic.bcdr_tree)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mammo_monai.data.adapters import ADAPTERS, DatasetTableError
from mammo_monai.data.adapters.bcdr import load_bcdr
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic.bcdr_tree import make_bcdr_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("bcdr")
    return root, make_bcdr_tree(root, patients=4, seed=2)


def _copy(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree[0], root)
    return root


def _key(set_name, file_name):
    return f"{set_name}/{file_name}"


def test_images_sides_views_and_labels(tree):
    root, truth = tree
    found = load_bcdr(root)
    got = {
        _key(s, p.split("_dataset/", 1)[1]): (pid, lat, v, lab)
        for s, p, pid, lat, v, lab in found.images[
            ["bcdr_set", "image", "patient_id", "laterality", "view", "label"]
        ].values
    }
    want = {
        _key(t["set"], t["file"]): (t["patient_id"], t["laterality"], t["view"], t["label"]) for t in truth["images"]
    }
    assert got == want and not found.errors and "bcdr" in ADAPTERS
    assert set(found.images["acquisition"]) == {"film", "digital"}
    assert (found.images.loc[found.images["bcdr_set"] == "BCDR-DN01", "label_source"] == "bcdr normal set: 0").all()


def test_outline_geometry_in_original_pixels(tree):
    root, truth = tree
    found = load_bcdr(root)
    lesions = found.lesions.assign(
        key=[
            _key(i.split("_img_")[0], p.split("_dataset/", 1)[1])
            for i, p in zip(found.lesions["image_id"], found.lesions["image"])
        ]
    )
    assert len(lesions) == len(truth["lesions"])
    for want in truth["lesions"]:
        got = lesions[lesions["key"] == _key(want["set"], want["file"])].iloc[0]
        rows, cols = np.asarray(want["rows"], float), np.asarray(want["cols"], float)
        assert (got["lesion_type"], got["pathology"]) == (want["type"], want["pathology"])
        assert got["center_row"] == pytest.approx(rows.mean(), abs=0.05) and got["center_col"] == pytest.approx(
            cols.mean(), abs=0.05
        )
        assert got["radius"] >= np.hypot(rows - rows.mean(), cols - cols.mean()).max() - 0.05
        assert (got["box_row0"], got["box_col0"], got["box_row1"], got["box_col1"]) == (
            rows.min(),
            cols.min(),
            rows.max() + 1,  # the outline's pixels: the half-open box ends one past the last
            cols.max() + 1,
        )


def test_patients_grouped_and_no_official_split(tree):
    found = load_bcdr(tree[0])
    per_patient = found.images.groupby("patient_id")["image_id"].count()
    assert (per_patient == 4).all() and (found.images["split"] == "").all()


def test_missing_outline_column_is_one_line(tree, tmp_path):
    root = _copy(tree, tmp_path)
    path = root / "BCDR-D01_dataset" / "bcdr_d01_outlines.csv"
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join(", ".join(v for v in line.split(", ") if "lw_x_points" not in v) for line in lines[:1]) + "\n"
    )
    with pytest.raises(
        DatasetTableError, match=r"bcdr_d01_outlines\.csv: missing column\(s\) \['lw_x_points'\]"
    ) as err:
        load_bcdr(root)
    assert "\n" not in str(err.value)


def test_unknown_classification_and_absent_image_are_reported(tree, tmp_path):
    root, truth = tree
    root = _copy(tree, tmp_path)
    path = root / "BCDR-F01_dataset" / "bcdr_f01_outlines.csv"
    text = path.read_text()
    first = text.splitlines()[1]
    path.write_text(text.replace(first, first.rsplit(", ", 1)[0] + ", Maybe", 1))
    absent = next(t for t in truth["images"] if t["set"] == "BCDR-D01")
    (root / "BCDR-D01_dataset" / absent["file"]).unlink()
    found = load_bcdr(root)
    reasons = [f"{e['file']}: {e['reason']}" for e in found.errors]
    assert any("bcdr_f01_outlines.csv" in r and "unknown classification 'Maybe'" in r for r in reasons)
    assert any(absent["file"] in r and "listed in bcdr_d01_img.csv but not found" in r for r in reasons)
    assert len(found.images) == len(truth["images"]) - 2


def test_prepare_reads_film_and_digital_tiffs(tree, tmp_path):
    root, truth = tree
    summary = prepare("bcdr", root, tmp_path / "out", size=(64, 48), workers=1, progress=False)
    assert summary["failed_images"] == 0 and summary["images"] == len(truth["images"])
    assert summary["lesions"] == len(truth["lesions"])

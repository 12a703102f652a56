"""OMI-DB adapter on a synthetic miniature in the omidb package's documented layout."""

from __future__ import annotations

import json
import shutil

import pytest

from mammo_monai.data.adapters import ADAPTERS
from mammo_monai.data.adapters.omi_db import load_omi_db
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic.omi_db_tree import make_omi_db_tree
from tests.data.boxes import half_open_box

DATA = "image_db/sharing/standard/data"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("omi")
    return root, make_omi_db_tree(root, clients=4, seed=5)


def _copy(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree[0], root)
    return root


def _edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_images_labels_per_breast_and_processing_left_out(tree):
    root, truth = tree
    found = load_omi_db(root)
    got = {r.image: (r.patient_id, r.laterality, r.view, r.label) for r in found.images.itertuples()}
    want = {t["path"]: (t["client"], t["side"], t["view"], t["label"]) for t in truth["images"]}
    assert got == want and "omi-db" in ADAPTERS
    assert [e["reason"] for e in found.errors] == ["4 'FOR PROCESSING' images left out (presentation_only)"]
    assert len(load_omi_db(root, presentation_only=False).images) == len(want) + 4
    assert found.images["label_source"].str.contains("OM = 1").all() and (found.images["split"] == "").all()


def test_mark_boxes_in_image_pixels(tree):
    root, truth = tree
    found = load_omi_db(root)
    les = found.lesions.merge(found.images[["image_id", "patient_id", "laterality", "view"]], on="image_id")
    got = sorted(
        (
            r.patient_id,
            r.laterality,
            r.view,
            (r.box_row0, r.box_col0, r.box_row1, r.box_col1),
            r.lesion_type,
            r.pathology,
        )
        for r in les.itertuples()
    )
    want = sorted(
        (t["client"], t["side"], t["view"], half_open_box(t["box"]), t["type"], t["pathology"])
        for t in truth["lesions"]
    )
    assert got == want and len(want) > 0
    # X2, Y2 are the last pixel: the centre is the middle of the corner pixels, the box ends one past them
    assert (les["center_row"] == (les["box_row0"] + les["box_row1"] - 1) / 2).all()


def test_patient_is_the_client(tree):
    found = load_omi_db(tree[0])
    assert set(found.images["patient_id"]) == {t["client"] for t in tree[1]["images"]}
    assert not found.images["image_id"].str.contains(r"\d+\.\d+\.\d+").any()  # no UIDs in the ids


def test_missing_studies_key_is_one_line(tree, tmp_path):
    root = _copy(tree, tmp_path)
    _edit(root / DATA / "optm1" / "imagedb_optm1.json", lambda d: d.pop("STUDIES"))
    found = load_omi_db(root)
    bad = [e for e in found.errors if "imagedb_optm1.json" in e["file"]]
    assert [e["reason"] for e in bad] == ["missing key 'STUDIES' (the whole client); skipped"]
    assert "optm1" not in set(found.images["patient_id"])


def test_unknown_opinion_and_absent_image_are_reported(tree, tmp_path):
    root, truth = tree
    root = _copy(tree, tmp_path)
    _edit(root / DATA / "optm2" / "nbss_optm2.json", lambda d: d["2"]["SURGERY"].update(right_opinion="OX"))
    gone = next(t["path"] for t in truth["images"] if t["client"] == "optm3")
    (root / gone.split(str(tree[0]) + "/", 1)[1]).unlink()
    found = load_omi_db(root)
    reasons = [f"{e['file']}: {e['reason']}" for e in found.errors]
    assert sum("unknown side opinion 'OX'" in r for r in reasons) == 2  # both right views of that episode
    assert any("listed in imagedb_optm3.json but not found; skipped" in r for r in reasons)
    assert len(found.images) == len(truth["images"]) - 3


def test_prepare_reads_the_dicoms(tree, tmp_path):
    root, truth = tree
    summary = prepare("omi-db", root, tmp_path / "out", size=(64, 48), workers=1, progress=False)
    assert summary["failed_images"] == 0 and summary["images"] == len(truth["images"])
    assert summary["lesions"] == len(truth["lesions"]) and summary["laterality_mismatches"] == 0

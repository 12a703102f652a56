"""KAU-BCMD adapter on a synthetic miniature of BI-RADS folders of JPEGs (mammo_monai.synthetic.kau_bcmd_tree)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from mammo_monai.data.adapters import ADAPTERS
from mammo_monai.data.adapters.kau_bcmd import load_kau_bcmd
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic.kau_bcmd_tree import make_kau_bcmd_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kau")
    return root, make_kau_bcmd_tree(root, cases=8, seed=4)


def _load(root, tmp_path, **kw):
    return load_kau_bcmd(root, derived=tmp_path / "png", **kw)


def _copy(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree[0], root)
    return root


def test_cases_views_and_birads_labels(tree, tmp_path):
    root, truth = tree
    found = _load(root, tmp_path)
    got = {r.source_jpeg: (r.patient_id, r.laterality, r.view, r.birads, r.label) for r in found.images.itertuples()}
    want = {t["path"]: (t["case"], t["side"], t["view"], t["birads"], t["label"]) for t in truth["images"]}
    assert got == want and not found.errors and "kau-bcmd" in ADAPTERS
    assert found.lesions.empty and (found.images["split"] == "").all()
    cut3 = _load(root, tmp_path, birads_cut=3).images
    assert cut3["label"].sum() == sum(t["birads"] >= 3 for t in truth["images"])


def test_jpeg_becomes_a_lossless_grey_png_of_the_same_pixels(tree, tmp_path):
    row = _load(tree[0], tmp_path).images.iloc[0]
    with Image.open(row["source_jpeg"]) as jpeg, Image.open(row["image"]) as png:
        assert png.mode == "L" and np.array_equal(np.asarray(png), np.asarray(jpeg.convert("L")))


def test_every_case_is_one_patient_with_four_views(tree, tmp_path):
    images = _load(tree[0], tmp_path).images
    assert images.groupby("patient_id").size().eq(4).all() and images["patient_id"].nunique() == tree[1]["cases"]
    assert (images.groupby("patient_id")["label"].nunique() == 1).all()  # the case's category is every view's


def test_unknown_birads_folder_unreadable_file_and_loose_image_are_reported(tree, tmp_path):
    root = _copy(tree, tmp_path)
    (root / "Birad7").mkdir()
    shutil.copy(next((root / "BIRAD1" / "b1").glob("*.jpg")), root / "Birad7" / "2001_RCC.jpg")
    (root / "Birad3" / "b3" / "2002_LCC.jpg").write_bytes(b"not a jpeg")
    shutil.copy(next((root / "BIRAD1" / "b1").glob("*.jpg")), root / "loose_RCC.jpg")
    found = _load(root, tmp_path)
    reasons = sorted(f"{e['file']}: {e['reason']}" for e in found.errors)
    assert len(reasons) == 3 and all("\n" not in r for r in reasons)
    assert any(
        r.endswith("Birad7: unknown label value: BI-RADS 7 is not 1-6 (the whole folder); skipped") for r in reasons
    )
    assert any("2002_LCC.jpg: cannot be read as an image" in r for r in reasons)
    assert any("loose_RCC.jpg: not inside a BI-RADS folder" in r for r in reasons)
    assert len(found.images) == len(tree[1]["images"])


def test_prepare_reads_the_derived_pngs(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    summary = prepare("kau-bcmd", tree[0], tmp_path / "out", size=(64, 48), workers=1, progress=False)
    assert summary["failed_images"] == 0 and summary["images"] == len(tree[1]["images"])

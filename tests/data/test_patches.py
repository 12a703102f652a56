from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.data.patches import Overlap, cut_patch, make_patches, sample_roi_centres
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    base = tmp_path_factory.mktemp("patches")
    make_cbis_tree(base / "raw", patients=6, seed=2, size=(256, 200), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(256, 200), workers=1, progress=False)
    return base / "manifest"


def test_small_roi_patches_contain_the_roi():
    roi = np.zeros((100, 100), bool)
    roi[40:46, 50:56] = True
    for r, c in sample_roi_centres(roi, 20, 32, np.random.default_rng(0)):
        assert Overlap(roi).count(r, c, 32) / roi.sum() > 0.9


def test_large_roi_patches_lie_inside_it():
    roi = np.zeros((200, 200), bool)
    roi[20:180, 20:180] = True
    for r, c in sample_roi_centres(roi, 20, 32, np.random.default_rng(0)):
        assert Overlap(roi).count(r, c, 32) / 32**2 > 0.9


def test_cutoff_drops_until_a_thin_roi_can_be_sampled():
    roi = np.zeros((100, 120), bool)
    roi[50, 10:100] = True  # at most 32/90 of it fits in a patch: needs c below 0.36
    centres = sample_roi_centres(roi, 5, 32, np.random.default_rng(0))
    assert len(centres) == 5 and all(Overlap(roi).count(r, c, 32) >= 28 for r, c in centres)


def test_cut_patch_pads_outside_the_image():
    img = np.arange(100, dtype=np.uint16).reshape(10, 10)
    patch = cut_patch(img, 0, 0, 6)
    assert (
        patch.shape == (6, 6)
        and patch[3, 3] == 0
        and patch[0, 0] == 0
        and patch[3:, 3:].tolist() == img[:3, :3].tolist()
    )


def test_s_scheme_one_patch_per_roi_plus_one_background(manifest, tmp_path):
    summary = make_patches(manifest, tmp_path, scheme="s", size=48, workers=1, progress=False)
    lesions = pd.read_csv(manifest / "lesions.csv")
    images = pd.read_csv(manifest / "images.csv")
    table = pd.read_csv(tmp_path / "patches.csv")
    assert (table["label"] > 0).sum() == len(lesions) and (table["label"] == 0).sum() == len(images)
    expected = {("calc", "malignant"): 1, ("calc", "benign"): 2, ("mass", "malignant"): 3, ("mass", "benign"): 4}
    assert sorted(table.loc[table.label > 0, "label"]) == sorted(
        expected[(t, p)] for t, p in zip(lesions.lesion_type, lesions.pathology)
    )
    assert summary["patches"] == len(table)
    patch = np.asarray(Image.open(table["path"].iloc[0]))
    assert patch.shape == (48, 48) and patch.dtype == np.uint16


def test_s10_counts_background_clear_of_rois_and_split_inherited(manifest, tmp_path):
    make_patches(manifest, tmp_path, scheme="s10", size=48, per_roi=4, background=3, workers=1, progress=False)
    table = pd.read_csv(tmp_path / "patches.csv")
    lesions = pd.read_csv(manifest / "lesions.csv")
    images = pd.read_csv(manifest / "images.csv").set_index("image_id")
    assert (table["label"] > 0).sum() == 4 * len(lesions)
    assert (table["label"] == 0).sum() == 3 * len(images)
    assert (table["split"] == images.loc[table["image_id"], "split"].values).all()
    for _, row in table[table.label == 0].iterrows():
        for mask in lesions.loc[lesions.image_id == row.image_id, "cached_mask"]:
            assert Overlap(np.asarray(Image.open(mask)) > 0).count(row.center_row, row.center_col, 48) == 0


def test_patches_are_deterministic_whatever_the_workers(manifest, tmp_path):
    make_patches(manifest, tmp_path / "a", scheme="s10", size=32, per_roi=2, background=2, workers=1, progress=False)
    make_patches(manifest, tmp_path / "b", scheme="s10", size=32, per_roi=2, background=2, workers=2, progress=False)
    a = pd.read_csv(tmp_path / "a" / "patches.csv")
    b = pd.read_csv(tmp_path / "b" / "patches.csv")
    assert a[["label", "center_row", "center_col"]].equals(b[["label", "center_row", "center_col"]])


def test_empty_roi_mask_is_reported_and_the_rest_cut(manifest, tmp_path):
    lesions = pd.read_csv(manifest / "lesions.csv")
    broken = lesions["cached_mask"].iloc[0]
    keep = np.asarray(Image.open(broken)).copy()
    Image.fromarray(np.zeros_like(keep)).save(broken)
    try:
        assert (
            main(
                [
                    "patches",
                    "--manifest",
                    str(manifest),
                    "--out",
                    str(tmp_path),
                    "--scheme",
                    "s",
                    "--patch-size",
                    "32",
                    "--workers",
                    "1",
                    "--quiet",
                ]
            )
            == 0
        )
    finally:
        Image.fromarray(keep).save(broken)
    errors = pd.read_csv(tmp_path / "patch_errors.csv")
    assert errors["reason"].str.contains("empty ROI mask").sum() == 1 and broken in set(errors["file"])
    assert (pd.read_csv(tmp_path / "patches.csv")["label"] > 0).sum() == len(lesions) - 1

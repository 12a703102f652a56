from __future__ import annotations

import csv
import hashlib

import numpy as np
import pandas as pd
import pytest

from mammo_monai.io import read_mammogram
from mammo_monai.synthetic import make_cbis_tree
from tests.conftest import SHARED

CSVS = ["mass_case_description_train_set.csv", "mass_case_description_test_set.csv",
        "calc_case_description_train_set.csv", "calc_case_description_test_set.csv"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("cbis")
    summary = make_cbis_tree(out, patients=12, seed=3, size=(192, 150), workers=1, p_mask_off=0.5, p_monochrome1=0.5)
    return out, summary


def _digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(folder)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_whatever_the_workers(tree, tmp_path):
    out, _ = tree
    make_cbis_tree(tmp_path, patients=12, seed=3, size=(192, 150), workers=2, p_mask_off=0.5, p_monochrome1=0.5)
    assert _digest(tmp_path) == _digest(out)


def test_csv_headers_match_the_real_cbis_ddsm(tree):
    out, _ = tree
    real = SHARED / "data" / "cbis-ddsm"
    if not real.exists():
        pytest.skip("../shared/data/cbis-ddsm not beside the repository")
    for name in CSVS:
        with open(out / name) as a, open(real / name) as b:
            assert next(csv.reader(a)) == next(csv.reader(b)), name


def test_csv_quirks_and_current_layout(tree):
    out, summary = tree
    mass = pd.concat([pd.read_csv(out / n) for n in CSVS[:2]])
    calc = pd.concat([pd.read_csv(out / n) for n in CSVS[2:]])
    assert mass["ROI mask file path"].str.endswith(".dcm\n").all()
    assert calc["cropped image file path"].str.endswith("000001.dcm\n").all()
    assert set(mass["pathology"]) | set(calc["pathology"]) <= {"MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"}
    full = sorted((out / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))
    assert len(full) == summary["images"] > 12
    rois = list((out / "CBIS-DDSM").glob("*_[0-9]/*/1.000000-ROI mask images-*/1-[12].dcm"))
    assert len(rois) == 2 * summary["lesions"]


def test_images_have_both_sides_monochrome1_and_masks_off_by_a_few_pixels(tree):
    out, _ = tree
    metas, off = [], 0
    for f in (out / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"):
        image, meta = read_mammogram(f)
        metas.append(meta)
        for roi in (out / "CBIS-DDSM").glob(f"{f.parts[-4]}_*/*/*/1-*.dcm"):
            arr, m = read_mammogram(roi)
            if m["bits_stored"] == 8:  # the mask of the pair
                assert set(np.unique(arr)) <= {0.0, 255.0}
                off += arr.shape != image.shape
    assert {m["laterality"] for m in metas} == {"L", "R"}
    assert {m["photometric_interpretation"] for m in metas} == {"MONOCHROME1", "MONOCHROME2"}
    assert off > 0

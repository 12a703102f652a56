from __future__ import annotations

import csv
import hashlib

import numpy as np
import pandas as pd
import pytest

from mammo_monai.io import read_mammogram
from mammo_monai.synthetic import make_cbis_tree
from tests.conftest import SHARED

CSVS = [
    "mass_case_description_train_set.csv",
    "mass_case_description_test_set.csv",
    "calc_case_description_train_set.csv",
    "calc_case_description_test_set.csv",
]


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
    assert len(full) == summary["image_files"] >= summary["images"] > 12
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


def test_some_films_are_listed_in_both_tables_under_both_folders(tmp_path):
    summary = make_cbis_tree(
        tmp_path, patients=8, seed=5, size=(96, 72), workers=1, p_both_tables=0.5, p_split_differs=1.0
    )
    assert 0 < summary["images_in_both_tables"] < summary["images"]
    assert summary["image_files"] == summary["images"] + summary["images_in_both_tables"]
    rows = pd.concat([pd.read_csv(tmp_path / n, dtype=str).assign(csv=n) for n in CSVS])
    rows["film"] = rows["patient_id"] + "_" + rows["left or right breast"] + "_" + rows["image view"]
    rows["folder"] = rows["image file path"].str.split("/").str[0]
    twins = rows.groupby("film").filter(lambda g: g["csv"].str[:4].nunique() == 2)
    assert twins["film"].nunique() == summary["images_in_both_tables"]
    for _, g in twins.groupby("film"):
        folders = sorted(g["folder"].unique())
        assert [f.split("-")[0] for f in folders] == ["Calc", "Mass"]
        assert {f.split("_")[0].split("-")[1] for f in folders} == {"Training", "Test"}  # p_split_differs=1
        files = [next((tmp_path / "CBIS-DDSM" / f).glob("*/*/1-1.dcm")) for f in folders]
        assert np.array_equal(read_mammogram(files[0])[0], read_mammogram(files[1])[0])  # the same film twice
        for table in ("mass", "calc"):
            les = g[g["csv"].str.startswith(table)]
            assert set(les["abnormality type"]) == {"mass" if table == "mass" else "calcification"}
            assert les["folder"].str.startswith(table.capitalize()).all()
            assert all(
                list((tmp_path / "CBIS-DDSM").glob(f"{f}_{k}/*/*/1-1.dcm"))
                for f, k in zip(les["folder"], les["abnormality id"])
            )

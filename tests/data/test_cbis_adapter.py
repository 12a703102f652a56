from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from mammo_monai.data.adapters import load_cbis_ddsm
from mammo_monai.data.adapters.cbis_ddsm import read_cbis_csv
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree, write_dicom
from tests.conftest import make_breast

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cbis-ddsm"


def build_old_layout(root: Path, unknown_pathology: bool = False, missing_image: str | None = None) -> Path:
    """The fixture CSVs (real rows) plus small synthetic DICOMs at the old-layout paths they name."""
    root.mkdir(parents=True, exist_ok=True)
    for csv in FIXTURES.glob("*.csv"):
        shutil.copy(csv, root / csv.name)
    if unknown_pathology:
        path = root / "mass_case_description_train_set.csv"
        path.write_text(path.read_text().replace("BENIGN,3,Mass-Training_P_00004_LEFT_CC", "UNSURE,3,Mass-Training_P_00004_LEFT_CC"))
    table = pd.concat([read_cbis_csv(p) for p in root.glob("*.csv")])
    for i, r in enumerate(table.to_dict("records")):
        side = "L" if r["left or right breast"] == "LEFT" else "R"
        pixels, _, lesion = make_breast((96, 72), side=side, seed=i)
        if r["image file path"].split("/")[0] != missing_image:
            write_dicom(root / r["image file path"], pixels, laterality=side, view=r["image view"])
        write_dicom(root / r["ROI mask file path"], lesion.astype(np.uint8) * 255)
        write_dicom(root / r["cropped image file path"], pixels[:20, :20].copy())
    return root


def test_real_rows_give_labels_patients_and_lesions(tmp_path):
    found = load_cbis_ddsm(build_old_layout(tmp_path / "cbis"))
    images = found.images.set_index("image_id")
    assert len(images) == 9 and not found.errors
    assert images.loc["Mass-Training_P_00001_LEFT_CC", "label"] == 1
    assert images.loc["Calc-Test_P_00038_RIGHT_CC", "label"] == 0  # BENIGN_WITHOUT_CALLBACK is benign
    assert images.loc["Calc-Test_P_00038_RIGHT_CC", "patient_id"] == "P_00038"
    assert images.loc["Mass-Training_P_00004_RIGHT_MLO", "laterality"] == "R"
    assert len(found.lesions) == 11 and set(found.lesions["pathology"]) == {"malignant", "benign"}
    masks = found.lesions["mask"].map(lambda p: Path(p).name)
    assert set(masks) == {"000000.dcm", "000001.dcm"}  # calc and mass files number the mask differently


def test_unknown_pathology_and_missing_image_are_reported_and_the_rest_kept(tmp_path):
    root = build_old_layout(tmp_path / "cbis", unknown_pathology=True, missing_image="Calc-Test_P_00038_LEFT_MLO")
    found = load_cbis_ddsm(root)
    reasons = " | ".join(f"{e['file']}: {e['reason']}" for e in found.errors)
    assert "unknown pathology 'UNSURE'" in reasons and "Calc-Test_P_00038_LEFT_MLO" in reasons
    assert len(found.images) == 7 and "Mass-Training_P_00004_LEFT_CC" not in set(found.images["image_id"])


def test_official_split_keeps_training_and_test(tmp_path):
    found = load_cbis_ddsm(build_old_layout(tmp_path / "cbis"), official_split=True)
    split = dict(zip(found.images["image_id"], found.images["split"]))
    assert split["Calc-Test_P_00038_LEFT_CC"] == "test" and split["Mass-Training_P_00001_LEFT_CC"] == "train"


@pytest.fixture(scope="module")
def synth_manifest(tmp_path_factory):
    base = tmp_path_factory.mktemp("synth")
    summary = make_cbis_tree(base / "raw", patients=8, seed=1, size=(192, 150), workers=1, p_mask_off=1.0)
    result = prepare("cbis-ddsm", base / "raw", base / "manifest", size=(96, 72), workers=1, progress=False)
    return base, summary, result


def test_synthetic_tree_goes_through_unchanged(synth_manifest):
    base, summary, result = synth_manifest
    images = pd.read_csv(base / "manifest" / "images.csv")
    lesions = pd.read_csv(base / "manifest" / "lesions.csv")
    errors = pd.read_csv(base / "manifest" / "errors.csv")
    assert len(images) == summary["images"] and len(lesions) == summary["lesions"]
    assert result["failed_images"] == 0
    off = sum((pydicom.dcmread(m, stop_before_pixels=True).Rows, pydicom.dcmread(m, stop_before_pixels=True).Columns) != (192, 150)
              for m in lesions["mask"])
    assert off > 0 and errors["reason"].str.contains("differs from the image's").sum() == off
    assert all(Path(p).is_file() for p in images["image"]) and all(Path(p).is_file() for p in lesions["cached_mask"])
    assert (images["laterality"].isin(["L", "R"])).all() and (images["flipped"] == (images["laterality"] == "R")).all()
    assert lesions[["center_row", "center_col", "radius"]].notna().all().all()
    # lesion centres are in the ORIGINAL 192 x 150 pixels
    assert lesions["center_row"].max() < 192 and lesions["center_col"].max() < 150


def test_prepare_rerun_skips_cached_images(synth_manifest):
    base, _, _ = synth_manifest
    first = sorted((base / "manifest" / "images").glob("*.png"))[0]
    stamp = first.stat().st_mtime_ns
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(96, 72), workers=1, progress=False)
    assert first.stat().st_mtime_ns == stamp

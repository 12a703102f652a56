from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from mammo_monai.data.adapters import DatasetTableError, load_cbis_ddsm
from mammo_monai.data.adapters.cbis_ddsm import read_cbis_csv
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree, write_dicom
from tests.conftest import make_breast

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cbis-ddsm"
# P_00001's left CC film listed again in the calcification TEST table (P_00001 is in mass TRAINING)
CALC_TWIN = (
    "P_00001,3,LEFT,CC,1,calcification,PLEOMORPHIC,CLUSTERED,3,BENIGN,2,Calc-Test_P_00001_LEFT_CC/1.2.3/1.2.4/000000.dcm,"
    '"Calc-Test_P_00001_LEFT_CC_1/1.2.5/1.2.6/000001.dcm\n",Calc-Test_P_00001_LEFT_CC_1/1.2.5/1.2.6/000000.dcm\n'
)


def build_old_layout(
    root: Path, unknown_pathology: bool = False, missing_image: str | None = None, twin: bool = False
) -> Path:
    """The fixture CSVs (real rows) plus small synthetic DICOMs at the old-layout paths they name;
    ``twin`` adds :data:`CALC_TWIN`, ``missing_image`` leaves that case folder's full image out."""
    root.mkdir(parents=True, exist_ok=True)
    for csv in FIXTURES.glob("*.csv"):
        shutil.copy(csv, root / csv.name)
    if unknown_pathology:
        path = root / "mass_case_description_train_set.csv"
        path.write_text(
            path.read_text().replace("BENIGN,3,Mass-Training_P_00004_LEFT_CC", "UNSURE,3,Mass-Training_P_00004_LEFT_CC")
        )
    if twin:
        with open(root / "calc_case_description_test_set.csv", "a") as fh:
            fh.write(CALC_TWIN)
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
    assert len(images) == 9 and not found.errors and found.truth_rows == 11
    assert images.loc["P_00001_LEFT_CC", "label"] == 1
    assert images.loc["P_00038_RIGHT_CC", "label"] == 0  # BENIGN_WITHOUT_CALLBACK is benign
    assert images.loc["P_00038_RIGHT_CC", "patient_id"] == "P_00038"
    assert images.loc["P_00038_RIGHT_CC", "case_folders"] == "Calc-Test_P_00038_RIGHT_CC"
    assert images.loc["P_00004_RIGHT_MLO", "laterality"] == "R"
    assert len(found.lesions) == 11 and set(found.lesions["pathology"]) == {"malignant", "benign"}
    assert set(found.lesions["image_id"]) == set(images.index)
    masks = found.lesions["mask"].map(lambda p: Path(p).name)
    assert set(masks) == {"000000.dcm", "000001.dcm"}  # calc and mass files number the mask differently


def test_unknown_pathology_and_missing_image_are_reported_and_the_rest_kept(tmp_path):
    root = build_old_layout(tmp_path / "cbis", unknown_pathology=True, missing_image="Calc-Test_P_00038_LEFT_MLO")
    found = load_cbis_ddsm(root)
    reasons = " | ".join(f"{e['file']}: {e['reason']}" for e in found.errors)
    assert "unknown pathology 'UNSURE'" in reasons and "Calc-Test_P_00038_LEFT_MLO" in reasons
    assert len(found.images) == 7 and "P_00004_LEFT_CC" not in set(found.images["image_id"])
    assert "P_00004_LEFT_CC" not in set(found.lesions["image_id"])


def test_official_split_keeps_training_and_test(tmp_path):
    found = load_cbis_ddsm(build_old_layout(tmp_path / "cbis"), official_split=True)
    split = dict(zip(found.images["image_id"], found.images["split"]))
    assert split["P_00038_LEFT_CC"] == "test" and split["P_00001_LEFT_CC"] == "train"
    assert not found.errors


def test_a_film_in_both_tables_is_one_image_with_both_lesions(tmp_path):
    found = load_cbis_ddsm(build_old_layout(tmp_path / "cbis", twin=True))
    images = found.images.set_index("image_id")
    assert len(images) == 9 and images["image"].is_unique and found.truth_rows == 12
    twin = images.loc["P_00001_LEFT_CC"]
    assert twin["label"] == 1  # malignant mass + benign calcification
    assert twin["case_folders"] == "Mass-Training_P_00001_LEFT_CC;Calc-Test_P_00001_LEFT_CC"
    assert "Mass-Training_P_00001_LEFT_CC" in twin["image"]  # both on disk: the mass folder's file
    lesions = found.lesions[found.lesions["image_id"] == "P_00001_LEFT_CC"]
    assert sorted(zip(lesions["lesion_type"], lesions["pathology"])) == [("calc", "benign"), ("mass", "malignant")]
    assert (lesions["image"] == twin["image"]).all() and (lesions["mask"] != "").all()
    assert not found.errors  # the same film twice is not a problem


def test_a_film_in_both_tables_uses_the_file_that_exists(tmp_path):
    found = load_cbis_ddsm(
        build_old_layout(tmp_path / "cbis", twin=True, missing_image="Mass-Training_P_00001_LEFT_CC")
    )
    twin = found.images.set_index("image_id").loc["P_00001_LEFT_CC"]
    assert "Calc-Test_P_00001_LEFT_CC" in twin["image"] and Path(twin["image"]).is_file() and not found.errors


def test_official_split_puts_a_patient_of_both_parts_in_test_and_says_so(tmp_path):
    found = load_cbis_ddsm(build_old_layout(tmp_path / "cbis", twin=True), official_split=True)
    split = found.images.groupby("patient_id")["split"].agg(set).to_dict()
    assert split == {"P_00001": {"test"}, "P_00004": {"train"}, "P_00038": {"test"}}
    assert [e["reason"] for e in found.errors] == [
        "patient P_00001 is in the training part of mass_case_description_train_set.csv and the test part of "
        "calc_case_description_test_set.csv; put in test"
    ]


@pytest.mark.parametrize("column", ["pathology", "image file path"])
def test_a_csv_missing_a_column_gives_one_line_naming_it(tmp_path, column):
    root = build_old_layout(tmp_path / "cbis")
    path = root / "mass_case_description_train_set.csv"
    pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=[column]).to_csv(path, index=False)
    with pytest.raises(DatasetTableError) as info:
        load_cbis_ddsm(root)
    assert str(info.value) == f"{path}: missing column(s) {[column]}"


def test_symlink_loop_in_the_tree_is_reported(tmp_path):
    root = build_old_layout(tmp_path / "cbis")
    (root / "Mass-Training_P_00001_LEFT_CC" / "loop").symlink_to(root)
    found = load_cbis_ddsm(root)
    assert len(found.images) == 9
    assert [e["reason"].split(":")[0] for e in found.errors] == ["symlink loop"]


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
    off = sum(
        (pydicom.dcmread(m, stop_before_pixels=True).Rows, pydicom.dcmread(m, stop_before_pixels=True).Columns)
        != (192, 150)
        for m in lesions["mask"]
    )
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


def test_synthetic_films_in_both_tables_become_one_row_each(tmp_path):
    summary = make_cbis_tree(
        tmp_path, patients=6, seed=2, size=(96, 72), workers=1, p_both_tables=1.0, p_split_differs=0.5
    )
    table = pd.concat([read_cbis_csv(p) for p in sorted(tmp_path.glob("*.csv"))])
    table["film"] = table["patient_id"] + "_" + table["left or right breast"] + "_" + table["image view"]
    found = load_cbis_ddsm(tmp_path, official_split=True)
    images = found.images.set_index("image_id")
    assert summary["image_files"] == 2 * summary["images"] == 2 * len(images)
    assert sorted(images.index) == sorted(table["film"].unique())
    assert (images["case_folders"].str.count(";") == 1).all()
    kinds = found.lesions.groupby("image_id")["lesion_type"].agg(set)
    assert kinds.map(lambda k: k == {"mass", "calc"}).all() and len(found.lesions) == len(table) == summary["lesions"]
    malignant = table.groupby("film")["pathology"].agg(lambda s: int((s == "MALIGNANT").any()))
    assert images["label"].to_dict() == malignant.to_dict()
    assert found.images.groupby("patient_id")["split"].nunique().max() == 1
    moved = {e["file"] for e in found.errors if "put in test" in e["reason"]}
    part = table["image file path"].str.extract(r"-(Training|Test)_", expand=False)
    parts = table.assign(part=part).groupby("patient_id")["part"].nunique()
    assert moved == set(parts.index[parts > 1]) and moved  # seed 2 gives such a patient
    assert set(found.images.loc[found.images["patient_id"].isin(moved), "split"]) == {"test"}

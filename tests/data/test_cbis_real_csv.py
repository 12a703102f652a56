"""The merge of the mass and calcification tables, checked on the four real CBIS-DDSM CSVs (no DICOMs)."""

from __future__ import annotations

import pandas as pd
import pytest

from mammo_monai.data.adapters.cbis_tables import find_csvs, merge_images, read_cbis_csv
from tests.conftest import SHARED

REAL = SHARED / "data" / "cbis-ddsm"


@pytest.fixture(scope="module")
def table():
    csvs = find_csvs(REAL) if REAL.is_dir() else []
    if len(csvs) != 4:
        pytest.skip("the four real CBIS-DDSM CSVs are not in ../shared/data/cbis-ddsm")
    return pd.concat([read_cbis_csv(p) for p in csvs], ignore_index=True)


@pytest.fixture(scope="module")
def merged(table):
    return merge_images(table, official_split=True)


def test_one_row_per_physical_film(table, merged):
    images, lesions, _ = merged
    assert len(table) == 3568 and table["image file path"].str.split("/").str[0].nunique() == 3103
    assert len(images) == 3032 and images["image_id"].is_unique
    assert images["image_id"].str.fullmatch(r"P_\d{5}_(LEFT|RIGHT)_(CC|MLO)").all()
    assert len(lesions) == len(table) and set(lesions["image_id"]) == set(images["image_id"])


def test_the_71_films_of_both_tables_carry_both_lesion_types(merged):
    images, lesions, _ = merged
    both = images[images["case_folders"].str.contains(";")]
    assert len(both) == 71
    assert both["case_folders"].str.match(r"Mass-").all()  # the mass folder is tried first
    kinds = lesions[lesions["image_id"].isin(both["image_id"])].groupby("image_id")["lesion_type"].agg(set)
    assert kinds.map(lambda k: k == {"mass", "calc"}).all() and len(kinds) == 71


def test_16_films_whose_tables_disagree_are_malignant(merged):
    images, lesions, _ = merged
    per_table = (
        lesions.assign(m=lesions["pathology"] == "malignant").groupby(["image_id", "lesion_type"])["m"].any().unstack()
    )
    conflict = per_table.dropna()
    conflict = conflict[conflict["mass"] != conflict["calc"]]
    assert len(conflict) == 16
    assert (images.set_index("image_id").loc[conflict.index, "label"] == 1).all()
    label = lesions.groupby("image_id")["pathology"].agg(lambda s: int((s == "malignant").any()))
    assert images.set_index("image_id")["label"].equals(label.reindex(images["image_id"]).rename("label"))


def test_official_split_moves_31_patients_to_test_and_no_patient_is_in_two_splits(merged):
    images, _, errors = merged
    moved = [e["file"] for e in errors if e["reason"].endswith("; put in test")]
    assert len(moved) == 31 and len(errors) == 31
    assert images.groupby("patient_id")["split"].nunique().max() == 1
    assert set(images["split"]) == {"train", "test"}
    assert set(images.loc[images["patient_id"].isin(moved), "split"]) == {"test"}
    first = next(e["reason"] for e in errors if e["file"] == "P_00016")
    assert first == (
        "patient P_00016 is in the training part of calc_case_description_train_set.csv "
        "and the test part of mass_case_description_test_set.csv; put in test"
    )

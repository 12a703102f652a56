from __future__ import annotations

import pandas as pd
import pytest

from mammo_monai.data.adapters import load_cbis_ddsm
from mammo_monai.data.adapters.cbis_ddsm import read_cbis_csv
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree
from tests.data.test_cbis_adapter import build_old_layout


@pytest.fixture(scope="module")
def doubled(tmp_path_factory):
    root = tmp_path_factory.mktemp("doubled")
    summary = make_cbis_tree(root, patients=3, seed=1, size=(96, 72), workers=1, p_duplicate_row=0.3)
    return root, summary


def test_synthetic_tree_writes_some_truth_rows_twice(doubled):
    root, summary = doubled
    table = pd.concat([read_cbis_csv(p) for p in sorted(root.glob("*.csv"))], ignore_index=True)
    repeated = table.drop(columns="csv").duplicated().sum()
    assert summary["duplicated_rows"] == repeated > 0
    assert len(table) == summary["lesions"] + summary["duplicated_rows"]


def test_a_duplicated_truth_row_is_one_lesion_and_reported(doubled):
    root, summary = doubled
    found = load_cbis_ddsm(root)
    assert found.truth_rows == summary["lesions"] + summary["duplicated_rows"]
    assert len(found.lesions) == summary["lesions"]
    assert not found.lesions.duplicated(["case_folder", "abnormality_id"]).any()
    reported = [e for e in found.errors if "listed 2 times (in identical rows); the first row kept" in e["reason"]]
    assert len(reported) == summary["duplicated_rows"]
    assert all(" abnormality " in e["file"] and e["file"].split(":")[0].endswith(".csv") for e in reported)


def test_prepare_writes_the_duplicate_to_errors_csv_and_one_lesion(doubled, tmp_path):
    root, summary = doubled
    result = prepare("cbis-ddsm", root, tmp_path / "m", size=(48, 36), workers=1, progress=False)
    lesions = pd.read_csv(tmp_path / "m" / "lesions.csv")
    errors = pd.read_csv(tmp_path / "m" / "errors.csv")
    assert result["lesions"] == len(lesions) == summary["lesions"]
    assert errors["reason"].str.contains("listed 2 times").sum() == summary["duplicated_rows"]


def test_rows_that_disagree_on_one_abnormality_name_the_columns(tmp_path):
    root = build_old_layout(tmp_path / "cbis")
    path = root / "mass_case_description_train_set.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    again = table[table["patient_id"] == "P_00001"].head(1).assign(pathology="BENIGN")
    assert (table.loc[again.index, "pathology"] == "MALIGNANT").all()
    pd.concat([table, again]).to_csv(path, index=False)
    found = load_cbis_ddsm(root)
    reasons = [e["reason"] for e in found.errors]
    assert reasons == ["abnormality listed 2 times (with different ['pathology']); the first row kept"]
    assert len(found.lesions) == 11 and found.truth_rows == 12
    assert found.images.set_index("image_id").loc["P_00001_LEFT_CC", "label"] == 1  # the first row's pathology

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.data.adapters import ADAPTERS, DatasetTableError, load_cmmd
from mammo_monai.synthetic.cmmd_tree import make_cmmd_tree, write_clinical_table

SIZE = (160, 128)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmmd")
    return root, make_cmmd_tree(root, patients=6, seed=2, size=SIZE)


@pytest.fixture
def copy(tree, tmp_path):
    root, _ = tree
    shutil.copytree(root, tmp_path / "cmmd")
    return tmp_path / "cmmd", tmp_path / "cmmd" / "CMMD_clinicaldata_revision.xlsx"


def _edit_table(path: Path, edit) -> None:
    table = pd.read_excel(path, dtype=str, keep_default_na=False)
    write_clinical_table(edit(table), path)


def test_every_image_gets_its_breast_pathology_and_header_side_and_view(tree):
    root, truth = tree
    found = load_cmmd(root)
    assert ADAPTERS["cmmd"] is load_cmmd
    assert found.errors == [] and len(found.images) == len(truth["images"]) == 16 and found.truth_rows == 8
    got = found.images.set_index("image")
    for t in truth["images"]:
        row = got.loc[t["path"]]
        assert (row.patient_id, row.laterality, row.view, row.label) == (
            t["patient_id"],
            t["laterality"],
            t["view"],
            t["label"],
        )
    assert set(found.images["label"]) == {0, 1} and set(found.images["label_source"]) == {"pathology"}
    assert found.lesions.empty and found.images["split"].eq("").all()


def test_patients_imaged_on_both_breasts_group_under_one_id(tree):
    root, _ = tree
    images = load_cmmd(root).images
    sides = images.groupby("patient_id")["laterality"].nunique()
    assert sides.max() == 2 and sides.min() == 1 and images["patient_id"].nunique() == 6
    assert images.loc[images["patient_id"].str.startswith("D1"), "subtype"].eq("").all()


def test_csv_export_with_semicolons_reads_the_same(copy):
    root, xlsx = copy
    table = pd.read_excel(xlsx, dtype=str, keep_default_na=False)
    xlsx.unlink()
    table.to_csv(root / "CMMD_clinicaldata_revision.csv", sep=";", index=False)
    assert len(load_cmmd(root).images) == 16


def test_missing_column_is_one_line_naming_the_file(copy):
    root, xlsx = copy
    _edit_table(xlsx, lambda t: t.drop(columns="classification"))
    with pytest.raises(
        DatasetTableError, match=r"CMMD_clinicaldata_revision\.xlsx: missing column\(s\) \['classification'\]"
    ):
        load_cmmd(root)


def test_unknown_classification_skips_that_breast_with_one_row(copy):
    root, xlsx = copy
    _edit_table(xlsx, lambda t: t.assign(classification=["Unclear", *t["classification"][1:]]))
    first = pd.read_excel(xlsx, dtype=str).iloc[0]
    found = load_cmmd(root)
    breast = f"{first['ID1']} {first['LeftRight']}"
    assert [e["reason"] for e in found.errors if breast in e["file"]] == [
        "unknown classification 'Unclear'; breast skipped"
    ]
    assert not ((found.images["patient_id"] == first["ID1"]) & (found.images["laterality"] == first["LeftRight"])).any()


def test_listed_breast_without_images_is_an_error_row(copy):
    root, _ = copy
    folder = next((root).rglob("D2-0002"))
    shutil.rmtree(folder)
    found = load_cmmd(root)
    assert len(found.images) == 14
    assert [e["reason"] for e in found.errors] == ["listed but no image of it found"]
    assert "D2-0002" in found.errors[0]["file"]

from __future__ import annotations

import os
import plistlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.data.adapters import DatasetTableError, load_folder, load_inbreast, load_mias, load_rsna, walk_files
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import write_dicom
from tests.conftest import make_breast

INFO = """Reference number, background tissue, class, severity, x, y, radius
mdb001 G CIRC B 40 80 10
mdb002 F NORM
mdb003 D SPIC M 40 60 8
mdb003 D CALC M 45 70 5
mdb004 F CIRC B
mdb005 G CIRC B 400 400 10
"""


def build_mias(root):
    root.mkdir()
    (root / "Info.txt").write_text(INFO)
    for n in range(1, 6):
        pixels, *_ = make_breast((128, 128), side="L" if n % 2 else "R", seed=n, with_lesion=False)
        Image.fromarray((pixels // 256).astype(np.uint8)).save(root / f"mdb{n:03d}.pgm")
    return root


def test_mias_bottom_origin_pairs_and_missing_coordinates(tmp_path):
    found = load_mias(build_mias(tmp_path / "mias"))
    images = found.images.set_index("image_id")
    assert (
        images.loc["mdb001", "patient_id"] == images.loc["mdb002", "patient_id"] != images.loc["mdb003", "patient_id"]
    )
    assert images["label"].to_dict() == {"mdb001": 0, "mdb002": 0, "mdb003": 1, "mdb004": 0, "mdb005": 0}
    first = found.lesions.iloc[0]
    assert (first["center_row"], first["center_col"], first["radius"]) == (128 - 80, 40, 10)
    assert found.lesions[found.lesions.image_id == "mdb003"]["lesion_type"].tolist() == ["mass", "calc"]
    assert any("mdb004: no coordinates" in e["reason"] for e in found.errors)
    assert (images["view"] == "MLO").all() and (images["laterality"] == "").all()
    assert found.truth_rows == 6


def test_mias_prepare_infers_side_and_reports_lesion_outside_image(tmp_path):
    summary = prepare("mias", build_mias(tmp_path / "mias"), tmp_path / "out", size=(64, 64), workers=1, progress=False)
    images = pd.read_csv(tmp_path / "out" / "images.csv").set_index("image_id")
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert images.loc["mdb001", "laterality"] == "L" and images.loc["mdb002", "laterality"] == "R"
    assert errors["reason"].str.contains(r"lesion centre \(-272, 400\) lies outside").any()
    assert summary["images"] == 5 and summary["failed_images"] == 0


def test_inbreast_birads_cut_patient_key_and_xml_outline(tmp_path):
    root = tmp_path / "INbreast"
    (root / "AllDICOMs").mkdir(parents=True)
    (root / "AllXML").mkdir()
    (root / "INbreast.csv").write_text(
        "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads\n"
        "removed;removed;L;CC;200903;11111111;2;4c\nremoved;removed;R;CC;200903;22222222;2;2\n"
        "removed;removed;R;MLO;200903;33333333;2;3\n"
    )
    for fid, side in (("11111111", "L"), ("22222222", "R"), ("33333333", "R")):
        write_dicom(
            root / "AllDICOMs" / f"{fid}_abcdef0123456789_MG_{side}_{'ML' if fid[0] == '3' else 'CC'}_ANON.dcm",
            make_breast()[0],
        )
    (root / "AllDICOMs" / "badname.dcm").write_bytes(b"")
    plist = {
        "Images": [
            {
                "ROIs": [
                    {"Name": "Mass", "Point_px": ["(10, 20)", "(30, 20)", "(20, 40)"]},
                    {"Name": "Spiculated Region", "Point_px": ["(1, 1)"]},
                ]
            }
        ]
    }
    with open(root / "AllXML" / "11111111.xml", "wb") as fh:
        plistlib.dump(plist, fh)
    found = load_inbreast(root)
    images = found.images.set_index("image_id")
    assert images["label"].to_dict() == {"11111111": 1, "22222222": 0, "33333333": 0}
    assert images["patient_id"].nunique() == 1 and images.loc["33333333", "view"] == "ML"
    lesion = found.lesions.iloc[0]
    assert len(found.lesions) == 1 and lesion["lesion_type"] == "mass" and lesion["pathology"] == "malignant"
    assert (lesion["center_row"], lesion["center_col"]) == (round(80 / 3, 1), 20.0)
    # Point_px (x, y): rows 20..40, columns 10..30 are outline pixels; the half-open box ends one past them
    assert [lesion[c] for c in ("box_row0", "box_col0", "box_row1", "box_col1")] == [20.0, 10.0, 41.0, 31.0]
    assert any("badname.dcm" in e["file"] for e in found.errors)
    assert load_inbreast(root, birads_cut=3).images.set_index("image_id").loc["33333333", "label"] == 1


def test_rsna_exam_ids_and_missing_files(tmp_path):
    root = tmp_path / "rsna"
    (root / "train_images" / "10006").mkdir(parents=True)
    pd.DataFrame(
        {
            "site_id": [2, 2, 2],
            "patient_id": ["10006"] * 3,
            "image_id": ["462822612", "1459541791", "999"],
            "laterality": ["L", "R", "R"],
            "view": ["CC", "MLO", "CC"],
            "age": [61, 61, 61],
            "cancer": [0, 1, 1],
        }
    ).to_csv(root / "train.csv", index=False)
    for image_id in ("462822612", "1459541791"):
        write_dicom(root / "train_images" / "10006" / f"{image_id}.dcm", make_breast()[0])
    found = load_rsna(root)
    assert found.images["exam"].tolist() == ["10006_L", "10006_R"] and found.images["label"].tolist() == [0, 1]
    assert len(found.errors) == 1 and "999.dcm" in found.errors[0]["file"] and found.truth_rows == 3


def test_folder_layout_keeps_split_and_class(tmp_path):
    for split, cls, name in (
        ("train", "neg", "a_L_CC.png"),
        ("train", "pos", "b.png"),
        ("test", "pos", "c.tif"),
        ("odd", "pos", "d.png"),
    ):
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_breast()[0]).save(tmp_path / split / cls / name)
    found = load_folder(tmp_path)
    table = found.images.set_index("image_id")
    assert table["split"].to_dict() == {"test__pos__c": "test", "train__neg__a_L_CC": "train", "train__pos__b": "train"}
    assert table["label"].to_dict() == {"test__pos__c": 1, "train__neg__a_L_CC": 0, "train__pos__b": 1}
    assert table.loc["train__neg__a_L_CC", "laterality"] == "L" and (table["patient_id"] == table.index).all()
    assert any("odd" in e["file"] for e in found.errors) and found.truth_rows is None


NOTES = """mdb001 G CIRC B 40 80 10
mdb002 D CALC M *NOTE 3*
mdb003 F CIRC B
mdb004 G CIRC B *60 70 5
mdb005 D CALC
mdb006 F NORM
mdb007 a broken row
"""


def test_mias_notes_missing_coordinates_and_a_corrupt_pgm_keep_or_report_each_image(tmp_path):
    root = tmp_path / "mias"
    root.mkdir()
    (root / "Info.txt").write_text(NOTES)
    for n in (1, 2, 3, 4, 5, 7, 8):
        Image.fromarray(np.full((100, 80), 50, np.uint8)).save(root / f"mdb{n:03d}.pgm")
    (root / "mdb006.pgm").write_bytes(b"P5\nnot a header at all")
    found = load_mias(root)
    images = found.images.set_index("image_id")
    errors = {e["file"]: e["reason"] for e in found.errors}
    assert found.truth_rows == 7
    assert images["label"].to_dict() == {"mdb001": 0, "mdb002": 1, "mdb003": 0, "mdb004": 0}
    lesions = found.lesions.set_index("image_id")
    assert lesions.loc[["mdb002", "mdb003"], "center_row"].isna().all() and lesions.loc["mdb002", "note"] == "*NOTE 3*"
    assert lesions.loc["mdb002", ["lesion_type", "pathology"]].tolist() == ["calc", "malignant"]
    assert (lesions.loc["mdb004", "center_row"], lesions.loc["mdb004", "center_col"]) == (100 - 70, 60)
    assert errors["Info.txt:2"] == "mdb002: note '*NOTE 3*' instead of coordinates; lesion kept without geometry"
    assert errors["Info.txt:3"] == "mdb003: no coordinates; lesion kept without geometry"
    assert errors["mdb005.pgm"].startswith("label unknown (an abnormal row without severity")
    assert errors["mdb007.pgm"].startswith("label unknown (an unparsable row") and "Info.txt:7" in errors
    assert errors[str(root / "mdb006.pgm")].startswith("cannot be read (")
    assert errors[str(root / "mdb008.pgm")] == "not listed in Info.txt; skipped"


def _inbreast(root, header="File Name;Bi-Rads", rows=("11111111;4a",)):
    (root / "AllDICOMs").mkdir(parents=True)
    (root / "INbreast.csv").write_text("\n".join([header, *rows]) + "\n")
    write_dicom(root / "AllDICOMs" / "11111111_abcdef0123456789_MG_L_CC_ANON.dcm", make_breast()[0])
    return root


def test_inbreast_table_without_a_column_names_it_and_a_broken_xml_keeps_the_image(tmp_path):
    root = _inbreast(tmp_path / "a", header="File Name;BIRADS")
    with pytest.raises(DatasetTableError, match=r"INbreast.csv: missing column\(s\) \['Bi-Rads'\]$"):
        load_inbreast(root)
    root = _inbreast(tmp_path / "b")
    (root / "AllXML").mkdir()
    (root / "AllXML" / "11111111.xml").write_text("<plist><dict>truncated")
    found = load_inbreast(root)
    assert found.images["label"].tolist() == [1] and found.lesions.empty and found.truth_rows == 1
    assert "ROI file cannot be read" in found.errors[0]["reason"]


def test_rsna_table_without_a_column_names_it_and_bad_labels_are_rows(tmp_path):
    (tmp_path / "train_images" / "1").mkdir(parents=True)
    pd.DataFrame({"patient_id": ["1"], "image_id": ["2"], "laterality": ["L"], "view": ["CC"]}).to_csv(
        tmp_path / "train.csv", index=False
    )
    with pytest.raises(DatasetTableError) as info:
        load_rsna(tmp_path)
    assert str(info.value) == f"{tmp_path / 'train.csv'}: missing column(s) ['cancer']"
    pd.DataFrame(
        {
            "patient_id": ["1", "1"],
            "image_id": ["2", "3"],
            "laterality": ["L", "R"],
            "view": ["CC", "CC"],
            "cancer": ["1", "maybe"],
        }
    ).to_csv(tmp_path / "train.csv", index=False)
    for i in ("2", "3"):
        write_dicom(tmp_path / "train_images" / "1" / f"{i}.dcm", make_breast()[0])
    found = load_rsna(tmp_path)
    assert found.images["image_id"].tolist() == ["1_2"] and found.truth_rows == 2
    assert found.errors == [{"file": "train.csv: image 3", "reason": "cancer 'maybe' is not 0 or 1; skipped"}]


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_breast((48, 36))[0]).save(path)


def test_folder_same_names_in_two_folders_are_two_patients_and_duplicate_ids_are_reported(tmp_path):
    for rel in ("train/pos/case1/img.png", "train/pos/case2/img.png", "train/neg/a.png", "train/neg/a.tif"):
        _png(tmp_path / rel)
    found = load_folder(tmp_path)
    table = found.images.set_index("image_id")
    assert sorted(table.index) == ["train__neg__a", "train__pos__case1__img", "train__pos__case2__img"]
    assert table["patient_id"].is_unique and table.loc["train__neg__a", "image"].endswith("a.png")
    assert found.errors == [
        {
            "file": str(tmp_path / "train/neg/a.tif"),
            "reason": f"image id 'train__neg__a' already used by {tmp_path / 'train/neg/a.png'}; skipped",
        }
    ]


def test_folder_patients_csv_groups_files_and_reports_what_does_not_match(tmp_path):
    for rel in ("train/pos/case1/img.png", "train/pos/case2/img.png", "test/neg/x.png", "val/neg/y.png"):
        _png(tmp_path / rel)
    mapping = tmp_path.parent / "patients.csv"
    pd.DataFrame(
        {
            "file": [
                "train/pos/case1/img.png",
                str(tmp_path / "train/pos/case2/img.png"),
                "test/neg/x.png",
                "gone.png",
            ],
            "patient_id": ["W1", "W1", "W1", "W2"],
        }
    ).to_csv(mapping, index=False)
    found = load_folder(tmp_path, patients_csv=mapping)
    assert found.images.set_index("image_id")["patient_id"].to_dict() == {
        "test__neg__x": "W1",
        "train__pos__case1__img": "W1",
        "train__pos__case2__img": "W1",
        "val__neg__y": "val__neg__y",
    }
    reasons = {e["file"]: e["reason"] for e in found.errors}
    assert reasons == {
        str(tmp_path / "val/neg/y.png"): "not in the patients CSV; its own patient",
        "gone.png": f"listed in patients.csv but not found under {tmp_path}",
        "W1": "patient W1 has images in the test and train folders",
    }
    pd.DataFrame({"path": ["x"], "patient_id": ["1"]}).to_csv(mapping, index=False)
    with pytest.raises(DatasetTableError, match=r"missing column\(s\) \['file'\]"):
        load_folder(tmp_path, patients_csv=mapping)


def test_walk_reports_symlink_loops_repeated_folders_and_broken_links(tmp_path):
    _png(tmp_path / "train/pos/a/img.png")
    (tmp_path / "train/pos/a/loop").symlink_to(tmp_path / "train")
    (tmp_path / "train/pos/again").symlink_to(tmp_path / "train/pos/a")
    (tmp_path / "train/pos/dead.png").symlink_to(tmp_path / "nowhere.png")
    errors = []
    files = walk_files(tmp_path, errors)
    assert files == [tmp_path / "train/pos/a/img.png"]
    assert {e["file"]: e["reason"].split(" (")[0].split(";")[0] for e in errors} == {
        str(tmp_path / "train/pos/a/loop"): f"symlink loop: points back to {tmp_path / 'train'}",
        str(tmp_path / "train/pos/again"): "symlink to a folder already read",
        str(tmp_path / "train/pos/dead.png"): "broken symlink",
    }
    found = load_folder(tmp_path)
    assert len(found.images) == 1 and len(found.errors) == 3


def test_unreadable_folders_are_reported(tmp_path, monkeypatch):
    _png(tmp_path / "train/pos/a/img.png")
    _png(tmp_path / "train/pos/locked/img.png")
    real_scandir = os.scandir

    def scandir(path="."):  # what a chmod 000 folder does for a user who is not root
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = load_folder(tmp_path)
    assert found.images["image_id"].tolist() == ["train__pos__a__img"]
    assert found.errors == [
        {"file": str(tmp_path / "train/pos/locked"), "reason": "folder cannot be read (Permission denied); skipped"}
    ]


def test_chmod_000_folder_is_reported(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 folder; the monkeypatched test covers the logic")
    _png(tmp_path / "train/pos/locked/img.png")
    (tmp_path / "train/pos/locked").chmod(0)
    try:
        errors = []
        assert walk_files(tmp_path, errors) == [] and "cannot be read" in errors[0]["reason"]
    finally:
        (tmp_path / "train/pos/locked").chmod(0o755)

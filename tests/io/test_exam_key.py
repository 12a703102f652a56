"""Exam, patient and breast keys: from the DICOM study and patient, else a file-name pattern, else the
folder; salted hashes that never hold the identifier they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from mammo_monai.evaluation.report import exam_key
from mammo_monai.io import read_mammogram
from mammo_monai.io.exam_key import (
    BY_DICOM_CASE,
    BY_FILE,
    BY_FOLDER,
    BY_NAME,
    breast_key,
    hashed_key,
    image_keys,
    name_group,
)


def _exam(path) -> str:
    return image_keys(path)["exam_key"]


def test_nyu_names_group_by_their_exam_number_within_a_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _exam(a / "0_L-CC.png") == _exam(a / "0_R-MLO.png") == _exam(a / "0_LMLO.png")
    assert _exam(a / "0_L-CC.png") != _exam(a / "1_L-CC.png")
    assert _exam(a / "0_L-CC.png") != _exam(b / "0_L-CC.png")  # NYU numbers each folder's exams from 0
    assert _exam(a / "patient12_R_MLO.png") == _exam(a / "patient12_L_CC.png") != _exam(a / "patient13_L_CC.png")
    assert image_keys(a / "0_L-CC.png")["grouped_by"] == BY_NAME


def test_cbis_inbreast_and_mias_names_group_by_their_case():
    cbis = ("Mass-Training_P_00001_LEFT_CC.png", "x/Calc-Test_P_00001_RIGHT_MLO_1.png")
    assert _exam(cbis[0]) == _exam(cbis[1]) != _exam("Mass-Training_P_00002_LEFT_CC.png")
    tcia = "CBIS-DDSM/Mass-Training_P_00001_LEFT_CC/07-20-2016-DDSM-74994/1.000000-full mammogram images-24515/1-1.dcm"
    assert _exam(tcia) == _exam(cbis[0])  # the case three folders up
    inbreast = ("22678622_61b13c59bcba149e_MG_R_ML_ANON.dcm", "22678646_61b13c59bcba149e_MG_L_CC_ANON.dcm")
    assert _exam(inbreast[0]) == _exam(inbreast[1]) != _exam("20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm")
    assert _exam("mdb001.pgm") == _exam("mdb002.pgm") != _exam("mdb003.pgm")  # 2n-1 and 2n: one woman


def test_a_name_without_a_pattern_is_grouped_by_its_folder(tmp_path):
    keys = image_keys(tmp_path / "a" / "scan.png")
    assert keys["grouped_by"] == BY_FOLDER and keys["exam_key"] == _exam(tmp_path / "a" / "scan2.png")
    assert keys["exam_key"] != _exam(tmp_path / "b" / "scan.png")
    assert image_keys("/scan.png")["grouped_by"] == BY_FILE  # no folder to group by
    assert name_group(tmp_path / "scan.png") == "" and name_group(tmp_path / "L_CC.png") == ""


def test_dicom_study_and_patient_are_hashed_and_per_view_case_names_are_read(monkeypatch):
    uid, pid = "1.2.826.0.1.3680043.8.498.4242", "MRN0012345"
    keys = image_keys("x.dcm", pid, uid)
    assert keys == {
        "exam_key": hashed_key(uid, "study"),
        "patient_key": hashed_key(pid, "patient"),
        "grouped_by": "dicom study",
    }
    assert uid not in str(keys) and "12345" not in str(keys) and len(keys["exam_key"]) == 16
    prior = image_keys("y.dcm", pid, "1.2.3")  # another study of the same woman: her patient, another exam
    assert prior["patient_key"] == keys["patient_key"] and prior["exam_key"] != keys["exam_key"]
    # CBIS-DDSM: PatientID and StudyInstanceUID per view; the case in the ID is the exam
    left = image_keys("1-1.dcm", "Mass-Test_P_00173_LEFT_CC", "1.1")
    right = image_keys("1-2.dcm", "Calc-Test_P_00173_RIGHT_MLO", "1.2")
    assert left["exam_key"] == right["exam_key"] and left["grouped_by"] == BY_DICOM_CASE
    monkeypatch.setenv("MAMMO_MONAI_KEY_SALT", "site secret")  # a site's own salt: other keys
    assert image_keys("x.dcm", pid, uid)["exam_key"] != keys["exam_key"]


def test_reader_metadata_carries_hashed_keys_of_real_cbis_dicoms(real_dicoms):
    metas = [read_mammogram(p)[1] for p in real_dicoms]
    assert len({m["exam_key"] for m in metas}) == 2  # P_00173 and P_00820, 4 views each
    assert {m["grouped_by"] for m in metas} == {BY_DICOM_CASE}
    text = " ".join(str(v) for m in metas for k, v in m.items() if k != "source_path")
    assert "P_00" not in text and "1.3.6.1.4.1.9590" not in text  # no case name, no UID


def test_png_metadata_carries_the_name_group(tmp_path):
    Image.fromarray(np.full((20, 10), 100, np.uint8)).save(tmp_path / "3_R-CC.png")
    meta = read_mammogram(tmp_path / "3_R-CC.png")[1]
    assert meta["exam_key"] == _exam(tmp_path / "3_R-MLO.png") and meta["grouped_by"] == BY_NAME


def test_evaluate_builds_the_breast_key_with_the_same_function():
    table = pd.DataFrame({"patient_id": ["P1", "P1", "P2"], "laterality": ["L", "R", "L"]})
    assert exam_key(table).tolist() == [breast_key("P1", "L"), breast_key("P1", "R"), breast_key("P2", "L")]
    assert breast_key(table["patient_id"], table["laterality"]).tolist() == ["P1_L", "P1_R", "P2_L"]


def test_without_a_site_salt_each_installation_makes_its_own_secret_one(tmp_path, monkeypatch):
    from mammo_monai.io import exam_key

    monkeypatch.delenv("MAMMO_MONAI_KEY_SALT", raising=False)
    keys = []
    for install in ("a", "b"):
        monkeypatch.setattr(exam_key, "SALT_FILE", tmp_path / install / "key_salt")
        exam_key._installation_salt.cache_clear()
        keys.append(exam_key.hashed_key("12345", "patient"))
        assert (tmp_path / install / "key_salt").stat().st_mode & 0o077 == 0  # readable by its owner only
        exam_key._installation_salt.cache_clear()
        assert exam_key.hashed_key("12345", "patient") == keys[-1]  # kept: the same key on the next run
    exam_key._installation_salt.cache_clear()
    assert keys[0] != keys[1]  # no salt shipped with the code: a short ID cannot be recomputed from it

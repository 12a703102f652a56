from __future__ import annotations

import plistlib

import numpy as np
import pandas as pd
from PIL import Image

from mammo_monai.data.adapters import load_folder, load_inbreast, load_mias, load_rsna
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
    assert images.loc["mdb001", "patient_id"] == images.loc["mdb002", "patient_id"] != images.loc["mdb003", "patient_id"]
    assert images["label"].to_dict() == {"mdb001": 0, "mdb002": 0, "mdb003": 1, "mdb004": 0, "mdb005": 0}
    first = found.lesions.iloc[0]
    assert (first["center_row"], first["center_col"], first["radius"]) == (128 - 80, 40, 10)
    assert found.lesions[found.lesions.image_id == "mdb003"]["lesion_type"].tolist() == ["mass", "calc"]
    assert any("mdb004: no coordinates" in e["reason"] for e in found.errors)
    assert (images["view"] == "MLO").all() and (images["laterality"] == "").all()


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
        "removed;removed;R;MLO;200903;33333333;2;3\n")
    for fid, side in (("11111111", "L"), ("22222222", "R"), ("33333333", "R")):
        write_dicom(root / "AllDICOMs" / f"{fid}_abcdef0123456789_MG_{side}_{'ML' if fid[0] == '3' else 'CC'}_ANON.dcm", make_breast()[0])
    (root / "AllDICOMs" / "badname.dcm").write_bytes(b"")
    plist = {"Images": [{"ROIs": [{"Name": "Mass", "Point_px": ["(10, 20)", "(30, 20)", "(20, 40)"]},
                                  {"Name": "Spiculated Region", "Point_px": ["(1, 1)"]}]}]}
    with open(root / "AllXML" / "11111111.xml", "wb") as fh:
        plistlib.dump(plist, fh)
    found = load_inbreast(root)
    images = found.images.set_index("image_id")
    assert images["label"].to_dict() == {"11111111": 1, "22222222": 0, "33333333": 0}
    assert images["patient_id"].nunique() == 1 and images.loc["33333333", "view"] == "ML"
    lesion = found.lesions.iloc[0]
    assert len(found.lesions) == 1 and lesion["lesion_type"] == "mass" and lesion["pathology"] == "malignant"
    assert (lesion["center_row"], lesion["center_col"]) == (round(80 / 3, 1), 20.0)
    assert any("badname.dcm" in e["file"] for e in found.errors)
    assert load_inbreast(root, birads_cut=3).images.set_index("image_id").loc["33333333", "label"] == 1


def test_rsna_exam_ids_and_missing_files(tmp_path):
    root = tmp_path / "rsna"
    (root / "train_images" / "10006").mkdir(parents=True)
    pd.DataFrame({"site_id": [2, 2, 2], "patient_id": ["10006"] * 3, "image_id": ["462822612", "1459541791", "999"],
                  "laterality": ["L", "R", "R"], "view": ["CC", "MLO", "CC"], "age": [61, 61, 61], "cancer": [0, 1, 1]}
                 ).to_csv(root / "train.csv", index=False)
    for image_id in ("462822612", "1459541791"):
        write_dicom(root / "train_images" / "10006" / f"{image_id}.dcm", make_breast()[0])
    found = load_rsna(root)
    assert found.images["exam"].tolist() == ["10006_L", "10006_R"] and found.images["label"].tolist() == [0, 1]
    assert len(found.errors) == 1 and "999.dcm" in found.errors[0]["file"]


def test_folder_layout_keeps_split_and_class(tmp_path):
    for split, cls, name in (("train", "neg", "a_L_CC.png"), ("train", "pos", "b.png"), ("test", "pos", "c.tif"), ("odd", "pos", "d.png")):
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_breast()[0]).save(tmp_path / split / cls / name)
    found = load_folder(tmp_path)
    table = found.images.set_index("image_id")
    assert table["split"].to_dict() == {"train_neg_a_L_CC": "train", "train_pos_b": "train", "test_pos_c": "test"}
    assert table["label"].to_dict() == {"train_neg_a_L_CC": 0, "train_pos_b": 1, "test_pos_c": 1} and table.loc["train_neg_a_L_CC", "laterality"] == "L"
    assert any("odd" in e["file"] for e in found.errors)

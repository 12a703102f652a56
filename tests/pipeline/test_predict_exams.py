"""``predict`` groups images into breasts and exams by DICOM study and patient, else by file-name
pattern, else by folder, and writes a row for every breast and exam without an identifier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mammo_monai.inference.predict import COLUMNS, predict
from mammo_monai.networks import WholeImageClassifier
from mammo_monai.synthetic import write_dicom
from tests.conftest import BUNDLES, make_breast

SIZE = (64, 48)
#: identifiers that must never reach an output: two patients' IDs and their studies' UIDs
PATIENTS = {"PID-ALPHA-7731": "1.2.826.0.1.3680043.8.498.1111", "PID-BRAVO-4402": "1.2.826.0.1.3680043.8.498.2222"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A whole-image bundle with random weights at a tiny size (the grouping is under test, not the model)."""
    root = tmp_path_factory.mktemp("exams") / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", root, ignore=shutil.ignore_patterns("models"))
    (root / "models").mkdir()
    torch.manual_seed(0)
    net = WholeImageClassifier(arch="resnet18-narrow", dropout=0.0)
    with torch.no_grad():
        net.fc.weight.mul_(50.0)  # spread the probabilities, so that a mean differs from a max or a pick
    torch.save(net.state_dict(), root / "models" / "model.pt")
    meta = {"arch": "resnet18-narrow", "image_size": list(SIZE), "num_classes": 2}
    (root / "models" / "model_meta.json").write_text(json.dumps(meta))
    return root


def _png(path: Path, side: str = "L", seed: int = 0) -> Path:
    pixels, *_ = make_breast((160, 120), side, seed=seed, with_lesion=False)
    Image.fromarray((pixels >> 8).astype(np.uint8)).save(path)
    return path


def _run(bundle: Path, inputs, out: Path) -> pd.DataFrame:
    return predict(bundle, inputs, out, progress=False, backend="eager", batch_size=8)


def test_dicoms_of_two_patients_in_one_folder_are_two_exams_of_two_breasts(bundle, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    for n, (patient, study) in enumerate(PATIENTS.items()):
        for side in "LR":
            for view in ("CC", "MLO"):
                pixels, *_ = make_breast((160, 120), side, seed=len(list(folder.iterdir())), with_lesion=False)
                write_dicom(
                    folder / f"{n}{side}{view}.dcm",  # no name pattern: the header decides
                    pixels,
                    laterality=side,
                    view=view,
                    patient_id=patient,
                    study_uid=study,
                )
    table = _run(bundle, [str(folder)], tmp_path / "preds.csv")
    images, breasts, exams = (table[table["level"] == level] for level in ("image", "breast", "exam"))
    assert len(images) == 8 and (images["status"] == "ok").all()
    assert len(exams) == 2 and exams["n_views"].tolist() == [4, 4]
    assert len(breasts) == 4 and breasts["n_views"].tolist() == [2, 2, 2, 2]
    assert set(exams["grouped_by"]) == {"dicom study"}
    first = images[images["file"].str.contains("/0[LR]")]
    assert first["exam"].nunique() == 1 and first["patient"].nunique() == 1
    assert first["exam"].iloc[0] not in set(images.loc[~images.index.isin(first.index), "exam"])
    assert images["probability"].nunique() > 4  # the views differ, so the mean below is not a pick
    for _, b in breasts.iterrows():  # a breast is the mean of its views
        mine = images[(images["exam"] == b["exam"]) & (images["laterality"] == b["laterality"])]
        assert b["probability"] == pytest.approx(mine["probability"].mean())


def test_outputs_never_hold_the_study_uid_or_the_patient_id(bundle, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    for n, (patient, study) in enumerate(PATIENTS.items()):
        pixels, *_ = make_breast((160, 120), "L", seed=n, with_lesion=False)
        write_dicom(folder / f"{n}.dcm", pixels, laterality="L", view="CC", patient_id=patient, study_uid=study)
    _run(bundle, [str(folder)], tmp_path / "preds.csv")
    text = (tmp_path / "preds.csv").read_text()
    for patient, study in PATIENTS.items():
        assert patient not in text and study not in text
        assert patient.split("-")[1] not in text  # nor a recognisable part of the ID
    exams = pd.read_csv(tmp_path / "preds.csv").query("level == 'exam'")
    assert len(exams) == 2 and set(exams["grouped_by"]) == {"dicom study"}  # grouped by what was not written


def test_pngs_are_grouped_by_nyu_and_cbis_name_patterns(bundle, tmp_path):
    nyu = tmp_path / "nyu"
    nyu.mkdir()
    for name in ("0_L-CC", "0_R-CC", "0_L-MLO", "0_R-MLO", "1_L-CC", "1_R-CC", "1_L-MLO", "1_R-MLO"):
        _png(nyu / f"{name}.png", name.split("_")[1][0], seed=int(name[0]))
    cbis = tmp_path / "cbis"
    cbis.mkdir()
    for name in ("Mass-Test_P_00001_LEFT_CC", "Calc-Test_P_00001_LEFT_MLO", "Mass-Test_P_00002_RIGHT_CC"):
        _png(cbis / f"{name}.png", "L" if "LEFT" in name else "R")
    table = _run(bundle, [str(nyu), str(cbis)], tmp_path / "preds.csv")
    images = table[table["level"] == "image"].assign(stem=lambda t: t["file"].map(lambda f: Path(f).stem))
    exam = dict(zip(images["stem"], images["exam"]))
    assert exam["0_L-CC"] == exam["0_R-MLO"] != exam["1_L-CC"] == exam["1_R-MLO"]
    assert exam["Mass-Test_P_00001_LEFT_CC"] == exam["Calc-Test_P_00001_LEFT_MLO"] != exam["Mass-Test_P_00002_RIGHT_CC"]
    breasts, exams = table[table["level"] == "breast"], table[table["level"] == "exam"]
    assert len(exams) == 4 and set(exams["grouped_by"]) == {"file name"}
    assert sorted(breasts["n_views"]) == [1, 2, 2, 2, 2, 2]  # P_00002 has one view; its breast still has a row
    written = pd.read_csv(tmp_path / "preds.csv", dtype=str).drop(columns="file")  # the file is the user's own name
    assert not written.apply(lambda col: col.str.contains("P_0000", na=False)).any().any()
    assert "n_views" in (tmp_path / "preds.csv").read_text() and ",2," in (tmp_path / "preds.csv").read_text()


def test_pngs_without_a_pattern_are_grouped_by_their_folder_with_single_view_breasts(bundle, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _png(folder / "scan.png", "L")
    _png(folder / "other.png", "R", seed=1)
    _png(folder / "7_L-CC.png", "L", seed=2)
    _png(folder / "7_L-MLO.png", "L", seed=3)
    table = _run(bundle, [str(folder)], tmp_path / "preds.csv")
    images = table[table["level"] == "image"]
    images = images.set_index(images["file"].map(lambda f: Path(f).stem))
    breasts, exams = table[table["level"] == "breast"], table[table["level"] == "exam"]
    assert len(exams) == 2 and len(breasts) == 3  # the folder's scan + other (two breasts), exam 7 (one breast)
    lone = exams[exams["exam"] == images.loc["scan", "exam"]]
    assert len(lone) == 1 and lone["n_views"].iloc[0] == 2 and lone["grouped_by"].iloc[0] == "folder"
    single = breasts[breasts["exam"] == images.loc["scan", "exam"]].set_index("laterality")
    assert single["n_views"].tolist() == [1, 1]
    assert single.loc["L", "probability"] == pytest.approx(images.loc["scan", "probability"])
    assert images.loc["scan", "exam"] == images.loc["other", "exam"] != images.loc["7_L-CC", "exam"]


def test_predict_help_names_exactly_the_columns_written(bundle, tmp_path):
    import argparse
    import re

    from mammo_monai.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(sub.choices["predict"].description.split())
    listed = [c.strip("[] ") for c in re.search(r"Columns: (.*?)\. ", text).group(1).split(",")]
    _png(tmp_path / "scan.png")
    _run(bundle, [str(tmp_path / "scan.png")], tmp_path / "p.csv")
    written = pd.read_csv(tmp_path / "p.csv")
    assert listed == COLUMNS and list(written.columns) == [c for c in COLUMNS if c != "decision"]
    assert "one image" in text and "salted hashes" in text


def test_a_stored_rule_scores_breasts_its_way_and_recalls_an_exam_when_a_breast_is_recalled():
    from mammo_monai.evaluation.exam_rows import breast_and_exam_rows

    images = pd.DataFrame(
        {
            "exam": ["e1", "e1", "e1", "e2"],
            "patient": ["p1", "p1", "p1", "p2"],
            "laterality": ["L", "L", "R", "L"],
            "probability": [0.2, 0.8, 0.1, 0.3],
            "grouped_by": "dicom study",
        }
    )
    rows = breast_and_exam_rows(images, how="max", threshold=0.5).set_index(["level", "exam", "laterality"])
    assert rows.loc[("breast", "e1", "L"), ["probability", "n_views", "decision"]].tolist() == [0.8, 2, 1]
    assert rows.loc[("breast", "e2", "L"), ["probability", "n_views", "decision"]].tolist() == [0.3, 1, 0]
    exams = rows.loc["exam"].droplevel("laterality")
    assert exams.loc["e1", ["probability", "n_views", "decision"]].tolist() == [0.8, 3, 1]
    assert exams.loc["e2", "decision"] == 0
    mean = breast_and_exam_rows(images).set_index(["level", "breast"])
    assert mean.loc[("breast", "e1_L"), "probability"] == pytest.approx(0.5) and "decision" not in mean


def test_predict_takes_a_single_dicom_a_single_png_and_a_list_of_files(bundle, tmp_path, capsys):
    from mammo_monai.cli import main

    pixels, *_ = make_breast((160, 120), "R", seed=3, with_lesion=False)
    dicom = write_dicom(tmp_path / "one.dcm", pixels, laterality="R", view="CC")
    png = _png(tmp_path / "one.png", seed=4)
    found = {}
    for name, inputs in (("dicom", [str(dicom)]), ("png", [str(png)]), ("both", [str(dicom), str(png)])):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--bundle", str(bundle), "--input", *inputs, "--out", str(out), "--quiet",
                     "--backend", "eager"]) == 0  # fmt: skip
        images = pd.read_csv(out).query("level == 'image'").set_index("file")
        assert list(images.index) == inputs and (images["status"] == "ok").all()
        found.update({f"{name}:{f}": p for f, p in images["probability"].items()})
    assert "1 images predicted, 0 errors" in capsys.readouterr().out
    assert found[f"both:{dicom}"] == pytest.approx(found[f"dicom:{dicom}"])
    assert found[f"both:{png}"] == pytest.approx(found[f"png:{png}"])

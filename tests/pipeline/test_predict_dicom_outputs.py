"""``predict --dicom-out``: a Structured Report per scored input DICOM holding the scores of predict's own
table, a Segmentation per lesion map on the original grid, one error line per file that fails, and with
``--anonymous-outputs`` no identifier of the sources in any output."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.evaluation.operating_points import OperatingPoint
from mammo_monai.inference import predict as predict_module
from mammo_monai.inference.predict import predict
from mammo_monai.synthetic import write_dicom
from tests.conftest import make_breast
from tests.io.test_dicom_outputs import dcmtk_problems
from tests.pipeline.test_heatmaps import patch_bundle  # noqa: F401 - a tiny patch bundle beside the whole-image one
from tests.pipeline.test_predict_exams import bundle  # noqa: F401 - the tiny whole-image bundle fixture

PATIENT, STUDY = "PID-ECHO-6161", "1.2.826.0.1.3680043.8.498.6161"


def _scans(folder: Path) -> Path:
    """One study of three DICOM views (L-CC, L-MLO, R-CC) and a PNG beside them."""
    folder.mkdir(parents=True)
    for n, (side, view) in enumerate((("L", "CC"), ("L", "MLO"), ("R", "CC"))):
        pixels, *_ = make_breast((160, 120), side, seed=n, with_lesion=False)
        write_dicom(folder / f"img{n}.dcm", pixels, laterality=side, view=view, patient_id=PATIENT, study_uid=STUDY)
    pixels, *_ = make_breast((160, 120), "L", seed=9, with_lesion=False)
    Image.fromarray((pixels >> 8).astype(np.uint8)).save(folder / "other.png")
    return folder


def _groups(path: Path) -> dict[str, tuple[float, str, dict[str, str]]]:
    """tracking identifier -> (probability, method code, {decision: Yes/No}) of an SR read with highdicom."""
    found = {}
    for group in hd.sr.srread(path).content.get_image_measurement_groups():
        (m,) = group.get_measurements()
        decisions = {q.name.meaning.split(" (")[0]: q.value.meaning for q in group.get_qualitative_evaluations()}
        found[group.tracking_identifier] = (m.value, m.method.value, decisions)
    return found


def _with_maps(monkeypatch: pytest.MonkeyPatch, shapes: dict[str, tuple[int, int] | None], only: str = "") -> None:
    """Make ``_Scorer`` fill ``original_maps`` (as the original-grid mapping will): a map of each DICOM's own grid
    (of the file named ``only``, if given), or of ``shapes[file name]`` where given; a gradient, so that the SEG
    read back can be compared."""
    add = predict_module._Scorer.add

    def add_and_map(self, d, row, name):
        add(self, d, row, name)
        if not row["file"].endswith(".dcm") or only not in ("", Path(row["file"]).name):
            return
        ds = pydicom.dcmread(row["file"], stop_before_pixels=True)
        shape = shapes.get(Path(row["file"]).name) or (int(ds.Rows), int(ds.Columns))
        self.original_maps[name] = np.linspace(0, 1, shape[0] * shape[1], dtype=np.float32).reshape(shape)

    monkeypatch.setattr(predict_module._Scorer, "add", add_and_map)


def test_each_dicom_gets_a_report_of_its_table_scores(bundle, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    table = predict(bundle, [str(_scans(tmp_path / "in"))], out / "p.csv", progress=False, backend="eager",
                    dicom_out=out / "dicom")  # fmt: skip
    assert sorted(p.name for p in (out / "dicom").iterdir()) == ["img0_sr.dcm", "img1_sr.dcm", "img2_sr.dcm"]
    assert table.attrs["dicom_written"] == {"sr": 3, "seg": 0} and table.attrs["dicom_errors"] == []
    images = table[table["level"] == "image"]
    images = images.set_index(images["file"].map(lambda f: Path(f).stem))
    breasts = table[(table["level"] == "breast") & (table["grouped_by"] == "dicom study")].set_index("laterality")
    for stem, label, side in (("img0", "left breast (2 views)", "L"), ("img2", "right breast (1 view)", "R")):
        groups = _groups(out / "dicom" / f"{stem}_sr.dcm")
        assert groups["image"][:2] == (pytest.approx(images.loc[stem, "probability"]), "RAW")
        assert groups[label][:2] == (pytest.approx(breasts.loc[side, "probability"]), "RAW")


def test_a_calibrated_bundle_reports_calibrated_scores_and_its_decisions(bundle, tmp_path):  # noqa: F811
    calibrated = tmp_path / "calibrated"
    shutil.copytree(bundle, calibrated)
    points = {name: OperatingPoint(name, t, 0.9, 0.5, 0.3).to_record() for name, t in (("low", 0.2), ("high", 0.6))}
    record = {"method": "platt", "params": {"slope": 0.5, "intercept": 0.3}, "operating_points": points}
    (calibrated / "models" / "calibration.json").write_text(json.dumps(record))
    out = tmp_path / "out"
    table = predict(calibrated, [str(_scans(tmp_path / "in"))], out / "p.csv", progress=False, backend="eager",
                    dicom_out=out / "dicom")  # fmt: skip
    image = table[(table["level"] == "image") & table["file"].str.endswith("img1.dcm")].iloc[0]
    breast = table[(table["level"] == "breast") & (table["laterality"] == "L") & (table["n_views"] == 2)].iloc[0]
    groups = _groups(out / "dicom" / "img1_sr.dcm")
    for label, row in (("image", image), ("left breast (2 views)", breast)):
        probability, method, decisions = groups[label]
        assert probability == pytest.approx(row["probability_calibrated"]) and method == "CALIBRATED"
        assert probability != pytest.approx(row["probability"])  # the calibrated value, not the raw one
        assert decisions == {f"Recall at {p}": "Yes" if row[f"decision@{p}"] else "No" for p in ("low", "high")}


def test_lesion_maps_become_segmentations_and_a_failed_file_is_one_error_line(
    bundle,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    _with_maps(monkeypatch, {"img1.dcm": (10, 10)})  # img1's map is off its grid: its SEG cannot be written
    scans, out = _scans(tmp_path / "in"), tmp_path / "out"
    args = ["predict", "--bundle", str(bundle), "--input", str(scans), "--out", str(out / "p.csv")]
    code = main([*args, "--dicom-out", str(out / "dicom"), "--quiet", "--backend", "eager"])
    captured = capsys.readouterr()
    assert code == 1, captured  # some items failed, the rest is written
    errors = [line for line in captured.err.splitlines() if "DICOM output not written" in line]
    assert len(errors) == 1 and str(scans / "img1.dcm") in errors[0] and "not on the image's grid" in errors[0]
    assert "2 SEG" in captured.out and "1 files failed" in captured.out
    for stem in ("img0", "img2"):
        seg = hd.seg.segread(out / "dicom" / f"{stem}_seg.dcm")
        source = pydicom.dcmread(scans / f"{stem}.dcm", stop_before_pixels=True)
        back = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1], rescale_fractional=True)
        expected = np.linspace(0, 1, 160 * 120, dtype=np.float32).reshape(160, 120)
        assert np.abs(back[0, :, :, 0] - expected).max() <= 0.5 / 255 + 1e-6
    assert not (out / "dicom" / "img1_seg.dcm").exists()


def test_anonymous_outputs_and_tables_hold_no_identifier_of_the_sources(bundle, tmp_path, monkeypatch, capsys):  # noqa: F811
    _with_maps(monkeypatch, {})
    scans, out = _scans(tmp_path / "in"), tmp_path / "out"
    args = ["predict", "--bundle", str(bundle), "--input", str(scans), "--out", str(out / "p.csv"), "--nyu-tables"]
    assert main([*args, "--dicom-out", str(out), "--anonymous-outputs", "--quiet", "--backend", "eager"]) == 0
    printed = "".join(capsys.readouterr())
    secrets_ = {PATIENT, STUDY, PATIENT.split("-")[1]}
    for f in scans.glob("*.dcm"):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        secrets_ |= {ds.SOPInstanceUID, ds.SeriesInstanceUID}
    written = sorted(out.iterdir())
    assert len([p for p in written if p.suffix == ".dcm"]) == 6 and len([p for p in written if p.suffix == ".csv"]) >= 3
    for path in written:
        assert not [s for s in secrets_ if s.encode() in path.read_bytes()], path.name
    assert not [s for s in secrets_ if s in printed]
    studies = {pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID for p in out.glob("*.dcm")}
    assert len(studies) == 1  # the one source study has one stand-in study


def test_real_mammograms_get_a_readable_report_per_image(bundle, tmp_path, real_dicoms, monkeypatch):  # noqa: F811
    _with_maps(monkeypatch, {}, only="0.dcm")  # one SEG at the full 4432 x 2864 grid
    folder = tmp_path / "real"
    folder.mkdir()
    for i, f in enumerate(real_dicoms):
        (folder / f"{i}.dcm").symlink_to(f)
    out = tmp_path / "out"
    table = predict(bundle, [str(folder)], out / "p.csv", progress=False, backend="eager", dicom_out=out / "dicom")
    assert table.attrs["dicom_written"] == {"sr": 8, "seg": 1} and not table.attrs["dicom_errors"]
    breasts = []
    for i, f in enumerate(real_dicoms):
        sr = pydicom.dcmread(out / "dicom" / f"{i}_sr.dcm")
        source = pydicom.dcmread(f, stop_before_pixels=True)
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        groups = _groups(out / "dicom" / f"{i}_sr.dcm")
        (breast,) = [g for g in groups if "breast" in g]
        assert breast.endswith("(2 views)")  # CC + MLO of the breast
        breasts.append((breast, round(groups[breast][0], 9)))
    assert sorted(Counter(breasts).values()) == [2, 2, 2, 2]  # two exams, four breasts: each in the SRs of its 2 views
    source = pydicom.dcmread(real_dicoms[0], stop_before_pixels=True)
    seg = hd.seg.segread(out / "dicom" / "0_seg.dcm")
    back = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1], rescale_fractional=True)
    assert back.shape == (1, source.Rows, source.Columns, 1)
    if shutil.which("dcmdump"):  # tests/io/test_dicom_outputs.py says so when dcmtk is missing
        assert dcmtk_problems(out / "dicom" / "0_seg.dcm", out / "dicom" / "0_sr.dcm") == []
    csv = pd.read_csv(out / "p.csv", dtype=str).drop(columns="file").to_csv()
    assert not [
        s for s in {str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in real_dicoms} if s in csv
    ]


def test_heatmaps_become_segmentations_of_the_lesion_probability_on_each_dicoms_grid(bundle, patch_bundle, tmp_path):  # noqa: F811
    """No stand-in: ``--heatmaps`` maps the patch classifier's heatmap onto each DICOM's stored grid, and its SEG
    holds 1 - P(background) there, as the heatmap NIfTI does (both in 8-bit steps)."""
    scans, out = _scans(tmp_path / "in"), tmp_path / "out"
    table = predict(bundle, scans, out / "p.csv", heatmaps=out / "maps", patch_bundle=patch_bundle, progress=False,
                    backend="eager", dicom_out=out / "dicom")  # fmt: skip
    assert table.attrs["dicom_written"] == {"sr": 3, "seg": 3} and table.attrs["dicom_errors"] == []
    for stem in ("img0", "img1", "img2"):
        seg = hd.seg.segread(out / "dicom" / f"{stem}_seg.dcm")
        source = pydicom.dcmread(scans / f"{stem}.dcm", stop_before_pixels=True)
        back = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1], rescale_fractional=True)
        heat = nib.load(out / "maps" / f"{stem}_heatmap.nii.gz").get_fdata()[:, :, 0, 0]
        assert back.shape[1:3] == heat.shape == (160, 120)
        assert np.abs(back[0, :, :, 0] - (1 - heat)).max() <= 1 / 255 + 1e-6

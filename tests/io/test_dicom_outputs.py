"""DICOM Segmentation and Structured Report of a mammogram's lesion map and scores: read back with pydicom and
highdicom, checked by dcmtk (and dicom3tools' dciodvfy where installed), and with ``anonymous`` free of the
source's identifiers."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from mammo_monai.io.dicom_outputs import ReportScores, Score, write_report, write_segmentation
from mammo_monai.io.dicom_outputs.identifiers import StandIns
from mammo_monai.io.errors import MammogramError

MODEL = ("whole_image_classifier", "0.3.1")
SOURCE = {"patient_id": "PID-DELTA-9090", "study_uid": "1.2.826.0.1.3680043.8.498.9090"}
SCORES = ReportScores(
    image=Score(0.71, {"balanced": 1, "high_sensitivity": 1}),
    breast=Score(0.42, {"balanced": 0, "high_sensitivity": 1}),
    laterality="R",
    views=2,
    calibration="platt",
    thresholds={"balanced": 0.5, "high_sensitivity": 0.2},
)


def _lesion_map(shape: tuple[int, int]) -> np.ndarray:
    """A smooth off-centre blob, so that a transposed or flipped read-back would not match."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((rows - shape[0] * 0.3) ** 2 + (cols - shape[1] * 0.7) ** 2) / (2 * 15.0**2)).astype(np.float32)


@pytest.fixture
def source(dicom_file) -> Path:
    """A right-breast synthetic DICOM of 240 x 180 with a patient ID, a study UID and more identifying attributes."""
    path, *_ = dicom_file("src.dcm", side="R", **SOURCE)
    ds = pydicom.dcmread(path)
    ds.InstitutionName, ds.OtherPatientIDs, ds.PatientAddress = "ST-ELSEWHERE", "OTHER-ID-77", "1 NOWHERE ROAD"
    ds.save_as(path)
    return path


def _identifiers(path: Path) -> list[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return [str(ds.PatientName), ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]


def dcmtk_problems(*files: Path) -> list[str]:
    """What dcmtk finds wrong with ``files``: ``dcmdump`` must parse each without a warning or an error and
    ``dsrdump`` read each SR's content tree; ``dciodvfy`` (dicom3tools; where installed) must report no error
    against the IOD. Warnings of dciodvfy (a private coding scheme, empty type 2 study date) are not problems."""
    problems = []
    for f in files:
        run = subprocess.run(["dcmdump", str(f)], capture_output=True, text=True)
        if run.returncode or run.stderr.strip():
            problems.append(f"dcmdump {f.name}: {run.stderr.strip()}")
        if pydicom.dcmread(f, stop_before_pixels=True).Modality == "SR":
            run = subprocess.run(["dsrdump", str(f)], capture_output=True, text=True)
            if run.returncode or run.stderr.strip() or "Probability of cancer" not in run.stdout:
                problems.append(f"dsrdump {f.name}: {run.stderr.strip()}")
        if shutil.which("dciodvfy"):
            run = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True)
            problems += [
                f"dciodvfy {f.name}: {line}"
                for line in (run.stdout + run.stderr).splitlines()
                if line.startswith("Error")
            ]
    return problems


def test_segmentation_holds_the_map_on_the_source_grid_and_references_it(source, tmp_path):
    lesion = _lesion_map((240, 180))
    out = write_segmentation(source, lesion, tmp_path / "seg.dcm", *MODEL)
    seg = hd.seg.segread(out)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    assert seg.SegmentationType == "FRACTIONAL" and seg.SegmentationFractionalType == "PROBABILITY"
    back = seg.get_pixels_by_source_instance([src.SOPInstanceUID], segment_numbers=[1], rescale_fractional=True)
    assert back.shape == (1, 240, 180, 1)
    assert np.abs(back[0, :, :, 0] - lesion).max() <= 0.5 / 255 + 1e-6  # 8-bit fractions, rounded
    assert seg.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert (seg.StudyInstanceUID, seg.PatientID) == (src.StudyInstanceUID, src.PatientID)  # filed with its image
    assert seg.SeriesInstanceUID != src.SeriesInstanceUID and seg.SOPInstanceUID != src.SOPInstanceUID
    segment = seg.SegmentSequence[0]
    assert segment.SegmentLabel == "lesion probability" and segment.SegmentAlgorithmType == "AUTOMATIC"
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == MODEL
    assert segment.AnatomicRegionSequence[0].CodeMeaning == "Right breast"


def test_only_what_a_reference_needs_is_copied_from_the_source(source, tmp_path):
    seg = pydicom.dcmread(write_segmentation(source, _lesion_map((240, 180)), tmp_path / "seg.dcm", *MODEL))
    sr = pydicom.dcmread(write_report(source, SCORES, tmp_path / "sr.dcm", *MODEL))
    for ds in (seg, sr):
        assert "InstitutionName" not in ds and "OtherPatientIDs" not in ds and "PatientAddress" not in ds
        assert not any(element.tag.is_private for element in ds)


def test_a_map_off_the_source_grid_is_one_error_naming_the_file(source, tmp_path):
    with pytest.raises(MammogramError, match=r"src\.dcm: lesion map \(180, 240\) is not on the image's grid"):
        write_segmentation(source, np.zeros((180, 240), np.float32), tmp_path / "seg.dcm", *MODEL)
    assert not list(tmp_path.glob("*seg*"))  # nothing half-written


def test_report_holds_image_and_breast_scores_decisions_and_the_model(source, tmp_path):
    out = write_report(source, SCORES, tmp_path / "sr.dcm", *MODEL)
    sr = hd.sr.srread(out)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    groups = {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}
    assert set(groups) == {"image", "right breast (2 views)"}
    for label, score in (("image", SCORES.image), ("right breast (2 views)", SCORES.breast)):
        (measurement,) = groups[label].get_measurements()
        assert measurement.name.meaning == "Probability of cancer" and measurement.value == pytest.approx(
            score.probability
        )
        assert measurement.method.meaning == "Calibrated model probability (platt)"
        decisions = {q.name.meaning: q.value.meaning for q in groups[label].get_qualitative_evaluations()}
        assert decisions == {
            f"Recall at {name} (threshold {SCORES.thresholds[name]:.4g})": "Yes" if flag else "No"
            for name, flag in score.decisions.items()
        }
        assert groups[label].source_images[0].referenced_sop_instance_uid == src.SOPInstanceUID
    ds = pydicom.dcmread(out)
    algorithm = {item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue for item in _text_items(ds)}
    assert (algorithm["Algorithm Name"], algorithm["Algorithm Version"]) == MODEL
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ds.StudyInstanceUID == src.StudyInstanceUID


def _text_items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    found = []
    for item in ds.get("ContentSequence", []):
        if item.ValueType == "TEXT":
            found.append(item)
        found += _text_items(item)
    return found


def test_an_uncalibrated_score_is_reported_as_the_raw_model_output(source, tmp_path):
    raw = ReportScores(image=Score(0.3), laterality="R")
    sr = hd.sr.srread(write_report(source, raw, tmp_path / "sr.dcm", *MODEL))
    (group,) = sr.content.get_image_measurement_groups()
    (measurement,) = group.get_measurements()
    assert measurement.value == pytest.approx(0.3) and measurement.method.value == "RAW"
    assert "no calibration" in measurement.method.meaning


def test_anonymous_outputs_carry_none_of_the_source_identifiers(source, tmp_path):
    stand_ins = StandIns()
    seg = write_segmentation(source, _lesion_map((240, 180)), tmp_path / "seg.dcm", *MODEL, True, stand_ins)
    sr = write_report(source, SCORES, tmp_path / "sr.dcm", *MODEL, anonymous=True, stand_ins=stand_ins)
    secrets_ = [*_identifiers(source), "ST-ELSEWHERE", "OTHER-ID-77"]
    for out in (seg, sr):
        raw = out.read_bytes()
        assert not [s for s in secrets_ if s.encode() in raw], out.name
        ds = pydicom.dcmread(out)
        assert ds.PatientID.startswith("ANON-") and str(ds.PatientName) == "" and ds.StudyDate == ""
    seg_ds, sr_ds = pydicom.dcmread(seg), pydicom.dcmread(sr)
    assert seg_ds.StudyInstanceUID == sr_ds.StudyInstanceUID and seg_ds.PatientID == sr_ds.PatientID  # one stand-in
    assert "CurrentRequestedProcedureEvidenceSequence" not in sr_ds  # the SR references no image
    back = hd.seg.segread(seg).get_pixels_by_source_instance(
        [seg_ds.SourceImageSequence[0].ReferencedSOPInstanceUID], segment_numbers=[1], rescale_fractional=True
    )
    assert np.abs(back[0, :, :, 0] - _lesion_map((240, 180))).max() <= 0.5 / 255 + 1e-6  # still readable


@pytest.mark.skipif(
    not shutil.which("dcmdump"), reason="dcmtk is not installed (apt-get install dcmtk): no dcmdump check"
)
def test_segmentations_and_reports_pass_dcmtk_and_dciodvfy(source, tmp_path):
    lesion, stand_ins = _lesion_map((240, 180)), StandIns()
    files = [
        write_segmentation(source, lesion, tmp_path / "seg.dcm", *MODEL),
        write_report(source, SCORES, tmp_path / "sr.dcm", *MODEL),
        write_report(source, ReportScores(image=Score(0.3)), tmp_path / "raw_sr.dcm", *MODEL),
        write_segmentation(source, lesion, tmp_path / "anon_seg.dcm", *MODEL, True, stand_ins),
        write_report(source, SCORES, tmp_path / "anon_sr.dcm", *MODEL, anonymous=True, stand_ins=stand_ins),
    ]
    assert dcmtk_problems(*files) == []


def test_a_one_part_patient_name_is_not_quoted_in_a_warning(source, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(source, SCORES, tmp_path / "sr.dcm", *MODEL)
        write_segmentation(source, _lesion_map((240, 180)), tmp_path / "seg.dcm", *MODEL)
    assert not [w for w in caught if SOURCE["patient_id"] in str(w.message)]

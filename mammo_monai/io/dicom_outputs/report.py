"""The scores of one mammogram as a DICOM Structured Report: a TID 1500 Measurement Report
(highdicom ``Comprehensive3DSR``) with one measurement group for the image and one for its breast.

Each group holds DCM (111047, "Probability of cancer") with no units, its method (calibrated, and how,
or the model's raw output), the model as the algorithm (name and version), the breast as the finding
site, and one qualitative evaluation per operating point: "Recall at <point> (threshold t)" = SCT Yes/No.
Codes that DICOM does not define (the methods and the recall decisions) use the private coding scheme
:data:`SCHEME` ("99" prefix, as PS3.16 reserves for local codes).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from mammo_monai.io.dicom_outputs.identifiers import StandIns, reference_header
from mammo_monai.io.dicom_outputs.writing import MANUFACTURER, quiet_identifiers, read_source, save

__all__ = ["SCHEME", "SR_SERIES_NUMBER", "ReportScores", "Score", "decision_concept", "write_report"]

SCHEME = "99MMONAI"
SR_SERIES_NUMBER = 9902
_BREAST = {"L": codes.SCT.LeftBreast, "R": codes.SCT.RightBreast}


@dataclass(frozen=True)
class Score:
    """A probability of malignancy and the decisions taken on it.

    Attributes:
        probability: P(malignant), calibrated when the report's ``calibration`` names a method.
        decisions: operating point name -> 1 (recall) or 0.
    """

    probability: float
    decisions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportScores:
    """What one image's report holds.

    Attributes:
        image: the image's own score.
        breast: its breast's (the views aggregated; None when unknown).
        laterality: "L", "R" or "" (unknown).
        views: how many views the breast score aggregates.
        calibration: the calibration method applied ("platt", "isotonic", ...), or None: raw model output.
        thresholds: operating point name -> its threshold (on the probability reported).
    """

    image: Score
    breast: Score | None = None
    laterality: str = ""
    views: int = 1
    calibration: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)


def decision_concept(point: str, threshold: float | None) -> hd.sr.CodedConcept:
    """The concept "Recall at <point> (threshold t)": a private code, stable per operating point name."""
    value = "REC-" + hashlib.sha1(point.encode()).hexdigest()[:8].upper()
    meaning = f"Recall at {point}" + (f" (threshold {threshold:.4g})" if threshold is not None else "")
    return hd.sr.CodedConcept(value, SCHEME, meaning[:64])


def _private_scheme() -> Dataset:
    """The declaration of :data:`SCHEME` (SOP Common module), so a reader knows whose codes these are."""
    item = Dataset()
    item.CodingSchemeDesignator = SCHEME
    item.CodingSchemeName = "mammo-monai local codes"
    item.CodingSchemeResponsibleOrganization = MANUFACTURER
    return item


def _method(calibration: str | None) -> hd.sr.CodedConcept:
    if calibration:
        return hd.sr.CodedConcept("CALIBRATED", SCHEME, f"Calibrated model probability ({calibration})"[:64])
    return hd.sr.CodedConcept("RAW", SCHEME, "Uncalibrated model probability (no calibration)")


def _group(
    label: str, score: Score, scores: ReportScores, algorithm: hd.sr.AlgorithmIdentification, images: list
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    site = [hd.sr.FindingSite(_BREAST.get(scores.laterality.upper(), codes.SCT.Breast))]
    measurement = hd.sr.Measurement(
        name=codes.DCM.ProbabilityOfCancer,
        value=float(score.probability),
        unit=codes.UCUM.NoUnits,
        method=_method(scores.calibration),
        algorithm_id=algorithm,
        finding_sites=site,
    )
    evaluations = [
        hd.sr.QualitativeEvaluation(
            decision_concept(name, scores.thresholds.get(name)), codes.SCT.Yes if flag else codes.SCT.No
        )
        for name, flag in score.decisions.items()
    ]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=label),
        algorithm_id=algorithm,
        finding_sites=site,
        measurements=[measurement],
        qualitative_evaluations=evaluations or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(i) for i in images] or None,
    )


def write_report(
    source: str | os.PathLike | Dataset,
    scores: ReportScores,
    out_path: str | os.PathLike,
    model_name: str,
    model_version: str,
    anonymous: bool = False,
    stand_ins: StandIns | None = None,
) -> Path:
    """Write the scores of ``source`` as a TID 1500 Comprehensive 3D SR at ``out_path`` (atomically).

    The report's observer is the model (a device named ``model_name``, model ``model_name model_version``);
    both groups reference the source image and the SR lists it as evidence. With ``anonymous`` the SR carries
    none of the source's identifiers (:func:`~.identifiers.reference_header`) and references no image: a
    PACS files it in a stand-in study of a stand-in patient, and only the output's file name ties it to the
    input. ``stand_ins``: the run's (one stand-in study per source study, shared with the SEG).
    """
    header = reference_header(read_source(source), anonymous, stand_ins)
    images = [] if anonymous else [header]
    algorithm = hd.sr.AlgorithmIdentification(name=model_name, version=model_version)
    side = {"L": "left", "R": "right"}.get(scores.laterality.upper(), "unknown")
    groups = [_group("image", scores.image, scores, algorithm, images)]
    if scores.breast is not None:
        label = f"{side} breast ({scores.views} view{'s' if scores.views != 1 else ''})"
        groups.append(_group(label, scores.breast, scores, algorithm, images))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=model_name[:64], manufacturer_name=MANUFACTURER, model_name=model_version[:64]
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.Mammography,
        imaging_measurements=groups,
    )
    with quiet_identifiers():
        sr = hd.sr.Comprehensive3DSR(
            evidence=[header],
            content=report,
            series_instance_uid=generate_uid(),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
        )
        if anonymous:  # highdicom lists its evidence's study as the current one: the stand-in, referenced by nothing
            del sr.CurrentRequestedProcedureEvidenceSequence
        sr.SeriesDescription = f"mammography scores ({model_name})"[:64]
        sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    return save(sr, out_path)

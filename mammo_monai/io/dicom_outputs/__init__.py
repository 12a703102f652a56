"""DICOM outputs of ``predict``: the lesion probability map as a Segmentation and the scores as a Structured
Report, each referencing its source image (or, anonymous, carrying none of its identifiers)."""

from mammo_monai.io.dicom_outputs.identifiers import StandIns, reference_header
from mammo_monai.io.dicom_outputs.report import ReportScores, Score, write_report
from mammo_monai.io.dicom_outputs.segmentation import write_segmentation

__all__ = ["ReportScores", "Score", "StandIns", "reference_header", "write_report", "write_segmentation"]

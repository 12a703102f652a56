"""The lesion probability map of one mammogram as a DICOM Segmentation (FRACTIONAL, PROBABILITY), on the
source image's own pixel grid and referencing it, built with highdicom."""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from mammo_monai.io.dicom_outputs.identifiers import StandIns, reference_header
from mammo_monai.io.dicom_outputs.writing import DEVICE_SERIAL, MANUFACTURER, quiet_identifiers, read_source, save
from mammo_monai.io.errors import MammogramError

__all__ = ["SEGMENT_LABEL", "SEG_SERIES_NUMBER", "lesion_segment", "write_segmentation"]

SEGMENT_LABEL = "lesion probability"
#: the series numbers of our outputs, apart from the source's (which start at 1)
SEG_SERIES_NUMBER = 9901
#: the stored fraction's denominator: 8-bit values, a probability to within 1/510
MAX_FRACTIONAL_VALUE = 255

_BREAST = {"L": codes.SCT.LeftBreast, "R": codes.SCT.RightBreast}


def lesion_segment(model_name: str, model_version: str, laterality: str = "") -> hd.seg.SegmentDescription:
    """The one segment: SCT "Morphologically abnormal structure" / "Lesion", in the (left / right) breast,
    found AUTOMATICally by the model (its name and version, family DCM "Artificial Intelligence")."""
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=model_name, version=model_version, family=codes.DCM.ArtificialIntelligence
        ),
        anatomic_regions=[_BREAST.get(str(laterality).upper(), codes.SCT.Breast)],
    )


def _checked(probability: np.ndarray, header: Dataset, where: str) -> np.ndarray:
    p = np.asarray(probability, dtype=np.float32)
    grid = (int(header.Rows), int(header.Columns))
    if p.shape != grid:
        raise MammogramError(where, f"lesion map {p.shape} is not on the image's grid {grid} (rows, columns)")
    if not np.isfinite(p).all():
        raise MammogramError(where, "lesion map holds NaN or infinite values")
    return np.clip(p, 0.0, 1.0)


def _orientation(header: Dataset) -> list[str] | str:
    """The source's Patient Orientation (row \\ column directions) when it is one (CBIS-DDSM writes the view
    there), else empty: type 2C in the General Image module of an image without a patient position."""
    value = header.get("PatientOrientation", "")
    values = [value] if isinstance(value, str) else list(value)  # pydicom: a str, or a MultiValue of them
    return values if len(values) == 2 and all(values) else ""


def write_segmentation(
    source: str | os.PathLike | Dataset,
    probability: np.ndarray,
    out_path: str | os.PathLike,
    model_name: str,
    model_version: str,
    anonymous: bool = False,
    stand_ins: StandIns | None = None,
) -> Path:
    """Write the lesion probability map of ``source`` as a DICOM Segmentation at ``out_path`` (atomically).

    Args:
        source: the input DICOM (path or its dataset); only its header is read.
        probability: (rows, cols) P(lesion) in [0, 1] on the source's original pixel grid (as stored,
            before any flip, crop or resize); stored as FRACTIONAL PROBABILITY in 1/255 steps.
        out_path: the ``.dcm`` to write.
        model_name, model_version: the segment's algorithm identification and the equipment's model.
        anonymous: write none of the source's identifiers (:func:`~.identifiers.reference_header`): the
            Segmentation then references a stand-in image UID that exists nowhere, so a viewer cannot place
            it on the source by itself; the pixel grid, side and view are kept.
        stand_ins: with ``anonymous``, the run's stand-ins (one stand-in study per source study).

    Returns:
        ``out_path``.

    Raises:
        MammogramError: the source is no DICOM, or the map is not on its grid or not finite.
    """
    header = reference_header(read_source(source), anonymous, stand_ins)
    where = str(source) if not isinstance(source, Dataset) else "<dataset>"
    pixels = _checked(probability, header, where)
    laterality = header.get("ImageLaterality", "") or header.get("Laterality", "")
    with quiet_identifiers():
        seg = hd.seg.Segmentation(
            source_images=[header],
            pixel_array=pixels[None],
            segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
            segment_descriptions=[lesion_segment(model_name, model_version, laterality)],
            series_instance_uid=generate_uid(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=model_name,
            software_versions=model_version,
            device_serial_number=DEVICE_SERIAL,
            fractional_type=hd.seg.SegmentationFractionalTypeValues.PROBABILITY,
            max_fractional_value=MAX_FRACTIONAL_VALUE,
            content_label="LESION_PROB",
            content_description=f"{SEGMENT_LABEL}: {model_name} {model_version}"[:64],
            omit_empty_frames=False,
        )
        seg.SeriesDescription = f"{SEGMENT_LABEL} ({model_name})"[:64]
        seg.PatientOrientation = _orientation(header)
    return save(seg, out_path)

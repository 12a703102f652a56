"""What a derived DICOM object (our SEG and SR) takes from its source image, and nothing more.

A SEG or SR that belongs with its image in a PACS must sit in the same patient and study and reference the
image by its UIDs: DICOM requires the Patient module and the General Study module (their type 1 and 2
attributes) and, for the reference, the source's SOP Class / SOP Instance / Series Instance UIDs. The
:func:`reference_header` holds exactly those plus the image geometry highdicom checks (rows, columns,
pixel spacing); highdicom copies what it is given, so no other attribute of the source (institution,
device, comments, private tags, optional patient attributes) reaches an output.

With ``anonymous`` the header holds none of the source's identifiers: fresh random UIDs for the study,
series and image (a *stand-in* image that exists nowhere), a random patient ID ``ANON-…`` and empty
patient name, birth date, sex, study date and time, accession number and study ID. One :class:`StandIns`
gives the images of one source study one stand-in study (and one patient one stand-in patient) within a
run; the mapping lives in memory only and is never written.
"""

from __future__ import annotations

import secrets

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

__all__ = ["GEOMETRY", "PATIENT_AND_STUDY", "StandIns", "reference_header"]

#: image attributes that identify no one: the pixel grid highdicom checks a map against, the side and view
GEOMETRY = (
    "Modality",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "PixelSpacing",
    "Laterality",
    "ImageLaterality",
    "ViewPosition",
    "PatientOrientation",
    "BodyPartExamined",
)
#: the type 1 and 2 attributes of the Patient and General Study modules (a derived object repeats them)
PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
#: the UIDs of the source image that a reference carries
REFERENCE_UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID")


class StandIns:
    """Fresh identifiers standing in for a source's, one per distinct source value, for one run (memory only)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}

    def uid(self, kind: str, source_value: str) -> str:
        """A random UID for ``source_value`` of ``kind`` ("study", "series", "image"), the same each time asked
        (a new one each time for an empty value: a source without the UID shares it with no other)."""
        if not source_value:
            return generate_uid()
        return self._seen.setdefault((kind, str(source_value)), generate_uid())

    def patient(self, source_id: str) -> str:
        """A random ``ANON-<hex>`` patient ID for ``source_id``, the same each time asked (not derived from it)."""
        return self._seen.setdefault(("patient", str(source_id)), f"ANON-{secrets.token_hex(6).upper()}")


def reference_header(source: Dataset, anonymous: bool = False, stand_ins: StandIns | None = None) -> Dataset:
    """The attributes of ``source`` a derived object needs (see the module): its geometry, then either its
    patient, study and reference UIDs as they are, or, ``anonymous``, stand-ins for them (``stand_ins``, a new
    :class:`StandIns` when None). Type 2 attributes the source lacks are present and empty, as DICOM asks."""
    header = Dataset()
    for keyword in GEOMETRY:
        if keyword in source:
            setattr(header, keyword, source[keyword].value)
    header.SOPClassUID = source.SOPClassUID
    if not anonymous:
        if "SpecificCharacterSet" in source:
            header.SpecificCharacterSet = source.SpecificCharacterSet  # how the copied names are encoded
        for keyword in (*REFERENCE_UIDS, *PATIENT_AND_STUDY):
            setattr(header, keyword, source[keyword].value if keyword in source else "")
        return header
    stand_ins = stand_ins or StandIns()
    for keyword in PATIENT_AND_STUDY:
        setattr(header, keyword, "")
    header.PatientID = stand_ins.patient(source.get("PatientID", ""))
    header.StudyInstanceUID = stand_ins.uid("study", source.get("StudyInstanceUID", ""))
    header.SeriesInstanceUID = stand_ins.uid("series", source.get("SeriesInstanceUID", ""))
    header.SOPInstanceUID = stand_ins.uid("image", source.get("SOPInstanceUID", ""))
    return header

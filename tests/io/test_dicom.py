from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, generate_uid

from mammo_monai.io import MammogramError, read_dicom, read_mammogram


@pytest.mark.parametrize("transfer_syntax", ["explicit", "rle", "j2k"])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
@pytest.mark.parametrize(
    "window", [None, (32768.0, 65536.0, "LINEAR"), (30000.0, 60000.0, "LINEAR_EXACT"), (32768.0, 50000.0, "SIGMOID")]
)
def test_every_variant_reads_rows_first_with_dense_tissue_bright(dicom_file, transfer_syntax, photometric, window):
    path, pixels, region, lesion = dicom_file(photometric=photometric, transfer_syntax=transfer_syntax, window=window)
    image, meta = read_dicom(path)
    assert image.shape == (1, 240, 180) and image.dtype == np.float32
    assert meta["photometric_interpretation"] == photometric
    img = image[0]
    background = img[~region].mean()
    assert img[region].mean() > background + 0.1 * (meta["intensity_range"][1] - meta["intensity_range"][0])
    assert img[lesion].mean() > img[region & ~lesion].mean()
    assert meta["voi_applied"] == (window is not None)


def test_monochrome1_is_inverted_exactly(dicom_file):
    p1, *_ = dicom_file("m1.dcm", photometric="MONOCHROME1")
    p2, *_ = dicom_file("m2.dcm", photometric="MONOCHROME2")
    np.testing.assert_array_equal(read_dicom(p1)[0], read_dicom(p2)[0])


def test_linear_window_maps_centre_and_clips(dicom_file):
    path, pixels, *_ = dicom_file(window=(20000.0, 10000.0, "LINEAR"))
    image, meta = read_dicom(path)
    lo, hi = meta["intensity_range"]
    assert (lo, hi) == (0.0, 65535.0)
    assert np.all(image[0][pixels <= 14000] == lo) and np.all(image[0][pixels > 25000] == hi)
    mid = (pixels > 18000) & (pixels < 22000)
    expected = ((pixels[mid] - 19999.5) / 9999 + 0.5) * 65535
    np.testing.assert_allclose(image[0][mid], expected, rtol=1e-4)


def test_rescale_slope_and_intercept_applied(dicom_file):
    path, pixels, *_ = dicom_file(rescale=(2.0, -100.0))
    image, meta = read_dicom(path)
    np.testing.assert_allclose(image[0], pixels.astype(np.float32) * 2 - 100)
    assert meta["intensity_range"] == [-100.0, 65535 * 2 - 100.0]


def test_metadata_has_laterality_view_and_no_patient_identifiers(dicom_file):
    uid = "1.2.826.0.1.3680043.8.498.90210"
    path, *_ = dicom_file(side="R", patient_id="Mass-Training_P_00042_RIGHT_CC", study_uid=uid)
    _, meta = read_dicom(path)
    assert meta["laterality"] == "R" and meta["view"] == "CC" and meta["bits_stored"] == 16
    text = " ".join(str(v) for k, v in meta.items() if k != "source_path")
    assert "P_00042" not in text and "90210" not in text and meta["exam_key"]  # the study as a salted hash only


def test_real_cbis_ddsm_dicoms_read_with_laterality_from_the_file(real_dicoms):
    for path in real_dicoms:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        image, meta = read_mammogram(path)
        assert image.shape == (1, ds.Rows, ds.Columns)
        case_name = str(ds.PatientID)  # e.g. Mass-Test_P_00173_LEFT_CC: the CBIS name, used only here
        side = "L" if "_LEFT_" in case_name else "R"
        assert meta["laterality"] == side, path
        assert meta["view"] == case_name.rsplit("_", 1)[1]
        half = image.shape[-1] // 2  # CBIS stores the chest wall on the breast's own side
        assert (image[..., :half].sum() > image[..., half:].sum()) == (side == "L")


# -------- bad input: every error names the file and the problem --------


def test_truncated_dicom(dicom_file):
    path, *_ = dicom_file()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MammogramError, match="img.dcm.*(pixel data|parse)"):
        read_mammogram(path)


def test_dicom_without_pixel_data(dicom_file):
    path, *_ = dicom_file()
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(MammogramError, match="img.dcm: DICOM has no PixelData"):
        read_mammogram(path)


def test_structured_report_is_not_an_image(tmp_path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = BasicTextSRStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    path = tmp_path / "report.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MammogramError, match=r"report.dcm: DICOM has no PixelData.*Basic Text SR"):
        read_mammogram(path)


def test_not_a_dicom_with_dcm_suffix(tmp_path):
    path = tmp_path / "fake.dcm"
    path.write_text("hello")
    with pytest.raises(MammogramError, match="fake.dcm: not a DICOM file"):
        read_mammogram(path)


def test_unknown_file_type(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_text("x")
    with pytest.raises(MammogramError, match=r"notes.xyz: unsupported file type '.xyz'"):
        read_mammogram(path)


def test_missing_file(tmp_path):
    with pytest.raises(MammogramError, match="nothere.dcm: file not found"):
        read_mammogram(tmp_path / "nothere.dcm")


def test_a_ct_slice_is_not_a_mammogram_unless_accepted(dicom_file):
    path, *_ = dicom_file("ct.dcm")
    ds = pydicom.dcmread(path)
    ds.Modality = "CT"
    ds.save_as(path)
    with pytest.raises(MammogramError, match=r"ct.dcm: Modality CT is not a mammogram.*--accept-modality CT"):
        read_mammogram(path)
    image, meta = read_mammogram(path, modalities=("MG", "CT"))
    assert image.shape == (1, 240, 180) and meta["modality"] == "CT"
    assert read_mammogram(path, modalities=None)[1]["modality"] == "CT"

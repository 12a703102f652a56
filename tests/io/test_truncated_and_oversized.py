"""Damaged and oversized files: a cut DICOM says "truncated"; one pixel limit for every format, checked
before decoding (no test here allocates a large image)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from mammo_monai.io import MammogramError, read_mammogram
from mammo_monai.synthetic.dicom_writer import build_dataset, save_dataset
from tests.conftest import make_breast


def _pixel_data_header(path) -> int:
    """Byte offset where the PixelData element's header starts (explicit VR: 12 bytes before its value)."""
    return pydicom.dcmread(path).get_item("PixelData").value_tell - 12


@pytest.mark.parametrize(
    "transfer_syntax, cut, expected",
    [
        ("explicit", lambda data, path: len(data) // 2, "bytes of its pixel data"),
        ("explicit", lambda data, path: len(data) - 1, "bytes of its pixel data"),
        ("explicit", lambda data, path: 200, "inside its file meta header"),
        ("explicit", lambda data, path: _pixel_data_header(path) + 4, "into an element's header"),
        ("explicit", lambda data, path: _pixel_data_header(path) - 1, "bytes of element"),
        ("rle", lambda data, path: len(data) // 2, "element of undefined length"),
    ],
)
def test_a_file_cut_short_is_reported_as_truncated(dicom_file, tmp_path, transfer_syntax, cut, expected):
    path, *_ = dicom_file(transfer_syntax=transfer_syntax)
    data = path.read_bytes()
    cut_file = tmp_path / "cut.dcm"
    cut_file.write_bytes(data[: cut(data, path)])
    with pytest.raises(MammogramError, match="truncated") as err:
        read_mammogram(cut_file)
    assert str(err.value).startswith(f"{cut_file}: truncated: the file ends") and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_whole_file_without_pixel_data_is_not_called_truncated(dicom_file, tmp_path):
    path, *_ = dicom_file()
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    with pytest.raises(MammogramError, match="no PixelData") as err:
        read_mammogram(tmp_path / "nopixels.dcm")
    assert "truncated" not in str(err.value)


def _header_only(path, rows, columns, frames=1, transfer_syntax="explicit"):
    """A DICOM whose header declares ``rows`` x ``columns`` (x ``frames``) over a tiny 8 x 8 pixel data."""
    ds = build_dataset(np.full((8, 8), 100, np.uint16), laterality="L", view="CC")
    if transfer_syntax != "explicit":
        ds.compress(pydicom.uid.RLELossless, generate_instance_uid=False)
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    with open(path, "wb") as fh:  # written as is: save_dataset would re-encode from the declared size
        ds.save_as(fh, enforce_file_format=True)
    return path


@pytest.mark.parametrize("transfer_syntax", ["explicit", "rle"])
def test_a_huge_dicom_is_refused_from_its_header_before_decoding(tmp_path, transfer_syntax):
    path = _header_only(tmp_path / "huge.dcm", 20000, 20000, transfer_syntax=transfer_syntax)
    with pytest.raises(MammogramError, match=r"20000 x 20000 = 400,000,000 pixels exceeds the pixel limit") as err:
        read_mammogram(path)
    assert f"of {Image.MAX_IMAGE_PIXELS:,}" in str(err.value)


def test_every_format_uses_the_same_pixel_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    small = np.full((20, 20), 1000, np.uint16)  # 400 pixels: under the limit in every format
    Image.fromarray(small).save(tmp_path / "small.png")
    save_dataset(build_dataset(small), tmp_path / "small.dcm")
    for name in ("small.png", "small.dcm"):
        assert read_mammogram(tmp_path / name)[0].shape == (1, 20, 20)
    over = np.full((30, 40), 1000, np.uint16)  # 1200 pixels: Pillow alone would only warn
    for suffix in (".png", ".tif", ".pgm"):
        Image.fromarray(over if suffix != ".pgm" else (over // 8).astype(np.uint8)).save(tmp_path / f"over{suffix}")
    save_dataset(build_dataset(over), tmp_path / "over.dcm")
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(tmp_path / "bomb.png")  # over twice: Pillow refuses first
    _header_only(tmp_path / "frames.dcm", 20, 30, frames=2)  # 1200 pixels in two frames of 600
    for name in ("over.png", "over.tif", "over.pgm", "over.dcm", "bomb.png", "frames.dcm"):
        with pytest.raises(MammogramError, match="exceeds the pixel limit of 1,000") as err:
            read_mammogram(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name))
    with pytest.raises(MammogramError, match=r"20 x 30 x 2 frames = 1,200 pixels"):
        read_mammogram(tmp_path / "frames.dcm")


def test_the_limit_can_be_lifted_on_purpose(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    save_dataset(build_dataset(make_breast()[0]), tmp_path / "x.dcm")
    assert read_mammogram(tmp_path / "x.dcm")[0].shape == (1, 240, 180)

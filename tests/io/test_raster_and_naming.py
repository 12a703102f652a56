from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mammo_monai.io import LoadMammogram, LoadMammogramd, MammogramError, parse_name, parse_path, read_mammogram


@pytest.mark.parametrize("suffix,dtype", [(".png", np.uint8), (".png", np.uint16), (".pgm", np.uint8), (".tif", np.uint16)])
def test_raster_formats_keep_rows_first_and_bit_depth(tmp_path, suffix, dtype):
    arr = np.zeros((30, 20), dtype)
    arr[2, 15] = np.iinfo(dtype).max  # a pixel near the top-right corner
    path = tmp_path / f"mdb001_R_MLO{suffix}"
    Image.fromarray(arr).save(path)
    image, meta = read_mammogram(path)
    assert image.shape == (1, 30, 20)
    assert image[0, 2, 15] == np.iinfo(dtype).max
    assert meta["bits_stored"] == 8 * np.dtype(dtype).itemsize
    assert meta["intensity_range"] == [0.0, float(np.iinfo(dtype).max)]
    assert (meta["laterality"], meta["view"]) == ("R", "MLO")


def test_corrupt_png_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(MammogramError, match="broken.png: cannot read image"):
        read_mammogram(path)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Mass-Training_P_00001_LEFT_CC", ("L", "CC")),
        ("Calc-Test_P_00038_RIGHT_MLO_1", ("R", "MLO")),
        ("22678622_61b13c59bcba149e_MG_R_ML_ANON", ("R", "ML")),
        ("scan_L_CC", ("L", "CC")),
        ("case7_RMLO", ("R", "MLO")),
        ("mdb001", ("", "")),
        ("left_breast", ("L", "")),
    ],
)
def test_laterality_and_view_from_names(name, expected):
    assert parse_name(name) == expected


def test_laterality_found_in_parent_folder_of_tcia_layout(tmp_path):
    path = tmp_path / "Mass-Training_P_00001_RIGHT_MLO" / "07-20-2016-DDSM-74994" / "1.000000-full mammogram images-24515" / "1-1.dcm"
    assert parse_path(path) == ("R", "MLO")


def test_load_transforms_return_metatensor_with_metadata(dicom_file):
    path, *_ = dicom_file(side="R")
    img = LoadMammogram()(path)
    assert tuple(img.shape) == (1, 240, 180) and img.meta["laterality"] == "R"
    d = LoadMammogramd("image")({"image": str(path)})
    assert d["laterality"] == "R" and d["image"].meta["view"] == "CC"
    d = LoadMammogramd("image")({"image": str(path), "laterality": "L"})  # the manifest's value wins
    assert d["laterality"] == "L"

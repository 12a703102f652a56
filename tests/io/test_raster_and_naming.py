from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mammo_monai.io import (
    LoadMammogram,
    LoadMammogramd,
    MammogramError,
    atomic_write_png,
    parse_name,
    parse_path,
    read_mammogram,
)


@pytest.mark.parametrize(
    "suffix,dtype", [(".png", np.uint8), (".png", np.uint16), (".pgm", np.uint8), (".tif", np.uint16)]
)
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


def test_the_cache_png_encoding_keeps_every_16_bit_value_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 65536, (64, 48), dtype=np.uint16)
    arr[:8] = 0  # flat runs, what run-length matching compresses
    arr[8, :4] = [0, 1, 65534, 65535]
    atomic_write_png(tmp_path / "c.png", arr)
    back = np.asarray(Image.open(tmp_path / "c.png"))
    assert back.dtype == np.uint16 and np.array_equal(back, arr)
    assert np.array_equal(read_mammogram(tmp_path / "c.png")[0][0], arr.astype(np.float32))


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
    path = (
        tmp_path
        / "Mass-Training_P_00001_RIGHT_MLO"
        / "07-20-2016-DDSM-74994"
        / "1.000000-full mammogram images-24515"
        / "1-1.dcm"
    )
    assert parse_path(path) == ("R", "MLO")


def test_load_transforms_return_metatensor_with_metadata(dicom_file):
    path, *_ = dicom_file(side="R")
    img = LoadMammogram()(path)
    assert tuple(img.shape) == (1, 240, 180) and img.meta["laterality"] == "R"
    d = LoadMammogramd("image")({"image": str(path)})
    assert d["laterality"] == "R" and d["image"].meta["view"] == "CC"
    d = LoadMammogramd("image")({"image": str(path), "laterality": "L"})  # the manifest's value wins
    assert d["laterality"] == "L"


def test_12_bit_data_in_a_16_bit_png_fills_zero_to_one(tmp_path):
    """A full-field export holding 12-bit values (max 4095) in a 16-bit PNG must not come out black."""
    from mammo_monai.transforms import preprocess_transforms
    from tests.conftest import make_breast

    pixels, region, _ = make_breast((240, 180))
    twelve = np.round(pixels.astype(np.float64) / pixels.max() * 4095).astype(np.uint16)
    path = tmp_path / "export_L_CC.png"
    Image.fromarray(twelve).save(path)
    _, meta = read_mammogram(path)
    assert meta["bits_stored"] == 12 and meta["container_bits"] == 16
    assert meta["intensity_range"] == [0.0, 4095.0] and meta["container_range"] == [0.0, 65535.0]
    out = preprocess_transforms(size=(240, 180))({"image": str(path)})["image"][0].numpy()
    breast = out[region]
    assert (
        breast.max() > 0.5 and np.percentile(breast, 50) > 0.1
    )  # spread over [0, 1]; the container scale gave <= 0.0625


@pytest.mark.parametrize(
    "maximum,bits", [(255, 8), (1000, 10), (3000, 12), (4095, 12), (4096, 14), (16383, 14), (40000, 16)]
)
def test_bit_depth_is_inferred_from_the_maximum(tmp_path, maximum, bits):
    arr = np.zeros((8, 8), np.uint16)
    arr[3, 3] = maximum
    Image.fromarray(arr).save(tmp_path / "x.png")
    _, meta = read_mammogram(tmp_path / "x.png")
    assert meta["bits_stored"] == bits and meta["intensity_range"][1] == 2**bits - 1

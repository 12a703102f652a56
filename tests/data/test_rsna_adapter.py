from __future__ import annotations

import csv
import hashlib

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1

from mammo_monai.data.adapters import load_rsna
from mammo_monai.data.prepare import prepare
from mammo_monai.io.reader import read_mammogram
from mammo_monai.synthetic import build_dataset, make_rsna_tree
from mammo_monai.synthetic.rsna_tree import save_jpeg_lossless

SIZE = (96, 72)
RSNA_COLUMNS = [
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "cancer",
    "biopsy",
    "invasive",
    "BIRADS",
    "implant",
    "density",
    "machine_id",
    "difficult_negative_case",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    summary = make_rsna_tree(root, patients=30, seed=1, size=SIZE, workers=1)
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((root / "train_images").rglob("*.dcm"))}
    return root, summary, headers


def _breast_and_background(img: np.ndarray, laterality: str) -> tuple[float, float]:
    """Mean of the chest-wall quarter in the middle rows (always breast) and of the far eighth of the
    columns (never breast for the phantom's silhouettes), as fractions of the image's range."""
    h, w = img.shape[-2:]
    x = img.reshape(h, w)[:, ::-1] if laterality == "R" else img.reshape(h, w)
    return float(x[h // 3 : 2 * h // 3, : w // 4].mean()), float(x[:, -(w // 8) :].mean())


def _digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(folder)).encode() + f.read_bytes())
    return h.hexdigest()


def test_load_rsna_reads_the_challenge_table(tree):
    root, summary, _ = tree
    with open(root / "train.csv") as fh:
        assert next(csv.reader(fh)) == RSNA_COLUMNS
    found = load_rsna(root)
    images = found.images
    assert found.errors == [] and len(images) == summary["images"] == found.truth_rows
    assert (images["exam"] == images["patient_id"] + "_" + images["laterality"]).all()
    assert images["patient_id"].str.fullmatch(r"\d{5}").all() and images["image_id"].str.fullmatch(r"\d+_\d+").all()
    assert set(images["label"]) == {0, 1}
    per_breast = images.groupby("exam")["label"].max()
    assert len(per_breast) == 60 and 0.02 <= per_breast.mean() <= 0.04
    assert images.groupby("exam")["view"].agg(lambda v: {"CC", "MLO"} <= set(v)).all()


def test_breast_columns_are_consistent(tree):
    root, _, _ = tree
    table = pd.read_csv(root / "train.csv")
    cancer = table["cancer"] == 1
    assert (table.loc[cancer, "biopsy"] == 1).all() and (table.loc[~cancer, "invasive"] == 0).all()
    assert not table.loc[cancer, "difficult_negative_case"].any() and table["difficult_negative_case"].any()
    assert (table.groupby(["patient_id", "laterality"])["cancer"].nunique() == 1).all()
    assert set(table["BIRADS"].dropna()) <= {0.0, 1.0, 2.0} and table["BIRADS"].isna().any()
    assert set(table["density"].dropna()) <= set("ABCD") and table["density"].isna().any()
    assert set(table["site_id"]) == {1, 2} and set(table["implant"]) <= {0, 1}
    assert table["image_id"].is_unique and table.groupby("patient_id")["machine_id"].nunique().max() == 1


def test_jpeg2000_and_jpeg_lossless_files_decode_dense_bright(tree):
    _, _, headers = tree
    by_syntax = {}
    for path, ds in headers.items():
        by_syntax.setdefault(ds.file_meta.TransferSyntaxUID, []).append((path, ds))
    assert {JPEG2000Lossless, JPEGLosslessSV1} <= set(by_syntax)
    for path, ds in by_syntax[JPEG2000Lossless] + by_syntax[JPEGLosslessSV1]:
        img, meta = read_mammogram(path)
        assert img.shape == (1, *SIZE) and meta["laterality"] == ds.ImageLaterality
        lo, hi = meta["intensity_range"]
        breast, background = _breast_and_background((img - lo) / (hi - lo), ds.ImageLaterality)
        assert breast > background + 0.2, path


@pytest.mark.parametrize("bits", [12, 16])
def test_jpeg_lossless_encoder_round_trips_exactly(tmp_path, bits):
    rng = np.random.default_rng(bits)
    top = 2**bits - 1
    cases = {
        "noise": rng.integers(0, top + 1, (33, 17)),
        "extremes": np.tile([0, 1 << (bits - 1), top], (9, 8)),  # at 16 bits: differences of 32768
        "flat": np.full((5, 7), top // 3),
        "ramp": np.add.outer(np.arange(40), np.arange(30)) * (top // 80),
    }
    for name, arr in cases.items():
        arr = arr.astype(np.uint16)
        ds = build_dataset(arr)
        ds.BitsStored, ds.HighBit = bits, bits - 1
        path = save_jpeg_lossless(ds, tmp_path / f"{name}_{bits}.dcm")
        back = pydicom.dcmread(path)
        assert back.file_meta.TransferSyntaxUID == JPEGLosslessSV1
        np.testing.assert_array_equal(back.pixel_array, arr, err_msg=name)


def test_monochrome1_with_sigmoid_windows_reads_breast_bright(tree):
    _, _, headers = tree
    mono1 = [(p, ds) for p, ds in headers.items() if ds.PhotometricInterpretation == "MONOCHROME1"]
    assert mono1
    for path, ds in mono1:
        assert ds.VOILUTFunction == "SIGMOID"
        assert len(ds.WindowCenter) == len(ds.WindowWidth) == len(ds.WindowCenterWidthExplanation) >= 2
        stored = pydicom.dcmread(path).pixel_array.astype(float)
        raw_breast, raw_background = _breast_and_background(stored, ds.ImageLaterality)
        assert raw_background > raw_breast  # dark tissue on disk: the reader must invert it
        img, meta = read_mammogram(path)
        lo, hi = meta["intensity_range"]
        breast, background = _breast_and_background((img - lo) / (hi - lo), ds.ImageLaterality)
        assert breast > background + 0.3, path


def test_files_carry_only_anonymous_ids(tree):
    root, _, headers = tree
    table = pd.read_csv(root / "train.csv", dtype=str).set_index("image_id")
    for path, ds in headers.items():
        assert not [el.tag for el in ds.iterall() if el.VR in ("DA", "DT", "TM")], path
        assert str(ds.PatientName) == "" and ds.PatientID == path.parent.name
        row = table.loc[path.stem]
        assert (ds.ImageLaterality, ds.ViewPosition) == (row["laterality"], row["view"])


def test_tiny_tree_has_a_positive_and_repeats_per_seed(tmp_path):
    summary = make_rsna_tree(tmp_path / "a", patients=3, seed=5, size=SIZE)
    make_rsna_tree(tmp_path / "b", patients=3, seed=5, size=SIZE)
    assert summary["positive_breasts"] == 1 and summary["positive_images"] >= 2
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    make_rsna_tree(tmp_path / "c", patients=3, seed=6, size=SIZE)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_prepare_builds_a_patient_grouped_manifest(tree, tmp_path):
    root, summary, _ = tree
    result = prepare("rsna", root, tmp_path / "out", size=SIZE, workers=1, progress=False)
    images = pd.read_csv(tmp_path / "out" / "images.csv", dtype={"patient_id": str})
    assert result["failed_images"] == 0 and len(images) == summary["images"]
    assert (images.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(images["split"]) == {"train", "val", "test"}
    assert int(images["label"].sum()) == summary["positive_images"]
    assert (images["dataset"] == "rsna").all() and result["laterality_mismatches"] == 0

"""``prepare`` and the cache: a cache that cannot lie, truth rows that never drop an image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.data import ManifestError, read_manifest
from mammo_monai.data.adapters import ADAPTERS, AdapterResult
from mammo_monai.data.cache import cache_image, fit_mask
from mammo_monai.data.cache_record import CacheMismatchError, preprocessing_settings
from mammo_monai.data.patches import Overlap, make_patches, sample_background_centres
from mammo_monai.data.prepare import prepare
from mammo_monai.io import MammogramError
from mammo_monai.synthetic import make_cbis_tree, write_dicom
from mammo_monai.training.records import records
from tests.conftest import make_breast


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    base = tmp_path_factory.mktemp("raw")
    make_cbis_tree(base, patients=8, seed=4, size=(192, 144), workers=1)
    return base


def _prepare(raw, out, **kwargs):
    return prepare("cbis-ddsm", raw, out, workers=1, progress=False, **{"size": (96, 72), **kwargs})


def test_a_cache_made_at_another_size_is_refused_then_rebuilt(raw, tmp_path):
    _prepare(raw, tmp_path)
    with pytest.raises(CacheMismatchError, match=r"size \[96, 72\] -> \[64, 48\].*--rebuild"):
        _prepare(raw, tmp_path, size=(64, 48))
    with pytest.raises(CacheMismatchError, match="keep_aspect False -> True"):
        _prepare(raw, tmp_path, transform_options={"keep_aspect": True})
    summary = _prepare(raw, tmp_path, size=(64, 48), rebuild=True)
    images, _ = read_manifest(tmp_path)
    assert summary["reused_cache"] is False and len(images) == summary["images"]
    assert all(np.asarray(Image.open(p)).shape == (64, 48) for p in images["image"])


def test_splits_and_labels_are_derived_afresh_not_read_from_the_cache(raw, tmp_path):
    _prepare(raw, tmp_path / "a", split_seed=0)
    again = _prepare(raw, tmp_path / "a", split_seed=7)
    _prepare(raw, tmp_path / "b", split_seed=7)  # the same seed from scratch
    assert again["reused_cache"] is True
    a, _ = read_manifest(tmp_path / "a")
    b, _ = read_manifest(tmp_path / "b")
    assert a.set_index("image_id")["split"].sort_index().equals(b.set_index("image_id")["split"].sort_index())


def test_duplicate_image_ids_are_excluded_and_reported_before_anything_is_written(tmp_path, monkeypatch):
    files = []
    for i, side in enumerate("LRL"):
        files.append(
            str(
                write_dicom(
                    tmp_path / f"f{i}.dcm", make_breast((96, 72), side=side, seed=i)[0], laterality=side, view="CC"
                )
            )
        )
    rows = [
        {
            "image_id": iid,
            "image": f,
            "patient_id": f"p{i}",
            "laterality": "L",
            "view": "CC",
            "label": i % 2,
            "dataset": "t",
            "split": "train",
        }
        for i, (iid, f) in enumerate(zip(["a", "dup", "dup"], files))
    ]
    monkeypatch.setitem(ADAPTERS, "folder", lambda root: AdapterResult.from_rows(rows, [], []))
    summary = prepare("folder", tmp_path, tmp_path / "out", size=(48, 36), workers=1, progress=False)
    assert summary["images"] == 1 and summary["failed_images"] == 2
    assert sorted(p.name for p in (tmp_path / "out" / "images").glob("*.png")) == ["a.png", "a_mask.png"]
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert errors["reason"].str.contains("'dup' is given to more than one image").sum() == 2


def test_a_patient_in_two_splits_is_refused_by_patches_and_training(raw, tmp_path):
    _prepare(raw, tmp_path / "m")
    table = pd.read_csv(tmp_path / "m" / "images.csv", dtype=str)
    pid = table["patient_id"][table["patient_id"].duplicated()].iloc[0]
    first = table.index[table["patient_id"] == pid][0]
    table.loc[first, "split"] = "test" if table.loc[first, "split"] != "test" else "train"
    table.to_csv(tmp_path / "m" / "images.csv", index=False)
    with pytest.raises(ManifestError, match=f"patient '{pid}' is in several splits"):
        make_patches(tmp_path / "m", tmp_path / "p", workers=1, progress=False)
    with pytest.raises(ManifestError, match="several splits"):
        records(tmp_path / "m" / "images.csv", "train", 2)


def test_roi_mask_a_few_pixels_off_is_padded_and_one_far_off_is_rejected():
    mask = np.zeros((103, 78), bool)
    mask[10:20, 30:40] = True
    notes: list[str] = []
    fitted = fit_mask(mask, (100, 80), "roi.dcm", notes)
    assert fitted.shape == (100, 80) and np.array_equal(np.argwhere(fitted), np.argwhere(mask))  # not stretched
    assert "padded/cropped" in notes[0]
    with pytest.raises(MammogramError, match="roi.dcm: ROI mask 400x80 does not match the image's 100x80"):
        fit_mask(np.zeros((400, 80), bool), (100, 80), "roi.dcm", [])


def test_bad_lesion_rows_keep_their_image_and_lesions_outside_the_breast_are_flagged(tmp_path):
    pixels, region, lesion = make_breast((160, 120), side="L", seed=3)
    src = str(write_dicom(tmp_path / "img.dcm", pixels, laterality="L", view="CC"))
    big = tmp_path / "far_off_mask.png"
    Image.fromarray(np.zeros((460, 120), np.uint8)).save(big)
    centre = np.argwhere(lesion).mean(0)
    air = np.argwhere(~region)[-1]  # bottom right: film, not breast
    lesions = [
        {
            "lesion_type": "calc",
            "pathology": "malignant",
            "center_row": "*NOTE 3*",
            "center_col": "",
            "radius": "",
            "mask": "",
        },
        {"lesion_type": "mass", "pathology": "benign", "mask": str(big)},
        {
            "lesion_type": "mass",
            "pathology": "malignant",
            "center_row": air[0],
            "center_col": air[1],
            "radius": 4,
            "mask": "",
        },
        {
            "lesion_type": "mass",
            "pathology": "malignant",
            "center_row": centre[0],
            "center_col": centre[1],
            "radius": 8,
            "mask": "",
        },
    ]
    image = {"image_id": "img", "image": src, "patient_id": "p", "laterality": "L", "view": "CC", "label": 1}
    cached, kept, problems = cache_image(image, lesions, tmp_path / "cache", preprocessing_settings((80, 60)))
    assert cached is not None and len(kept) == 4
    assert [bool(k["cached_mask"]) for k in kept] == [False, False, True, True]
    assert [k["outside_breast"] for k in kept] == [False, False, True, False]
    text = " | ".join(p["reason"] for p in problems)
    assert "does not match" in text and "outside the breast mask" in text


def test_background_patches_lie_mostly_inside_the_breast():
    breast = np.zeros((200, 200), bool)
    breast[:, :90] = True  # a half-plane breast: a centre near column 89 would give a half-air patch
    roi = np.zeros_like(breast)
    roi[90:110, 30:50] = True
    centres = sample_background_centres(breast, Overlap(roi), 30, 40, np.random.default_rng(0))
    inside = Overlap(breast)
    assert len(centres) == 30
    assert all(inside.count(r, c, 40) >= 0.75 * 40 * 40 and Overlap(roi).count(r, c, 40) == 0 for r, c in centres)


def test_cli_prepare_reports_counts_and_exits_1_when_an_image_fails(raw, tmp_path, capsys):
    import shutil

    from mammo_monai.cli import main

    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    victim = sorted((copy / "CBIS-DDSM").glob("*_CC/*/*full mammogram*/1-1.dcm"))[0]
    victim.write_bytes(victim.read_bytes()[:2000])  # truncated: pixel data missing
    args = [
        "prepare",
        "--dataset",
        "cbis-ddsm",
        "--root",
        str(copy),
        "--out",
        str(tmp_path / "m"),
        "--size",
        "48",
        "36",
        "--workers",
        "1",
        "--quiet",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "label 0:" in err and "truth rows" in err and "1 image(s) failed" in err
    errors = pd.read_csv(tmp_path / "m" / "errors.csv")
    assert errors["file"].str.contains("1-1.dcm").any()
    victim.unlink()
    shutil.rmtree(victim.parent.parent.parent)  # the film's case folder: its CSV rows now point nowhere
    assert main(args) == 1  # still a failure: the adapter excludes the image it cannot find

"""Segmentation records from a prepared manifest (labelled fraction by patient, normals, unlabelled
images for self-supervision, clear refusals) and the lesion target built from their masks."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mammo_monai.data.prepare import prepare
from mammo_monai.data.segmentation import segmentation_records
from mammo_monai.io import LoadMammogramd
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.transforms import LesionMaskd, eval_transforms


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """A prepared synthetic CBIS-DDSM manifest: every image carries lesions (CBIS-DDSM has no normals)."""
    base = tmp_path_factory.mktemp("seg")
    make_cbis_tree(base / "raw", patients=8, seed=0, size=(128, 100), workers=1)
    prepare("cbis-ddsm", base / "raw", base / "manifest", size=(128, 100), workers=1, progress=False)
    return base / "manifest"


@pytest.fixture(scope="module")
def with_normals(manifest, tmp_path_factory):
    """The same images, but the last two train patients lose their lesions and become label 0 (normals),
    one validation patient loses its lesions but keeps label 1 (a positive never drawn: not a normal), and
    the first train image's lesions lose their cached masks (lesions without usable geometry)."""
    out = tmp_path_factory.mktemp("normals")
    images = pd.read_csv(manifest / "images.csv", dtype=str)
    lesions = pd.read_csv(manifest / "lesions.csv", dtype=str)
    train = images[images["split"] == "train"]
    normal_patients = sorted(train["patient_id"].unique())[-2:]
    normal_ids = set(images.loc[images["patient_id"].isin(normal_patients), "image_id"])
    images.loc[images["image_id"].isin(normal_ids), "label"] = "0"
    undrawn_patient = sorted(images.loc[images["split"] == "val", "patient_id"].unique())[0]
    images.loc[images["patient_id"] == undrawn_patient, "label"] = "1"
    undrawn_ids = set(images.loc[images["patient_id"] == undrawn_patient, "image_id"])
    lesions = lesions[~lesions["image_id"].isin(normal_ids | undrawn_ids)]
    no_geometry = train["image_id"].iloc[0]
    lesions.loc[lesions["image_id"] == no_geometry, "cached_mask"] = ""
    images.to_csv(out / "images.csv", index=False)
    lesions.to_csv(out / "lesions.csv", index=False)
    return out, normal_ids, no_geometry


def _tables(folder):
    return pd.read_csv(folder / "images.csv", dtype=str), pd.read_csv(folder / "lesions.csv", dtype=str)


def test_every_lesion_image_of_the_split_comes_with_all_its_masks(manifest):
    images, lesions = _tables(manifest)
    recs = segmentation_records(manifest, "train", normals=0)
    train = images[images["split"] == "train"]
    assert [r["image_id"] for r in recs] == train["image_id"].tolist()  # every synthetic image has lesions
    by_image = lesions.groupby("image_id")["cached_mask"].apply(list).to_dict()
    assert {r["image_id"]: r["masks"] for r in recs} == {i: by_image[i] for i in train["image_id"]}
    assert any(len(r["masks"]) == 2 for r in recs)  # a film with two lesions keeps both
    first = recs[0]
    row = train.iloc[0]
    assert first["image"] == row["image"] and first["label"] == int(row["label"])
    assert first["exam"] == f"{row['patient_id']}_{row['laterality']}" and first["labelled"] is True


def test_labelled_fraction_takes_whole_patients_deterministically(manifest):
    images, _ = _tables(manifest)
    train = images[images["split"] == "train"]
    per_patient = train.groupby("patient_id").size().to_dict()
    half = segmentation_records(manifest, "train", labelled_fraction=0.5, seed=3, normals=0)
    assert half == segmentation_records(manifest, "train", labelled_fraction=0.5, seed=3, normals=0)
    patients = {r["patient_id"] for r in half}
    assert len(half) == sum(per_patient[p] for p in patients)  # all images of a chosen patient
    assert 0.5 * len(train) <= len(half) < len(train)
    small = segmentation_records(manifest, "train", labelled_fraction=0.2, seed=3, normals=0)
    assert {r["patient_id"] for r in small} < patients  # the same seed keeps a subset
    drawn = {
        frozenset(r["patient_id"] for r in segmentation_records(manifest, "train", 0.5, seed=s, normals=0))
        for s in range(8)
    }
    assert len(drawn) > 1  # the seed matters


def test_unlabelled_mode_returns_the_rest_without_masks(manifest):
    images, _ = _tables(manifest)
    train_ids = images.loc[images["split"] == "train", "image_id"].tolist()
    every = segmentation_records(manifest, "train", unlabelled=True)
    assert [r["image_id"] for r in every] == train_ids and all(r["labelled"] for r in every)
    mixed = segmentation_records(manifest, "train", labelled_fraction=0.5, seed=3, normals=0, unlabelled=True)
    labelled = segmentation_records(manifest, "train", labelled_fraction=0.5, seed=3, normals=0)
    assert [r["image_id"] for r in mixed] == train_ids
    assert {r["image_id"] for r in mixed if r["labelled"]} == {r["image_id"] for r in labelled}
    assert all(r["masks"] == [] for r in mixed if not r["labelled"]) and not all(r["labelled"] for r in mixed)
    ssl = segmentation_records(manifest, "train", labelled_fraction=0.0, unlabelled=True)
    assert len(ssl) == len(train_ids) and not any(r["labelled"] for r in ssl)


def test_normals_are_added_per_labelled_lesion_image(with_normals):
    folder, normal_ids, no_geometry = with_normals
    images, _ = _tables(folder)
    train = images[images["split"] == "train"]
    pool = normal_ids & set(train["image_id"])
    assert len(pool) >= 2  # two patients, at least one breast (two views) each
    lesion_images = len(train) - len(pool) - 1  # the image without usable masks is neither

    def normals_in(recs):
        return [r for r in recs if r["image_id"] in pool]

    half = segmentation_records(folder, "train", normals=0.5)
    # round(0.5 * lesion images) normals, capped by the pool
    assert len(normals_in(half)) == min(len(pool), round(0.5 * lesion_images))
    assert all(r["masks"] == [] and r["labelled"] for r in normals_in(half))
    assert normals_in(half) == normals_in(segmentation_records(folder, "train", normals=0.5))
    assert normals_in(segmentation_records(folder, "train", normals=0)) == []
    assert {r["image_id"] for r in segmentation_records(folder, "train", normals=None)} >= pool
    assert len(segmentation_records(folder, "train", normals=None)) == lesion_images + len(pool)
    assert no_geometry not in {r["image_id"] for r in segmentation_records(folder, "train", normals=None)}
    ssl = segmentation_records(folder, "train", normals=0, unlabelled=True)
    assert [r for r in ssl if r["image_id"] == no_geometry][0]["labelled"] is False


def test_normals_count_per_labelled_lesion_image_not_per_lesion_image(with_normals):
    folder, normal_ids, _ = with_normals
    recs = segmentation_records(folder, "train", labelled_fraction=0.3, seed=1, normals=1.0)
    lesion_images = [r for r in recs if r["masks"]]
    normals = [r for r in recs if r["image_id"] in normal_ids]
    assert len(lesion_images) < 4  # fewer than the pool of normals, so the count is not capped
    assert len(normals) == len(lesion_images)


def test_a_lesion_outside_the_breast_is_no_usable_mask(manifest, tmp_path):
    images, lesions = _tables(manifest)
    flagged = images.loc[images["split"] == "train", "image_id"].iloc[1]
    lesions.loc[lesions["image_id"] == flagged, "outside_breast"] = "True"
    images.to_csv(tmp_path / "images.csv", index=False)
    lesions.to_csv(tmp_path / "lesions.csv", index=False)
    recs = segmentation_records(tmp_path, "train", normals=None, unlabelled=True)
    assert [(r["labelled"], r["masks"]) for r in recs if r["image_id"] == flagged] == [(False, [])]
    assert sum(r["labelled"] for r in recs) == len(recs) - 1


def test_normals_never_come_from_held_out_patients(with_normals, tmp_path):
    # one patient with a lesion film and a normal film: held out, its normal film must not be labelled
    folder, normal_ids, _ = with_normals
    images, lesions = _tables(folder)
    lesion_rows = lesions[~lesions["image_id"].isin(normal_ids)]
    pid = images.loc[images["image_id"] == lesion_rows["image_id"].iloc[-1], "patient_id"].iloc[0]
    own = images.loc[images["patient_id"] == pid, "image_id"].tolist()
    lesions = lesions[lesions["image_id"] != own[0]]  # the patient's first film becomes normal
    images.to_csv(tmp_path / "images.csv", index=False)
    lesions.to_csv(tmp_path / "lesions.csv", index=False)
    split = images.loc[images["patient_id"] == pid, "split"].iloc[0]
    seen = set()
    for seed in range(8):
        recs = segmentation_records(tmp_path, split, labelled_fraction=0.3, seed=seed, normals=None)
        kept = pid in {r["patient_id"] for r in recs if r["masks"]}
        assert (own[0] in {r["image_id"] for r in recs}) == kept
        seen.add(kept)
    assert seen == {True, False}  # both cases happened


def test_refusals_are_one_clear_line(manifest, tmp_path):
    copy = tmp_path / "m"
    copy.mkdir()
    shutil.copy(manifest / "images.csv", copy / "images.csv")
    with pytest.raises(FileNotFoundError, match=r"lesions\.csv: not found"):
        segmentation_records(copy, "train")
    pd.read_csv(manifest / "lesions.csv").drop(columns="cached_mask").to_csv(copy / "lesions.csv", index=False)
    with pytest.raises(ValueError, match=r"lesions\.csv: no 'cached_mask' column"):
        segmentation_records(copy, "train")
    with pytest.raises(ValueError, match="empty selection in split 'train'"):
        segmentation_records(manifest, "train", labelled_fraction=0.0)
    with pytest.raises(ValueError, match="labelled_fraction"):
        segmentation_records(manifest, "train", labelled_fraction=1.5)
    with pytest.raises(ValueError, match="normals"):
        segmentation_records(manifest, "train", normals=-1)


def _png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_lesion_mask_is_the_union_of_8_and_16_bit_masks(tmp_path):
    a = np.zeros((6, 5), np.uint8)
    a[1:3, 1:3] = 255  # 4 px
    b = np.zeros((6, 5), np.uint16)
    b[2:4, 2:5] = 1000  # 6 px, one shared with a -> union 4 + 6 - 1 = 9 px
    paths = [_png(tmp_path / "a.png", a), _png(tmp_path / "b.png", b)]
    out = LesionMaskd()({"image": torch.zeros(1, 6, 5), "masks": paths})
    seg = out["seg"]
    assert seg.shape == (1, 6, 5) and seg.dtype == torch.float32
    np.testing.assert_array_equal(seg[0].numpy(), ((a > 0) | (b > 0)).astype(np.float32))
    assert float(seg.sum()) == 9
    empty = LesionMaskd(label_key="target")({"image": torch.zeros(1, 6, 5), "masks": []})
    assert empty["target"].shape == (1, 6, 5) and float(empty["target"].sum()) == 0


def test_lesion_mask_follows_an_image_loaded_from_the_cache(manifest):
    rec = next(r for r in segmentation_records(manifest, "train", normals=0) if len(r["masks"]) == 2)
    data = LesionMaskd()(eval_transforms(from_cache=True)(rec))
    expected = np.zeros(data["image"].shape[-2:], bool)
    for path in rec["masks"]:
        expected |= np.asarray(Image.open(path)) > 0
    assert data["seg"].shape == data["image"].shape == (1, 128, 100)
    np.testing.assert_array_equal(data["seg"][0].numpy() > 0, expected)
    assert expected.any()
    loaded = LesionMaskd()(LoadMammogramd("image")(rec))  # a MetaTensor image gives a MetaTensor target
    assert loaded["seg"].affine.tolist() == loaded["image"].affine.tolist()


def test_a_mask_of_another_size_is_refused_naming_the_file(manifest):
    rec = segmentation_records(manifest, "train", normals=0)[0]
    data = eval_transforms(from_cache=True)(rec)
    data["image"] = data["image"][:, :64]  # a resized or cropped image no longer matches its masks
    with pytest.raises(ValueError, match=rf"{re.escape(rec['masks'][0])}: lesion mask is 128x100 but .* is 64x100"):
        LesionMaskd()(data)
    with pytest.raises(ValueError, match="load the image first"):
        LesionMaskd()(rec)


def test_a_positive_image_without_lesion_rows_is_never_drawn_as_a_normal(with_normals):
    folder, normal_ids, _ = with_normals
    images = pd.read_csv(folder / "images.csv", dtype=str)
    lesion_ids = set(pd.read_csv(folder / "lesions.csv", dtype=str)["image_id"])
    undrawn = set(images.loc[(images["label"] == "1") & ~images["image_id"].isin(lesion_ids), "image_id"])
    assert undrawn  # the fixture made one
    recs = {r["image_id"]: r for r in segmentation_records(folder, "val", normals=None, unlabelled=True)}
    assert undrawn <= set(recs)  # still there for self-supervised pretraining ...
    assert not any(recs[i]["labelled"] for i in undrawn)  # ... but never a labelled all-background target

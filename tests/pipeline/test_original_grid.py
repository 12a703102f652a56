"""Spatial outputs go back onto the original image: the recorded grid chain, inverted for maps, points and
boxes, on synthetic films with known lesion centres (left and right breasts, with and without crop +
keep_aspect), and predict's heatmap / lesion-map files on the original grid at the original spacing."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from monai.data import MetaTensor, decollate_batch, list_data_collate

from mammo_monai.evaluation.lesion_detection import find_candidates
from mammo_monai.inference.lesion_maps import LesionMapWriter
from mammo_monai.inference.original_grid import boxes_to_original, points_to_original, to_original_grid
from mammo_monai.inference.placement_check import gaussian_map, placement_errors
from mammo_monai.inference.predict import _Scorer, save_lesion_maps
from mammo_monai.synthetic.dicom_writer import build_dataset, save_dataset
from mammo_monai.synthetic.lesion_films import film_with_lesions
from mammo_monai.transforms.pipelines import eval_transforms, preprocess_transforms

SHAPE, SIZE = (520, 380), (256, 192)  # about 2 original pixels per network pixel
SPACING = (0.1, 0.08)  # anisotropic: rows and columns must not be swapped


@pytest.fixture(scope="module", params=["L", "R"])
def film(request):
    return film_with_lesions(3, SHAPE, request.param, n_lesions=3)


@pytest.mark.parametrize("crop", [False, True], ids=["stretch", "crop_keep_aspect"])
def test_lesion_map_peaks_land_within_a_few_original_pixels_of_the_true_centre(film, crop):
    found = placement_errors(film, SIZE, crop=crop, keep_aspect=crop)
    assert found["shape"] == SHAPE
    assert found["flipped"] == (film.image.meta["laterality"] == "R")
    assert max(found["peak"]) <= 2.5, found  # half a network pixel is ~1 original pixel here
    assert max(found["point"]) <= 1.5, found


def _preprocessed(film, crop: bool):
    return preprocess_transforms(size=SIZE, crop=crop, keep_aspect=crop, intensity="percentile", load=False)(
        {"image": film.image.clone()}
    )


def test_the_chest_wall_column_goes_back_to_its_own_side():
    for side, wall in (("L", 0), ("R", SHAPE[1] - 1)):
        d = _preprocessed(film_with_lesions(5, SHAPE, side, n_lesions=1), crop=False)
        marked = np.zeros(SIZE, np.float32)
        marked[:, 0] = 1.0  # network frame: the chest wall is always on the left
        back = to_original_grid(marked, d["image"].meta)
        assert back[:, wall].min() > 0.4 and back[:, SHAPE[1] - 1 - wall].max() == 0.0, side
        assert points_to_original(np.array([[10.0, 0.0]]), d["image"].meta)[0, 1] == pytest.approx(
            wall + (0.5 if wall == 0 else -0.5), abs=0.6
        )


def test_a_right_breast_is_misplaced_without_undoing_its_flip():
    film = film_with_lesions(4, SHAPE, "R", n_lesions=1)
    d = preprocess_transforms(size=SIZE, extra_mask_keys=["lesion"], intensity="percentile", load=False)(
        {"image": film.image.clone(), "lesion": torch.from_numpy(film.masks[0][None].astype(np.float32))}
    )
    centre = np.argwhere(np.asarray(d["lesion"][0]) > 0).mean(0)
    meta = d["image"].meta
    unflipped = {**meta, "grid_chain": [s for s in meta["grid_chain"] if s["op"] != "flip"]}
    assert np.hypot(*(points_to_original(centre[None], meta)[0] - film.centres[0])) < 1.5
    assert np.hypot(*(points_to_original(centre[None], unflipped)[0] - film.centres[0])) > 20


def test_maps_keep_their_leading_dims_and_fill_outside_the_crop():
    film = film_with_lesions(6, SHAPE, "L", n_lesions=1)
    d = _preprocessed(film, crop=True)
    meta = d["image"].meta
    r0, r1, c0, c1 = meta["breast_bbox"]
    assert (r0, r1, c0, c1) != (0, SHAPE[0], 0, SHAPE[1])  # the film was cropped
    maps = np.zeros((3, *SIZE), np.float32)
    back = to_original_grid(maps, meta, fill=[1.0, 0.0, 0.0])
    assert back.shape == (3, *SHAPE) and back.dtype == np.float32
    assert back[0, :r0].min() == 1.0 and back[0, r0:r1, c0:c1].max() == 0.0 and back[1:].max() == 0.0
    assert to_original_grid(maps[0], meta).shape == SHAPE
    with pytest.raises(ValueError, match="preprocessing ended at"):
        to_original_grid(np.zeros((10, 10)), meta)
    with pytest.raises(ValueError, match="no grid_chain"):
        to_original_grid(maps, {"source_path": "x.dcm"})


def test_boxes_go_back_around_their_lesion(film):
    d = preprocess_transforms(
        size=SIZE, extra_mask_keys=["lesion"], crop=True, keep_aspect=True, intensity="percentile", load=False
    )({"image": film.image.clone(), "lesion": torch.from_numpy(film.masks[0][None].astype(np.float32))})
    rows, cols = np.nonzero(np.asarray(d["lesion"][0]) > 0)
    box = boxes_to_original(np.array([[rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]]), d["image"].meta)[0]
    true_rows, true_cols = np.nonzero(film.masks[0])
    assert box[0] <= true_rows.min() + 1 and box[2] >= true_rows.max() and box[1] <= box[3]
    assert box[1] <= true_cols.min() + 1 and box[3] >= true_cols.max()


def _dicom(tmp_path, film) -> str:
    pixels = np.round(np.asarray(film.image[0]) * 4095).astype(np.uint16)
    ds = build_dataset(pixels, laterality=film.image.meta["laterality"], view="CC")
    ds.PixelSpacing = [str(s) for s in SPACING]
    return str(save_dataset(ds, tmp_path / "film.dcm"))


class _TinyPatchNet(torch.nn.Module):
    """Two classes: background, and 'bright centre' (the window's centre pixel above its mean)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        lesion = 20 * (x[:, 0, h // 2, w // 2] - x.mean(dim=(1, 2, 3)))
        return torch.stack([torch.zeros_like(lesion), lesion], dim=1)


def test_predict_heatmaps_are_written_on_the_original_grid_at_its_spacing(tmp_path, film):
    path = _dicom(tmp_path, film)
    d = preprocess_transforms(size=SIZE, crop=True, keep_aspect=True)({"image": path})
    partner = SimpleNamespace(
        networks=lambda **_: [_TinyPatchNet()],
        trained={"image_size": [16, 16], "class_names": ["background", "bright"]},
    )
    scorer = _Scorer(SimpleNamespace(partner=partner, outputs=["probability"]), [], None, tmp_path, 8, [], 99, False)
    scorer.add(d, {}, "film")
    heat, image = nib.load(tmp_path / "film_heatmap.nii.gz"), nib.load(tmp_path / "film_image.nii.gz")
    assert heat.shape == (*SHAPE, 1, 2) and image.shape == (*SHAPE, 1)
    np.testing.assert_allclose(np.diag(heat.affine)[:2], SPACING)
    assert (heat.affine == image.affine).all()
    np.testing.assert_allclose(np.asarray(image.dataobj)[..., 0], np.asarray(film.image[0]) * 4095, atol=0.6)
    lesion = scorer.original_maps["film"]
    assert lesion.shape == SHAPE and lesion.dtype == np.float32
    np.testing.assert_allclose(lesion, 1 - heat.get_fdata()[:, :, 0, 0], atol=0.5 / 255 + 1e-6)  # 8-bit steps
    assert (tmp_path / "film_heatmap.png").is_file()


def test_segmenter_lesion_maps_and_candidates_are_in_original_pixels(tmp_path, film):
    path = _dicom(tmp_path, film)
    d = preprocess_transforms(size=SIZE, extra_mask_keys=["lesion"], crop=True, keep_aspect=True)(
        {"image": path, "lesion": torch.from_numpy(film.masks[0][None].astype(np.float32))}
    )
    mask = np.asarray(d["lesion"][0]) > 0
    oracle = gaussian_map(SIZE, np.argwhere(mask).mean(0), 4.0)  # what a perfect segmenter would draw
    found = {"lesion_map": oracle, "candidates": find_candidates(oracle, threshold=0.5)}
    back = save_lesion_maps(tmp_path, "film", d, found)
    assert back.shape == SHAPE
    assert np.hypot(*(np.unravel_index(np.argmax(back), SHAPE) - film.centres[0])) <= 2.5
    rows = pd.read_csv(tmp_path / "film_candidates.csv")
    assert len(rows) == 1
    got = rows[["center_row_original", "center_col_original"]].to_numpy()[0]
    assert np.hypot(*(got - film.centres[0])) <= 2.0
    box = rows[["row0_original", "col0_original", "row1_original", "col1_original"]].to_numpy()[0]
    assert box[0] < film.centres[0][0] < box[2] and box[1] < film.centres[0][1] < box[3]
    np.testing.assert_allclose(np.diag(nib.load(tmp_path / "film_heatmap.nii.gz").affine)[:2], SPACING)


def test_the_bundle_lesion_writer_maps_back_through_a_dataloader(tmp_path, film):
    path = _dicom(tmp_path, film)
    d = eval_transforms(size=SIZE, extra_mask_keys=["lesion"], crop=True, keep_aspect=True)(
        {"image": path, "path": path, "lesion": torch.from_numpy(film.masks[0][None].astype(np.float32))}
    )
    assert not isinstance(d["image"], MetaTensor)  # the meta is gone; the grid record stays
    item = decollate_batch(list_data_collate([d]))[0]
    assert item["grid"] == d["grid"]
    oracle = gaussian_map(SIZE, np.argwhere(np.asarray(d["lesion"][0]) > 0).mean(0), 4.0)
    logits = torch.from_numpy(np.stack([np.zeros_like(oracle), 8 * (oracle - 0.5)]))
    writer = LesionMapWriter(str(tmp_path / "out"))
    writer._collect(SimpleNamespace(state=SimpleNamespace(batch=[item], output=[{"pred": logits}])))
    writer._write(None)
    lesion = nib.load(tmp_path / "out" / "film_lesion.nii.gz")
    assert lesion.shape == SHAPE
    np.testing.assert_allclose(np.diag(lesion.affine)[:2], SPACING)
    peak = np.unravel_index(np.argmax(lesion.get_fdata()), SHAPE)
    assert np.hypot(*(np.asarray(peak) - film.centres[0])) <= 2.5
    row = pd.read_csv(tmp_path / "out" / "candidates.csv").iloc[0]
    assert row["frame"] == "original"
    assert np.hypot(row["center_row"] - film.centres[0][0], row["center_col"] - film.centres[0][1]) <= 2.0

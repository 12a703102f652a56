"""The film-artefact generator: what each kind paints, where, and that lesions stay visible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mammo_monai.io import read_mammogram
from mammo_monai.synthetic import (
    FILM_ARTEFACTS,
    add_edge_strip,
    add_film_artefacts,
    add_frame,
    add_garbage_rows,
    add_label,
    add_ruler,
    breast_tissue,
    make_cbis_tree,
)


def _breast(view="MLO", seed=0, shape=(240, 180)):
    rng = np.random.default_rng(seed)
    img, region, _ = breast_tissue(rng, shape, view, density=2)
    return img, region, rng


def _touches(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((ndimage.binary_dilation(a) & b).any())


def test_frame_is_bright_outside_the_breast_and_touches_it():
    img, region, rng = _breast("CC")
    before = img.copy()
    frame = add_frame(img, region, rng, thickness=4)
    assert frame[:4].all() and frame[-4:].all() and not (frame & region).any()
    assert img[frame].min() > 0.75 and np.array_equal(img[region], before[region])
    assert _touches(frame, region)  # along the chest wall


def test_garbage_rows_and_ruler_reach_the_pectoral_muscle():
    img, region, rng = _breast("MLO")
    rows = add_garbage_rows(img, region, rng, sides=("top",), count=2)
    assert rows[:2].any(1).all() and not rows[2:].any() and _touches(rows, region)
    img, region, rng = _breast("MLO", seed=1)
    ruler = add_ruler(img, region, rng, side="top", offset=0)
    assert _touches(ruler, region) and ruler[:, ruler.any(0)].sum(0).max() >= 3  # ticks point inwards


def test_label_is_stuck_against_the_frame_clear_of_the_breast():
    img, region, rng = _breast("CC")
    frame = add_frame(img, region, rng, thickness=4)
    label = add_label(img, region, rng, chest_wall_left=True, frame=4)
    assert label.sum() > 200 and _touches(label, frame) and not _touches(label, region)
    assert label[:, -6:].any() and not label[:, :90].any()  # on the far (nipple) side


def test_edge_strip_covers_the_breast_but_never_a_protected_lesion():
    img, region, rng = _breast("MLO")
    lesion = np.zeros_like(region)
    lesion[12:16, 20:24] = True
    strip = add_edge_strip(img, region, rng, side="top", depth=20, protect=lesion)
    assert strip.any() and (strip & region).any() and not (strip & lesion).any()


def test_random_mix_is_reproducible_and_rejects_unknown_kinds():
    masks = [add_film_artefacts(*_breast("CC", seed=3)[:2], np.random.default_rng(5)) for _ in range(2)]
    assert masks[0].any() and np.array_equal(masks[0], masks[1])
    assert set(FILM_ARTEFACTS) == {"frame", "garbage_rows", "label", "ruler", "edge_strip"}
    with pytest.raises(ValueError, match="unknown film artefacts"):
        add_film_artefacts(*_breast()[:2], np.random.default_rng(0), kinds=["coffee_stain"])


def test_cbis_films_get_artefacts_and_keep_their_lesions(tmp_path):
    kwargs = dict(patients=2, seed=4, size=(192, 150), workers=1, p_monochrome1=0.0, p_window=0.0)
    make_cbis_tree(tmp_path / "clean", p_film_artefacts=0.0, **kwargs)
    make_cbis_tree(tmp_path / "film", p_film_artefacts=1.0, **kwargs)
    changed = checked = 0
    for clean in sorted((tmp_path / "clean" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm")):
        film = tmp_path / "film" / clean.relative_to(tmp_path / "clean")
        a, b = (np.squeeze(np.asarray(read_mammogram(f)[0])) for f in (clean, film))
        changed += int((a != b).any())
        for roi in (tmp_path / "clean" / "CBIS-DDSM").glob(f"{clean.parts[-4]}_*/*/*/1-*.dcm"):
            arr, meta = read_mammogram(roi)
            arr = np.squeeze(np.asarray(arr))
            if meta["bits_stored"] == 8 and arr.shape == a.shape:  # the lesion's ROI mask
                inside = arr > 0
                assert np.array_equal(a[inside], b[inside])
                checked += 1
    assert changed > 0 and checked > 0

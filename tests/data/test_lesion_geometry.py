"""One lesion geometry for every adapter (mammo_monai.data.adapters.geometry): one box layout in the
manifest, one minimum radius, keyword-only axes; a manifest joining a corners dataset (VinDr-Mammo) and a
top-left + size dataset (BCS-DBT) holds one box layout, filled for both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mammo_monai.data.adapters.geometry import (
    MIN_RADIUS,
    box_geometry,
    outline_geometry,
    pixel_box_geometry,
    sized_box_geometry,
)
from mammo_monai.data.manifest import BOX_COLUMNS, LESION_COLUMNS
from mammo_monai.data.multi_dataset import parse_dataset_specs
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic.bcs_dbt_tree import make_bcs_dbt_tree
from mammo_monai.synthetic.vindr_tree import make_vindr_tree


def test_corners_in_any_order_and_top_left_size_give_the_same_box():
    want = {"center_row": 25.0, "center_col": 40.0, "radius": 25.0, **dict(zip(BOX_COLUMNS, (10.0, 20.0, 40.0, 60.0)))}
    assert box_geometry(row0=40, col0=60, row1=10, col1=20) == want
    assert sized_box_geometry(top=10, left=20, height=30, width=40) == want


def test_axes_are_keyword_only():
    with pytest.raises(TypeError):
        box_geometry(10, 20, 40, 60)  # type: ignore[misc]
    with pytest.raises(TypeError):
        outline_geometry([1.0, 2.0], [3.0, 4.0])  # type: ignore[misc]


def test_outline_centre_enclosing_radius_and_bounding_box():
    rows, cols = np.array([10.0, 10.0, 30.0, 30.0]), np.array([5.0, 45.0, 45.0, 5.0])
    got = outline_geometry(rows=rows, cols=cols)
    assert (got["center_row"], got["center_col"]) == (20.0, 25.0)
    assert got["radius"] == pytest.approx(np.hypot(10, 20), abs=0.05)
    assert [got[c] for c in BOX_COLUMNS] == [10.0, 5.0, 31.0, 46.0]  # one past the last outline pixel


def test_every_form_gives_a_half_open_box_that_slices_the_lesion():
    lesion = np.zeros((64, 80), bool)
    lesion[10:40, 20:60] = True  # rows 10..39, columns 20..59
    forms = {
        "edges": box_geometry(row0=10, col0=20, row1=40, col1=60),
        "top-left + size": sized_box_geometry(top=10, left=20, height=30, width=40),
        "corner pixels": pixel_box_geometry(row0=39, col0=59, row1=10, col1=20),
        "outline": outline_geometry(rows=[10, 10, 39, 39], cols=[20, 59, 59, 20]),
    }
    for form, got in forms.items():
        r0, c0, r1, c1 = (int(got[c]) for c in BOX_COLUMNS)
        assert (r0, c0, r1, c1) == (10, 20, 40, 60), form
        assert lesion[r0:r1, c0:c1].all() and lesion[r0:r1, c0:c1].sum() == lesion.sum(), form
    assert (forms["corner pixels"]["center_row"], forms["corner pixels"]["center_col"]) == (24.5, 39.5)


def test_the_minimum_radius_is_one_constant_for_adapters_and_the_lesion_cache(monkeypatch):
    from mammo_monai.data import cache, manifest
    from mammo_monai.data.adapters import geometry

    assert geometry.MIN_RADIUS is manifest.MIN_RADIUS
    monkeypatch.setattr(cache, "MIN_RADIUS", 6.0)
    mask = cache.lesion_mask({"center_row": 20, "center_col": 20, "radius": ""}, (41, 41), [])
    assert mask[20].sum() == 11  # a disk of radius 6 (row 20: columns 15..25), not the old literal 3


def test_points_and_tiny_boxes_get_the_minimum_radius():
    assert outline_geometry(rows=[7.0], cols=[9.0])["radius"] == MIN_RADIUS
    assert box_geometry(row0=5, col0=5, row1=6, col1=6)["radius"] == MIN_RADIUS
    with pytest.raises(ValueError, match="as many rows as columns"):
        outline_geometry(rows=[1.0, 2.0], cols=[1.0])


def test_vindr_and_bcs_dbt_in_one_manifest_share_one_filled_box_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    vindr = tmp_path / "vindr"
    make_vindr_tree(vindr, studies=4, seed=3, size=(96, 72))
    dbt = tmp_path / "dbt"
    make_bcs_dbt_tree(dbt, patients=3, seed=3, size=(64, 48), frames=4)
    specs = parse_dataset_specs(f"vindr:{vindr},bcs-dbt:{dbt}")
    prepare(specs, None, tmp_path / "out", size=(48, 40), workers=1, progress=False)
    lesions = pd.read_csv(tmp_path / "out" / "lesions.csv")
    images = pd.read_csv(tmp_path / "out" / "images.csv")
    lesions = lesions.merge(images[["image_id", "dataset"]], on="image_id")
    assert set(lesions["dataset"]) == {"vindr", "bcs-dbt"}
    assert list(lesions.columns[len(LESION_COLUMNS) : len(LESION_COLUMNS) + 4]) == BOX_COLUMNS
    assert not [c for c in lesions.columns if c.startswith("box_") and c not in BOX_COLUMNS + ["box_clipped"]]
    assert lesions[BOX_COLUMNS].notna().all().all()
    middle = (lesions["box_row0"] + lesions["box_row1"]) / 2
    assert np.allclose(middle, lesions["center_row"], atol=0.051)

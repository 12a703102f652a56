"""predict keeps the lesion maps for the DICOM SEGs on disk, not in memory, and none without --dicom-out."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_monai.inference.map_store import DiscardedMaps, MapStore


def test_map_store_round_trips_float32_maps_from_numbered_files(tmp_path):
    store = MapStore(tmp_path / "maps")
    first = np.linspace(0, 1, 12, dtype=np.float64).reshape(3, 4)
    store["Jane Doe L CC"] = first
    store["b"] = np.ones((2, 2))
    store["b"] = np.zeros((5, 1))  # a rewrite replaces the file
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["0.npy", "1.npy"]  # no image name on disk
    assert store["Jane Doe L CC"].dtype == np.float32 and np.allclose(store["Jane Doe L CC"], first)
    assert store["b"].shape == (5, 1) and len(store) == 2 and set(store) == {"Jane Doe L CC", "b"}
    del store["b"]
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["0.npy"] and "b" not in store


def test_discarded_maps_keep_nothing():
    maps = DiscardedMaps()
    maps["a"] = np.ones((2, 2))
    assert len(maps) == 0 and "a" not in maps
    with pytest.raises(KeyError):
        maps["a"]

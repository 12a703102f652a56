"""Heatmap files appear under their final names only when complete: a failure (or a kill) while the
full-size NIfTI is gzipped leaves neither a truncated file nor a temporary one behind."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mammo_monai.inference import heatmaps
from mammo_monai.inference.heatmaps import save_heatmaps


def test_heatmaps_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    image, probs = np.random.default_rng(0).random((40, 30)), np.full((2, 40, 30), 0.5)
    paths = save_heatmaps(tmp_path / "ok", "view", image, probs, ["background", "lesion"])
    assert nib.load(paths["heatmap_nifti"]).shape == (40, 30, 1, 2) and sorted(p.name for p in (tmp_path / "ok").iterdir()) == [
        "view_heatmap.nii.gz", "view_heatmap.png", "view_image.nii.gz"]  # fmt: skip
    save = nib.save

    def dies_half_way(img, filename):
        save(img, filename)
        with open(filename, "r+b") as f:
            f.truncate(10)  # what a kill in the middle of the gzip leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(heatmaps.nib, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_heatmaps(tmp_path / "killed", "view", image, probs, ["background", "lesion"])
    assert list((tmp_path / "killed").iterdir()) == []

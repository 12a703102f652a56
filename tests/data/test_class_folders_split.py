"""Class folders alone are split by prepare, by patient, with the fractions asked for (70 / 20 / 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mammo_monai.data.adapters import load_folder
from mammo_monai.data.prepare import prepare


def _class_folders(root, per_class: int = 50, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    tissue = ((yy - size / 2) / (0.45 * size)) ** 2 + (xx / (0.7 * size)) ** 2 <= 1
    for cls in ("neg", "pos"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = tissue * (80 + 40 * rng.random((size, size)))
            Image.fromarray(img.astype(np.uint8)).save(root / cls / f"{cls}{i}.png")


def test_class_folders_without_split_folders_are_read_with_an_empty_split(tmp_path):
    _class_folders(tmp_path / "images", per_class=3)
    found = load_folder(tmp_path / "images")
    assert len(found.images) == 6 and set(found.images["split"]) == {""}
    assert sorted(found.images["label"].tolist()) == [0, 0, 0, 1, 1, 1] and not found.errors


def test_prepare_splits_class_folders_70_20_10(tmp_path):
    _class_folders(tmp_path / "images")
    prepare(
        "folder",
        tmp_path / "images",
        tmp_path / "m",
        size=(32, 32),
        workers=1,
        progress=False,
        test_fraction=0.1,
        val_fraction=0.2 / 0.9,
    )
    images = pd.read_csv(tmp_path / "m" / "images.csv")
    counts = images["split"].value_counts().to_dict()
    assert counts == {"train": 70, "val": 20, "test": 10}  # 10 % of 100, then 2/9 of the 90 left
    assert (images.groupby("split")["label"].mean() == 0.5).all()  # stratified by label


def test_a_relative_output_folder_still_gives_absolute_paths(tmp_path, monkeypatch):
    _class_folders(tmp_path / "images", per_class=3)
    monkeypatch.chdir(tmp_path)
    prepare("folder", "images", "manifest", size=(32, 32), workers=1, progress=False)
    monkeypatch.chdir("/")  # training from another directory must still find the cached images
    images = pd.read_csv(tmp_path / "manifest" / "images.csv")
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in images["image"])

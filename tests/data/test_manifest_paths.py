"""A manifest stands on its own: absolute paths whatever ``--root`` was, and a PNG lost from its cache
costs that image alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.cli import main
from mammo_monai.data.manifest import read_manifest
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree


@pytest.fixture
def relative_prepare(tmp_path, monkeypatch):
    """A manifest prepared from ``tmp_path`` with a relative ``--root``; the working directory is then
    somewhere else."""
    monkeypatch.chdir(tmp_path)
    make_cbis_tree("raw", patients=3, seed=1, size=(96, 72), workers=1)
    prepare("cbis-ddsm", "raw", "m", size=(96, 72), workers=1, progress=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path / "m"


def test_a_relative_root_gives_a_manifest_that_reads_from_any_directory(relative_prepare):
    images, lesions = read_manifest(relative_prepare)  # checks that every image and mask file is found
    paths = [*images["image"], *images["source"], *images["breast_mask"], *lesions["image"], *lesions["mask"]]
    assert len(lesions) and all(Path(p).is_absolute() and Path(p).is_file() for p in paths)


def test_a_missing_png_is_one_error_row_and_the_other_images_get_patches(relative_prepare, capsys):
    images = pd.read_csv(relative_prepare / "images.csv")
    lost = images["image"].iloc[0]
    Path(lost).unlink()
    out = relative_prepare.parent / "patches"
    rc = main(
        ["patches", "--manifest", str(relative_prepare), "--out", str(out), "--workers", "1", "--quiet"]
        + ["--patch-size", "16", "--per-roi", "2", "--background", "2"]
    )
    assert rc == 1 and "1 image(s) failed" in capsys.readouterr().err
    errors = pd.read_csv(out / "patch_errors.csv")
    reasons = errors.loc[errors["file"] == lost, "reason"].tolist()
    assert len(reasons) == 1 and f"image not found ({lost}); re-run `mammo-monai prepare`" in reasons[0]
    patches = pd.read_csv(out / "patches.csv")
    assert set(patches["image_id"]) == set(images["image_id"].iloc[1:])

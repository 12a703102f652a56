"""``evaluate`` checks the manifest as ``train`` does: one line naming the table, the row and the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.inference.evaluate import _scored
from mammo_monai.transforms.pipelines import eval_transforms
from tests.conftest import BUNDLES


def _manifest(root, labels):
    root.mkdir()
    rows = []
    for i, label in enumerate(labels):
        path = root / f"img{i}.png"
        Image.fromarray(np.full((8, 6), 100 * i, np.uint16)).save(path)
        rows.append({"image_id": f"img{i}", "image": str(path), "patient_id": f"p{i}", "laterality": "L"})
        rows[-1].update(view="CC", label=label, dataset="folder", split="test")
    pd.DataFrame(rows).to_csv(root / "images.csv", index=False)
    return root


def _evaluate(manifest, capsys):
    bundle = BUNDLES / "whole_image_classifier"  # never opened: the table fails first
    rc = main(["evaluate", "--bundle", str(bundle), "--manifest", str(manifest), "--no-tracking"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    return err[0]


def test_a_label_2_names_the_manifest_and_the_row(tmp_path, capsys):
    manifest = _manifest(tmp_path / "m", [0, 1, 2])
    line = _evaluate(manifest, capsys)
    assert f"{manifest / 'images.csv'}: 1 row(s) of split 'test' have a label outside 0..1: " in line
    assert line.endswith("line 4 (image_id 'img2') label 2")


def test_a_vanished_cached_png_names_the_manifest_and_the_row(tmp_path, capsys):
    manifest = _manifest(tmp_path / "m", [0, 1, 1])
    (manifest / "img1.png").unlink()
    line = _evaluate(manifest, capsys)
    assert f"{manifest / 'images.csv'}: 1 image file(s) of split 'test' not found: " in line
    assert line.endswith(f"line 3 (image_id 'img1') {manifest / 'img1.png'}")


def test_an_unreadable_image_while_scoring_names_the_split_and_the_file(tmp_path):
    manifest = _manifest(tmp_path / "m", [0, 1])
    (manifest / "img1.png").write_bytes(b"not a png")
    transform = eval_transforms(from_cache=True)
    table = pd.read_csv(manifest / "images.csv")
    with pytest.raises(ValueError) as caught:
        _scored(
            lambda paths: np.array([float(transform({"image": p})["image"].mean()) for p in paths]),
            table,
            "m: split 'test'",
        )
    message = str(caught.value)
    assert message.startswith(f"m: split 'test': {manifest / 'img1.png'}") and "applying transform" not in message
    assert "\n" not in message

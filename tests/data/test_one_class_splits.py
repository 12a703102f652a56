"""A folder dataset with an empty class folder: prepare warns in one line, train refuses before it starts."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mammo_monai.cli import main
from mammo_monai.data.prepare import prepare
from mammo_monai.training.records import records
from tests.conftest import BUNDLES, use_mlflow_store

EMPTY_VAL_POS = {("train", "neg"): 3, ("train", "pos"): 3, ("val", "neg"): 2, ("val", "pos"): 0, ("test", "neg"): 1}


def _split_folders(root: Path, counts: dict[tuple[str, str], int], size: int = 32) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    tissue = ((yy - size / 2) / (0.45 * size)) ** 2 + (xx / (0.7 * size)) ** 2 <= 1
    for (split, cls), n in counts.items():
        (root / split / cls).mkdir(parents=True)
        for i in range(n):
            img = tissue * (80 + 40 * rng.random((size, size)))
            Image.fromarray(img.astype(np.uint8)).save(root / split / cls / f"{cls}{i}.png")


@pytest.fixture
def one_class_val(tmp_path, caplog):
    _split_folders(tmp_path / "data", EMPTY_VAL_POS)
    with caplog.at_level(logging.WARNING, logger="mammo_monai.data.prepare"):
        summary = prepare("folder", tmp_path / "data", tmp_path / "m", size=(32, 32), workers=1, progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return tmp_path, summary, warnings


def test_prepare_warns_in_one_line_about_a_split_of_one_class(one_class_val):
    base, summary, warnings = one_class_val
    assert summary["images"] == 9 and summary["failed_images"] == 0
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"{base / 'm' / 'images.csv'}: split 'val' has only label 0 (2 rows)")
    assert "split 'train'" not in warnings[0] and "`train` refuses it" in warnings[0]
    errors = pd.read_csv(base / "m" / "errors.csv")
    assert errors.to_dict("records") == [
        {"file": str(base / "data" / "val" / "pos"), "reason": "class folder holds no image file"}
    ]


def test_records_refuse_a_binary_split_of_one_class_naming_the_table(one_class_val):
    base, _, _ = one_class_val
    table = base / "m" / "images.csv"
    with pytest.raises(ValueError, match=rf"^{table}: split 'val' has only label 0 \(2 rows\): a binary model needs"):
        records(table, "val", 2)
    assert len(records(table, "train", 2)) == 6  # both classes: accepted
    assert len(records(table, "test", 2)) == 1  # a test split of one class is evaluated (its AUC is NaN)
    assert len(records(table, "val", 2, both_classes=False)) == 2


def test_train_refuses_before_any_stage_starts(one_class_val, monkeypatch, capsys):
    base, _, _ = one_class_val
    bundle = base / "whole_image_classifier"
    shutil.copytree(BUNDLES / "whole_image_classifier", bundle)
    use_mlflow_store(monkeypatch, base)
    rc = main(
        ["train", "--bundle", str(bundle), "--overlay", "demo.yaml"]
        + [f"dataset_dir={base / 'm'}", "image_size=[32,32]", "patch_checkpoint=null"]
        + ["batch_size=2", "num_workers=0", "cache_rate=0"]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if "mlflow.store" not in line]  # MLflow's own INFO
    assert rc == 2 and len(err) == 1 and err[0].startswith("mammo-monai train: error: ")
    assert f"{base / 'm' / 'images.csv'}: split 'val' has only label 0" in err[0]
    assert not (bundle / "models" / "stage1").exists() and not (bundle / "models" / "model.pt").exists()

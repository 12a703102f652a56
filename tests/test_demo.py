from __future__ import annotations

import json

import pandas as pd

from mammo_monai.cli import main


def test_small_demo_end_to_end(tmp_path):
    argv = ["demo", "--workdir", str(tmp_path), "--patients", "3", "--workers", "1", "--size", "192", "150", "--patch-size", "48"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["patients"] == 3 and summary["images"] > 0 and summary["failed_images"] == 0
    assert len(pd.read_csv(tmp_path / "manifest" / "images.csv")) == summary["images"]
    assert len(pd.read_csv(tmp_path / "patches" / "patches.csv")) == summary["patches"] > 0

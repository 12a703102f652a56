from __future__ import annotations

import json

from mammo_monai.cli import main


def test_small_demo_end_to_end(tmp_path):
    assert main(["demo", "--workdir", str(tmp_path), "--patients", "3", "--workers", "1"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["patients"] == 3 and summary["preprocessed_ok"] == summary["images"] > 0
    assert len(list((tmp_path / "preprocessed").glob("*_mask.png"))) == summary["images"]

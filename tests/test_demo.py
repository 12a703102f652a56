from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.demo import run_demo
from tests.conftest import use_mlflow_store

EPOCHS = {"stages#1#epochs": 1}
BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench_two_sites.py"


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """A very small demo (percentile intensity scaling, to check it reaches the cache) and its summary."""
    work = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        use_mlflow_store(mp, work)
        summary = run_demo(
            work / "demo",
            patients=12,
            test_patients=6,
            seed=3,
            workers=1,
            size=(128, 100),
            patch_size=32,
            intensity="percentile",
            overrides={
                "patch_classifier": {"stages#1#epochs": 1, "num_workers": 0},
                "whole_image_classifier": {**EPOCHS, "batch_size": 4},
            },
        )
    return work, summary


def test_very_small_demo_end_to_end(tiny_demo):
    work, summary = tiny_demo
    saved = json.loads((work / "demo" / "summary.json").read_text())
    for key in (
        "wall_seconds",
        "patients",
        "test_auc",
        "test_auc_tta",
        "patch_val_auc",
        "exported",
        "tracking_uri",
        "experiments",
    ):
        assert key in saved
    assert saved["patients"] == 12 and len(saved["exported"]) == 2
    assert 0 <= summary["patch_val_auc"] <= 1
    assert 0 <= summary["test_auc"] <= 1 and 0 <= summary["test_auc_tta"] <= 1  # seed 3 gives both classes in test
    images = pd.read_csv(work / "demo" / "manifest" / "images.csv")
    assert len(images) == saved["images"]
    assert images.patient_id.nunique() == 18  # 12 to train and validate, 6 held out
    assert images[images.split == "test"].patient_id.nunique() == 6
    assert saved["test_auc_ci95"][0] <= saved["test_auc"] <= saved["test_auc_ci95"][1]
    assert 0.5 < saved["test_auc_attainable"] <= 1  # the Bayes reader of the drawn looks (synthetic/ceiling.py)
    calibration = saved["calibration"]  # training calibrated on validation; evaluate applied it to test
    assert calibration["fitted_on"]["n"] == (images.split == "val").sum() and len(calibration["test_ece"]) == 2
    assert set(calibration["operating_points"]) == {"high_sensitivity", "balanced", "recall_rate_10pct"}
    cache = json.loads((work / "demo" / "manifest" / "cache.json").read_text())
    assert saved["intensity"] == cache["intensity"] == "percentile"


def test_two_sites_bench_judges_the_demo_model_on_the_other_sites(tiny_demo, monkeypatch, capsys):
    """scripts/bench_two_sites.py on a finished demo: every other site prepared as the demo's cache was (else
    calibrate refuses the manifest), one table row per model and site."""
    work, _ = tiny_demo
    out = work / "two-sites"
    argv = [str(BENCH), "--demo", str(work / "demo"), "--patients-b", "12", "--workers", "1", "--work", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    use_mlflow_store(monkeypatch, out)
    runpy.run_path(str(BENCH), run_name="__main__")
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "test site" not in line]
    assert len(rows) == 11  # 5 sites raw, 5 calibrated on A's validation split, B calibrated on its own
    assert "intensity percentile" in printed
    for name in ("B", "B-curve-only", "B-noise-and-12-bit-only", "B-lesions-only"):
        assert json.loads((out / f"manifest-{name}" / "cache.json").read_text())["intensity"] == "percentile"
    assert (out / "at-B" / "models" / "calibration.json").is_file()


def test_two_sites_bench_refuses_another_scaling_than_the_demos_cache(tiny_demo, monkeypatch, tmp_path):
    work, _ = tiny_demo
    argv = [str(BENCH), "--demo", str(work / "demo"), "--intensity", "bit_depth", "--work", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    use_mlflow_store(monkeypatch, tmp_path)  # else the bench's setdefault would leave its store to later tests
    with pytest.raises(SystemExit, match="cache is scaled 'percentile', not 'bit_depth'"):
        runpy.run_path(str(BENCH), run_name="__main__")

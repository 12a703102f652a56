"""``evaluate`` on a manifest of several datasets reports each dataset's figures beside the overall ones,
at the thresholds chosen on the whole validation split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mammo_monai.evaluation import scores
from mammo_monai.evaluation.per_dataset import per_dataset_metrics
from mammo_monai.inference.evaluate import evaluate
from tests.pipeline.calibration_sites import site_manifest, tiny_bundle


def test_evaluate_reports_every_dataset_and_the_whole_split(tmp_path, monkeypatch):
    fast = scores.bootstrap_auc  # 50 resamples instead of 1000 per figure: the AUC itself is what is checked
    monkeypatch.setattr(scores, "bootstrap_auc", lambda y, p, n, seed, groups=None: fast(y, p, 50, seed, groups))
    a = site_manifest(tmp_path / "A", {"val": 30, "test": 40}, seed=1)
    b = site_manifest(tmp_path / "B", {"val": 30, "test": 24}, scale=0.7, gamma=1.2, seed=2)  # darker films
    tables = [
        pd.read_csv(m / "images.csv").assign(dataset=name, patient_id=lambda t, n=name: n + "/" + t["patient_id"])
        for name, m in (("site-a", a), ("site-b", b))
    ]
    joined = pd.concat(tables, ignore_index=True)
    joined["image_id"] = joined["dataset"] + "__" + joined["image_id"]
    manifest = tmp_path / "joined"
    manifest.mkdir()
    joined.to_csv(manifest / "images.csv", index=False)
    metrics = evaluate(tiny_bundle(tmp_path / "tiny"), manifest, split="test", out_dir=tmp_path / "ev", track=False)
    per = metrics["per_dataset"]
    assert {k: v["n"] for k, v in per.items()} == {"site-a": 40, "site-b": 24}
    # each dataset's AUC is its own rows' AUC, and the darker site's differs from the whole split's
    preds = pd.read_csv(tmp_path / "ev" / "predictions.csv").merge(joined[["image_id", "dataset"]], on="image_id")
    assert len(preds) == 64
    for name, rows in preds.groupby("dataset"):
        assert np.isclose(per[name]["image"]["auc"], roc_auc_score(rows["label"], rows["probability"]))
    assert per["site-b"]["image"]["auc"] != metrics["image"]["auc"]


def test_one_dataset_adds_nothing():
    table = pd.DataFrame({"dataset": "a", "label": [0, 1], "probability": [0.2, 0.8], "patient_id": ["p", "q"]})
    assert per_dataset_metrics(table) == {}

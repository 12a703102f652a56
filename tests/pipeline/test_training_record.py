"""What training records beside the published weights: one checkpoint's validation figures and the stages run."""

from __future__ import annotations

import json

import numpy as np
import torch

from mammo_monai.training.model_meta import best_record, training_record, write_model_meta


def test_best_record_keeps_finite_scalar_metrics_only():
    metrics = {"val_auc": torch.tensor(0.75), "froc": torch.tensor([0.1, 0.2]), "curve": np.array([1, 2])}
    record = best_record("val_auc", torch.tensor(0.75), 4, {**metrics, "val_acc": float("nan"), "name": "x"})
    assert record == {"metric": "val_auc", "value": 0.75, "epoch": 4, "metrics": {"val_auc": 0.75}}


def test_training_record_lists_only_this_trainings_stages(tmp_path):
    for stage, tid in ((1, "old"), (2, "new")):
        (tmp_path / f"stage{stage}").mkdir()
        (tmp_path / f"stage{stage}" / "done.json").write_text(json.dumps({"training_id": tid, "epochs": 5}))
        (tmp_path / f"stage{stage}" / "best.json").write_text(json.dumps(best_record("val_auc", 0.6, 2, {})))
    (tmp_path / "stage3").mkdir()
    (tmp_path / "stage3" / "best.json").write_text(json.dumps(best_record("val_auc", 0.8, 1, {"val_auc": 0.8})))
    record = training_record(tmp_path, 3, "new", epochs=2)
    assert [(s["stage"], s["epochs"]) for s in record["stages"]] == [(2, 5), (3, 2)]
    assert record["key_metric"] == {"name": "val_auc", "value": 0.8, "epoch": 1, "stage": 3}


def test_model_meta_keeps_no_absolute_dataset_root(tmp_path):
    write_model_meta(tmp_path / "m.json", {"preprocessing": {"size": [8, 8], "root": str(tmp_path), "dataset": "x"}})
    assert json.loads((tmp_path / "m.json").read_text())["preprocessing"] == {"size": [8, 8], "dataset": "x"}

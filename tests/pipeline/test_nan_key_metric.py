"""A key metric that is NaN (an AUC on one class) is never the best model: nothing saved, reported or registered."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from monai.engines import SupervisedEvaluator
from monai.handlers import ROCAUC
from torch.utils.data import DataLoader

from mammo_monai.evaluation import prob_label
from mammo_monai.inference import logged_model
from mammo_monai.io.errors import describe_error
from mammo_monai.tracking.runs import RUN_RECORD
from mammo_monai.training import SaveBest, ValidationPlots
from mammo_monai.training.workflow import best_of


def _evaluator(tmp_path, labels: list[int]):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    data = [{"image": torch.rand(1, 2, 2), "label": torch.tensor(y)} for y in labels]
    evaluator = SupervisedEvaluator(
        device="cpu",
        val_data_loader=DataLoader(data, batch_size=2),
        network=net,
        key_val_metric={"val_auc": ROCAUC(output_transform=prob_label)},
        val_handlers=[SaveBest(str(tmp_path), net)],
    )
    return evaluator, data


def _validate(evaluator, epoch: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns that one class gives no AUC
        evaluator.run(epoch)


def test_a_nan_key_metric_saves_no_best_model(tmp_path):
    evaluator, _ = _evaluator(tmp_path, [0, 0, 0, 0])
    _validate(evaluator, 1)
    assert math.isnan(evaluator.state.metrics["val_auc"])
    assert not (tmp_path / "model.pt").exists()
    assert evaluator.state.best_metric_epoch == -1  # MONAI's "no best yet", not NaN at epoch 1
    assert best_of(evaluator, "test") == {"best_metric": None, "best_metric_epoch": None}


def test_the_first_number_after_a_nan_becomes_the_best(tmp_path):
    evaluator, data = _evaluator(tmp_path, [0, 0, 0, 0])
    _validate(evaluator, 1)
    for d, y in zip(data, [0, 1, 0, 1]):
        d["label"] = torch.tensor(y)
    _validate(evaluator, 2)
    assert evaluator.state.best_metric_epoch == 2 and (tmp_path / "model.pt").is_file()
    assert best_of(evaluator, "test")["best_metric"] == evaluator.state.metrics["val_auc"]


def test_a_last_stage_without_a_best_checkpoint_registers_nothing(tmp_path, monkeypatch):
    logged = []

    def spy(*args, **kwargs):
        logged.append(args)
        return dict.fromkeys(("model_uri", "registered_name", "version"))

    monkeypatch.setattr(logged_model, "log_trained_model", spy)
    (tmp_path / RUN_RECORD).write_text(json.dumps({"parent_run_id": "p", "tracking_uri": "sqlite:///x.db"}))
    handler = logged_model.LogTrainedModel(str(tmp_path / "bundle"), str(tmp_path), last_stage=True)
    handler(None)
    assert logged == []
    (tmp_path / "model.pt").write_bytes(b"best")  # what SaveBest writes when a number was the best
    handler(None)
    assert len(logged) == 1


def test_nan_validation_outputs_are_one_line_naming_the_divergence(tmp_path):
    """A diverged network (NaN logits) stops the stage with a plain message, not scikit-learn's ROC error."""
    evaluator, _ = _evaluator(tmp_path, [0, 1, 0, 1])
    with torch.no_grad():
        evaluator.network[1].weight[0, 0] = float("nan")
    ValidationPlots(str(tmp_path / "plots")).attach(evaluator)
    with pytest.raises(ValueError) as raised:
        _validate(evaluator, 1)
    message = describe_error(raised.value)
    assert (
        message == "ValueError: the network's validation outputs contain NaN or inf (diverged?): 4 of 4 images, epoch 1"
    )
    assert not (tmp_path / "plots" / "roc.png").exists()

"""Breast-level pF1 for checkpoint selection: the arithmetic, the Ignite metric inside a MONAI
evaluator, and the selection saved with the best epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ValidationHandler

from mammo_monai.evaluation import breast_pf1 as bp
from mammo_monai.evaluation.breast_pf1 import BreastPF1, breast_scores, select_pf1
from mammo_monai.training.selection import SaveSelection, read_selection

# 3 breasts, 2 views each; breast A is positive through one view only.
#   A (label 1): 0.9, 0.1 -> mean 0.5, max 0.9
#   B (label 0): 0.6, 0.6 -> mean 0.6, max 0.6
#   C (label 1): 0.7, 0.7 -> mean 0.7, max 0.7
PROBS = [0.9, 0.1, 0.6, 0.6, 0.7, 0.7]
LABELS = [1, 0, 0, 0, 1, 1]
GROUPS = ["A", "A", "B", "B", "C", "C"]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_breast_scores_aggregate_views_and_any_positive_view_makes_the_breast_positive():
    mean_p, mean_y = breast_scores(PROBS, LABELS, GROUPS, "mean")
    max_p, max_y = breast_scores(PROBS, LABELS, GROUPS, "max")
    np.testing.assert_allclose(mean_p, [0.5, 0.6, 0.7])
    np.testing.assert_allclose(max_p, [0.9, 0.6, 0.7])
    assert mean_y.tolist() == max_y.tolist() == [1, 0, 1]


def test_select_pf1_matches_the_hand_arithmetic():
    # mean: breasts 0.5(+) 0.6(-) 0.7(+); thresholds tried 0.5, then 0.5, 0.6, 0.7:
    #   t=0.5: all positive: tp 2, fp 1 -> P 2/3, R 1 -> F1 = 2*(2/3)/(5/3) = 0.8   <- best
    #   t=0.6: B, C: tp 1, fp 1 -> P 1/2, R 1/2 -> 0.5
    #   t=0.7: C: tp 1, fp 0 -> P 1, R 1/2 -> 2/3
    #   raw: ctp = 0.5 + 0.7 = 1.2, cfp = 0.6 -> P 2/3, R 0.6 -> 2*0.4/(19/15) = 12/19
    # max: breasts 0.9(+) 0.6(-) 0.7(+):
    #   t=0.5, 0.6: all positive -> 0.8; t=0.7: A, C: tp 2, fp 0 -> 1.0 <- best; t=0.9: A -> 2/3
    #   raw: ctp = 1.6, cfp = 0.6 -> P 8/11, R 0.8 -> 2*(6.4/11)/(16.8/11) = 16/21
    out = select_pf1(PROBS, LABELS, GROUPS)
    assert out["aggregation"] == "max"
    assert out["pf1"] == pytest.approx(1.0)
    assert out["threshold"] == pytest.approx(0.7)
    assert out["pf1_raw"] == pytest.approx(16 / 21)
    assert (out["breasts"], out["positive_breasts"]) == (3, 2)
    mean = out["by_aggregation"]["mean"]
    assert (mean["pf1"], mean["threshold"], mean["pf1_raw"]) == pytest.approx((0.8, 0.5, 12 / 19))
    only_mean = select_pf1(PROBS, LABELS, GROUPS, aggregations=("mean",))
    assert (only_mean["aggregation"], only_mean["pf1"]) == ("mean", pytest.approx(0.8))


@pytest.mark.parametrize("order", [("mean", "max"), ("max", "mean")])
def test_equal_pf1_goes_to_mean(order):
    # A (+): 0.9, 0.5 -> mean 0.7, max 0.9; B (-): 0.6, 0.6 -> 0.6
    # mean: t=0.7 keeps A only -> 1.0; max: t=0.9 keeps A only -> 1.0: a tie, thresholds differ
    out = select_pf1([0.9, 0.5, 0.6, 0.6], [1, 1, 0, 0], ["A", "A", "B", "B"], aggregations=order)
    assert out["by_aggregation"]["max"]["threshold"] == pytest.approx(0.9)
    assert out["aggregation"] == "mean"
    assert out["pf1"] == pytest.approx(1.0)
    assert out["threshold"] == pytest.approx(0.7)


def test_no_positive_breast_scores_zero_at_threshold_one_half():
    out = select_pf1([0.2, 0.8, 0.4], [0, 0, 0], ["A", "A", "B"])
    assert (out["pf1"], out["pf1_raw"], out["threshold"]) == (0.0, 0.0, 0.5)
    assert (out["breasts"], out["positive_breasts"], out["aggregation"]) == (2, 0, "mean")


def _items(values, order=(0, 2, 4, 1, 3, 5)):
    """Data dicts in an order that splits each breast across batches of 4."""
    return [{"image": values[i], "label": LABELS[i], "exam": GROUPS[i]} for i in order]


@pytest.mark.parametrize(
    "form, from_logits, decollate",
    [("logit", True, True), ("two_logits", True, True), ("prob", False, True), ("logit", True, False)],
)
def test_metric_in_a_monai_evaluator_equals_select_pf1(form, from_logits, decollate):
    logits = torch.tensor([_logit(p) for p in PROBS])
    if form == "logit":
        images, probs = [t.view(1) for t in logits], torch.sigmoid(logits)
    elif form == "two_logits":  # softmax([0, z])[1] = sigmoid(z)
        images, probs = (
            [torch.stack([torch.zeros(()), t]) for t in logits],
            torch.softmax(torch.stack([torch.zeros(6), logits], 1), 1)[:, 1],
        )
    else:
        images, probs = [torch.tensor([p], dtype=torch.float32) for p in PROBS], torch.tensor(PROBS)
    metric = BreastPF1(from_logits=from_logits)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(_items(images), batch_size=4),
        network=torch.nn.Identity(),  # the image is the prediction
        key_val_metric={"val_pf1": metric},
        decollate=decollate,
    )
    evaluator.run()
    expected = select_pf1(probs.numpy(), LABELS, GROUPS)
    metrics = evaluator.state.metrics
    assert metrics["val_pf1"] == pytest.approx(expected["pf1"])
    assert metrics["val_pf1"] == pytest.approx(1.0)  # the hand-computed value
    assert metrics["val_pf1_threshold"] == pytest.approx(0.7, abs=1e-6)
    assert metrics["val_pf1_raw"] == pytest.approx(16 / 21, abs=1e-6)
    assert metrics["val_pf1_max_aggregation"] == 1.0
    assert metric.selection == expected
    assert evaluator.state.best_metric == pytest.approx(1.0)


def test_processes_are_gathered_before_scoring(monkeypatch):
    # two processes: this one saw breasts A and B, the other breast C; pF1 needs all three
    metric = BreastPF1()
    metric.update((PROBS[:4], LABELS[:4], GROUPS[:4]))
    other = (PROBS[4:], LABELS[4:], GROUPS[4:])
    monkeypatch.setattr(bp.idist, "get_world_size", lambda: 2)
    monkeypatch.setattr(bp.idist, "all_gather", lambda obj: [obj, other])
    assert metric.compute() == pytest.approx(1.0)
    assert metric.selection["breasts"] == 3


class EpochLogits(torch.nn.Module):
    """The logit of item ``i`` (its image holds ``i``) at the current epoch; a zero-weight
    parameter gives the trainer something to step."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table, self.epoch = table, 0
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[self.epoch, x.view(-1).long()].view(-1, 1) + 0 * self.weight


def test_save_selection_keeps_the_best_epochs_choice(tmp_path):
    # epoch 1: the example above (max, 1.0 at 0.7). Epoch 2: every probability p -> 1 - p:
    #   mean: A 0.5(+) B 0.4(-) C 0.3(+): t=0.3 keeps all -> 0.8; max: A 0.9 B 0.4 C 0.3: t=0.3 -> 0.8
    # so epoch 2 is worse (0.8, "mean") and must not replace epoch 1's file.
    table = torch.tensor([[_logit(p) for p in PROBS], [_logit(1 - p) for p in PROBS]])
    net = EpochLogits(table)
    data = [{"image": torch.tensor([float(i)]), "label": LABELS[i], "exam": GROUPS[i]} for i in (0, 2, 4, 1, 3, 5)]
    metric = BreastPF1()
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=4),
        network=net,
        key_val_metric={"val_pf1": metric},
        val_handlers=[SaveSelection(tmp_path, metric)],
    )
    seen = []
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(dict(metric.selection)))
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=2,
        train_data_loader=DataLoader(data, batch_size=3),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        loss_function=lambda pred, label: (pred * 0).sum(),
        train_handlers=[ValidationHandler(interval=1, validator=evaluator, epoch_level=True)],
    )
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: setattr(net, "epoch", e.state.epoch - 1))
    assert read_selection(tmp_path) is None
    trainer.run()
    assert [s["pf1"] for s in seen] == pytest.approx([1.0, 0.8])
    assert evaluator.state.best_metric_epoch == 1
    written = read_selection(tmp_path)
    assert written["epoch"] == 1
    assert written["metric"] == "val_pf1"
    assert {k: written[k] for k in seen[0]} == seen[0]
    assert (written["aggregation"], written["threshold"]) == ("max", pytest.approx(0.7, abs=1e-6))

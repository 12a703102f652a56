from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.metrics import compute_roc_auc
from sklearn.metrics import roc_auc_score

from mammo_monai.evaluation.metrics import PresentClassROCAUC, present_class_auc, prob_label

NAMES = ["background", "calc_malignant", "calc_benign", "mass_malignant", "mass_benign"]


def _split_without_class(absent: int = 1, n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor([c for c in range(5) if c != absent]).repeat(n // 4)
    logits = torch.randn(len(labels), 5, generator=gen) + 2.0 * torch.nn.functional.one_hot(labels, 5)
    return logits, labels


def test_auc_averages_the_classes_present_and_names_the_absent_one():
    logits, labels = _split_without_class(absent=1)
    probs, onehot = prob_label([{"pred": p, "label": y} for p, y in zip(logits, labels)])
    with pytest.warns(UserWarning, match="y values can not be all 0"):
        assert np.isnan(compute_roc_auc(probs, onehot))  # MONAI's ROCAUC: NaN for the whole split
    auc, per_class, unscored = present_class_auc(probs, onehot, NAMES)
    expected = {NAMES[c]: roc_auc_score(labels == c, probs[:, c]) for c in (0, 2, 3, 4)}
    assert unscored == ["calc_malignant"] and per_class == pytest.approx(expected)
    assert auc == pytest.approx(np.mean(list(expected.values())))


def test_binary_auc_without_positives_is_nan_and_says_so():
    auc, per_class, unscored = present_class_auc(
        torch.tensor([0.2, 0.7, 0.4]), torch.tensor([0, 0, 0]), ["benign", "malignant"]
    )
    assert np.isnan(auc) and per_class == {} and unscored == ["malignant"]
    auc, per_class, _ = present_class_auc(
        torch.tensor([0.2, 0.7, 0.4]), torch.tensor([0, 1, 0]), ["benign", "malignant"]
    )
    assert auc == 1.0 and per_class == {"malignant": 1.0}


def test_handler_in_an_ignite_evaluator_reports_a_number_and_logs_the_absent_class(caplog):
    logits, labels = _split_without_class(absent=3)
    batches = [
        [{"pred": p, "label": y} for p, y in zip(logits[i : i + 8], labels[i : i + 8])]
        for i in range(0, len(labels), 8)
    ]
    evaluator = Engine(lambda engine, batch: batch)
    PresentClassROCAUC(class_names=NAMES, output_transform=prob_label).attach(evaluator, "val_auc")
    with caplog.at_level(logging.INFO, logger="mammo_monai.evaluation.metrics"):
        evaluator.run(batches, max_epochs=1)
    auc = evaluator.state.metrics["val_auc"]
    probs = torch.softmax(logits, 1)
    assert auc == pytest.approx(np.mean([roc_auc_score(labels == c, probs[:, c]) for c in (0, 1, 2, 4)]))
    assert "val_auc: AUC over 4 of 5 classes" in caplog.text and "mass_malignant" in caplog.text

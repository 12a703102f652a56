"""Output transforms for Ignite metrics (accuracy on class indices, AUC on probabilities) and a ROC AUC
that stays defined when a split lacks a class."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.handlers import IgniteMetricHandler
from monai.metrics import ROCAUCMetric
from sklearn.metrics import roc_auc_score

logger = logging.getLogger(__name__)


def _stack(output: Sequence[Mapping[str, Any]] | Mapping[str, Any], key: str) -> torch.Tensor:
    if isinstance(output, Mapping):
        return torch.as_tensor(output[key])
    return torch.stack([torch.as_tensor(o[key]) for o in output])


def pred_label(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, C), class indices (B,)): what ``ignite.metrics.Accuracy`` needs for multi-class
    accuracy. One-hot targets would make it element-wise, the pitfall this avoids."""
    return _stack(output, "pred").float(), _stack(output, "label").long().view(-1)


def prob_label(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities for MONAI's ROCAUC: P(class 1) (B,) with labels (B,) for 2 classes; softmax
    (B, C) with one-hot labels (one-vs-rest, macro average) otherwise. Never argmax labels."""
    logits, labels = pred_label(output)
    probs = torch.softmax(logits, dim=1)
    if probs.shape[1] == 2:
        return probs[:, 1], labels
    return probs, torch.nn.functional.one_hot(labels, probs.shape[1])


def positive_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(positive) (B,) from logits (B, 1) (sigmoid: one output) or (B, 2) (softmax, class 1)."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)[:, 1]


def sigmoid_label(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(P(positive) (B,), labels (B,)) of a one-logit network, for MONAI's ROCAUC."""
    return positive_probability(_stack(output, "pred").view(-1, 1)), _stack(output, "label").long().view(-1)


def present_class_auc(
    probs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, class_names: Sequence[str] | None = None
) -> tuple[float, dict[str, float], list[str]]:
    """One-vs-rest ROC AUC, macro-averaged over the classes this split can score.

    A class is scored when it has at least one positive and one negative example; MONAI's ROCAUC
    returns NaN for the whole average as soon as one class is missing (a patch validation split
    without a malignant calcification, say).

    Args:
        probs: (N,) P(class 1) of a two-class problem, or (N, C) class probabilities.
        labels: (N,) class indices, or (N, C) one-hot.
        class_names: names for the report; ``class0``, ``class1``, ... by default.

    Returns:
        (mean AUC over the scored classes, NaN when none; {class: AUC} of the scored classes;
        names of the classes that could not be scored: absent, or the only class present).
    """
    p = np.asarray(torch.as_tensor(probs).detach().float().cpu())
    y = np.asarray(torch.as_tensor(labels).detach().cpu())
    n_classes = 2 if p.ndim == 1 else p.shape[1]
    names = list(class_names) if class_names is not None else [f"class{c}" for c in range(n_classes)]
    if y.ndim == 2:
        y = y.argmax(1)
    y = y.astype(int).reshape(-1)
    if p.ndim == 1:  # binary: one AUC, defined only with both classes
        missing = [names[c] for c in (0, 1) if not (y == c).any()]
        if missing:
            return float("nan"), {}, missing
        auc = float(roc_auc_score(y, p))
        return auc, {names[1]: auc}, []
    per_class, unscored = {}, []
    for c in range(n_classes):
        positive = y == c
        if positive.any() and not positive.all():
            per_class[names[c]] = float(roc_auc_score(positive, p[:, c]))
        else:
            unscored.append(names[c])
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return mean, per_class, unscored


class PresentClassROCAUCMetric(ROCAUCMetric):
    """MONAI's cumulative ROC AUC metric aggregated with :func:`present_class_auc`; the last
    aggregation's per-class AUCs and unscored classes are kept in ``per_class`` and ``unscored``."""

    def __init__(self, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.class_names = class_names
        self.per_class: dict[str, float] = {}
        self.unscored: list[str] = []

    def aggregate(self, average: Any = None) -> float:  # noqa: ARG002 - always macro over the scored classes
        y_pred, y = self.get_buffer()
        auc, self.per_class, self.unscored = present_class_auc(y_pred, y, self.class_names)
        return auc


class PresentClassROCAUC(IgniteMetricHandler):
    """Drop-in for ``monai.handlers.ROCAUC`` (same ``output_transform``, e.g.
    :func:`prob_label`): one-vs-rest AUC averaged over the classes present in the split, and one log
    line per epoch naming the classes it left out, instead of NaN and a warning per class.

    Args:
        class_names: class names for the log line.
        output_transform: (probabilities, labels) from the engine output.
    """

    def __init__(self, class_names: Sequence[str] | None = None, output_transform: Callable = lambda x: x) -> None:
        super().__init__(
            metric_fn=PresentClassROCAUCMetric(class_names), output_transform=output_transform, save_details=False
        )

    def compute(self) -> float:
        auc = super().compute()
        fn = self.metric_fn
        if fn.unscored:
            logger.info(
                "%s: AUC over %d of %d classes; not scored (absent from this split or its only class): %s",
                self._name or "auc",
                len(fn.per_class),
                len(fn.per_class) + len(fn.unscored),
                ", ".join(fn.unscored),
            )
        return auc


def pred_target(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, target) from MONAI's decollated output, flattened to one value per pixel, so ignite's
    regression metrics (which average over the first dimension) give the per-pixel error of
    self-supervised reconstruction."""
    return _stack(output, "pred").float().reshape(-1), _stack(output, "label").float().reshape(-1)


def seg_pred_label(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(one-hot argmax of the logits (B, C, H, W), one-hot labels (B, C, H, W)) for MONAI's ``MeanDice``
    from a segmenter's decollated output (labels (B, 1, H, W) of class indices)."""
    logits = _stack(output, "pred").float()
    classes = logits.shape[1]
    pred = torch.nn.functional.one_hot(logits.argmax(1), classes).permute(0, 3, 1, 2).float()
    labels = _stack(output, "label").long()[:, 0]
    return pred, torch.nn.functional.one_hot(labels, classes).permute(0, 3, 1, 2).float()

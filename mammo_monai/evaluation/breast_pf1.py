"""The RSNA challenge's checkpoint score: probabilistic F1 per breast (patient and laterality,
the manifest's ``exam``), with the breast's probability the mean or the max of its views' and the
threshold that maximises pF1, computed on validation every epoch as an Ignite metric."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ignite.distributed as idist
import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric

from mammo_monai.evaluation.scores import aggregate_exams, best_pf1, pf1

AGGREGATIONS = ("mean", "max")


def breast_scores(
    probs: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    how: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """One probability and one label per breast (group), in the sorted order of the group ids.

    Args:
        probs: P(cancer) per image.
        labels: 0/1 per image.
        groups: the breast of each image (``<patient_id>_<laterality>``).
        how: "mean" or "max" of the breast's image probabilities.

    Returns:
        (breast probabilities, breast labels): a breast is positive when any of its images is.
    """
    p, y, g = np.asarray(probs, dtype=float), np.asarray(labels).astype(int), np.asarray(groups)
    if not len(p) == len(y) == len(g):
        raise ValueError(f"probs, labels and groups differ in length: {len(p)}, {len(y)}, {len(g)}")
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be 'mean' or 'max', got {how!r}")
    if len(p) == 0:
        return np.zeros(0), np.zeros(0, dtype=int)
    table = aggregate_exams(pd.DataFrame({"exam": g, "label": y, "probability": p}), by="exam", how=how)
    return table["probability"].to_numpy(dtype=float), table["label"].to_numpy(dtype=int)


def select_pf1(
    probs: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    aggregations: Sequence[str] = AGGREGATIONS,
) -> dict[str, Any]:
    """The breast-level pF1 of each aggregation at its best threshold, and the best of them.

    Args:
        probs: P(cancer) per image.
        labels: 0/1 per image.
        groups: the breast of each image.
        aggregations: the aggregations to try ("mean", "max").

    Returns:
        ``{"pf1", "pf1_raw", "threshold", "aggregation", "breasts", "positive_breasts", "by_aggregation"}``:
        ``pf1`` is the pF1 of the breast probabilities binarised at ``>= threshold``, ``pf1_raw`` the
        pF1 of the probabilities themselves, both for the winning aggregation; ``by_aggregation``
        holds ``{"pf1", "pf1_raw", "threshold"}`` per aggregation. Equal pF1s go to "mean", then to
        the earlier aggregation. Without a positive breast every pF1 is 0 and the threshold 0.5.
    """
    if not aggregations:
        raise ValueError("no aggregation to try")
    by_aggregation: dict[str, dict[str, float]] = {}
    for how in aggregations:
        breast_probs, breast_labels = breast_scores(probs, labels, groups, how)
        score, threshold = best_pf1(breast_labels, breast_probs)
        by_aggregation[how] = {
            "pf1": float(score),
            "pf1_raw": float(pf1(breast_labels, breast_probs)),
            "threshold": float(threshold),
        }
    best = aggregations[0]
    for how in aggregations[1:]:
        score, held = by_aggregation[how]["pf1"], by_aggregation[best]["pf1"]
        tie = math.isclose(score, held, rel_tol=1e-12, abs_tol=1e-12)
        if (score > held and not tie) or (tie and how == "mean"):
            best = how
    return {
        **by_aggregation[best],
        "aggregation": best,
        "breasts": len(breast_labels),
        "positive_breasts": int(breast_labels.sum()),
        "by_aggregation": by_aggregation,
    }


def _probability(pred: Any, from_logits: bool) -> float:
    p = torch.as_tensor(pred).detach().float().reshape(-1).cpu()
    if p.numel() == 1:
        return float(torch.sigmoid(p[0])) if from_logits else float(p[0])
    if p.numel() == 2:
        return float(torch.softmax(p, 0)[1]) if from_logits else float(p[1])
    raise ValueError(f"BreastPF1 needs one logit or two class scores per image, got {p.numel()} values")


def _label(label: Any) -> int:
    y = torch.as_tensor(label).detach().reshape(-1).cpu()
    if y.numel() == 1:
        return int(y[0] > 0.5)
    if y.numel() == 2:  # one-hot
        return int(y.argmax())
    raise ValueError(f"BreastPF1 needs a 0/1 label (or a 2-class one-hot) per image, got {y.numel()} values")


def _items(output: Any, pred_key: str, label_key: str) -> tuple[list[Any], list[Any]]:
    """(per-item preds, per-item labels) of MONAI's decollated output (a list of dicts), a batched
    dict, or a ``(preds, labels)`` pair."""
    if isinstance(output, Mapping):
        return list(output[pred_key]), list(output[label_key])
    if isinstance(output, Sequence) and all(isinstance(o, Mapping) for o in output):
        return [o[pred_key] for o in output], [o[label_key] for o in output]
    if isinstance(output, Sequence) and len(output) == 2:
        return list(output[0]), list(output[1])
    raise TypeError(f"BreastPF1 cannot read predictions from an engine output of type {type(output).__name__}")


def _groups(batch: Any, key: str) -> list[Any]:
    """The group id of every item of ``engine.state.batch``: a list of per-item dicts (MONAI's
    decollated batch) or a collated dict (a list of strings, or a tensor of ids)."""
    try:
        if isinstance(batch, Mapping):
            values = batch[key]
            values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        else:
            values = [b[key] for b in batch]
    except (KeyError, TypeError) as err:
        raise KeyError(
            f"BreastPF1: the batch has no {key!r} per item; keep it in the validation data dicts "
            "(mammo_monai.training.records keeps 'exam')"
        ) from err
    return [v.item() if isinstance(v, torch.Tensor) else v for v in values]


class BreastPF1(Metric):
    """Breast-level probabilistic F1 at the best threshold and aggregation, for a MONAI evaluator's
    ``key_val_metric`` (higher is better: MONAI's default comparison keeps the best checkpoint).

    Each iteration reads one probability and one label per image from ``engine.state.output`` and
    the image's breast from ``engine.state.batch[group_key]``; at the end of the epoch
    :func:`select_pf1` chooses the aggregation and threshold. The metric's value is the best pF1;
    the full choice is kept in ``selection`` (saved with the best checkpoint by
    :class:`mammo_monai.training.selection.SaveSelection`), and ``<name>_threshold``, ``<name>_raw``
    (pF1 of the unthresholded breast probabilities) and ``<name>_max_aggregation`` (1.0 when "max"
    won) go into ``engine.state.metrics`` for the logs and MLflow.

    Under distributed validation the images of every process are gathered before scoring; give the
    validation loader a sampler that does not pad (``monai.data.DistributedSampler(even_divisible=False)``),
    or padded images count twice.

    Args:
        group_key: the batch key holding each image's breast id.
        from_logits: predictions are logits (one: sigmoid; two: softmax, class 1); False: they are
            already probabilities (one value, or two with P(class 1) second).
        aggregations: the aggregations tried ("mean", "max").
        pred_key: the prediction's key in the engine output.
        label_key: the label's key in the engine output.
        output_transform: applied to ``engine.state.output`` first.
        device: Ignite's metric device (the values are kept on the CPU as Python numbers).
    """

    def __init__(
        self,
        group_key: str = "exam",
        from_logits: bool = True,
        aggregations: Sequence[str] = AGGREGATIONS,
        pred_key: str = "pred",
        label_key: str = "label",
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        unknown = set(aggregations) - set(AGGREGATIONS)
        if unknown or not aggregations:
            raise ValueError(f"aggregations must be among {AGGREGATIONS}, got {list(aggregations)}")
        self.group_key, self.from_logits, self.aggregations = group_key, bool(from_logits), tuple(aggregations)
        self.pred_key, self.label_key = pred_key, label_key
        # set before Metric.__init__: a missing attribute of an Ignite metric reads as a MetricsLambda factory
        self.selection: dict[str, Any] | None = None
        self._probs: list[float] = []
        self._labels: list[int] = []
        self._groups: list[Any] = []
        super().__init__(output_transform=output_transform, device=device)

    def reset(self) -> None:
        """Forget the images of the previous epoch (the last ``selection`` stays until the next compute)."""
        self._probs, self._labels, self._groups = [], [], []

    def update(self, output: tuple[Sequence[float], Sequence[int], Sequence[Any]]) -> None:
        """Add ``(probabilities, labels, groups)`` of some images."""
        probs, labels, groups = output
        if not len(probs) == len(labels) == len(groups):
            raise ValueError(f"{len(probs)} predictions, {len(labels)} labels and {len(groups)} groups")
        self._probs.extend(float(p) for p in probs)
        self._labels.extend(int(y) for y in labels)
        self._groups.extend(groups)

    def iteration_completed(self, engine: Engine) -> None:
        """Read the iteration's probabilities and labels from the output and the breasts from the batch."""
        preds, labels = _items(self._output_transform(engine.state.output), self.pred_key, self.label_key)
        groups = _groups(engine.state.batch, self.group_key)
        if len(groups) != len(preds):
            raise ValueError(f"BreastPF1: {len(preds)} predictions but {len(groups)} {self.group_key!r} values")
        self.update(([_probability(p, self.from_logits) for p in preds], [_label(y) for y in labels], groups))

    def _gathered(self) -> tuple[list[float], list[int], list[Any]]:
        if idist.get_world_size() <= 1:
            return self._probs, self._labels, self._groups
        parts = idist.all_gather((self._probs, self._labels, self._groups))  # one Python object per process
        return tuple([v for part in parts for v in part[i]] for i in range(3))  # type: ignore[return-value]

    def compute(self) -> float:
        """The best breast-level pF1 of the epoch; the whole choice goes to ``self.selection``."""
        probs, labels, groups = self._gathered()
        if not probs:
            raise NotComputableError("BreastPF1 must have at least one example before it can be computed.")
        self.selection = select_pf1(probs, labels, groups, self.aggregations)
        return float(self.selection["pf1"])

    def completed(self, engine: Engine, name: str) -> None:
        """Put the pF1 under ``name`` and its threshold, raw pF1 and aggregation beside it."""
        super().completed(engine, name)
        chosen: dict[str, Any] = self.selection  # type: ignore[assignment]  # set by compute()
        engine.state.metrics[f"{name}_threshold"] = float(chosen["threshold"])
        engine.state.metrics[f"{name}_raw"] = float(chosen["pf1_raw"])
        engine.state.metrics[f"{name}_max_aggregation"] = 1.0 if chosen["aggregation"] == "max" else 0.0

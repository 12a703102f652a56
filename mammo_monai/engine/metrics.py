"""Output transforms for Ignite metrics: accuracy on class indices, AUC on probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


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

"""Flip test-time augmentation and model averaging, in one place for ``predict``, ``evaluate`` and the
backend choice: P(malignant) averaged over the networks and, with TTA, over the four flips."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader, Dataset

#: the flips averaged with TTA: none, horizontal, vertical, both (dims of an (N, C, H, W) batch)
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def averaged_probability(
    networks: Sequence[torch.nn.Module],
    x: torch.Tensor,
    probability: Callable[[torch.Tensor], torch.Tensor],
    tta: bool = False,
) -> torch.Tensor:
    """``probability(net(x))`` (B,) averaged over ``networks`` and, with ``tta``, over :data:`FLIPS`.

    Args:
        networks: networks returning logits for ``x``.
        x: an (N, C, H, W) float batch.
        probability: the bundle's declared activation: logits -> P(malignant) (B,).
        tta: average over the four flips too.
    """
    flips = FLIPS if tta else ((),)
    total = torch.zeros(x.shape[0])
    for net in networks:
        for dims in flips:
            total += probability(net(torch.flip(x, dims) if dims else x)).float()
    return total / (len(networks) * len(flips))


@torch.inference_mode()
def predict_probabilities(
    networks: Sequence[torch.nn.Module],
    data: list[dict[str, Any]],
    transform,
    probability: Callable[[torch.Tensor], torch.Tensor],
    tta: bool = False,
    batch_size: int = 4,
) -> np.ndarray:
    """:func:`averaged_probability` of every item of ``data`` after ``transform``, in order."""
    loader = DataLoader(Dataset(data, transform), batch_size=batch_size, shuffle=False, num_workers=0)
    out = [
        averaged_probability(networks, batch["image"].float().to(memory_format=torch.channels_last), probability, tta)
        for batch in loader
    ]
    return torch.cat(out).numpy() if out else np.zeros(0)

"""Stop a stage whose network gives NaN or infinite validation outputs (a diverged network), on every
rank at once and before anything is saved.

MONAI's ``ROCAUC`` still returns a number when some outputs are NaN, so the best-model saver would
otherwise keep the diverged network as ``model.pt``. :class:`FiniteOutputs` counts, during a validation,
the images whose prediction is not finite; its check sums the counts over the ranks (each rank sees only
its share under ``torchrun``) and raises the same one-line ``ValueError`` on every rank, so no rank is
left waiting in a collective for the others. :class:`~mammo_monai.training.checkpoints.SaveBest` runs the
check before it decides to save.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.utils import CommonKeys

from mammo_monai.training.distributed import sum_over_ranks


def nonfinite_items(output: Any, key: str = CommonKeys.PRED) -> tuple[int, int]:
    """(images whose ``key`` holds NaN or inf, images) in one iteration's output: a batch dict
    (first dimension: the images) or MONAI's decollated list of per-image dicts."""
    if isinstance(output, Mapping):
        preds = torch.as_tensor(output[key])
        return int((~torch.isfinite(preds.reshape(len(preds), -1))).any(1).sum()), len(preds)
    bad = sum(not bool(torch.isfinite(torch.as_tensor(item[key])).all()) for item in output)
    return int(bad), len(output)


def check_finite_outputs(bad: int, total: int, epoch: int) -> None:
    """Raise a one-line ``ValueError`` on every rank when any rank counted a non-finite output.

    A collective under ``torchrun``: every rank must call it at the same point with its own counts.
    A NaN *key metric* from finite outputs (one class in the split) is not an error here: no best model.

    Args:
        bad: this rank's images whose prediction holds NaN or inf.
        total: this rank's images.
        epoch: the epoch named in the message.
    """
    bad, total = sum_over_ranks([bad, total])
    if bad:
        raise ValueError(
            f"the network's validation outputs contain NaN or inf (diverged?): {bad} of {total} images, epoch {epoch}"
        )


class FiniteOutputs:
    """Count an evaluator's non-finite predictions over an epoch; call :meth:`check` (on every rank)
    at the epoch's end, before anything reads the metrics to save a model.

    Args:
        key: the output's prediction key.
    """

    def __init__(self, key: str = CommonKeys.PRED) -> None:
        self.key = key
        self.bad = self.total = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.count)

    def reset(self, engine: Engine | None = None) -> None:
        self.bad = self.total = 0

    def count(self, engine: Engine) -> None:
        bad, total = nonfinite_items(engine.state.output, self.key)
        self.bad, self.total = self.bad + bad, self.total + total

    def check(self, engine: Engine) -> None:
        """Raise on every rank when any rank's validation gave a non-finite output (see :func:`check_finite_outputs`)."""
        check_finite_outputs(self.bad, self.total, engine.state.epoch)

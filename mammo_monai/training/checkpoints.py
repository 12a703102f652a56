"""A stage's checkpoint files on Ignite's ``Checkpoint``: where and how they are written, the best model.

A stage folder holds one ``last.pt`` (everything needed to go on: see
:class:`~mammo_monai.training.resume.StageCheckpoint`) and one ``model.pt`` (the best network, a plain
state_dict as MONAI bundles store it). Both keep their names: each save replaces the file through a
temporary one, so a kill at any moment leaves the new file or the previous one, never half of one.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler

from mammo_monai.io.atomic import atomic_path, write_json
from mammo_monai.training.distributed import is_main_process
from mammo_monai.training.finite_outputs import FiniteOutputs
from mammo_monai.training.model_meta import BEST_RECORD, best_record

logger = logging.getLogger(__name__)

BEST, LAST = "model.pt", "last.pt"


def is_finite_number(value: Any) -> bool:
    """True for a finite number (a key metric that can rank models); False for NaN, inf or None."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def plain(obj: Any) -> Any:
    """``obj`` with NumPy scalars (a metric's value, an early-stopping score) as Python numbers, through
    dicts, lists and tuples: what ``torch.load(weights_only=True)`` reads back."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return (
            type(obj)((k, plain(v)) for k, v in obj.items())
            if isinstance(obj, dict)
            else {k: plain(v) for k, v in obj.items()}
        )
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


class StageFileSaver(BaseSaveHandler):
    """Ignite save handler for a stage folder: ``torch.save`` to a temporary file, then rename over the
    fixed name (rank 0 only under ``torchrun``), NumPy scalars as numbers (:func:`plain`). ``remove``
    does nothing: a fixed name is replaced, never deleted first (Ignite deletes the previous file
    before writing its successor; a kill in between would leave none)."""

    def __init__(self, dirname: str | os.PathLike) -> None:
        self.dirname = Path(dirname)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        if not is_main_process():
            return
        with atomic_path(self.dirname / filename) as tmp:
            torch.save(plain(checkpoint), tmp)

    def remove(self, filename: str) -> None:
        pass


def stage_checkpoint(to_save: Mapping[str, Any], stage_dir: str | os.PathLike, filename: str) -> Checkpoint:
    """Ignite's ``Checkpoint`` of ``to_save`` into ``<stage_dir>/<filename>``, one file replaced at each save."""
    return Checkpoint(
        to_save,
        StageFileSaver(stage_dir),
        filename_pattern=filename,
        n_saved=1,
        global_step_transform=lambda engine, _: engine.state.epoch,  # each save outranks the previous one
    )


class BestMetric:
    """The evaluator's best key metric and its epoch (MONAI's ``state.best_metric`` /
    ``best_metric_epoch``) as ``state_dict`` / ``load_state_dict``, so a resumed stage compares with the
    best of the epochs before the interruption."""

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict[str, Any]:
        state = self.evaluator.state
        return {
            "best_metric": getattr(state, "best_metric", -1),
            "best_metric_epoch": getattr(state, "best_metric_epoch", -1),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.evaluator.state.best_metric = state["best_metric"]
        self.evaluator.state.best_metric_epoch = state["best_metric_epoch"]


class SaveBest:
    """Write the network to ``<save_dir>/model.pt`` (Ignite's ``Checkpoint``, a plain state_dict) whenever
    the evaluator's key metric improves, as MONAI's workflow tracks it (``state.best_metric_epoch``), and
    that epoch's validation figures to ``<save_dir>/best.json`` (the key metric's name and value).

    The decision is MONAI's best metric, which :class:`BestMetric` carries over a resume, so a worse
    epoch after a restart never replaces the best checkpoint saved before it. Under ``torchrun`` only
    rank 0 writes.

    A key metric that is not a number (NaN: an AUC on one class) is never the best: MONAI's workflow
    takes the first value it sees as best, NaN included, and no later value beats a NaN. The
    evaluator's ``best_metric`` and ``best_metric_epoch`` are put back to what they were before that
    validation, so nothing is saved, published, plotted as best or registered from it.

    NaN or infinite outputs (a diverged network, which MONAI's ``ROCAUC`` still scores with a number)
    stop the stage before anything is saved: every rank raises the same one-line ``ValueError``
    (:class:`~mammo_monai.training.finite_outputs.FiniteOutputs`), whatever the handlers' order."""

    def __init__(self, save_dir: str, network: torch.nn.Module, filename: str = BEST) -> None:
        self.path = Path(save_dir) / filename
        self.checkpoint = stage_checkpoint({"model": network}, save_dir, filename)
        self._before: tuple[Any, int] = (-1, -1)  # MONAI's "no best yet"
        self.finite = FiniteOutputs()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._remember)
        self.finite.attach(engine)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _remember(self, engine: Engine) -> None:
        self._before = (getattr(engine.state, "best_metric", -1), getattr(engine.state, "best_metric_epoch", -1))

    def __call__(self, engine: Engine) -> None:
        self.finite.check(engine)  # every rank, every epoch: a collective under torchrun
        if getattr(engine.state, "best_metric_epoch", -1) != engine.state.epoch:
            return
        if not is_finite_number(engine.state.best_metric):
            logger.warning(
                "epoch %d: the key metric is %s: not a best model, nothing saved",
                engine.state.epoch,
                engine.state.best_metric,
            )
            engine.state.best_metric, engine.state.best_metric_epoch = self._before
            return
        self.checkpoint(engine)
        if is_main_process():  # the figures of this checkpoint, for model_meta.json and the exported metadata
            state = engine.state
            record = best_record(state.key_metric_name, state.best_metric, state.best_metric_epoch, state.metrics)
            write_json(record, self.path.parent / BEST_RECORD)

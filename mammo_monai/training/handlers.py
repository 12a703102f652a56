"""Ignite handlers for staged training: validation plots, early stopping that survives a resume,
publishing the best model."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping

from mammo_monai.evaluation.metrics import pred_label
from mammo_monai.io.atomic import atomic_path
from mammo_monai.training.distributed import all_gather_objects, is_distributed, is_main_process, on_rank0
from mammo_monai.training.finite_outputs import check_finite_outputs, nonfinite_items
from mammo_monai.training.model_meta import MODEL_META, training_record, write_model_meta
from mammo_monai.training.selection import read_selection

logger = logging.getLogger(__name__)


class ValidationPlots:
    """After each validation epoch, write ``roc.png`` and ``confusion.png`` (and ``*_best.png`` when
    the key metric improved) into ``output_dir``, from the epoch's outputs. Under ``torchrun`` the
    outputs of every rank are gathered and rank 0 draws. NaN or infinite outputs on any rank stop every
    rank with one line (:func:`~mammo_monai.training.finite_outputs.check_finite_outputs`)."""

    def __init__(self, output_dir: str, class_names: Sequence[str] | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names) if class_names else None
        self.logits: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._plot)

    def _reset(self, engine: Engine) -> None:
        self.logits, self.labels = [], []

    def _collect(self, engine: Engine) -> None:
        logits, labels = pred_label(engine.state.output)
        self.logits.append(logits.detach().cpu())
        self.labels.append(labels.cpu())

    def _gather(self) -> None:
        """Every rank's outputs on rank 0 (in rank order); the other ranks keep none."""
        parts = all_gather_objects((self.logits, self.labels))
        self.logits = [t for logits, _ in parts for t in logits] if is_main_process() else []
        self.labels = [t for _, labels in parts for t in labels] if is_main_process() else []

    def _plot(self, engine: Engine) -> None:
        bad, total = nonfinite_items({"pred": torch.cat(self.logits)}) if self.logits else (0, 0)
        check_finite_outputs(bad, total, engine.state.epoch)  # on every rank, before the gather
        if is_distributed():
            self._gather()
        if not self.logits:
            return
        from mammo_monai.evaluation.plots import plot_confusion, plot_roc

        self.output_dir.mkdir(parents=True, exist_ok=True)
        logits = torch.cat(self.logits).float()
        if logits.shape[1] == 1:  # one logit: sigmoid gives P(class 1); plot both classes
            positive = torch.sigmoid(logits)
            logits = torch.log(torch.cat([1 - positive, positive], 1).clamp_min(1e-12))
        probs = torch.softmax(logits, 1).numpy()
        labels = torch.cat(self.labels).numpy()
        names = self.class_names or [str(i) for i in range(probs.shape[1])]
        plot_roc(probs, labels, names, self.output_dir / "roc.png")
        plot_confusion(probs.argmax(1), labels, names, self.output_dir / "confusion.png")
        if getattr(engine.state, "best_metric_epoch", -1) == engine.state.epoch:
            for name in ("roc", "confusion"):
                shutil.copyfile(self.output_dir / f"{name}.png", self.output_dir / f"{name}_best.png")
        np.savez(self.output_dir / "last_validation.npz", probs=probs, labels=labels)


class StageEarlyStopping:
    """Stop the trainer when the validation score has not improved for ``patience`` validations: Ignite's
    ``EarlyStopping``, attached to the evaluator like MONAI's ``EarlyStopHandler`` (same arguments, the
    trainer given later with :meth:`set_trainer`, since the evaluator is built before the trainer), with
    its counter and best score as ``state_dict`` / ``load_state_dict`` so that a resumed stage counts on
    (:class:`~mammo_monai.training.resume.StageCheckpoint` saves it). Under ``torchrun`` rank 0's score
    decides on every rank, so all ranks stop at the same epoch.

    Args:
        patience: validations without improvement before stopping.
        score_function: ``engine -> float``, higher is better.
        trainer: the engine to stop; None: give it with :meth:`set_trainer` before the run.
        min_delta: the least change that counts as an improvement.
        cumulative_delta: compare with the best score rather than the previous one.
        epoch_level: check after each epoch (True) or each iteration of the evaluator.
    """

    def __init__(
        self,
        patience: int,
        score_function: Callable[[Engine], float],
        trainer: Engine | None = None,
        min_delta: float = 0.0,
        cumulative_delta: bool = False,
        epoch_level: bool = True,
    ) -> None:
        self.patience, self.score_function = int(patience), score_function
        self.min_delta, self.cumulative_delta, self.epoch_level = float(min_delta), bool(cumulative_delta), epoch_level
        self.stopper: EarlyStopping | None = None
        self._state: Mapping[str, Any] | None = None  # loaded before the trainer was given
        if trainer is not None:
            self.set_trainer(trainer)

    def set_trainer(self, trainer: Engine) -> None:
        self.stopper = EarlyStopping(self.patience, self._score, trainer, self.min_delta, self.cumulative_delta)
        if self._state is not None:
            self.stopper.load_state_dict({**self.stopper.state_dict(), **self._state})

    def _score(self, engine: Engine) -> float:
        return on_rank0(self.score_function, engine) if is_distributed() else self.score_function(engine)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if self.stopper is None:
            raise RuntimeError("StageEarlyStopping: call set_trainer(trainer) before the evaluator runs")
        self.stopper(engine)

    def state_dict(self) -> dict[str, Any]:
        if self.stopper is not None:
            return dict(self.stopper.state_dict())
        return dict(self._state or {"counter": 0, "best_score": None})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)
        if self.stopper is not None:
            self.stopper.load_state_dict({**self.stopper.state_dict(), **self._state})

    @property
    def stopped(self) -> bool:
        """Whether the counter reached ``patience``: the trainer was (or, restored, is to be) stopped."""
        return int(self.state_dict().get("counter") or 0) >= self.patience


class PublishBest:
    """When training completes, copy the stage's best checkpoint to the bundle's ``models/model.pt``
    (through a temporary file), so the bundle always serves its latest finished stage, and record
    ``settings`` (architecture, image size, ...) beside it in ``model_meta.json`` for inference, with
    ``training``: the stages this training ran and the checkpoint's validation figures
    (:func:`~mammo_monai.training.model_meta.training_record`). Under
    ``torchrun`` only rank 0 publishes."""

    def __init__(
        self, source: str, target: str, settings: dict[str, Any] | None = None, selection_dir: str | None = None
    ) -> None:
        self.source, self.target = Path(source), Path(target)
        self.settings = settings or {}
        self.selection_dir = (
            selection_dir  # a stage folder whose selection.json (threshold, aggregation) is recorded too
        )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not is_main_process():
            return
        if not self.source.is_file():
            logger.warning("no best checkpoint at %s (no validation ran?): %s not updated", self.source, self.target)
            return
        with atomic_path(self.target) as tmp:
            shutil.copyfile(self.source, tmp)
        settings = dict(self.settings)
        if "stage" in settings:  # the stages this training ran and the published checkpoint's figures
            stage, tid = int(settings["stage"]), str(settings.get("training_id"))
            settings["training"] = training_record(self.target.parent, stage, tid, engine.state.epoch)
        if self.selection_dir is not None:
            settings["selection"] = read_selection(self.selection_dir)
        write_model_meta(self.target.parent / MODEL_META, settings)

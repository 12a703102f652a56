"""Stages that survive a crash: which training a stage folder belongs to, resuming an interrupted
stage from its last epoch, skipping finished stages, never overwriting a finished stage's files.

On disk, per bundle: ``models/training.json`` (the current training's id) and, per stage,
``models/stage<N>/``: ``model.pt`` (best), ``last.pt``, ``resume.pt`` (everything needed to go on
after the last finished epoch) and ``done.json`` (written when the stage finished; a finished stage
is skipped unless restarted, and a restart moves its folder aside instead of overwriting it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from mammo_monai.io.atomic import atomic_path, write_json
from mammo_monai.tracking.runs import end_stage_run
from mammo_monai.training.distributed import any_rank, is_distributed, is_main_process, on_rank0
from mammo_monai.training.interrupt import StopRequest
from mammo_monai.training.model_meta import BEST_RECORD, DONE_RECORD, best_record

logger = logging.getLogger(__name__)

TRAINING_RECORD = "training.json"
DONE, RESUME = DONE_RECORD, "resume.pt"


class ForeignCheckpointError(ValueError):
    """A stage was asked to start from a checkpoint made by another training."""


def new_training_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def training_id(ckpt_dir: str | os.PathLike | None = None, restart: bool = False) -> str:
    """The id that ties a training's stages, checkpoints and MLflow runs together.

    ``MAMMO_TRAINING_ID`` (set by ``mammo-monai train``) wins; else the id recorded in
    ``<ckpt_dir>/training.json``, so stages run one by one with ``python -m monai.bundle run`` belong to
    one training; ``restart`` (of a training's first stage) or no record starts a new one. Under
    ``torchrun`` rank 0 decides (and writes the record) and the other ranks receive its id.
    """
    return on_rank0(_training_id, ckpt_dir, restart)


def _training_id(ckpt_dir: str | os.PathLike | None, restart: bool) -> str:
    if os.environ.get("MAMMO_TRAINING_ID"):
        return os.environ["MAMMO_TRAINING_ID"]
    return new_training_id() if ckpt_dir is None else recorded_training_id(ckpt_dir, restart)


def recorded_training_id(ckpt_dir: str | os.PathLike, restart: bool = False) -> str:
    """The id in ``<ckpt_dir>/training.json``; a new one (recorded there) when there is none or ``restart``."""
    record = Path(ckpt_dir) / TRAINING_RECORD
    if record.is_file() and not restart:
        return json.loads(record.read_text())["training_id"]
    tid = new_training_id()
    write_json({"training_id": tid, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, record)
    return tid


def read_done(stage_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of a finished stage, or None."""
    path = Path(stage_dir) / DONE
    return json.loads(path.read_text()) if path.is_file() else None


def archive_stage(stage_dir: str | os.PathLike) -> Path | None:
    """Move a stage folder aside (``stage2.replaced-<time>``) so a restart never overwrites it."""
    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir() or not any(stage_dir.iterdir()):
        return None
    target = stage_dir.with_name(f"{stage_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}")
    stage_dir.rename(target)
    logger.warning("%s moved to %s (restart)", stage_dir, target)
    return target


def previous_stage_checkpoint(
    ckpt_dir: str | os.PathLike, stage: int, tid: str, allow_foreign: bool = False
) -> str | None:
    """The checkpoint stage ``stage`` starts from (``stage<N-1>/model.pt``), checked to belong to training
    ``tid``: a previous stage of another training is refused unless ``allow_foreign``. Under ``torchrun``
    rank 0 checks and every rank gets its answer (or its error)."""
    return on_rank0(_previous_stage_checkpoint, ckpt_dir, stage, tid, allow_foreign)


def _previous_stage_checkpoint(ckpt_dir: str | os.PathLike, stage: int, tid: str, allow_foreign: bool) -> str | None:
    if stage <= 1:
        return None
    prev = Path(ckpt_dir) / f"stage{stage - 1}"
    done = read_done(prev)
    if done is None:
        raise FileNotFoundError(f"{prev}: stage {stage - 1} has not finished (no {DONE}); run it first")
    if done.get("training_id") != tid and not allow_foreign:
        raise ForeignCheckpointError(
            f"{prev / 'model.pt'} belongs to training {done.get('training_id')}, not {tid}; start the training again "
            "(--restart) or set allow_foreign_checkpoint=true to use it anyway"
        )
    return str(prev / "model.pt")


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


class StageCheckpoint:
    """Save everything a stage needs to go on after each epoch, resume from it, and mark the stage done.

    Attach to the trainer after the ``ValidationHandler`` (so the epoch's validation is in the
    checkpoint). Saved in ``resume.pt`` after every epoch (temporary file, then rename): network,
    optimizer, scheduler, trainer epoch and iteration, the evaluator's best metric and its epoch, the
    early-stopping counter and best score, the random states. On start, a ``resume.pt`` of the same
    training is loaded and the trainer goes on from the epoch after it: at most the interrupted epoch
    is lost. On completion ``done.json`` is written and ``resume.pt`` removed.

    Under ``torchrun`` only rank 0 writes; on resume rank 0 reads ``resume.pt`` and every rank loads
    the state it broadcasts (one decision, and the ranks start from the same weights and counters).

    Args:
        stage_dir: the stage's folder.
        training_id: the training this stage belongs to.
        stage: the stage number.
        network, optimizer: what to save.
        evaluator: the validation engine (its best metric is saved); None without validation.
        early_stop: MONAI's ``EarlyStopHandler`` (its counter is saved); None without.
        lr_scheduler: an optional scheduler.
        started_from: the checkpoint the stage started from (recorded in ``done.json``).
    """

    def __init__(
        self,
        stage_dir: str,
        training_id: str,
        stage: int,
        network: torch.nn.Module,
        optimizer: Any,
        evaluator: Engine | None = None,
        early_stop: Any = None,
        lr_scheduler: Any = None,
        started_from: str | None = None,
    ) -> None:
        self.stage_dir = Path(stage_dir)
        self.training_id, self.stage = training_id, int(stage)
        self.network, self.optimizer, self.lr_scheduler = network, optimizer, lr_scheduler
        self.evaluator, self.early_stop = evaluator, early_stop
        self.started_from = started_from
        self.resumed_from_epoch: int | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.resume)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save)

    def _attach_finish(self, engine: Engine) -> None:
        # registered at start, after every other handler: done.json is written last (after publishing)
        if not engine.has_event_handler(self.finish, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self.finish)

    def _early_stopping(self) -> Any:
        return getattr(self.early_stop, "_handler", None)

    def state(self, engine: Engine) -> dict[str, Any]:
        stopper = self._early_stopping()
        return {
            "training_id": self.training_id,
            "stage": self.stage,
            "epoch": engine.state.epoch,
            "iteration": engine.state.iteration,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "best_metric": getattr(self.evaluator.state, "best_metric", None) if self.evaluator else None,
            "best_metric_epoch": getattr(self.evaluator.state, "best_metric_epoch", None) if self.evaluator else None,
            "early_stopping": {"counter": stopper.counter, "best_score": stopper.best_score}
            if stopper is not None
            else None,
            "rng": _rng_state(),
        }

    def save(self, engine: Engine) -> None:
        if not is_main_process():
            return
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.stage_dir / RESUME) as tmp:
            torch.save(self.state(engine), tmp)

    def _read_resume(self) -> dict[str, Any] | None:
        """The state of ``resume.pt`` when it belongs to this training; one of another is moved aside."""
        path = self.stage_dir / RESUME
        if not path.is_file():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("training_id") != self.training_id:
            archived = path.with_name(f"resume.{state.get('training_id')}.pt")
            path.rename(archived)
            logger.warning(
                "%s belongs to training %s, not %s: not resumed (kept as %s)",
                path,
                state.get("training_id"),
                self.training_id,
                archived.name,
            )
            return None
        return state

    def resume(self, engine: Engine) -> None:
        self._attach_finish(engine)
        state = on_rank0(self._read_resume)
        if state is None:
            return
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and state.get("lr_scheduler") is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if self.evaluator is not None and state.get("best_metric") is not None:
            self.evaluator.state.best_metric = state["best_metric"]
            self.evaluator.state.best_metric_epoch = state["best_metric_epoch"]
        stopper = self._early_stopping()
        if stopper is not None and state.get("early_stopping"):
            stopper.counter = state["early_stopping"]["counter"]
            stopper.best_score = state["early_stopping"]["best_score"]
        _set_rng_state(state["rng"])
        engine.state.epoch, engine.state.iteration = int(state["epoch"]), int(state["iteration"])
        self.resumed_from_epoch = int(state["epoch"])
        logger.warning(
            "stage %d resumed after epoch %d of %s (training %s)",
            self.stage,
            state["epoch"],
            engine.state.max_epochs,
            self.training_id,
        )

    def finish(self, engine: Engine) -> None:
        if not is_main_process():
            return
        best = getattr(self.evaluator.state, "best_metric", None) if self.evaluator else None
        write_json(
            {
                "training_id": self.training_id,
                "stage": self.stage,
                "epochs": engine.state.epoch,
                "best_metric": best,
                "best_metric_epoch": getattr(self.evaluator.state, "best_metric_epoch", None)
                if self.evaluator
                else None,
                "started_from": self.started_from,
                "resumed_from_epoch": self.resumed_from_epoch,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            self.stage_dir / DONE,
        )
        (self.stage_dir / RESUME).unlink(missing_ok=True)


def is_finite_number(value: Any) -> bool:
    """True for a finite number (a key metric that can rank models); False for NaN, inf or None."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class SaveBest:
    """Write the network to ``<stage_dir>/model.pt`` (temporary file, then rename) whenever the
    evaluator's key metric improves, as MONAI's workflow tracks it (``state.best_metric_epoch``), and
    that epoch's validation figures to ``<stage_dir>/best.json`` (the key metric's name and value).

    Unlike a fresh ``CheckpointSaver``, this survives a resume: the restored best metric decides, so
    a worse epoch after a restart never replaces the best checkpoint saved before the crash. Under
    ``torchrun`` only rank 0 writes.

    A key metric that is not a number (NaN: an AUC on one class) is never the best: MONAI's workflow
    takes the first value it sees as best, NaN included, and no later value beats a NaN. The
    evaluator's ``best_metric`` and ``best_metric_epoch`` are put back to what they were before that
    validation, so nothing is saved, published, plotted as best or registered from it."""

    def __init__(self, save_dir: str, network: torch.nn.Module, filename: str = "model.pt") -> None:
        self.path = Path(save_dir) / filename
        self.network = network
        self._before: tuple[Any, int] = (-1, -1)  # MONAI's "no best yet"

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._remember)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _remember(self, engine: Engine) -> None:
        self._before = (getattr(engine.state, "best_metric", -1), getattr(engine.state, "best_metric_epoch", -1))

    def __call__(self, engine: Engine) -> None:
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
        if not is_main_process():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            torch.save({"model": self.network.state_dict()}, tmp)
        state = engine.state  # the figures of this checkpoint, for model_meta.json and the exported metadata
        record = best_record(state.key_metric_name, state.best_metric, state.best_metric_epoch, state.metrics)
        write_json(record, self.path.parent / BEST_RECORD)


class StageRunner:
    """What ``run`` does in a bundle's train config: skip a finished stage, or run the trainer.

    With ``restart`` a finished (or interrupted) stage folder is moved aside first, never overwritten.
    A stage that raises, or is interrupted (SIGINT or SIGTERM, honoured at the next iteration: see
    :class:`~mammo_monai.training.interrupt.StopRequest`),
    ends its MLflow run FAILED or KILLED (see :func:`mammo_monai.tracking.runs.end_stage_run`).

    Under ``torchrun`` rank 0 moves folders, decides whether the stage is finished and ends MLflow
    runs; the other ranks follow its decision. A stop signal is honoured by all ranks at the same
    iteration (the ranks agree on it before each one), so none waits for another that stopped.
    """

    def __init__(self, stage_dir: str, stage: int, training_id: str, restart: bool = False) -> None:
        self.stage_dir, self.stage, self.training_id, self.restart = (
            Path(stage_dir),
            int(stage),
            training_id,
            bool(restart),
        )
        if self.restart:
            on_rank0(archive_stage, self.stage_dir)

    def run(self, trainer: Engine) -> bool:
        """Run ``trainer`` unless the stage is finished; True when it ran."""
        done = on_rank0(read_done, self.stage_dir)
        if done is not None:
            logger.warning(
                "stage %d already finished (training %s, best %s); skipped: restart it with restart=true",
                self.stage,
                done.get("training_id"),
                done.get("best_metric"),
            )
            return False
        with StopRequest() as stop:
            if is_distributed():
                _agree_on_stop(trainer, stop)
            else:
                stop.attach(trainer)
            try:
                trainer.run()
            except KeyboardInterrupt:
                _end_stage_run(self.stage_dir, "KILLED")
                raise
            except Exception:
                _end_stage_run(self.stage_dir, "FAILED")
                raise
        if any_rank(
            stop.requested is not None
        ):  # the signal came during the last epoch: the stage is finished, the training is not
            _end_stage_run(self.stage_dir, "KILLED", parent_only=True)
            raise KeyboardInterrupt(f"signal {stop.requested or 'on another rank'}")
        return True


def _end_stage_run(stage_dir: Path, status: str, parent_only: bool = False) -> None:
    if is_main_process():  # the MLflow runs are rank 0's
        end_stage_run(stage_dir, status, parent_only=parent_only)


def _agree_on_stop(trainer: Engine, stop: StopRequest) -> None:
    """Before each iteration, stop every rank when any rank got a stop signal (one all-reduce)."""

    def _check(engine: Engine) -> None:
        if any_rank(stop.requested is not None):
            raise KeyboardInterrupt(f"signal {stop.requested or 'on another rank'}")

    trainer.add_event_handler(Events.ITERATION_STARTED, _check)

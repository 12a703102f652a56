"""Stages that survive a crash: which training a stage folder belongs to, resuming an interrupted
stage from its last epoch (Ignite's ``Checkpoint``), skipping finished stages, never overwriting a
finished stage's files.

On disk, per bundle: ``models/training.json`` (the current training's id) and, per stage,
``models/stage<N>/``: ``model.pt`` (the best network), ``last.pt`` (everything needed to go on after
the last finished epoch, the training id included; after the last epoch, the stage's final state),
``best.json`` (the best epoch's figures) and ``done.json`` (written when the stage finished; a
finished stage is skipped unless restarted, and a restart moves its folder aside instead of
overwriting it). ``run.json`` (the stage's MLflow run) is :mod:`mammo_monai.tracking`'s.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from mammo_monai.io.atomic import remove_stale_parts, write_json
from mammo_monai.tracking.runs import end_stage_run
from mammo_monai.training.checkpoints import BEST, LAST, BestMetric, stage_checkpoint
from mammo_monai.training.checkpoints import is_finite_number as is_finite_number  # re-exported
from mammo_monai.training.distributed import any_rank, is_distributed, is_main_process, on_rank0
from mammo_monai.training.interrupt import StopRequest
from mammo_monai.training.model_meta import DONE_RECORD
from mammo_monai.training.random_states import RandomStates

logger = logging.getLogger(__name__)

TRAINING_RECORD = "training.json"
DONE = DONE_RECORD


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
    """The checkpoint stage ``stage`` starts from (``stage<N-1>/model.pt``, its best), checked to belong to training
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
            f"{prev / BEST} belongs to training {done.get('training_id')}, not {tid}; start the training again "
            "(--restart) or set allow_foreign_checkpoint=true to use it anyway"
        )
    return str(prev / BEST)


class StageIdentity:
    """The training and stage a ``last.pt`` belongs to (an entry of its Ignite ``Checkpoint``)."""

    def __init__(self, training_id: str, stage: int) -> None:
        self.training_id, self.stage = training_id, int(stage)

    def state_dict(self) -> dict[str, Any]:
        return {"training_id": self.training_id, "stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass  # checked before loading: see StageCheckpoint._read_last


class StageCheckpoint:
    """Resume a stage from its last finished epoch with Ignite's ``Checkpoint``, and mark it done.

    Attach to the trainer; it saves after every other handler of the epoch (validation, scheduler,
    early stopping). After every epoch ``<stage_dir>/last.pt`` is replaced (temporary file, then
    rename) by an Ignite checkpoint of: the trainer (epoch, iteration), network, optimizer, scheduler,
    the evaluator's best metric (:class:`~mammo_monai.training.checkpoints.BestMetric`), the early
    stopping (with ``state_dict``: :class:`~mammo_monai.training.handlers.StageEarlyStopping`),
    every random state (:class:`~mammo_monai.training.random_states.RandomStates`: the global ones, the
    training and validation transforms' and samplers') and the training id. On start, a ``last.pt`` of
    the same training is loaded (``Checkpoint.load_objects``) and the trainer goes on from the epoch
    after it, drawing what an uninterrupted run draws: at most the interrupted epoch is lost, and the
    result is the same. A ``last.pt`` of another training is moved aside. On completion ``done.json``
    is written; ``last.pt`` stays, the stage's final state.

    Under ``torchrun`` only rank 0 writes; on resume rank 0 reads ``last.pt`` and every rank loads
    the state it broadcasts (one decision, and the ranks start from the same weights and counters).

    Args:
        stage_dir: the stage's folder.
        training_id: the training this stage belongs to.
        stage: the stage number.
        network, optimizer: what to save.
        evaluator: the validation engine (its best metric is saved); None without validation.
        early_stop: an early-stopping handler with ``state_dict`` / ``load_state_dict``; None without.
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
        self.to_save: dict[str, Any] = {}
        self.checkpoint: Checkpoint | None = None

    def objects(self, trainer: Engine) -> dict[str, Any]:
        """What ``last.pt`` holds, by name (Ignite's ``to_save``)."""
        if self.early_stop is not None and not hasattr(self.early_stop, "state_dict"):
            raise TypeError(
                f"{type(self.early_stop).__name__} has no state_dict: a resumed stage would forget its early-stopping "
                "counter; use mammo_monai.training.StageEarlyStopping"
            )
        objects = {
            "stage": StageIdentity(self.training_id, self.stage),
            "trainer": trainer,
            "network": self.network,
            "optimizer": self.optimizer,
            "lr_scheduler": self.lr_scheduler,
            "best_metric": BestMetric(self.evaluator) if self.evaluator is not None else None,
            "early_stopping": self.early_stop,
            "random_states": RandomStates(
                getattr(trainer, "data_loader", None), getattr(self.evaluator, "data_loader", None)
            ),
        }
        return {k: v for k, v in objects.items() if v is not None}

    def attach(self, engine: Engine) -> None:
        self.to_save = self.objects(engine)
        self.checkpoint = stage_checkpoint(self.to_save, self.stage_dir, LAST)
        engine.add_event_handler(Events.STARTED, self.resume)

    def _attach_save_and_finish(self, engine: Engine) -> None:
        # registered at start, after every other handler: last.pt holds the epoch once every handler
        # (validation, a scheduler stepped on its loss, early stopping) is done with it, and done.json
        # is written last (after publishing)
        if not engine.has_event_handler(self.checkpoint, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self.checkpoint)
        if not engine.has_event_handler(self.finish, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self.finish)

    def _read_last(self) -> dict[str, Any] | None:
        """The checkpoint in ``last.pt`` when it belongs to this training; one of another is moved aside."""
        remove_stale_parts(self.stage_dir)  # temporaries of a killed run
        path = self.stage_dir / LAST
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line error
            raise ValueError(f"{path}: unreadable checkpoint ({type(err).__name__}); restart the stage") from err
        tid = (state.get("stage") or {}).get("training_id") if isinstance(state, dict) else None
        if tid != self.training_id:
            archived = path.with_name(f"last.{tid}.pt")
            path.rename(archived)
            logger.warning(
                "%s belongs to training %s, not %s: not resumed (kept as %s)",
                path,
                tid,
                self.training_id,
                archived.name,
            )
            return None
        return state

    def resume(self, engine: Engine) -> None:
        self._attach_save_and_finish(engine)
        state = on_rank0(self._read_last)
        if state is None:
            return
        max_epochs = engine.state.max_epochs  # this run's setting wins over the checkpoint's, as in MONAI
        Checkpoint.load_objects(self.to_save, state)
        if max_epochs is not None and engine.state.epoch > max_epochs:
            raise ValueError(
                f"{self.stage_dir / LAST}: epoch {engine.state.epoch} is past this stage's {max_epochs} epochs; "
                "restart the stage"
            )
        engine.state.max_epochs = max_epochs
        if getattr(self.early_stop, "stopped", False):
            # killed after early stopping ended the stage but before done.json: finish it, train no more
            engine.state.max_epochs = engine.state.epoch
        self.resumed_from_epoch = int(engine.state.epoch)
        logger.warning(
            "stage %d resumed after epoch %d of %s (training %s)",
            self.stage,
            engine.state.epoch,
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

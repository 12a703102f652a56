"""The operating choice that goes with the best checkpoint: the breast-level pF1 threshold and
aggregation chosen on validation (:class:`~mammo_monai.evaluation.breast_pf1.BreastPF1`), written to
``<stage_dir>/selection.json`` whenever ``model.pt`` is (see :class:`~mammo_monai.training.checkpoints.SaveBest`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from mammo_monai.evaluation.breast_pf1 import BreastPF1
from mammo_monai.io.atomic import write_json
from mammo_monai.training.distributed import is_main_process

logger = logging.getLogger(__name__)

SELECTION = "selection.json"


class SaveSelection:
    """Write ``metric.selection`` and the epoch to ``<stage_dir>/selection.json`` (temporary file,
    then rename) at the end of each validation whose key metric is the best so far, as MONAI's
    workflow tracks it (``state.best_metric_epoch``, the trainer's epoch during training).

    Attach to the evaluator whose ``key_val_metric`` is ``metric``; as a ``val_handler`` it runs
    after the metric and MONAI's best-metric update. Like ``SaveBest`` it survives a resume: the
    restored best metric decides, so a worse epoch after a restart never replaces the file.

    Args:
        stage_dir: the stage's folder (beside ``model.pt``).
        metric: the evaluator's :class:`BreastPF1`.
        filename: the file's name.
    """

    def __init__(self, stage_dir: str | os.PathLike, metric: BreastPF1, filename: str = SELECTION) -> None:
        self.path = Path(stage_dir) / filename
        self.metric = metric

    def attach(self, engine: Engine) -> None:
        """Run at the end of every epoch of ``engine`` (the evaluator)."""
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Write the selection when this epoch is the best so far (rank 0 only under torchrun)."""
        if not is_main_process() or getattr(engine.state, "best_metric_epoch", -1) != engine.state.epoch:
            return
        selection = self.metric.__dict__.get("selection")  # not getattr: an Ignite metric invents attributes
        if not isinstance(selection, dict):
            logger.warning("%s not written: the metric has no selection (is it attached to this evaluator?)", self.path)
            return
        record = {
            "epoch": int(engine.state.epoch),
            "metric": getattr(engine.state, "key_metric_name", None),
            "best_metric": getattr(engine.state, "best_metric", None),
            **selection,
        }
        write_json(record, self.path)


def read_selection(stage_dir: str | os.PathLike, filename: str = SELECTION) -> dict[str, Any] | None:
    """The selection saved with a stage's best checkpoint, or None when there is none."""
    path = Path(stage_dir) / filename
    return json.loads(path.read_text()) if path.is_file() else None

"""Training progress a person can read: a progress bar per epoch and one summary line per epoch."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from ignite.engine import Engine, Events

from mammo_monai.training.distributed import is_main_process


class StageProgress:
    """An Ignite progress bar over each epoch's iterations (on a terminal) and, after each epoch's
    validation, one line: epoch, training loss, validation metrics with the best so far, epoch time
    and the stage's ETA. Without ``verbose`` the engines' own per-iteration and per-epoch INFO logs
    are silenced (``mammo-monai train --verbose`` / ``verbose=true`` brings them back).

    Attach to the trainer after the ``ValidationHandler``. Under ``torchrun`` only rank 0 shows the
    bar and prints (the metrics are gathered over the ranks, so its line speaks for all).

    Args:
        stage: the stage number, for the line's prefix.
        evaluator: the validation engine whose metrics are reported (None: training loss only).
        verbose: keep the engines' INFO logs.
        bar: show the bar; None shows it when standard error is a terminal.
    """

    def __init__(
        self, stage: int, evaluator: Engine | None = None, verbose: bool = False, bar: bool | None = None
    ) -> None:
        self.stage, self.evaluator, self.verbose = int(stage), evaluator, bool(verbose)
        self.bar = sys.stderr.isatty() if bar is None else bool(bar)
        self.t0 = self.t_epoch = 0.0
        self.first_epoch = 0

    def attach(self, engine: Engine) -> None:
        if self.bar and is_main_process():
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False, desc=f"stage {self.stage}").attach(engine, output_transform=_loss)
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        if not self.verbose:
            for e in (engine, self.evaluator):
                if e is not None:
                    e.logger.setLevel(logging.WARNING)

    def _started(self, engine: Engine) -> None:
        self.t0 = time.time()
        self.first_epoch = engine.state.epoch  # > 0 when the stage resumed

    def _epoch_started(self, engine: Engine) -> None:
        self.t_epoch = time.time()

    def summary(self, engine: Engine) -> str:
        """The epoch's line, e.g. ``stage 2 epoch 3/8: loss 0.412 | val_auc 0.781 (best 0.802 @2) | 12.3 s, ETA 61 s``."""
        s = engine.state
        done = s.epoch - self.first_epoch
        per_epoch = (time.time() - self.t0) / max(done, 1)
        parts = [f"stage {self.stage} epoch {s.epoch}/{s.max_epochs}:"]
        loss = s.metrics.get("train_loss")
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if self.evaluator is not None and getattr(self.evaluator.state, "metrics", None):
            ev = self.evaluator.state
            key = getattr(ev, "key_metric_name", None)
            for name, value in ev.metrics.items():
                if not isinstance(value, (int, float)):
                    continue
                text = f"{name} {value:.4f}"
                if name == key and getattr(ev, "best_metric_epoch", -1) > 0:
                    text += f" (best {ev.best_metric:.4f} @{ev.best_metric_epoch})"
                parts.append(text)
        remaining = max(0, (s.max_epochs or s.epoch) - s.epoch)
        parts.append(f"{time.time() - self.t_epoch:.1f} s, ETA {per_epoch * remaining:.0f} s")
        return " | ".join([parts[0] + " " + parts[1], *parts[2:]]) if len(parts) > 1 else parts[0]

    def _epoch_completed(self, engine: Engine) -> None:
        if is_main_process():
            print(self.summary(engine), file=sys.stderr, flush=True)


def _loss(output: Any) -> dict[str, float]:
    """The batch loss from a MONAI trainer's output (a list of per-item dicts or one dict)."""
    item = output[0] if isinstance(output, list) and output else output
    loss = item.get("loss") if isinstance(item, dict) else None
    return {"loss": float(loss)} if loss is not None else {}

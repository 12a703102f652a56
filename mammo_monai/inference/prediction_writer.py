"""Inference helpers used by the bundles' inference configs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from ignite.engine import Engine, Events

from mammo_monai.io.atomic import write_csv


class PredictionWriter:
    """Collect per-image class probabilities and write them as CSV when the run completes.

    Columns: ``file`` (from the batch's ``path_key``) and ``prob_<class>`` per class; with two
    classes also ``probability`` (of the malignant class).

    Args:
        output_file: the CSV to write.
        class_names: the classes' names (two for a one-logit network: negative, positive).
        path_key: the batch key holding each item's source file.
        activation: the bundle's declared ``output_activation``: "sigmoid" (one logit: P(positive), then
            the two classes' probabilities) or "softmax"; None decides by the number of logits.
    """

    def __init__(
        self, output_file: str, class_names: Sequence[str], path_key: str = "path", activation: str | None = None
    ) -> None:
        if activation not in (None, "sigmoid", "softmax"):
            raise ValueError(f"activation {activation!r}: expected sigmoid or softmax")
        self.output_file = Path(output_file)
        self.class_names = list(class_names)
        self.path_key = path_key
        self.activation = activation
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        for batch_item, out in zip(engine.state.batch, engine.state.output):
            logits = torch.as_tensor(out["pred"]).float().view(-1)
            sigmoid = self.activation == "sigmoid" or (self.activation is None and logits.numel() == 1)
            if sigmoid:  # one logit: P(positive), then the two classes' probabilities
                if logits.numel() != 1:
                    raise ValueError(f"a sigmoid output is one logit, the network gives {logits.numel()}")
                positive = torch.sigmoid(logits)
                logits = torch.log(torch.cat([1 - positive, positive]).clamp_min(1e-12))
            probs = torch.softmax(logits, 0).tolist()
            row = {"file": batch_item.get(self.path_key, "")}
            row.update({f"prob_{name}": p for name, p in zip(self.class_names, probs)})
            if len(probs) == 2:
                row["probability"] = probs[1]
            self.rows.append(row)

    def _write(self, engine: Engine) -> None:
        write_csv(pd.DataFrame(self.rows), self.output_file)

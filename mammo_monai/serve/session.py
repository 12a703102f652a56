"""The model session of ``mammo-monai serve``: the bundle(s) opened once, scored as ``predict`` scores.

An uploaded exam becomes the same rows ``predict`` writes (:func:`~mammo_monai.inference.predict.result_table`
with :func:`~mammo_monai.evaluation.calibrated_columns.with_calibrated_columns`): the images are loaded
with ``predict``'s own preprocessing and scored by its ``_Scorer`` on the runtime network that ``predict``
would pick (:func:`~mammo_monai.inference.backend_choice.runtime_network`). With a patch bundle, each image's
heatmap is computed as ``predict`` computes it and rendered by :func:`~mammo_monai.serve.overlay.overlay_images`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mammo_monai.inference.backend_choice import runtime_network
from mammo_monai.inference.heatmaps import heatmap_network, sliding_window_probabilities
from mammo_monai.inference.opened_bundle import OpenedBundle, malignant_columns, open_bundle
from mammo_monai.inference.predict import _load, _Scorer, result_table, with_calibrated_columns
from mammo_monai.inference.segment_classify import SegmentThenClassify
from mammo_monai.io.errors import describe_error
from mammo_monai.io.exam_key import image_group
from mammo_monai.serve.overlay import overlay_images

logger = logging.getLogger("mammo_monai.serve")


@dataclass
class Upload:
    """One accepted upload: its position in the request (``file``, from 1) and its file in the private folder."""

    file: int
    path: Path


@dataclass
class Scored:
    """What :meth:`ModelSession.score` returns: ``predict``'s table (its ``file`` column: the upload's position),
    the overlays per position, the uploads refused while loading (position -> reason) and the seconds each step
    took."""

    table: pd.DataFrame
    overlays: dict[int, dict[str, bytes]] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _reason(err: BaseException, path: str) -> str:
    """Why the upload stored at ``path`` could not be read, without the path (the answer says which file)."""
    text = describe_error(err, path)
    return text.removeprefix(f"{path}: ").replace(path, "the file")


class ModelSession:
    """The whole-image bundle (and the optional patch bundle that draws heatmaps), opened once.

    Args:
        bundle: a whole-image bundle folder or exported zip.
        patch_bundle: a patch classifier bundle for heatmap overlays (None: no overlays).
        backend: as ``predict --backend`` ("auto": the backend recorded for the bundle).
        stride: heatmap window stride in pixels (default a quarter patch, as ``predict``).
        batch_size: images per forward pass.
    """

    def __init__(
        self,
        bundle: str | Path,
        patch_bundle: str | Path | None = None,
        backend: str = "auto",
        stride: int | None = None,
        batch_size: int = 4,
    ) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="mammo-serve-model-")
        tmp = Path(self._workdir.name)
        self.opened: OpenedBundle = open_bundle(bundle, tmp / "whole", partner=patch_bundle)
        self.opened.check_request(heatmaps=patch_bundle is not None)
        self.prep = self.opened.transform_settings("model")
        self.batch_size, self.stride = batch_size, stride
        self.pipeline = None
        self.nets: list[torch.nn.Module] = []
        if self.opened.pipeline == "segment_then_classify":
            self.pipeline = SegmentThenClassify(self.opened)
        else:
            example = torch.rand(1, 1, *[int(s) for s in self.prep["size"]])
            self.nets = [
                runtime_network(n, backend, example, self.opened, tmp) for n in self.opened.networks(bf16=False)
            ]
        partner = self.opened.partner if patch_bundle is not None else None
        self.patch_net, self.patch_size = None, 0
        if partner is not None and self.pipeline is None:  # the patch classifier as predict runs it
            self.patch_size = int(partner.trained.get("image_size", [224, 224])[0])
            self.patch_net = heatmap_network(partner, backend, self.patch_size, tmp)
        self.malignant = malignant_columns(partner.class_names) if self.patch_net else []

    @property
    def has_overlays(self) -> bool:
        """True when a patch bundle draws heatmaps."""
        return self.patch_net is not None

    def close(self) -> None:
        """Remove the unpacked bundles."""
        self._workdir.cleanup()

    @torch.inference_mode()
    def score(self, uploads: Sequence[Upload]) -> Scored:
        """``predict``'s rows of ``uploads`` (one exam's files), their overlays, and the files that could not
        be read (the reason names neither the private path nor a client's file name)."""
        rows: list[dict[str, Any]] = []
        out = Scored(table=pd.DataFrame())
        scorer = _Scorer(self.opened, self.nets, self.pipeline, None, self.stride, rows, self.batch_size, False)
        seconds = {"load_s": 0.0, "heatmaps_s": 0.0, "score_s": 0.0}
        for up in uploads:
            f = str(up.path)
            start = time.perf_counter()
            try:
                d = _load(f, **self.prep)
            except Exception as err:  # noqa: BLE001 - one unreadable file is refused, the others are scored
                out.refused[up.file] = _reason(err, f)
                continue
            seconds["load_s"] += time.perf_counter() - start
            meta = d["image"].meta
            laterality = meta.get("laterality", "") or ("R" if d.get("flipped") else "L")
            row = {"file": str(up.file), "level": "image", "laterality": laterality, "view": meta.get("view", "")}
            row.update(image_group(meta, f, laterality))
            start = time.perf_counter()
            scorer.add(d, row, str(up.file))
            seconds["score_s"] += time.perf_counter() - start
            if self.patch_net is not None:
                start = time.perf_counter()
                try:
                    out.overlays[up.file] = overlay_images(d, self._malignant_map(d))
                except ValueError as err:  # e.g. no window inside the breast: the view is scored, without a map
                    logger.warning("a view has no heatmap: %s", type(err).__name__)
                seconds["heatmaps_s"] += time.perf_counter() - start
        start = time.perf_counter()
        scorer.flush()
        seconds["score_s"] += time.perf_counter() - start
        if rows:
            table = result_table(rows, self.opened.decision_rule, "decision" in self.opened.outputs)
            out.table = with_calibrated_columns(table, self.opened.calibration)
        out.timings = {k: round(v, 4) for k, v in seconds.items()}
        return out

    def _malignant_map(self, d: dict[str, Any]) -> torch.Tensor:
        """P(malignant) (H, W) of the patch classifier's sliding window, as ``predict --heatmaps`` runs it."""
        maps = sliding_window_probabilities(
            self.patch_net,
            d["image"].as_tensor().float(),
            d["mask"],
            self.patch_size,
            self.stride,
        )
        return maps[self.malignant].sum(0)

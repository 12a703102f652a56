"""What the lesion segmenter's ``inference.yaml`` writes: per image, the lesion probability map (NIfTI) and
its candidate lesions (a CSV row each, best first), on the ORIGINAL image's pixel grid and spacing when the
item carries its ``grid`` record (:class:`~mammo_monai.transforms.resize.GridRecordd`, which the bundles'
``eval_transforms`` add), else in the preprocessed image's frame; the ``frame`` column says which."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine, Events

from mammo_monai.evaluation.lesion_detection import find_candidates, probability_map
from mammo_monai.inference.heatmaps import nifti_affine, probability_nifti
from mammo_monai.inference.original_grid import boxes_to_original, points_to_original, to_original_grid
from mammo_monai.io.atomic import atomic_path, write_csv

#: ``area`` in network pixels; ``center_row``, ``center_col`` and ``bbox`` (row0 col0 row1 col1, end exclusive,
#: rounded) in the pixels ``frame`` names: "original" (the file as stored) or "network" (no grid record)
CANDIDATE_COLUMNS = ["file", "candidate", "score", "area", "center_row", "center_col", "bbox", "frame"]


class LesionMapWriter:
    """Collect each image's lesion probability map and candidates; write them when the run completes.

    Args:
        output_dir: where ``<name>_lesion.nii.gz`` files and ``candidates.csv`` go.
        threshold: probability above which a connected region is a candidate (the trained setting).
        path_key: the batch key holding each item's source file.
        save_maps: False writes only the CSV.
        grid_key: the batch key holding each item's ``grid`` record (JSON); absent: the network's frame.
    """

    def __init__(
        self,
        output_dir: str,
        threshold: float = 0.5,
        path_key: str = "path",
        save_maps: bool = True,
        grid_key: str = "grid",
    ) -> None:
        self.output_dir, self.threshold, self.path_key, self.save_maps = (
            Path(output_dir),
            threshold,
            path_key,
            save_maps,
        )
        self.grid_key = grid_key
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _collect(self, engine: Engine) -> None:
        items: Sequence[Any] = engine.state.batch
        for item, out in zip(items, engine.state.output):
            prob = probability_map(torch.as_tensor(out["pred"]).float())
            source = str(item.get(self.path_key, ""))
            name = Path(source).name.split(".")[0] or f"item{len(self.rows)}"
            grid = json.loads(item[self.grid_key]) if isinstance(item.get(self.grid_key), str) else None
            if self.save_maps:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                shown = to_original_grid(prob, grid) if grid else prob
                affine = nifti_affine(grid["pixel_spacing"] if grid else (1.0, 1.0))
                with atomic_path(self.output_dir / f"{name}_lesion.nii.gz") as tmp:
                    nib.save(probability_nifti(shown, affine), str(tmp.with_suffix(".nii.gz")))
                    tmp.with_suffix(".nii.gz").replace(tmp)
            found = find_candidates(prob, threshold=self.threshold)
            centres = np.array([c["centroid"] for c in found], dtype=float).reshape(-1, 2)
            boxes = np.array([c["bbox"] for c in found], dtype=float).reshape(-1, 4)
            if grid:
                centres, boxes = points_to_original(centres, grid), boxes_to_original(boxes, grid)
            for i, c in enumerate(found):
                self.rows.append(
                    {
                        "file": source,
                        "candidate": i,
                        "score": c["score"],
                        "area": c["area"],
                        "center_row": round(float(centres[i, 0]), 1),
                        "center_col": round(float(centres[i, 1]), 1),
                        "bbox": " ".join(str(int(round(v))) for v in boxes[i]),
                        "frame": "original" if grid else "network",
                    }
                )

    def _write(self, engine: Engine) -> None:
        write_csv(pd.DataFrame(self.rows, columns=CANDIDATE_COLUMNS), self.output_dir / "candidates.csv")

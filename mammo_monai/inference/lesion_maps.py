"""What the lesion segmenter's ``inference.yaml`` writes: per image, the lesion probability map (NIfTI,
in the preprocessed image's frame) and its candidate lesions (a CSV row each, best first)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine, Events

from mammo_monai.evaluation.lesion_detection import find_candidates, probability_map
from mammo_monai.inference.heatmaps import nifti_affine
from mammo_monai.io.atomic import atomic_path, write_csv

CANDIDATE_COLUMNS = ["file", "candidate", "score", "area", "center_row", "center_col", "bbox"]


class LesionMapWriter:
    """Collect each image's lesion probability map and candidates; write them when the run completes.

    Args:
        output_dir: where ``<name>_lesion.nii.gz`` files and ``candidates.csv`` go.
        threshold: probability above which a connected region is a candidate (the trained setting).
        path_key: the batch key holding each item's source file.
        save_maps: False writes only the CSV.
    """

    def __init__(self, output_dir: str, threshold: float = 0.5, path_key: str = "path", save_maps: bool = True) -> None:
        self.output_dir, self.threshold, self.path_key, self.save_maps = (
            Path(output_dir),
            threshold,
            path_key,
            save_maps,
        )
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
            if self.save_maps:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                with atomic_path(self.output_dir / f"{name}_lesion.nii.gz") as tmp:
                    nib.save(nib.Nifti1Image(prob.astype(np.float32), nifti_affine()), str(tmp.with_suffix(".nii.gz")))
                    tmp.with_suffix(".nii.gz").replace(tmp)
            for i, c in enumerate(find_candidates(prob, threshold=self.threshold)):
                self.rows.append(
                    {
                        "file": source,
                        "candidate": i,
                        "score": c["score"],
                        "area": c["area"],
                        "center_row": c["centroid"][0],
                        "center_col": c["centroid"][1],
                        "bbox": " ".join(str(int(v)) for v in c["bbox"]),
                    }
                )

    def _write(self, engine: Engine) -> None:
        write_csv(pd.DataFrame(self.rows, columns=CANDIDATE_COLUMNS), self.output_dir / "candidates.csv")

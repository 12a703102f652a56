"""Segment, then classify: the lesion segmenter finds candidate lesions, the patch classifier scores a
crop ("snip") around each, and the image is as suspicious as its most suspicious candidate.

The segmenter (``lesion_segmentation`` bundle) and the patch classifier (``patch_classifier`` bundle)
must see the same pixels: the patch classifier is trained on patches cut from the same cache the
segmenter was trained on, so a crop of the segmenter's input at the patch size is what it learnt from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mammo_monai.evaluation.lesion_detection import find_candidates, probability_map
from mammo_monai.evaluation.metrics import positive_probability
from mammo_monai.inference.bundle import load_networks, open_bundle
from mammo_monai.training.model_meta import trained_setting

#: the image probability when the segmenter finds no candidate: a low prior, not zero (a miss is possible)
NO_CANDIDATE = 0.01


def malignant_columns(class_names: Sequence[str]) -> list[int]:
    """The patch classes whose probabilities add up to P(malignant): names containing "malignant", or
    class 1 of a two-class network."""
    found = [i for i, n in enumerate(class_names) if "malignant" in str(n).lower()]
    if found:
        return found
    if len(class_names) == 2:
        return [1]
    raise ValueError(f"patch classes {list(class_names)} name no malignant class")


def crop_at(image: torch.Tensor, centre: Sequence[float], size: int) -> torch.Tensor:
    """A (1, size, size) crop of a (1, H, W) image centred at ``centre`` (row, col), zero-padded at edges."""
    half = size // 2
    padded = F.pad(image, (half, size - half, half, size - half))
    r, c = (int(round(v)) for v in centre)
    return padded[:, r : r + size, c : c + size]


class SegmentThenClassify:
    """The two bundles of the recipe, opened once, applied image by image.

    Args:
        lesion_bundle: a trained ``lesion_segmentation`` bundle (folder or exported zip).
        patch_bundle: a trained ``patch_classifier`` bundle.
        workdir: where zips are extracted.
        threshold: candidate threshold on the lesion probability (default: the segmenter's trained one).
        max_candidates: at most this many candidates per image, best first.
        no_candidate: the image probability when there is no candidate.
    """

    def __init__(
        self,
        lesion_bundle: str | os.PathLike,
        patch_bundle: str | os.PathLike,
        workdir: str | os.PathLike,
        threshold: float | None = None,
        max_candidates: int | None = 10,
        no_candidate: float = NO_CANDIDATE,
    ) -> None:
        self.lesion_root = open_bundle(lesion_bundle, Path(workdir) / "lesion")
        self.patch_root = open_bundle(patch_bundle, Path(workdir) / "patch")
        self.segmenter = load_networks(self.lesion_root, (), workdir)[0]
        self.classifier = load_networks(self.patch_root, (), workdir)[0]
        self.patch_size = int(trained_setting(self.patch_root, "image_size", [224, 224])[0])
        self.malignant = malignant_columns(trained_setting(self.patch_root, "class_names", ["benign", "malignant"]))
        self.threshold = float(
            threshold if threshold is not None else trained_setting(self.lesion_root, "froc_threshold", 0.5)
        )
        self.max_candidates, self.no_candidate = max_candidates, float(no_candidate)

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> dict[str, Any]:
        """``{"probability", "lesion_map" (H, W), "candidates": [... with "malignancy"]}`` of one (1, H, W) image."""
        x = image.float()[None].contiguous(memory_format=torch.channels_last)
        lesion_map = probability_map(self.segmenter(x)[0])
        candidates = find_candidates(lesion_map, threshold=self.threshold, max_candidates=self.max_candidates)
        if candidates:
            crops = torch.stack([crop_at(image.float(), c["centroid"], self.patch_size) for c in candidates])
            logits = self.classifier(crops.contiguous(memory_format=torch.channels_last)).float()
            if logits.shape[1] == 1:  # one logit: sigmoid gives P(malignant)
                malignancy = positive_probability(logits).tolist()
            else:
                malignancy = torch.softmax(logits, 1)[:, self.malignant].sum(1).tolist()
            for c, m in zip(candidates, malignancy):
                c["malignancy"] = float(m)
        probability = max((c["malignancy"] for c in candidates), default=self.no_candidate)
        return {"probability": float(probability), "lesion_map": np.asarray(lesion_map), "candidates": candidates}

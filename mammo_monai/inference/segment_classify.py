"""Segment, then classify: a bundle that declares ``pipeline: segment_then_classify`` finds candidate
lesions, its partner classifier bundle scores a crop ("snip") around each, and the image is as
suspicious as its most suspicious candidate.

Segmenter and partner must see the same pixels: the partner is trained on patches cut from the same
cache the segmenter was trained on, so a crop of the segmenter's input at the patch size is what it
learnt from. :func:`~mammo_monai.inference.opened_bundle.open_bundle` checks that the partner classifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mammo_monai.evaluation.lesion_detection import find_candidates, probability_map
from mammo_monai.inference.opened_bundle import OpenedBundle, malignant_columns

#: the image probability when the segmenter finds no candidate: a low prior, not zero (a miss is possible)
NO_CANDIDATE = 0.01

__all__ = ["NO_CANDIDATE", "SegmentThenClassify", "crop_at", "malignant_columns"]


def crop_at(image: torch.Tensor, centre: Sequence[float], size: int) -> torch.Tensor:
    """A (1, size, size) crop of a (1, H, W) image centred at ``centre`` (row, col), zero-padded at edges."""
    half = size // 2
    padded = F.pad(image, (half, size - half, half, size - half))
    r, c = (int(round(v)) for v in centre)
    return padded[:, r : r + size, c : c + size]


class SegmentThenClassify:
    """An opened segment-then-classify bundle and its partner, applied image by image.

    Args:
        bundle: the opened bundle (:func:`~mammo_monai.inference.opened_bundle.open_bundle` with its partner).
        threshold: candidate threshold on the lesion probability (default: the segmenter's trained one).
        max_candidates: at most this many candidates per image, best first.
        no_candidate: the image probability when there is no candidate.
    """

    def __init__(
        self,
        bundle: OpenedBundle,
        threshold: float | None = None,
        max_candidates: int | None = 10,
        no_candidate: float = NO_CANDIDATE,
    ) -> None:
        partner = bundle.partner
        if partner is None:
            raise ValueError(f"{bundle.given}: segment-then-classify needs its partner classifier (--patch-bundle)")
        self.segmenter = bundle.networks(bf16="auto")[0]
        self.classifier = partner.networks(bf16="auto")[0]
        self.probability = partner.probability  # the partner's declared activation
        self.patch_size = int(partner.trained.get("image_size", [224, 224])[0])
        self.threshold = float(threshold if threshold is not None else bundle.trained.get("froc_threshold", 0.5))
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
            for c, m in zip(candidates, self.probability(logits).tolist()):
                c["malignancy"] = float(m)
        probability = max((c["malignancy"] for c in candidates), default=self.no_candidate)
        return {"probability": float(probability), "lesion_map": np.asarray(lesion_map), "candidates": candidates}

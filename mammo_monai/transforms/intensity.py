"""Scale mammogram intensities to [0, 1]: by the bit depth the data use, by the file's container
range, or by robust percentiles."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

MODES = ("bit_depth", "container", "percentile")


class ScaleMammogram(Transform):
    """Map intensities to [0, 1].

    Args:
        mode: "bit_depth" (default) maps the range the data actually use to 0..1: the reader's
            ``meta["intensity_range"]`` (DICOM: Bits Stored, Modality LUT and VOI window; PNG/TIFF:
            the bit depth inferred from the maximum, so 12-bit data in a 16-bit PNG fill 0..1), else
            ``0 .. 2**bits - 1``. "container" maps the file type's full range
            (``meta["container_range"]``, e.g. 0..65535 for any 16-bit PNG): the right choice for the
            PNG cache this package writes, whose values are already scaled. "percentile" maps the
            ``lower``..``upper`` percentiles of the breast pixels (non-zero after masking) to 0..1,
            which evens out scanners and film digitisers with different exposure.
        bits: bit depth used when the image carries no intensity range.
        lower, upper: percentiles for "percentile" mode.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, mode: str = "bit_depth", bits: int = 16, lower: float = 0.5, upper: float = 99.5) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.bits, self.lower, self.upper = mode, bits, lower, upper

    def _range(self, img: torch.Tensor) -> tuple[float, float]:
        if self.mode == "percentile":
            x = img[img > 0] if bool((img > 0).any()) else img.flatten()
            x = x.float()
            if x.numel() > 1_000_000:  # quantile on a strided sample: same answer, bounded cost
                x = x[:: x.numel() // 1_000_000 + 1]
            q = torch.quantile(x, torch.tensor([self.lower / 100.0, self.upper / 100.0]))
            return float(q[0]), float(q[1])
        meta = img.meta if isinstance(img, MetaTensor) else {}
        rng = meta.get("container_range") if self.mode == "container" else None
        rng = rng if rng is not None else meta.get("intensity_range")
        if rng is not None and len(rng) == 2:
            return float(rng[0]), float(rng[1])
        return 0.0, float(2**self.bits - 1)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        lo, hi = self._range(img)
        out = ((img.float() - lo) / max(hi - lo, 1e-8)).clamp_(0.0, 1.0)
        if isinstance(out, MetaTensor):
            out.meta["scaled_from"] = [lo, hi]
            out.meta["intensity_range"] = [0.0, 1.0]
            out.meta["container_range"] = [0.0, 1.0]
        return out


class ScaleMammogramd(MapTransform):
    """Dictionary version of :class:`ScaleMammogram`."""

    backend = ScaleMammogram.backend

    def __init__(
        self,
        keys: KeysCollection,
        mode: str = "bit_depth",
        bits: int = 16,
        lower: float = 0.5,
        upper: float = 99.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.scaler = ScaleMammogram(mode, bits, lower, upper)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key])
        return d

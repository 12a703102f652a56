"""A "site" of synthetic data: the vendor's intensity profile and how its lesions look, as generator
options (``synth --site-profile B``), so a model trained on one site can be judged on another.

Intensity profile, applied to the display image ``x`` in [0, 1] (chest wall, label and artefacts included):
``scale * x ** gamma + offset``, plus Gaussian ``noise`` (std, [0, 1] scale) inside the breast, quantised
to ``bits`` levels (12: the 4096 grey levels of a 12-bit detector, written into the same 16-bit range).
Lesion look: contrast and size times ``lesion_contrast`` and ``lesion_size``. The default profile (A)
changes nothing: the generator's files stay byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np


@dataclass(frozen=True)
class SiteProfile:
    """One site's look (see the module's notes); the defaults are the generator's own."""

    gamma: float = 1.0
    scale: float = 1.0
    offset: float = 0.0
    noise: float = 0.0
    bits: int = 16
    lesion_contrast: float = 1.0
    lesion_size: float = 1.0

    @property
    def is_identity(self) -> bool:
        """Whether the intensity profile leaves images as they are."""
        return (self.gamma, self.scale, self.offset, self.noise, self.bits) == (1.0, 1.0, 0.0, 0.0, 16)

    def apply(self, img: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The display image ``img`` ([0, 1]) as this site's detector renders it (a new array)."""
        if self.is_identity:
            return img
        out = self.scale * np.clip(img, 0, 1) ** self.gamma + self.offset
        if self.noise:
            out = out + region * rng.normal(0.0, self.noise, img.shape)
        levels = 2**self.bits - 1
        return np.round(np.clip(out, 0, 1) * levels) / levels

    def with_options(self, options: dict[str, str | float]) -> SiteProfile:
        """This profile with ``options`` (field -> value, e.g. from ``--site-option gamma=1.3``) changed.
        Raises one ``ValueError`` line for an unknown field or a value that is not a number."""
        known = {f.name: f.type for f in fields(self)}
        changes = {}
        for key, value in options.items():
            if key not in known:
                raise ValueError(f"site option {key!r}: choose from {', '.join(known)}")
            try:
                changes[key] = int(value) if key == "bits" else float(value)
            except ValueError as err:
                raise ValueError(f"site option {key}={value!r}: not a number") from err
        return replace(self, **changes)


#: named sites: A the generator's own look; B another vendor: darker, a steeper curve, a pedestal, a
#: 12-bit detector with more noise, and lesions of lower contrast and smaller size
SITE_PROFILES = {
    "A": SiteProfile(),
    "B": SiteProfile(gamma=1.2, scale=0.7, offset=0.03, noise=0.01, bits=12, lesion_contrast=0.8, lesion_size=0.85),
}

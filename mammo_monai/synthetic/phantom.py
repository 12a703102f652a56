"""Synthetic full-field mammograms: breast silhouette, fatty/dense texture, masses, calcifications.

Images are drawn with the chest wall on the LEFT (column 0) as floats in [0, 1]; the CBIS-DDSM tree
writer mirrors right breasts and adds the burned-in label. Sizes scale with the image height so a
lesion covers the same fraction of the breast at any resolution; at 1152 rows a mass is 30-80 px
across and a calcification speck 1-4 px, as in CBIS-DDSM downsized to Shen et al.'s 1152 x 896.
A lesion's ``scale`` enlarges it beyond that (the CPU demo's 576-row films carry lesions with the
pixel sizes they have at 1152 rows: ``scale=2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


@dataclass
class Lesion:
    """One abnormality to draw. ``malignant_look`` chooses the appearance, which usually but not
    always agrees with the pathology (as BI-RADS descriptors do)."""

    kind: str  # "mass" or "calcification"
    malignant_look: bool
    center: tuple[float, float]  # (row, col) in pixels, chest wall left
    size: float  # mass radius or cluster radius, pixels
    contrast: float  # added intensity at the core, [0, 1] scale
    seed: int = 0
    scale: float = 1.0  # calcification specks this many times their size at the image's resolution (masses: via size)
    mask: np.ndarray | None = field(default=None, repr=False)  # filled in by draw_lesion


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-std noise with features about ``shape[0] / cells`` pixels wide."""
    h, w = shape
    cw = max(2, int(round(cells * w / h)))
    grid = rng.standard_normal((1, 1, cells + 3, cw + 3)).astype(np.float32)
    grid = ndimage.gaussian_filter(grid, (0, 0, 0.8, 0.8))
    up = F.interpolate(
        torch.from_numpy(grid), size=(h + 3 * h // cells, w + 3 * w // cw), mode="bicubic", align_corners=False
    )
    out = up[0, 0, h // cells : h // cells + h, w // cw : w // cw + w].numpy()
    return (out - out.mean()) / (out.std() + 1e-6)


def breast_silhouette(
    rng: np.random.Generator, shape: tuple[int, int], view: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breast region, normalised depth (0 at the chest wall .. 1 at the skin) and pectoral muscle mask."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    mlo = view.upper().startswith("ML")
    r0 = h * rng.uniform(0.45, 0.55) if not mlo else h * rng.uniform(0.5, 0.6)
    ar = h * (rng.uniform(0.36, 0.44) if not mlo else rng.uniform(0.40, 0.47))
    ac = w * rng.uniform(0.55, 0.75)
    theta = np.arctan2((rows - r0) / ar, cols / ac)
    wobble = 1 + 0.03 * np.sin(3 * theta + rng.uniform(0, 6.3)) + 0.02 * np.sin(5 * theta + rng.uniform(0, 6.3))
    rho = np.sqrt(((rows - r0) / ar) ** 2 + (cols / ac) ** 2) / wobble
    region = rho < 1.0
    pectoral = np.zeros(shape, bool)
    if mlo:  # the breast runs up into the axilla along the chest wall; the muscle is a triangle there
        band = cols < (0.35 * w) * (1 - rows / (r0 + ar))
        region |= band
        rho = np.where(band & ~(rho < 1.0), np.minimum(rho, 0.95), rho)
        pw, ph = w * rng.uniform(0.2, 0.32), h * rng.uniform(0.35, 0.5)
        pectoral = cols < pw * (1 - rows / ph)
    return region, np.clip(rho, 0, 1), pectoral


def breast_tissue(
    rng: np.random.Generator, shape: tuple[int, int], view: str, density: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float image in [0, 1] (chest wall left), its breast region and the interior where lesions
    may sit (away from skin and muscle), for BI-RADS density 1..4."""
    region, rho, pectoral = breast_silhouette(rng, shape, view)
    thickness = np.sqrt(np.clip(1 - rho**2, 0, 1)) ** 0.6
    coarse = smooth_noise(rng, shape, 6)
    fine = smooth_noise(rng, shape, 40)
    # fibroglandular tissue sits behind the nipple, away from the skin; more of it when denser
    gland_field = coarse + 0.5 * fine - 1.2 * rho + {1: 0.0, 2: 0.6, 3: 1.2, 4: 1.8}[int(density)]
    gland = 1 / (1 + np.exp(-2.5 * (gland_field - 0.3)))
    img = thickness * (0.28 + 0.32 * gland + 0.02 * smooth_noise(rng, shape, 150))
    img = np.where(pectoral & region, np.maximum(img, 0.62 + 0.03 * fine), img)
    img = np.where(region, img, 0.0)
    img = img + 0.012 * np.abs(rng.standard_normal(shape))  # film/detector background noise
    interior = region & (rho < 0.8) & ~pectoral
    return np.clip(img, 0, 1).astype(np.float32), region, interior


def filling_breast(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A large breast that fills the film (chest wall left): float image in [0, 1] and its region.

    The film cuts it along the whole chest wall and across its top and bottom, and its convex
    nipple side reaches the far edge too. Retromammary fat lies along the chest wall and the dense
    fibroglandular cone towards the nipple, so the right half of the image holds more intensity: the
    case that fools a "which half is brighter" orientation guess.
    """
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    ar, ac = h * rng.uniform(0.6, 0.66), w * rng.uniform(1.1, 1.2)
    rho = np.sqrt(((rows - h / 2) / ar) ** 2 + (cols / ac) ** 2)
    region = rho < 1.0
    gland = np.exp(-(((rows - h / 2) / (0.3 * h)) ** 2 + ((cols - 0.72 * w) / (0.22 * w)) ** 2))
    img = 0.22 + 0.5 * gland * (1 + 0.15 * smooth_noise(rng, shape, 20)) + 0.02 * smooth_noise(rng, shape, 60)
    img = np.where(region, img * np.sqrt(np.clip(1 - rho**2, 0, 1)) ** 0.3, 0.0)
    img = img + 0.012 * np.abs(rng.standard_normal(shape))
    return np.clip(img, 0, 1).astype(np.float32), region


def _window(
    center: tuple[float, float], half: int, shape: tuple[int, int]
) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    r, c = int(round(center[0])), int(round(center[1]))
    r0, r1 = max(0, r - half), min(shape[0], r + half + 1)
    c0, c1 = max(0, c - half), min(shape[1], c + half + 1)
    rr, cc = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    return slice(r0, r1), slice(c0, c1), rr - center[0], cc - center[1]


def draw_mass(img: np.ndarray, lesion: Lesion, rng: np.random.Generator) -> np.ndarray:
    """Benign look: round/oval with a smooth sharp margin. Malignant look: irregular outline,
    blurred margin and spicules radiating to ~2.5 radii. Returns the lesion's outline mask."""
    R = lesion.size
    rs, cs, dr, dc = _window(lesion.center, int(3 * R) + 4, img.shape)
    ang = rng.uniform(0, np.pi)
    u = dr * np.cos(ang) + dc * np.sin(ang)
    v = -dr * np.sin(ang) + dc * np.cos(ang)
    if lesion.malignant_look:
        theta = np.arctan2(v, u)
        radius = R * (1 + sum(rng.uniform(0.06, 0.14) * np.sin(k * theta + rng.uniform(0, 6.3)) for k in (3, 5, 7)))
        dist = np.hypot(u, v) / radius
        body = 1 / (1 + np.exp((dist - 1) * 6))
        spic = np.zeros_like(dist)
        for a in rng.uniform(0, 2 * np.pi, rng.integers(8, 16)):
            along = u * np.cos(a) + v * np.sin(a)
            across = np.abs(-u * np.sin(a) + v * np.cos(a))
            length = R * rng.uniform(1.6, 2.6)
            line = (along > 0) & (along < length)
            spic = np.maximum(spic, line * np.exp(-((across / max(0.9, 0.05 * R)) ** 2)) * (1 - along / length))
        profile = np.maximum(body, 0.6 * spic)
        profile = ndimage.gaussian_filter(profile, 1.0)
    else:
        ecc = rng.uniform(1.0, 1.5)
        dist = np.hypot(u / ecc, v * np.sqrt(ecc)) / R
        profile = 1 / (1 + np.exp((dist - 1) * 25))
    core = 0.75 + 0.25 * np.sqrt(np.clip(1 - dist**2, 0, 1))
    img[rs, cs] += lesion.contrast * profile * core
    mask = np.zeros(img.shape, bool)
    mask[rs, cs] = dist < 1.0
    return mask


def draw_calcifications(img: np.ndarray, lesion: Lesion, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Benign look: a few coarse round specks. Malignant look: many fine, pleomorphic, partly linear
    specks. Returns a disk around the cluster as its ROI mask."""
    Rc = lesion.size
    if lesion.malignant_look:
        n = int(rng.integers(12, 30))
        t = rng.uniform(-1, 1, n)  # part of the cluster follows a branching line
        a = rng.uniform(0, np.pi)
        pts = np.where(
            rng.random(n)[:, None] < 0.5,
            np.stack([t * Rc * np.sin(a), t * Rc * np.cos(a)], 1),
            rng.normal(0, Rc / 2.2, (n, 2)),
        )
        radii = rng.uniform(0.6, 1.4, n) * scale
        elong = rng.uniform(1.0, 2.5, n)
    else:
        n = int(rng.integers(3, 8))
        pts = rng.normal(0, Rc / 2.0, (n, 2))
        radii = rng.uniform(1.8, 3.5, n) * scale
        elong = rng.uniform(1.0, 1.3, n)
    for (pr, pc), rad, el in zip(pts, radii, elong):
        center = (lesion.center[0] + pr, lesion.center[1] + pc)
        if not (0 <= center[0] < img.shape[0] and 0 <= center[1] < img.shape[1]):
            continue
        rs, cs, dr, dc = _window(center, int(4 * rad * el) + 2, img.shape)
        ang = rng.uniform(0, np.pi)
        u = (dr * np.cos(ang) + dc * np.sin(ang)) / el
        v = -dr * np.sin(ang) + dc * np.cos(ang)
        img[rs, cs] += lesion.contrast * rng.uniform(0.8, 1.2) * np.exp(-(((u**2 + v**2) / max(rad, 0.5) ** 2) ** 2))
    rows, cols = np.ogrid[0 : img.shape[0], 0 : img.shape[1]]
    extent = max(Rc * 1.2, float(np.abs(pts).max()) + 3 * scale)
    return (rows - lesion.center[0]) ** 2 + (cols - lesion.center[1]) ** 2 <= extent**2


def draw_lesion(img: np.ndarray, lesion: Lesion) -> np.ndarray:
    """Add ``lesion`` to ``img`` in place and return (and keep on the lesion) its ROI mask."""
    rng = np.random.default_rng(lesion.seed)
    if lesion.kind == "mass":
        lesion.mask = draw_mass(img, lesion, rng)
    else:
        lesion.mask = draw_calcifications(img, lesion, rng, scale=lesion.scale * img.shape[0] / 1152)
    return lesion.mask


def full_width_breast(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An MLO breast that fills the whole film (chest wall left): float image in [0, 1] and its region.

    Unlike :func:`filling_breast` the film cuts the breast at both side edges along their whole
    height, so the mask is the whole film and its shape tells nothing. What still tells: the
    pectoral muscle, a bright triangle with a straight edge in the chest wall's upper corner; the
    breast thinning from the chest wall towards the (cut-off) nipple side. A dense fibroglandular
    cone towards the nipple side makes that half the brighter, as in :func:`filling_breast`.
    """
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = cols / w  # 0 at the chest wall .. 1 where the film cuts the breast
    thickness = 1.0 - 0.35 * depth**2 - 0.25 * np.abs(rows / h - 0.55) ** 2
    gland = np.exp(-(((rows - 0.55 * h) / (0.3 * h)) ** 2 + ((cols - 0.75 * w) / (0.25 * w)) ** 2))
    img = thickness * (0.2 + 0.45 * gland * (1 + 0.15 * smooth_noise(rng, shape, 20)))
    img = img + 0.02 * smooth_noise(rng, shape, 60)
    pw, ph = w * rng.uniform(0.3, 0.4), h * rng.uniform(0.45, 0.6)
    pectoral = cols < pw * (1 - rows / ph)
    img = np.where(pectoral, 0.55 + 0.03 * smooth_noise(rng, shape, 40), img)
    img = img + 0.012 * np.abs(rng.standard_normal(shape))
    return np.clip(img, 0, 1).astype(np.float32), np.ones(shape, bool)

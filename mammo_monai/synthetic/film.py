"""Digitised-film artefacts around a synthetic breast: film frame, garbage rows, labels, rulers, edge strips.

Scanned film mammograms (DDSM / CBIS-DDSM) carry bright things that are not breast and that often
touch the breast, so a threshold + largest-component mask keeps them: the film border (a bright
frame), garbage first/last rows from the scanner, a label stuck on the film next to the border, a
ruler, and a wide unexposed strip along one edge. Each function here paints one kind into a float
image in [0, 1] whose breast is already placed (chest wall on the left or the right), in place, and
returns a boolean mask of the pixels it made that are NOT breast. Only an edge strip (unexposed
film) covers part of the breast ``region``, and never a ``protect``-ed lesion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FILM_ARTEFACTS = ("frame", "garbage_rows", "label", "ruler", "edge_strip")


def _paint(
    img: np.ndarray, where: np.ndarray, region: np.ndarray, level: float, rng: np.random.Generator
) -> np.ndarray:
    """Set ``where & ~region`` to ``level`` plus a little noise; return those pixels."""
    out = where & ~region
    img[out] = np.clip(level + 0.02 * rng.standard_normal(int(out.sum())), 0.0, 1.0)
    return out


def _far_side(chest_wall_left: bool) -> str:
    return "right" if chest_wall_left else "left"


def _edge_band(shape: tuple[int, int], side: str, start: int, depth: int, tilt: int = 0) -> np.ndarray:
    """Pixels from ``start`` to ``start + depth`` (+ a linear ``tilt`` along the edge) in from ``side``."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w]
    dist = {"top": rows, "bottom": h - 1 - rows, "left": cols, "right": w - 1 - cols}[side]
    along = (cols / max(w - 1, 1)) if side in ("top", "bottom") else (rows / max(h - 1, 1))
    return (dist >= start) & (dist < start + depth + np.round(tilt * along))


def add_frame(
    img: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    thickness: int | None = None,
    sides: Sequence[str] = ("top", "bottom", "left", "right"),
) -> np.ndarray:
    """A bright film border around the image; it touches the breast where the breast meets the edge.

    Args:
        img: (H, W) float image in [0, 1], changed in place.
        region: the breast region (never painted).
        rng: random generator.
        thickness: border width in pixels; None draws 0.5-1.5 % of the shorter side.
        sides: which edges carry the border.

    Returns:
        The border pixels that are not breast.
    """
    t = thickness or max(2, int(round(min(img.shape) * rng.uniform(0.005, 0.015))))
    band = np.zeros(img.shape, bool)
    for side in sides:
        band |= _edge_band(img.shape, side, 0, t)
    return _paint(img, band, region, rng.uniform(0.85, 1.0), rng)


def add_garbage_rows(
    img: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    sides: Sequence[str] = ("top",),
    count: int | None = None,
) -> np.ndarray:
    """One to three saturated, noisy scanner rows (or columns for "left"/"right") at the given edges.

    Returns:
        The painted pixels that are not breast.
    """
    out = np.zeros(img.shape, bool)
    for side in sides:
        n = count or int(rng.integers(1, 4))
        band = _edge_band(img.shape, side, 0, n) & ~region
        img[band] = rng.uniform(0.6, 1.0, int(band.sum()))
        out |= band
    return out


def _clear_spot(region: np.ndarray, rows: slice, cols: slice, margin: int) -> bool:
    r0, c0 = max(0, rows.start - margin), max(0, cols.start - margin)
    return not region[r0 : rows.stop + margin, c0 : cols.stop + margin].any()


def add_label(
    img: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    chest_wall_left: bool = True,
    frame: int = 0,
    text: str = "A 1234",
) -> np.ndarray:
    """A white film label with dark text, stuck against the far edge (or its ``frame``), clear of the breast.

    Args:
        frame: width of the border the label touches (0: the label touches the image edge).

    Returns:
        The label pixels (empty when no spot near the far edge is clear of the breast).
    """
    h, w = img.shape
    lh, lw = max(8, int(h * rng.uniform(0.05, 0.08))), max(16, int(w * rng.uniform(0.15, 0.25)))
    c0 = max(0, frame - 1) if not chest_wall_left else w - frame + 1 - lw
    cols = slice(max(0, c0), min(w, c0 + lw))
    for r0 in rng.permutation(
        [max(0, frame - 1) + int(h * 0.02), h // 2 - lh // 2, h - frame + 1 - lh - int(h * 0.02)]
    ):
        rows = slice(int(r0), int(r0) + lh)
        if _clear_spot(region, rows, cols, margin=max(2, h // 100)):
            break
    else:
        return np.zeros(img.shape, bool)
    where = np.zeros(img.shape, bool)
    where[rows, cols] = True
    out = _paint(img, where, region, rng.uniform(0.85, 1.0), rng)
    canvas = Image.new("L", (cols.stop - cols.start, lh))
    ImageDraw.Draw(canvas).text((2, 1), text, fill=255, font=ImageFont.load_default(size=max(6, lh // 2)))
    ink = np.asarray(canvas) > 127
    img[rows, cols][ink] = 0.3  # dark text on the white label, still above any tissue threshold: one blob
    return out


def add_ruler(
    img: np.ndarray, region: np.ndarray, rng: np.random.Generator, side: str = "top", offset: int | None = None
) -> np.ndarray:
    """A thin bright ruler along ``side`` with ticks pointing into the image.

    Args:
        side: "top", "bottom", "left" or "right".
        offset: distance of the ruler's base line from the edge; None draws 0-2 % of the image.

    Returns:
        The ruler pixels that are not breast.
    """
    h, w = img.shape
    horizontal = side in ("top", "bottom")
    length, across = (w, h) if horizontal else (h, w)
    off = int(round(across * rng.uniform(0.0, 0.02))) if offset is None else int(offset)
    line = max(1, across // 300)
    spacing = max(4, length // 40)
    tick = max(3, across // 60)
    start = int(length * rng.uniform(0.0, 0.2))
    stop = int(length * rng.uniform(0.75, 1.0))
    ruler = np.zeros((across, length), bool)  # edge at row 0 of this local frame
    ruler[off : off + line, start:stop] = True
    for k, pos in enumerate(range(start, stop, spacing)):
        ruler[off : off + (2 * tick if k % 5 == 0 else tick), pos : pos + line] = True
    if side == "bottom":
        ruler = ruler[::-1]
    elif side == "left":
        ruler = ruler.T
    elif side == "right":
        ruler = ruler.T[:, ::-1]
    return _paint(img, ruler, region, rng.uniform(0.8, 1.0), rng)


def add_edge_strip(
    img: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    side: str = "top",
    depth: int | None = None,
    protect: np.ndarray | None = None,
) -> np.ndarray:
    """A wide unexposed film strip along ``side``: bright, shaded along the edge, slightly tilted.

    Unlike the other artefacts the strip covers the breast too (no X-rays reached that part of the
    film), but never ``protect`` (lesion outlines): it is made shallower until it misses them.

    Args:
        region: the breast region (covered too; taken for the signature all artefacts share).
        depth: strip width in pixels; None draws 3-7 % of the image across that edge.
        protect: pixels the strip must leave alone.

    Returns:
        The strip pixels (none of them shows breast any more).
    """
    across = img.shape[0] if side in ("top", "bottom") else img.shape[1]
    d = depth or max(3, int(round(across * rng.uniform(0.03, 0.07))))
    tilt = int(round(across * rng.uniform(-0.005, 0.005)))
    band = _edge_band(img.shape, side, 0, d, tilt)
    while protect is not None and (band & protect).any():
        if d <= 2:
            return np.zeros(img.shape, bool)
        d = d // 2
        band = _edge_band(img.shape, side, 0, d, tilt)
    rows, cols = np.nonzero(band)
    along = (cols / img.shape[1]) if side in ("top", "bottom") else (rows / img.shape[0])
    img[band] = np.clip(rng.uniform(0.7, 0.9) + 0.08 * along + 0.02 * rng.standard_normal(len(rows)), 0, 1)
    return band


def add_film_artefacts(
    img: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    chest_wall_left: bool = True,
    kinds: Sequence[str] | None = None,
    protect: np.ndarray | None = None,
) -> np.ndarray:
    """Paint a random mix (or the given ``kinds``) of film artefacts; return every non-breast pixel painted.

    Args:
        img: (H, W) float image in [0, 1] with the breast already placed, changed in place.
        region: the breast region; only an edge strip is painted over it.
        rng: random generator.
        chest_wall_left: where the chest wall is; labels, rulers and strips go elsewhere.
        kinds: a subset of :data:`FILM_ARTEFACTS`; None picks at least one at random. A label is
            stuck against the frame when there is one.
        protect: pixels no artefact may cover (lesion outlines).

    Returns:
        The painted pixels that do not show breast; the visible breast is ``region`` less these.
    """
    if kinds is None:
        odds = {"frame": 0.6, "garbage_rows": 0.4, "label": 0.4, "ruler": 0.25, "edge_strip": 0.35}
        kinds = [k for k, p in odds.items() if rng.random() < p] or [
            FILM_ARTEFACTS[int(rng.integers(len(FILM_ARTEFACTS)))]
        ]
    unknown = set(kinds) - set(FILM_ARTEFACTS)
    if unknown:
        raise ValueError(f"unknown film artefacts {sorted(unknown)}; choose from {FILM_ARTEFACTS}")
    not_breast = np.zeros(img.shape, bool)
    far = _far_side(chest_wall_left)
    edges = ["top", "bottom", far]
    frame = 0
    if "edge_strip" in kinds:
        not_breast |= add_edge_strip(img, region, rng, side=edges[int(rng.integers(3))], protect=protect)
    if "frame" in kinds:
        frame = max(2, int(round(min(img.shape) * rng.uniform(0.005, 0.015))))
        not_breast |= add_frame(img, region, rng, thickness=frame)
    if "garbage_rows" in kinds:
        not_breast |= add_garbage_rows(
            img, region, rng, sides=[s for s in ("top", "bottom") if rng.random() < 0.7] or ["top"]
        )
    if "ruler" in kinds:
        not_breast |= add_ruler(img, region, rng, side=edges[int(rng.integers(3))], offset=frame or None)
    if "label" in kinds:
        not_breast |= add_label(img, region, rng, chest_wall_left, frame=frame)
    return not_breast


# Harder cases, as scanned film shows them (mini-MIAS: films padded to a square with black), each
# drawn only when asked for by name: the random mix above and the films it draws stay as they were.
HARD_FILM_ARTEFACTS = ("inset_strip", "top_strip", "broad_label")


def add_inset_strip(
    img: np.ndarray, region: np.ndarray, rng: np.random.Generator, chest_wall_left: bool = True
) -> np.ndarray:
    """The bright edge of the film beside the nipple side, inset from the image edge by black padding.

    The film edge runs the whole height 1.2-2.5 % of the width thick, laid over the outermost few
    pixels of the breast so that it touches the skin line along a long stretch, not through a neck;
    beyond it the image is padded with black. It starts far from the image edge, where a border
    search that looks only at the edges cannot find it.

    Returns:
        The strip and padding pixels (the breast under the strip no longer shows).
    """
    h, w = img.shape
    cols = np.flatnonzero(region.any(0))
    if not len(cols):
        return np.zeros(img.shape, bool)
    t = max(3, int(round(w * rng.uniform(0.012, 0.025))))
    cover = max(2, int(round(w * rng.uniform(0.003, 0.01))))
    start = int(cols[-1]) - cover + 1 if chest_wall_left else int(cols[0]) + cover - t
    start = int(np.clip(start, 1, w - t - 1))
    band = np.zeros(img.shape, bool)
    band[:, start : start + t] = True
    pad = np.zeros(img.shape, bool)
    if chest_wall_left:
        pad[:, start + t :] = True
    else:
        pad[:, :start] = True
    img[pad] = 0.01 * np.abs(rng.standard_normal(int(pad.sum())))
    img[band] = np.clip(rng.uniform(0.85, 1.0) + 0.02 * rng.standard_normal(int(band.sum())), 0, 1)
    return band | pad


def add_top_strip(
    img: np.ndarray, region: np.ndarray, rng: np.random.Generator, side: str = "top", protect: np.ndarray | None = None
) -> np.ndarray:
    """A bright film edge across the whole width along the top (or bottom) of the breast, inset by padding.

    Black padding of 2-6 % of the height lies between the image edge and the strip; the strip (1.2-3 %
    of the height) covers the breast where it reaches that edge (an MLO's axilla and pectoral muscle),
    so it touches the breast along its width. It is moved outwards until it misses ``protect``.

    Returns:
        The strip and padding pixels.
    """
    h, w = img.shape
    view = img if side == "top" else img[::-1]
    t = max(3, int(round(h * rng.uniform(0.012, 0.03))))
    pad = max(2, int(round(h * rng.uniform(0.02, 0.06))))
    guard = None if protect is None else (protect if side == "top" else protect[::-1])
    while guard is not None and pad > 1 and guard[: pad + t].any():
        pad //= 2
    out = np.zeros(img.shape, bool)
    ov = out if side == "top" else out[::-1]
    if guard is not None and guard[: pad + t].any():
        return out
    view[:pad] = 0.01 * np.abs(rng.standard_normal((pad, w)))
    view[pad : pad + t] = np.clip(rng.uniform(0.85, 1.0) + 0.02 * rng.standard_normal((t, w)), 0, 1)
    ov[: pad + t] = True
    return out


def add_broad_label(
    img: np.ndarray, region: np.ndarray, rng: np.random.Generator, chest_wall_left: bool = True
) -> np.ndarray:
    """A white label with dark text pressed against the skin line: one of its sides touches the breast all along.

    Returns:
        The label pixels (empty when the breast leaves no room beside it).
    """
    h, w = img.shape
    lh, lw = max(8, int(h * rng.uniform(0.05, 0.08))), max(16, int(w * rng.uniform(0.12, 0.2)))
    r0 = int(rng.integers(int(0.15 * h), int(0.85 * h) - lh))
    rows = region[r0 : r0 + lh]
    if not rows.any():
        return np.zeros(img.shape, bool)
    # hugging the skin line: the label's edge at the breast's innermost outline column along those
    # rows, painted only outside the breast, so it touches the skin along its whole side
    ends = [np.flatnonzero(r) for r in rows if r.any()]
    c0 = min(int(e[-1]) for e in ends) if chest_wall_left else max(int(e[0]) for e in ends) + 1 - lw
    c0 = int(np.clip(c0, 0, w - lw))
    where = np.zeros(img.shape, bool)
    where[r0 : r0 + lh, c0 : c0 + lw] = True
    out = _paint(img, where, region, rng.uniform(0.85, 1.0), rng)
    canvas = Image.new("L", (lw, lh))
    ImageDraw.Draw(canvas).text((lw // 3, 1), "R MLO", fill=255, font=ImageFont.load_default(size=max(6, lh // 2)))
    ink = (np.asarray(canvas) > 127) & out[r0 : r0 + lh, c0 : c0 + lw]
    img[r0 : r0 + lh, c0 : c0 + lw][ink] = 0.3
    return out


def add_hard_film_artefacts(
    img: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    chest_wall_left: bool = True,
    kinds: Sequence[str] = HARD_FILM_ARTEFACTS,
    protect: np.ndarray | None = None,
) -> np.ndarray:
    """Paint the named :data:`HARD_FILM_ARTEFACTS`; return every painted pixel that does not show breast.

    Raises:
        ValueError: for a kind not in :data:`HARD_FILM_ARTEFACTS`.
    """
    unknown = set(kinds) - set(HARD_FILM_ARTEFACTS)
    if unknown:
        raise ValueError(f"unknown hard film artefacts {sorted(unknown)}; choose from {HARD_FILM_ARTEFACTS}")
    out = np.zeros(img.shape, bool)
    if "top_strip" in kinds:
        out |= add_top_strip(img, region, rng, side=["top", "bottom"][int(rng.integers(2))], protect=protect)
    if "inset_strip" in kinds:
        out |= add_inset_strip(img, region & ~out, rng, chest_wall_left)
    if "broad_label" in kinds:
        out |= add_broad_label(img, region & ~out, rng, chest_wall_left)
    return out

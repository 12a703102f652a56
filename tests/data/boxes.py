"""Box helpers shared by the adapter tests."""

from __future__ import annotations

from collections.abc import Sequence


def half_open_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """A generator's (top, left, height, width) as the manifest's half-open box (row0, col0, row1, col1)."""
    top, left, h, w = map(float, box)
    return top, left, top + h, left + w

"""Generic inference and evaluation code knows no recipe by name: what a recipe does is declared in its
bundle (``inference.yaml``), so adding a recipe touches no module here. Training and network factories
that name an architecture live elsewhere (``training/``, ``networks/``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mammo_monai"
#: the shipped recipes' names and the architectures a recipe was once detected by
RECIPE_NAMES = re.compile(
    r"screening|unet|lesion_segmentation|efficientnet|whole_image|patch_classifier|seresnext", re.IGNORECASE
)


@pytest.mark.parametrize("folder", ["inference", "evaluation"])
def test_no_recipe_is_named_in_generic_code(folder):
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in sorted((PACKAGE / folder).glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if RECIPE_NAMES.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_guard_finds_a_recipe_name():
    assert RECIPE_NAMES.search('return str(arch).startswith("unet")')  # the branch this replaced

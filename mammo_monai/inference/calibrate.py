"""``mammo-monai calibrate``: refit a bundle's calibration and operating points on a site's own labelled
cases (a split of a prepared manifest) and write them into a NEW version of the bundle; the original is
never modified.

The new bundle is a copy of the given one (a folder gives a folder, an exported zip a zip), with
``models/calibration.json`` (:class:`~mammo_monai.evaluation.calibration.Calibration` with its operating
points and what it was fitted on: the split, its number of cases and positives, never a path or an
identifier) and ``configs/metadata.json``'s version bumped (``0.1.0`` -> ``0.1.1``), with
``calibrated_from`` and a changelog entry naming the version it was calibrated from. The calibration maps
the network's raw P(malignant): calibrating a calibrated bundle replaces its calibration.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.data.cache_record import check_same_preprocessing, read_record
from mammo_monai.evaluation.calibration import Calibration, fit_calibration
from mammo_monai.evaluation.operating_points import check_both_classes
from mammo_monai.evaluation.reliability import plot_reliability
from mammo_monai.inference.bundle_archive import check_members
from mammo_monai.inference.evaluate import score_split
from mammo_monai.inference.opened_bundle import CALIBRATION_FILE, open_bundle
from mammo_monai.io.atomic import atomic_path
from mammo_monai.training.records import records


def next_version(version: str) -> str:
    """The version after ``version``: its last number plus one (``0.1.0`` -> ``0.1.1``, ``1.2-rc3`` ->
    ``1.2-rc4``); ``<version>.1`` when it ends in no number, ``0.0.1`` when there is none."""
    if not version:
        return "0.0.1"
    match = re.search(r"(\d+)(\D*)$", version)
    if not match:
        return f"{version}.1"
    return f"{version[: match.start(1)]}{int(match.group(1)) + 1}{match.group(2)}"


def calibrated_metadata(metadata: Mapping[str, Any], calibration: Calibration) -> dict[str, Any]:
    """``metadata.json`` of the calibrated copy: the next version, ``calibrated_from`` and a changelog entry."""
    out = dict(metadata)
    old = str(metadata.get("version", ""))
    out["version"] = new = next_version(old)
    out["calibrated_from"] = {"version": old, **calibration.fitted_on, "method": calibration.method}
    note = (
        f"calibrated ({calibration.method}) with operating points chosen on split "
        f"{calibration.fitted_on.get('split')!r} ({calibration.n} cases, {calibration.positives} malignant) "
        f"of version {old}"
    )
    out["changelog"] = {new: note, **dict(metadata.get("changelog") or {})}
    return out


def _check_out(bundle: Path, out: Path) -> None:
    """Refuse an output that would overwrite anything (the original above all) or change the bundle's kind."""
    if out.exists() or out.resolve() == bundle.resolve():
        raise FileExistsError(f"{out}: already exists; calibrate writes a new bundle (choose another --out)")
    if bundle.is_file() and out.suffix != ".zip":
        raise ValueError(f"{out}: the bundle {bundle} is a zip, so the calibrated copy is a .zip too")
    if bundle.is_dir() and out.suffix == ".zip":
        raise ValueError(f"{out}: the bundle {bundle} is a folder, so the calibrated copy is a folder too")


def write_calibrated_copy(bundle: Path, out: Path, files: Mapping[str, bytes]) -> None:
    """A copy of the bundle folder or zip ``bundle`` at ``out`` with ``files`` (paths inside the bundle)
    added or replaced; written under a temporary name, then renamed."""
    if bundle.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        try:
            shutil.copytree(bundle, part / "bundle", symlinks=True)
            for name, data in files.items():
                (part / "bundle" / name).parent.mkdir(parents=True, exist_ok=True)
                (part / "bundle" / name).write_bytes(data)
            os.rename(part / "bundle", out)
        finally:
            shutil.rmtree(part, ignore_errors=True)
        return
    with (
        zipfile.ZipFile(bundle) as src,
        atomic_path(out) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        top = check_members(bundle, src.infolist())
        replaced = {f"{top}/{name}": data for name, data in files.items()}
        for info in src.infolist():
            if info.filename in replaced:
                continue
            with src.open(info) as r, dst.open(info, "w") as w:
                shutil.copyfileobj(r, w, 1 << 20)
        for name, data in replaced.items():
            dst.writestr(name, data)


def _split_cases(manifest_dir: str | os.PathLike, split: str) -> tuple[Path, pd.DataFrame]:
    """The manifest's images table and its ``split`` rows, checked as ``evaluate`` checks them, and
    refused in one line when they hold one class only."""
    images_csv = Path(manifest_dir) / "images.csv"
    records(images_csv, split, 2, both_classes=False)  # a missing table or split, bad labels, missing files
    images = pd.read_csv(images_csv, dtype={"patient_id": str})
    table = images[images["split"] == split].reset_index(drop=True)
    check_both_classes(table["label"].to_numpy(), f"{images_csv}: split {split!r}")
    return images_csv, table


def calibrate_bundle(
    bundle: str | os.PathLike,
    manifest_dir: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "val",
    tta: bool = False,
    batch_size: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``split`` of a prepared manifest with ``bundle`` (as ``evaluate`` does), fit the calibration and
    its operating points on it, and write the calibrated copy at ``out`` and its reliability plot (before and
    after) beside it as ``<out name>-reliability.png``.

    Returns:
        ``{"calibration", "out", "plot", "version", "calibrated_from", "raw", "labels"}`` (``raw``: the
        split's uncalibrated probabilities).

    Raises:
        ValueError / FileNotFoundError / FileExistsError: one line naming the file and the problem (no
            manifest, no such split, one class in it, an existing ``out``, a zip out of a folder ...).
    """
    bundle, out = Path(bundle), Path(out)
    _check_out(bundle, out)
    images_csv, table = _split_cases(manifest_dir, split)
    with tempfile.TemporaryDirectory() as tmp:
        opened = open_bundle(bundle, tmp)
        opened.check_request(tta)
        check_same_preprocessing(
            opened.preprocessing_record, read_record(manifest_dir), f"{manifest_dir} for {bundle.name}"
        )
        raw = score_split(opened, table, f"{images_csv}: split {split!r}", tmp, tta, batch_size)
    labels = table["label"].to_numpy(dtype=int)
    fitted_on = {"split": split, "n": int(len(labels)), "positives": int(labels.sum())}
    calibration = fit_calibration(raw, labels, seed=seed, what=f"{images_csv}: split {split!r}", fitted_on=fitted_on)
    metadata = calibrated_metadata(opened.metadata, calibration)
    files = {
        f"models/{CALIBRATION_FILE}": json.dumps(calibration.to_record(), indent=2).encode(),
        "configs/metadata.json": json.dumps(metadata, indent=2).encode(),
    }
    write_calibrated_copy(bundle, out, files)
    plot = out.parent / f"{out.stem if out.suffix == '.zip' else out.name}-reliability.png"
    title = f"{opened.name} {metadata['version']}: split {split!r} ({calibration.method})"
    plot_reliability({"before": raw, "after": calibration.apply(raw)}, labels, plot, title=title)
    return {
        "calibration": calibration,
        "out": out,
        "plot": plot,
        "version": metadata["version"],
        "calibrated_from": opened.version,
        "raw": np.asarray(raw, dtype=float),
        "labels": labels,
    }

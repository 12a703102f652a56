"""``mammo-monai prepare``: dataset on disk -> manifest (images.csv, lesions.csv) + preprocessing cache.

:func:`prepare` writes ``images.csv`` and ``lesions.csv`` (pointing at the cached PNGs; lesion geometry
stays in the original images' pixels), ``errors.csv`` (file, reason), ``cache.json`` (the preprocessing
settings and version, :class:`~mammo_monai.data.preprocessing_settings.PreprocessingSettings`) and the
cache. Re-running into the same folder reuses cached images only when they were made the same way;
otherwise it refuses, or with ``rebuild`` deletes and remakes them. Labels and splits are derived afresh
on every run.

With ``shard`` ("K/N") it caches only shard K of N (:mod:`mammo_monai.data.shards`: whole patients,
balanced) into ``out_dir/shards/K-of-N`` and writes no manifest; with ``merge`` it caches nothing and
takes every image from its shard, refusing shards that are missing, unfinished or made differently,
then splits and writes the manifest as above: the same manifest as without shards.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.data.adapters import ADAPTERS, AdapterResult
from mammo_monai.data.cache import cache_image
from mammo_monai.data.cache_record import claim_cache
from mammo_monai.data.manifest import one_class_splits, validate, write_manifest
from mammo_monai.data.multi_dataset import DatasetSpec, dataset_summary, join_results, label_rules, split_datasets
from mammo_monai.data.preprocessing_settings import PreprocessingSettings
from mammo_monai.data.shards import (
    SHARD_RECORD,
    assign_shards,
    parse_shard,
    shard_dir,
    shard_results,
    write_shard_record,
)
from mammo_monai.data.splits import assign_splits
from mammo_monai.io.atomic import write_csv
from mammo_monai.io.raster import PNG_OPTIONS
from mammo_monai.io.remote import DownloadCache, is_url
from mammo_monai.parallel import run_parallel, warm_up

logger = logging.getLogger(__name__)
# adapter problems that cost an image (or a folder of them), as opposed to notes on a kept image
_LOST = re.compile(r"(image excluded|not found|; skipped|; row skipped)$")


def drop_duplicate_ids(images: pd.DataFrame, errors: list[dict[str, str]]) -> pd.DataFrame:
    """Rows whose ``image_id`` is shared are all excluded and reported: which of them is right cannot be
    told, and one would overwrite the other's cached files."""
    dup = images["image_id"].duplicated(keep=False)
    for r in images[dup].itertuples():
        errors.append(
            {
                "file": str(r.image),
                "reason": f"image_id {r.image_id!r} is given to more than one image; all of them excluded",
            }
        )
    return images[~dup]


def warn_one_class(images: pd.DataFrame, out: Path) -> None:
    """One warning line when the training or validation split holds a single label (an empty class
    folder, a split without positives): ``train`` refuses such a manifest for a binary model."""
    problems = one_class_splits(images)
    if problems:
        logger.warning(
            "%s: %s: a binary model cannot be trained or validated on it (`train` refuses it); "
            "add images of the missing class or choose other split fractions",
            out / "images.csv",
            "; ".join(problems),
        )


#: the default fractions (Shen et al.: 85/15, then 90/10 of the rest for validation)
TEST_FRACTION, VAL_FRACTION = 0.15, 0.10


def split_images(
    images: pd.DataFrame,
    dataset: str | list[DatasetSpec],
    split_seed: int,
    official_split: bool,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
    test_dataset: str | None = None,
) -> pd.DataFrame:
    """The one place where splits are assigned: over the whole image set of this run, by patient.

    ``val_fraction`` is taken from what is left after the test split (a 70 / 20 / 10 split is
    ``test_fraction`` 0.1, ``val_fraction`` 0.2 / 0.9). A folder layout that names every image's split
    keeps it. Several datasets: :func:`~mammo_monai.data.multi_dataset.split_datasets`."""
    if not isinstance(dataset, str):
        return split_datasets(images, dataset, test_fraction, val_fraction, split_seed, test_dataset)
    if test_dataset is not None:
        raise ValueError("--test-dataset needs several datasets (--dataset NAME:ROOT,NAME:ROOT)")
    if dataset == "folder" and images["split"].isin(["train", "val", "test"]).all():
        return images
    return assign_splits(
        images, test_fraction, val_fraction, seed=split_seed, keep_test=official_split and _has_official(dataset)
    )


def _has_official(dataset: str) -> bool:
    """Whether the adapter of ``dataset`` reads an official split (takes ``official_split``)."""
    return dataset in ADAPTERS and "official_split" in inspect.signature(ADAPTERS[dataset]).parameters


def _read_dataset(
    dataset: str | list[DatasetSpec],
    root: str | os.PathLike | None,
    adapter_options: dict[str, Any] | None,
    official_split: bool,
    downloads: DownloadCache | None = None,
) -> tuple[AdapterResult, pd.DataFrame, list[dict[str, str]]]:
    """The adapter's result, its images without shared ids, and the problems found so far. A list of
    specs reads each dataset and joins them (:func:`~mammo_monai.data.multi_dataset.join_results`); a
    URL root is first copied into the download cache (:class:`~mammo_monai.io.remote.DownloadCache`)."""
    downloads = downloads or DownloadCache()
    if not isinstance(dataset, str):  # every URL listed, and bounded together, before anything is downloaded
        local = downloads.local_roots([str(s.root) for s in dataset if is_url(str(s.root))])
        read = {
            s.name: _read_dataset(s.adapter, local.get(str(s.root), s.root), s.adapter_options(), s.official_split)
            for s in dataset
        }
        found, images = join_results({name: (f, i) for name, (f, i, _) in read.items()})
        return found, images, [e for *_, errs in read.values() for e in errs]
    root = downloads.local_root(str(root)) if is_url(str(root)) else root
    if dataset not in ADAPTERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(ADAPTERS)}")
    if not os.path.isdir(root):
        raise ValueError(f"{root}: the {dataset} dataset's folder does not exist")
    kwargs = dict(adapter_options or {})
    if _has_official(dataset):
        kwargs["official_split"] = official_split
    # an absolute root gives absolute source paths in the manifest, whatever the working directory
    # (abspath, not resolve: a symlinked dataset keeps the paths its user knows, and the same cache keys)
    found = ADAPTERS[dataset](os.path.abspath(root), **kwargs)
    errors = list(found.errors)
    images = drop_duplicate_ids(found.images, errors)
    if images.empty:
        raise ValueError(
            f"{root}: the {dataset} adapter found no usable images ({len(errors)} problems, e.g. {errors[:3]})"
        )
    return found, images, errors


def _source_record(dataset: str | list[DatasetSpec], root: str | os.PathLike | None) -> dict[str, str]:
    """The cache record's ``dataset`` and ``root``: names and roots joined by ``+`` for several datasets;
    a URL as given."""

    def where(r: str | os.PathLike) -> str:
        return str(r) if is_url(str(r)) else str(Path(r).resolve())

    if isinstance(dataset, str):
        return {"dataset": dataset, "root": where(root)}
    return {"dataset": "+".join(s.name for s in dataset), "root": "+".join(where(s.root) for s in dataset)}


def _jobs(images: pd.DataFrame, lesions: pd.DataFrame, out: Path, settings: PreprocessingSettings) -> list[tuple]:
    by_image = {k: g.to_dict("records") for k, g in lesions.groupby("image_id")} if not lesions.empty else {}
    return [(row, by_image.get(row["image_id"], []), str(out), settings) for row in images.to_dict("records")]


def _cache_all(jobs: list[tuple], workers: int | None, progress: bool, desc: str = "prepare") -> list[tuple]:
    return run_parallel(
        cache_image,
        jobs,
        workers,
        desc,
        progress,
        on_error=lambda job, err: (None, [], [{"file": job[0]["image"], "reason": f"{type(err).__name__}: {err}"}]),
    )


def _prepare_shard(
    shard: str | tuple[int, int],
    images: pd.DataFrame,
    found: AdapterResult,
    out: Path,
    settings: PreprocessingSettings,
    record: dict[str, Any],
    rebuild: bool,
    workers: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Cache shard K of N of ``images`` into ``out/shards/K-of-N`` and write its ``shard.json`` last."""
    k, n = parse_shard(shard)
    folder = shard_dir(out, k, n)
    mine = images[(assign_shards(images, n) == k).to_numpy()]
    reused = claim_cache(folder, record, rebuild)
    (folder / SHARD_RECORD).unlink(missing_ok=True)  # unfinished until this run ends
    jobs = _jobs(mine, found.lesions, folder, settings)
    t1 = time.time()
    results = _cache_all(jobs, workers, progress, f"prepare {k}/{n}")
    seconds = time.time() - t1
    failed = {job[0]["image_id"]: problems for job, (cached, _, problems) in zip(jobs, results) if cached is None}
    write_shard_record(folder, k, n, list(mine["image_id"]), failed)
    return {
        "dataset": record["dataset"],
        "shard": f"{k}/{n}",
        "out": str(folder),
        "images": len(jobs) - len(failed),
        "patients": int(mine["patient_id"].nunique()),
        "failed_images": len(failed),
        "problems": sum(len(r[2]) for r in results),
        "reused_cache": reused,
        "images_per_second": round(len(jobs) / max(seconds, 1e-9), 2),
    }


def _check_shard_options(shard: str | tuple[int, int] | None, merge: bool) -> None:
    """Refuse ``shard`` with ``merge``, and a bad shard spec, before the dataset is read."""
    if shard is not None and merge:
        raise ValueError("--shard and --merge exclude each other: run the N shards, then one merge")
    if shard is not None:
        parse_shard(shard)


def _run_record(
    record: dict[str, Any],
    split_seed: int,
    official_split: bool,
    test_fraction: float,
    val_fraction: float,
    shards: int | None,
    test_dataset: str | None,
) -> dict[str, Any]:
    """What ``cache.json`` records of a whole run: the preprocessing and source ``record``, then how the
    splits were made and, for a merge, how many shards it took."""
    return {
        **record,
        "split_seed": split_seed,
        "official_split": official_split,
        # recorded when not the defaults, so caches made before the fractions could be set stay valid
        **({"test_fraction": test_fraction} if test_fraction != TEST_FRACTION else {}),
        **({"val_fraction": val_fraction} if val_fraction != VAL_FRACTION else {}),
        **({"shards": shards} if shards is not None else {}),
        **({"test_dataset": test_dataset} if test_dataset else {}),
    }


def _write_manifest(
    out: Path, root: str | os.PathLike, jobs: list[tuple], results: list[tuple], errors: list[dict[str, str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cached images and lesions of ``results`` as the manifest's two tables, checked and written with
    ``errors.csv`` (``errors`` gains the problems of ``results``).

    Raises:
        ValueError: no image could be cached (``errors.csv`` is written first).
    """
    rows, lesions = [], []
    for (image, *_), (cached, kept, problems) in zip(jobs, results):
        errors += problems
        if cached is not None:
            rows.append({**image, **cached})
            lesions += [{**les, "image_id": image["image_id"]} for les in kept]
    img_df = pd.DataFrame(rows)
    les_df = pd.DataFrame(lesions)
    if img_df.empty:
        write_csv(pd.DataFrame(errors, columns=["file", "reason"]), out / "errors.csv")
        raise ValueError(f"{root}: no image could be cached; see {out / 'errors.csv'}")
    validate(img_df, les_df if not les_df.empty else None, where=str(out))
    write_manifest(out, img_df, les_df)
    write_csv(pd.DataFrame(errors, columns=["file", "reason"]), out / "errors.csv")
    warn_one_class(img_df, out)
    return img_df, les_df


def _manifest_summary(
    dataset: str | list[DatasetSpec],
    record: dict[str, Any],
    img_df: pd.DataFrame,
    les_df: pd.DataFrame,
    found: AdapterResult,
    errors: list[dict[str, str]],
) -> dict[str, Any]:
    """:func:`prepare`'s summary of a written manifest: the dataset(s), counts of images, lesions, labels,
    splits and problems, and the images the adapter found but the manifest lacks."""
    excluded = sum(1 for e in found.errors if _LOST.search(str(e.get("reason", ""))))
    return {
        "dataset": record["dataset"],
        **({} if isinstance(dataset, str) else {"datasets": dataset_summary(img_df)}),
        **({"label_sources": label_rules(img_df)} if label_rules(img_df) else {}),
        "images": len(img_df),
        "lesions": len(les_df),
        "lesions_without_geometry": int(les_df["cached_mask"].fillna("").eq("").sum()) if not les_df.empty else 0,
        "lesions_outside_breast": int(les_df["outside_breast"].fillna(False).astype(bool).sum())
        if not les_df.empty
        else 0,
        "truth_rows": getattr(found, "truth_rows", None),
        "problems": len(errors),
        "failed_images": len(found.images) - len(img_df),
        "excluded_by_adapter": excluded,
        "labels": {str(k): int(v) for k, v in img_df["label"].value_counts().sort_index().items()},
        "splits": img_df["split"].value_counts().to_dict(),
        "malignant_fraction": round(float(img_df["label"].mean()), 3),
        "laterality_mismatches": int(
            img_df.get("laterality_mismatch", pd.Series(dtype=bool)).fillna(False).astype(bool).sum()
        ),
    }


def prepare(
    dataset: str,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: tuple[int, int] = (1152, 896),
    split_seed: int = 0,
    official_split: bool = False,
    workers: int | None = None,
    progress: bool = True,
    adapter_options: dict[str, Any] | None = None,
    transform_options: dict[str, Any] | None = None,
    rebuild: bool = False,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
    shard: str | tuple[int, int] | None = None,
    merge: bool = False,
    test_dataset: str | None = None,
    downloads: DownloadCache | None = None,
) -> dict[str, Any]:
    """Read ``dataset`` under ``root``, split it by patient, cache every image and write the manifest into
    ``out_dir`` (what it writes, re-runs and shards: see the module docstring).

    Args:
        dataset: an adapter's name, or several datasets as specs (:mod:`mammo_monai.data.multi_dataset`;
            ``root`` unused): one manifest with a ``dataset`` column, a summary per dataset under ``datasets``.
        transform_options: preprocessing options (keep_aspect, crop, intensity, threshold, modalities).
        shard: ``"K/N"`` or ``(K, N)``, K from 1 to N: cache that shard alone, write no manifest.
        merge: merge the shards under ``out_dir/shards`` (run with the shard jobs' arguments).
        test_dataset: several datasets only: this one is the whole test split (leave-one-dataset-out).
        downloads: the cache that URL roots (``s3://``, ``gs://``, ``https://``) are copied into.

    Returns:
        A summary: counts of images, lesions, truth rows, labels, splits, failures; images/s. A shard's
        summary has its images, patients, failures and images/s.

    Raises:
        CacheMismatchError: the folder holds a cache made differently and ``rebuild`` is False.
        ShardError: a bad ``shard``, or shards that cannot be merged.
    """
    _check_shard_options(shard, merge)
    t0 = time.time()
    settings = PreprocessingSettings.from_options(size, transform_options)
    if not merge and (workers or os.cpu_count() or 1) > 1:
        warm_up(cache_image)  # the workers' imports overlap reading the dataset
    downloads = downloads or DownloadCache()
    with downloads.session():  # files downloaded stay in the cache until every image is read
        found, images, errors = _read_dataset(dataset, root, adapter_options, official_split, downloads)
        out = Path(out_dir).resolve()  # absolute paths in the manifest: training may run from another directory
        # png_options: how the PNGs are compressed; lossless, so never compared, never a reason to remake a cache
        record = {**settings.to_record(), **_source_record(dataset, root), "png_options": PNG_OPTIONS}
        if shard is not None:
            return _prepare_shard(shard, images, found, out, settings, record, rebuild, workers, progress)
        images = split_images(images, dataset, split_seed, official_split, test_fraction, val_fraction, test_dataset)
        jobs = _jobs(images, found.lesions, out, settings)  # a merge checks every shard before anything is written:
        results, shards = shard_results(out, images, jobs, record) if merge else (None, None)
        run = _run_record(record, split_seed, official_split, test_fraction, val_fraction, shards, test_dataset)
        reused, t1 = claim_cache(out, run, rebuild), time.time()
        results = results if merge else _cache_all(jobs, workers, progress)
    speed = {"shards": shards} if merge else {"images_per_second": round(len(jobs) / max(time.time() - t1, 1e-9), 2)}
    img_df, les_df = _write_manifest(out, root, jobs, results, errors)
    summary = _manifest_summary(dataset, record, img_df, les_df, found, errors)
    summary.update(reused_cache=reused, **speed, seconds=round(time.time() - t0, 1))
    logger.info("prepare: %s", summary)
    return summary

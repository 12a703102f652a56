"""Preparing a dataset in shards: ``prepare --shard K/N`` caches one of N disjoint parts of its images,
``prepare --merge`` checks that all N parts are there, complete and made the same way, and writes one
manifest.

Meant for a cluster's job array: the N shard jobs run at once, each reads the dataset's tables, keeps
its own patients (whole patients, balanced by image count) and caches their images into
``<out>/shards/K-of-N/``, a cache folder of its own with its own ``cache.json``; a shard writes its
``shard.json`` last, when it is complete. The merge reads the tables again, assigns the splits once over
the whole dataset and takes every image's cached result from its shard, so it writes the manifest an
unsharded ``prepare`` would (the cached images stay in the shard folders).
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.data.cache import finished
from mammo_monai.data.cache_record import PREPROCESSING_KEYS, differences, read_record
from mammo_monai.io.atomic import write_json

SHARDS_DIR = "shards"
SHARD_RECORD = "shard.json"
#: what a shard and its merge must agree on: everything that makes the cached pixels, and the dataset
SHARD_KEYS = (*PREPROCESSING_KEYS, "dataset", "root")


class ShardError(ValueError):
    """A bad ``--shard`` spec, or shards that cannot be merged (missing, incomplete, made differently)."""


def parse_shard(spec: str | Sequence[int]) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``: shard K of N, numbered from 1 (a job array ``--array=1-8``).

    Raises:
        ShardError: not ``K/N`` with whole numbers, N below 1, or K outside 1..N.
    """
    if isinstance(spec, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if m is None:
            raise ShardError(f"--shard {spec!r}: expected K/N, e.g. 2/8 for shard 2 of 8")
        k, n = int(m[1]), int(m[2])
    else:
        k, n = (int(v) for v in spec)
    if n < 1:
        raise ShardError(f"--shard {k}/{n}: N, the number of shards, must be at least 1")
    if not 1 <= k <= n:
        raise ShardError(f"--shard {k}/{n}: K must be between 1 and {n} (shards are numbered 1/{n} to {n}/{n})")
    return k, n


def shard_dir(out_dir: str | os.PathLike, k: int, n: int) -> Path:
    """``<out>/shards/K-of-N``: the cache folder of shard K of N."""
    return Path(out_dir) / SHARDS_DIR / f"{k}-of-{n}"


def assign_shards(images: pd.DataFrame, n: int) -> pd.Series:
    """The shard (1..n) of every image: a patient's images all go to one shard, and the shards get about
    as many images each. Deterministic: patients largest first (then by id), each to the shard with the
    fewest images so far (then the lowest number); the same image table gives the same shards anywhere."""
    patients = images["patient_id"].astype(str)
    counts = patients.value_counts()
    order = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    load = [(0, k) for k in range(1, n + 1)]
    shard_of: dict[str, int] = {}
    for pid, count in order:
        size, k = heapq.heappop(load)
        shard_of[pid] = k
        heapq.heappush(load, (size + count, k))
    return patients.map(shard_of).astype(int)


def ids_hash(image_ids: Iterable[str]) -> str:
    """A short hash of a set of image ids: which images a shard was given."""
    return hashlib.sha256("\n".join(sorted(map(str, image_ids))).encode()).hexdigest()[:16]


def write_shard_record(
    folder: Path, k: int, n: int, image_ids: Sequence[str], failed: Mapping[str, list[dict[str, str]]]
) -> None:
    """``shard.json``, written last by a shard job: its images, and the problems of those that failed."""
    write_json(
        {"shard": f"{k}/{n}", "images": len(image_ids), "image_ids_hash": ids_hash(image_ids), "failed": dict(failed)},
        folder / SHARD_RECORD,
    )


def shard_count(out_dir: str | os.PathLike) -> int:
    """N of the shard folders ``<out>/shards/K-of-N``.

    Raises:
        ShardError: no shard folder, or folders of different counts (stale shards of an earlier N).
    """
    base = Path(out_dir) / SHARDS_DIR
    found = sorted(p.name for p in base.glob("*-of-*") if p.is_dir()) if base.is_dir() else []
    counts = {int(m[2]) for name in found if (m := re.fullmatch(r"(\d+)-of-(\d+)", name))}
    if not counts:
        raise ShardError(f"{base}: no shard folders (K-of-N); run `prepare --shard K/N` for K = 1..N first")
    if len(counts) > 1:
        raise ShardError(f"{base}: shards of different counts ({', '.join(found)}); remove the folders of the stale N")
    return counts.pop()


def shard_results(
    out_dir: str | os.PathLike,
    images: pd.DataFrame,
    jobs: Sequence[tuple],
    settings: Mapping[str, Any],
) -> tuple[list[tuple], int]:
    """Every job's :func:`~mammo_monai.data.cache.cache_image` result, read from its shard's cache.

    Args:
        images: the dataset's image table, as the shard jobs got it (before splits).
        jobs: ``(image, lesions, ...)`` per row of ``images``, in its order.
        settings: the merge's settings (preprocessing, ``dataset``, ``root``), checked against each shard's.

    Returns:
        The results in job order, and N.

    Raises:
        ShardError: naming the shard and its folder: missing or unfinished, made with other settings, given
            other images than the dataset holds now, or without a finished image of its part.
    """
    n = shard_count(out_dir)
    number = assign_shards(images, n).to_numpy()
    records = {}
    for k in range(1, n + 1):
        folder = shard_dir(out_dir, k, n)
        rerun = f"run `prepare --shard {k}/{n}` (again)"
        record = read_record(folder, SHARD_RECORD)
        if record is None:
            state = "unfinished" if folder.is_dir() else "missing"
            raise ShardError(f"{folder}: shard {k}/{n} is {state} (no {SHARD_RECORD}); {rerun}")
        diffs = differences(read_record(folder) or {}, settings, SHARD_KEYS)
        if diffs:
            raise ShardError(f"{folder}: shard {k}/{n} was prepared differently from this merge ({'; '.join(diffs)})")
        mine = images["image_id"][number == k]
        if record.get("image_ids_hash") != ids_hash(mine):
            raise ShardError(
                f"{folder}: shard {k}/{n} was given other images ({record.get('images')}) than the dataset gives it "
                f"now ({len(mine)}): the dataset changed since; {rerun}"
            )
        records[k] = record
    results = []
    for (image, lesions, *_), k in zip(jobs, number):
        failed = records[k]["failed"].get(image["image_id"])
        done = None if failed is not None else finished(image, lesions, shard_dir(out_dir, k, n))
        if failed is None and done is None:
            raise ShardError(
                f"{shard_dir(out_dir, k, n)}: shard {k}/{n} has no finished cache of image {image['image_id']} "
                f"made from its current source and lesions; run `prepare --shard {k}/{n}` again"
            )
        results.append((None, [], failed) if failed is not None else done)
    return results, n

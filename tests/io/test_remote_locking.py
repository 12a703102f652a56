"""Two processes share one download cache: each file is downloaded once, by one of them, while the other
waits for it and then reuses it (no file written twice into one partial file, none requested twice); and
eviction leaves the blobs a running fetch has pinned."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from mammo_monai.io.cache_locks import Pin, cache_lock
from mammo_monai.io.remote import DownloadCache, file_sha256
from tests.io.cache_child import fetch
from tests.io.http_site import HttpSite

pytest.importorskip("fsspec.implementations.http")
pytest.importorskip("aiohttp")


def test_two_processes_fetching_one_dataset_download_each_file_once(tmp_path):
    site = tmp_path / "www" / "data"
    for i in range(3):
        (site / f"d{i}").mkdir(parents=True)
        (site / f"d{i}" / "image.dcm").write_bytes(os.urandom(300_000 + i))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    with HttpSite(site.parent, delay=0.5) as served:  # slow answers: both processes want every file at once
        procs = [
            ctx.Process(
                target=fetch, args=(str(tmp_path / "cache"), f"{served.url}/data/", start, str(tmp_path / f"{i}.json"))
            )
            for i in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    runs = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)]
    assert served.gets == {f"/data/d{i}/image.dcm": 1 for i in range(3)}  # once each, whoever fetched it
    assert sum(r["stats"]["downloaded"] for r in runs) == 3 and sum(r["stats"]["reused"] for r in runs) == 3
    assert runs[0]["tree"] == runs[1]["tree"]
    for i in range(3):
        link = tmp_path / "cache" / "trees" / runs[0]["tree"].rsplit("/", 1)[-1] / f"d{i}" / "image.dcm"
        assert link.read_bytes() == (site / f"d{i}" / "image.dcm").read_bytes()
        assert link.resolve().name == file_sha256(link)
    assert len(list((tmp_path / "cache" / "blobs").glob("*/*"))) == 3
    assert not list((tmp_path / "cache" / "partial").iterdir()) and not list(
        (tmp_path / "cache" / "pins").glob("*.txt")
    )


def test_eviction_leaves_the_blobs_a_running_fetch_pinned_and_clears_a_dead_ones_pin(tmp_path):
    cache = DownloadCache(tmp_path / "cache", max_bytes=2000)
    blobs = {}
    for age, name in enumerate("abc"):
        blobs[name] = cache.blob(name * 64)
        blobs[name].parent.mkdir(parents=True)
        blobs[name].write_bytes(b"x" * 800)
        os.utime(blobs[name], (age + 1, age + 1))  # a is the least recently used
    (tmp_path / "cache" / "pins").mkdir()
    (tmp_path / "cache" / "pins" / "ended.txt").write_text("c" * 64)  # its process died without removing it
    with Pin(cache.folder) as pin:  # a fetch under way (its lock held: a live pin, as in another process)
        with cache_lock(cache.folder):
            pin.add({"a" * 64})
        deleted = cache.evict(1500)
    assert blobs["a"].exists() and deleted == [blobs["b"], blobs["c"]]
    assert not list((tmp_path / "cache" / "pins").iterdir())

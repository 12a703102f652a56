"""A dataset in a bucket: ``prepare --root s3://...`` against a real S3-compatible server (moto's standalone
server on loopback, reached over HTTP by s3fs as a user's store would be), through the download cache:
the same manifest as the local copy, a rerun that downloads nothing, an interrupted download resumed, a
corrupted cache entry found by its checksum, the size bound."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.cli import main
from mammo_monai.data.prepare import prepare
from mammo_monai.io.remote import DownloadCache, file_sha256
from mammo_monai.synthetic import make_cbis_tree

pytest.importorskip("s3fs")
server_module = pytest.importorskip("moto.server")
SIZE = (64, 48)
URL = "s3://mammo-test/datasets/cbis"


class _Requests(logging.Handler):
    """Counts the object downloads (GET of a key, not a listing) the server logs."""

    def __init__(self):
        super().__init__()
        self.gets = 0

    def emit(self, record):
        line = record.getMessage()
        if "GET /mammo-test/datasets/" in line:  # (after the log's colour codes)
            self.gets += 1


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    """A synthetic CBIS-DDSM tree on disk and uploaded under ``URL`` to a moto server on 127.0.0.1."""
    import boto3

    local = tmp_path_factory.mktemp("bucket") / "cbis"
    make_cbis_tree(local, patients=4, seed=3, size=SIZE, workers=1)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    mp = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        mp.setenv(key, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="mammo-test")
    files = [p for p in local.rglob("*") if p.is_file()]
    for path in files:
        client.put_object(Bucket="mammo-test", Key=f"datasets/cbis/{path.relative_to(local)}", Body=path.read_bytes())
    requests, log = _Requests(), logging.getLogger("werkzeug")  # the server's request log
    level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(requests)
    yield local, len(files), requests
    log.removeHandler(requests)
    log.setLevel(level)
    server.stop()
    mp.undo()


def _without_paths(table: pd.DataFrame) -> pd.DataFrame:
    """The columns that hold no file path (paths differ between a local and a downloaded copy)."""
    keep = [c for c in table.columns if not table[c].astype(str).str.contains("/").any()]
    return table[keep].sort_values("image_id").reset_index(drop=True)


def _run(root, out: Path, cache: DownloadCache) -> dict:
    return prepare("cbis-ddsm", root, out, size=SIZE, workers=1, progress=False, downloads=cache)


def test_bucket_gives_the_local_manifest_and_a_rerun_downloads_nothing(bucket, tmp_path):
    local, n_files, requests = bucket
    cache = DownloadCache(tmp_path / "cache")
    _run(local, tmp_path / "local", cache)
    before = requests.gets
    _run(URL, tmp_path / "remote", cache)
    assert cache.stats["downloaded"] == n_files and requests.gets - before >= n_files
    for name in ("images.csv", "lesions.csv"):
        mine, theirs = (pd.read_csv(tmp_path / d / name, dtype=str) for d in ("remote", "local"))
        pd.testing.assert_frame_equal(_without_paths(mine), _without_paths(theirs))
    compared = set(_without_paths(pd.read_csv(tmp_path / "remote" / "images.csv")).columns)
    assert {"image_id", "patient_id", "laterality", "view", "label", "split"} <= compared
    blobs = {p: p.stat().st_ino for p in (tmp_path / "cache" / "blobs").glob("*/*")}
    requests.gets = 0
    _run(URL, tmp_path / "remote2", cache)
    assert requests.gets == 0 and cache.stats["reused"] == n_files and cache.stats["downloaded"] == 0
    assert {p: p.stat().st_ino for p in blobs} == blobs  # the same files, not downloaded again


def test_interrupted_download_resumes_and_a_corrupt_entry_is_fetched_again(bucket, tmp_path):
    cache = DownloadCache(tmp_path / "cache")
    root = cache.local_root(URL)
    index = sorted((tmp_path / "cache" / "index").iterdir())
    # an interrupted download: half of one file in partial/, its blob gone
    sha = index[0].read_text()
    blob = cache.blob(sha)
    data = blob.read_bytes()
    (tmp_path / "cache" / "partial" / f"{index[0].name}.part").write_bytes(data[: len(data) // 2])
    blob.unlink()
    # a corrupted entry: one byte of another blob changed
    other = cache.blob(index[1].read_text())
    spoilt = bytearray(other.read_bytes())
    spoilt[len(spoilt) // 2] ^= 0xFF
    other.write_bytes(bytes(spoilt))
    assert cache.local_root(URL) == root
    assert cache.stats["resumed"] == 1 and cache.stats["corrupt"] == 1 and cache.stats["downloaded"] == 2
    assert file_sha256(blob) == sha and file_sha256(other) == index[1].read_text()
    assert not list((tmp_path / "cache" / "partial").iterdir())


def test_a_wrong_partial_file_is_downloaded_afresh(bucket, tmp_path):
    cache = DownloadCache(tmp_path / "cache")
    cache.local_root(URL)
    entry = max((tmp_path / "cache" / "index").iterdir(), key=lambda p: cache.blob(p.read_text()).stat().st_size)
    blob = cache.blob(entry.read_text())
    blob.unlink()
    (tmp_path / "cache" / "partial" / f"{entry.name}.part").write_bytes(b"\0" * 100)  # not a prefix of it
    cache.local_root(URL)
    assert file_sha256(blob) == entry.read_text()


def test_cache_size_bound_evicts_least_recently_used_and_refuses_a_larger_dataset(bucket, tmp_path):
    local, *_ = bucket
    total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    cache = DownloadCache(tmp_path / "cache", max_bytes=total + 1000)
    old = tmp_path / "cache" / "blobs" / "00" / ("0" * 64)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x" * 2000)  # a blob of another dataset, least recently used
    os.utime(old, (1, 1))
    cache.local_root(URL)
    assert not old.exists()
    small = DownloadCache(tmp_path / "small", max_bytes=total // 2)
    with pytest.raises(ValueError, match="more than the download cache holds"):
        small.local_root(URL)


def test_prepare_command_reads_a_bucket(bucket, tmp_path, capsys):
    rc = main(
        ["prepare", "--dataset", "cbis-ddsm", "--root", URL, "--out", str(tmp_path / "out")]
        + ["--download-cache", str(tmp_path / "cache"), "--size", *map(str, SIZE), "--workers", "1", "--quiet"]
    )
    assert rc in (0, 1) and (tmp_path / "out" / "images.csv").is_file()
    assert '"root": "s3://' in (tmp_path / "out" / "cache.json").read_text()
    assert main(["prepare", "--dataset", "cbis-ddsm", "--root", "s3://mammo-test/nothing-here", "--out", "x"]) == 2
    assert "s3://mammo-test/nothing-here: no files found there" in capsys.readouterr().err

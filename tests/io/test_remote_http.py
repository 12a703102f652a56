"""A dataset on a plain web server: ``--root http(s)://...`` against Python's ``http.server`` on loopback,
listed through its directory index pages by fsspec's HTTP filesystem: every file (names with spaces
included), sizes asked of the server, checksummed blobs, a rerun that downloads nothing, a changed file
fetched again, and an interrupted download finished although the server ignores range requests.
(``gs://`` is not tested: it would need gcsfs and a GCS emulator.)"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mammo_monai.data.prepare import prepare
from mammo_monai.io.remote import DownloadCache, file_sha256
from mammo_monai.synthetic import make_cbis_tree
from tests.io.http_site import HttpSite

pytest.importorskip("fsspec.implementations.http")
pytest.importorskip("aiohttp")
SIZE = (64, 48)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A synthetic CBIS-DDSM tree (its folder names hold spaces) served at ``<url>/cbis/``."""
    root = tmp_path_factory.mktemp("www")
    make_cbis_tree(root / "cbis", patients=2, seed=4, size=SIZE, workers=1)
    with HttpSite(root) as served:
        yield root / "cbis", served


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_http_listing_gives_every_file_checksummed_and_a_rerun_downloads_nothing(site, tmp_path):
    local, served = site
    served.gets.clear()
    cache = DownloadCache(tmp_path / "cache")
    tree = cache.local_root(f"{served.url}/cbis/")
    files = _files(local)
    assert any(" " in name for name in files)  # "1.000000-full mammogram images-...": unquoted in the tree
    assert _files(tree) == files
    assert cache.stats["downloaded"] == len(files) and sum(served.gets.values()) == len(files)
    for link in tree.rglob("*"):
        if link.is_file():
            assert link.resolve().name == file_sha256(link)  # the blob is named by its content
    served.gets.clear()
    assert cache.local_root(f"{served.url}/cbis/") == tree
    assert cache.stats["reused"] == len(files) and cache.stats["downloaded"] == 0 and not served.gets


def test_a_file_changed_on_the_server_is_fetched_again(site, tmp_path):
    local, served = site
    cache = DownloadCache(tmp_path / "cache")
    cache.local_root(f"{served.url}/cbis/")
    csv = next(local.rglob("*.csv"))
    before, stat = csv.read_bytes(), csv.stat()
    try:
        csv.write_bytes(before[::-1])  # the same size: only its Last-Modified date tells
        os.utime(csv, (stat.st_atime, stat.st_mtime + 10))
        tree = cache.local_root(f"{served.url}/cbis/")
        assert cache.stats["downloaded"] == 1 and (tree / csv.relative_to(local)).read_bytes() == before[::-1]
    finally:
        csv.write_bytes(before)
        os.utime(csv, (stat.st_atime, stat.st_mtime))


def test_an_interrupted_download_completes_from_a_server_without_range_requests(site, tmp_path):
    _, served = site
    cache = DownloadCache(tmp_path / "cache")
    cache.local_root(f"{served.url}/cbis/")
    entry = max((tmp_path / "cache" / "index").iterdir(), key=lambda p: cache.blob(p.read_text()).stat().st_size)
    blob = cache.blob(entry.read_text())
    (tmp_path / "cache" / "partial" / f"{entry.name}.part").write_bytes(blob.read_bytes()[:1000])
    blob.unlink()
    cache.local_root(f"{served.url}/cbis/")
    assert cache.stats["resumed"] == 1 and cache.stats["downloaded"] == 1
    assert file_sha256(blob) == entry.read_text()


def test_prepare_reads_a_dataset_from_a_web_server(site, tmp_path):
    local, served = site
    cache = DownloadCache(tmp_path / "cache")
    remote = prepare(
        "cbis-ddsm", f"{served.url}/cbis/", tmp_path / "out", size=SIZE, workers=1, progress=False, downloads=cache
    )
    table = pd.read_csv(tmp_path / "out" / "images.csv")
    assert remote and len(table) == len(list(local.rglob("1.000000-full mammogram images-*/1-1.dcm")))

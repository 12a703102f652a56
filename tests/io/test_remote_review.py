"""The download cache against what a reviewer found: a percent-encoded name that climbs out of the cache,
a web server's ETag of 32 hex digits taken for an MD5, a dataset evicted while its run still reads it, two
datasets larger together than the bound, and a process that waits for another without saying so."""

from __future__ import annotations

import logging
import threading

import pytest

from mammo_monai.data.multi_dataset import DatasetSpec
from mammo_monai.data.prepare import prepare
from mammo_monai.io.cache_locks import entry_lock
from mammo_monai.io.remote import DownloadCache
from tests.io.http_site import HttpSite

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("fsspec.implementations.http")
pytest.importorskip("aiohttp")
CLIMB = "a%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fescaped.txt"


@pytest.fixture
def memory_data():
    """Two datasets of 600 bytes each, ``memory://a`` and ``memory://b``."""
    fs = fsspec.filesystem("memory")
    fs.pipe({"/a/1.dcm": b"a" * 600, "/b/2.dcm": b"b" * 600})
    yield fs
    fs.rm(["/a", "/b"], recursive=True)


def test_a_percent_encoded_name_that_climbs_out_of_the_cache_is_refused(tmp_path):
    site = tmp_path / "www" / "data"
    site.mkdir(parents=True)
    (site.parent / "escaped.txt").write_text("served")  # the server tidies the name: the link is answered
    (site / "index.html").write_text(f'<html><body><a href="{CLIMB}">x</a></body></html>')
    with HttpSite(site.parent) as served:
        served.gets.clear()
        with pytest.raises(ValueError, match=r"/data/: a listed file \(a/\.\./\.\./\.\./\.\./escaped\.txt\) lies out"):
            DownloadCache(tmp_path / "deep" / "cache").local_root(f"{served.url}/data/")
    assert [p for p in tmp_path.rglob("escaped.txt") if p.parent != site.parent] == []
    assert not served.gets  # refused before anything was downloaded


def test_a_web_servers_etag_of_32_hex_digits_is_not_taken_for_an_md5(tmp_path):
    site = tmp_path / "www" / "data"
    site.mkdir(parents=True)
    (site / "image.dcm").write_bytes(b"pixels" * 1000)
    with HttpSite(site.parent, etag="0123456789abcdef0123456789abcdef") as served:
        tree = DownloadCache(tmp_path / "cache").local_root(f"{served.url}/data/")
    assert (tree / "image.dcm").read_bytes() == b"pixels" * 1000


def test_a_session_keeps_its_datasets_from_another_process_eviction(memory_data, tmp_path):
    cache = DownloadCache(tmp_path / "cache", max_bytes=1000)
    with cache.session():
        tree = cache.local_root("memory://a")
        other = DownloadCache(tmp_path / "cache", max_bytes=1000)  # another run (its own pin) needs room
        other.local_root("memory://b")
        assert (tree / "1.dcm").read_bytes() == b"a" * 600  # still there: the session still reads it
    other.local_root("memory://b")  # the session over, a's blob may go
    assert not (tree / "1.dcm").exists()


def test_prepare_refuses_datasets_larger_together_than_the_cache_before_downloading(memory_data, tmp_path):
    specs = [DatasetSpec("folder", "memory://a", alias="x"), DatasetSpec("folder", "memory://b", alias="y")]
    cache = DownloadCache(tmp_path / "cache", max_bytes=1000)
    with pytest.raises(ValueError, match=r"^2 datasets of this run: 1\.2 KiB of files, more than the download cache"):
        prepare(specs, None, tmp_path / "out", size=(64, 48), workers=1, progress=False, downloads=cache)
    assert not list((tmp_path / "cache").glob("blobs/*/*"))


def test_a_process_waiting_for_another_ones_download_says_so_once(memory_data, tmp_path, caplog):
    cache = DownloadCache(tmp_path / "cache")
    cache.local_root("memory://a")
    (key,) = [p.name for p in (tmp_path / "cache" / "index").iterdir()]
    held, said = threading.Event(), threading.Event()

    def other_process() -> None:  # holds the file's lock until the waiting run has said it waits
        with entry_lock(cache.folder, key):
            held.set()
            said.wait(timeout=60)

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for another process" in record.getMessage():
                said.set()

    listener = Listener()
    logging.getLogger("mammo_monai.io.remote").addHandler(listener)
    holder = threading.Thread(target=other_process)
    holder.start()
    held.wait(timeout=60)
    try:
        with caplog.at_level(logging.INFO, logger="mammo_monai.io.remote"):
            cache.local_root("memory://a")
    finally:
        said.set()
        holder.join()
        logging.getLogger("mammo_monai.io.remote").removeHandler(listener)
    waits = [r.getMessage() for r in caplog.records if "waiting for another process" in r.getMessage()]
    assert waits == [f"waiting for another process downloading the same file into {cache.folder}"]
    assert cache.stats["waits"] == 1 and cache.stats["reused"] == 1

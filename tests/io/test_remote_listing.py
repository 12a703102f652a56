"""The download cache with stores whose listings are not S3's: an HTTP-like listing without sizes, and a
listing that names a file outside the location asked for (fsspec's in-memory filesystem stands in)."""

from __future__ import annotations

import pytest

from mammo_monai.io.remote import DownloadCache

fsspec = pytest.importorskip("fsspec")
MemoryFileSystem = pytest.importorskip("fsspec.implementations.memory").MemoryFileSystem


@pytest.fixture
def memory_data():
    fs = fsspec.filesystem("memory")
    fs.pipe({"/data/a/1.dcm": b"first file" * 100, "/data/b/2.dcm": b"second"})
    yield fs
    fs.rm("/data", recursive=True)


def _listing_without(monkeypatch, drop_info_size: bool = False, extra: str | None = None) -> None:
    find, info = MemoryFileSystem.find, MemoryFileSystem.info

    def find_like_http(self, path, detail=False, **kwargs):
        found = find(self, path, detail=True, **kwargs)
        found = {p: {**i, "size": None} for p, i in found.items()}
        if extra:
            found[extra] = {"name": extra, "type": "file", "size": None}
        return found if detail else list(found)

    monkeypatch.setattr(MemoryFileSystem, "find", find_like_http)
    if drop_info_size:
        monkeypatch.setattr(MemoryFileSystem, "info", lambda self, path, **k: {**info(self, path, **k), "size": None})


@pytest.mark.parametrize("drop_info_size", [False, True])
def test_a_listing_without_sizes_still_downloads_every_file_intact(memory_data, monkeypatch, tmp_path, drop_info_size):
    _listing_without(monkeypatch, drop_info_size)
    tree = DownloadCache(tmp_path / "cache").local_root("memory://data")
    assert (tree / "a" / "1.dcm").read_bytes() == b"first file" * 100
    assert (tree / "b" / "2.dcm").read_bytes() == b"second"


def test_a_listed_file_outside_the_location_is_refused_in_one_line(memory_data, monkeypatch, tmp_path):
    _listing_without(monkeypatch, extra="/elsewhere/x.dcm")
    with pytest.raises(ValueError, match=r"memory://data: a listed file \(\.\./elsewhere/x\.dcm\) lies outside"):
        DownloadCache(tmp_path / "cache").local_root("memory://data")
    assert not any((tmp_path / "cache").rglob("x.dcm"))

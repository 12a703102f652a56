"""Datasets in a bucket: a ``--root`` given as an fsspec URL (``s3://``, ``gs://``, ``https://``) is copied,
file by file, into a local content-addressed download cache, and the adapters read the local copy.

Layout of the cache folder (default ``~/.cache/mammo-monai/downloads``, or ``$MAMMO_MONAI_DOWNLOAD_CACHE``):

- ``blobs/ab/abcdef...``: each file once, named by the SHA-256 of its bytes (two datasets, or two copies
  of a file, share one blob); a blob is hashed again whenever it is used, so a corrupted entry is found
  and downloaded again;
- ``index/<key>``: the SHA-256 of the file a remote object gave (the key hashes its URL, size and ETag:
  an object changed in the store is a new key);
- ``partial/<key>.part``: a download under way; an interrupted one resumes from its length (a range
  request) and is renamed into ``blobs/`` only when complete and checked (size; the S3 ETag where it is
  the object's MD5);
- ``trees/<hash of the URL>/...``: the dataset's folder tree, symlinks to the blobs, that the adapters
  walk;
- ``locks/``, ``cache.lock``, ``pins/``: several processes may share one cache (:mod:`.cache_locks`): a file
  is downloaded by one of them while the others wait for it, and no process evicts a blob another is using.

Files are streamed in chunks (:data:`CHUNK` bytes; never a whole file in memory). The cache holds at most
``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 200 GiB, or ``$MAMMO_MONAI_DOWNLOAD_CACHE_SIZE`` such as
``500G``): before a dataset is fetched, the least recently used blobs of other datasets are deleted to make
room, and a dataset larger than the bound is refused. Credentials and endpoints come from the store's own
configuration (``~/.aws``, ``AWS_ENDPOINT_URL`` for an S3-compatible server, ...). ``file://`` URLs are read
in place. Needs the ``[cloud]`` extra (fsspec, s3fs; gcsfs for ``gs://``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mammo_monai.io.atomic import atomic_path
from mammo_monai.io.cache_locks import Pin, cache_lock, entry_lock, pinned

logger = logging.getLogger(__name__)

#: bytes read and written at a time
CHUNK = 4 << 20
#: the default bound on the download cache's size (bytes)
DEFAULT_MAX_BYTES = 200 << 30
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def is_url(root: str) -> bool:
    """Whether ``root`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_URL.match(str(root)))


def parse_size(text: str) -> int:
    """``"200G"`` -> bytes (K, M, G, T: powers of 1024; a plain number is bytes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"download cache size {text!r}: write a number with an optional K, M, G or T")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _etag_md5(info: dict[str, Any]) -> str | None:
    """The object's MD5 where its ETag is one (S3, single-part uploads), else None."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"').lower()
    return etag if re.fullmatch(r"[0-9a-f]{32}", etag) else None


@dataclass
class DownloadCache:
    """A local, content-addressed, size-bounded cache of remote dataset files (see the module's notes).

    Args:
        folder: the cache folder (default ``$MAMMO_MONAI_DOWNLOAD_CACHE`` or ``~/.cache/mammo-monai/downloads``).
        max_bytes: the bound on the blobs' total size (default ``$MAMMO_MONAI_DOWNLOAD_CACHE_SIZE`` or 200 GiB).
        storage_options: keyword options of the fsspec filesystem (e.g. ``{"anon": True}``).
    """

    folder: Path | None = None
    max_bytes: int | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    #: what the last :meth:`local_root` did: files downloaded, resumed, reused, found corrupt; bytes fetched
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        default = Path(os.environ.get("MAMMO_MONAI_DOWNLOAD_CACHE", "~/.cache/mammo-monai/downloads"))
        self.folder = Path(self.folder or default).expanduser().resolve()
        env_size = os.environ.get("MAMMO_MONAI_DOWNLOAD_CACHE_SIZE")
        self.max_bytes = int(self.max_bytes or (parse_size(env_size) if env_size else DEFAULT_MAX_BYTES))

    def blob(self, sha: str) -> Path:
        """Where the file whose SHA-256 is ``sha`` is kept."""
        return self.folder / "blobs" / sha[:2] / sha

    def local_root(self, url: str) -> Path:
        """Copy every file under ``url`` into the cache (what is there and intact is reused) and return
        the local folder tree that mirrors it. Raises one ``ValueError`` line for an empty or unreadable
        location, or a dataset larger than the cache's bound."""
        if url.startswith("file://"):
            return Path(url[len("file://") :])
        fs, base = _filesystem(url, self.storage_options)
        try:
            listing = {p: i for p, i in fs.find(base, detail=True).items() if i.get("type", "file") == "file"}
        except (OSError, ValueError) as err:
            raise ValueError(f"{url}: cannot be listed ({type(err).__name__}: {err})") from err
        if not listing:
            raise ValueError(f"{url}: no files found there")
        listing = {p: _with_size(fs, p, i) for p, i in listing.items()}  # an HTTP listing gives names only
        total = sum(int(i.get("size") or 0) for i in listing.values())
        if total > self.max_bytes:
            raise ValueError(
                f"{url}: {total / 2**30:.1f} GiB of files, more than the download cache holds "
                f"({self.max_bytes / 2**30:.1f} GiB); raise --download-cache-size"
            )
        self.stats = {"downloaded": 0, "resumed": 0, "reused": 0, "corrupt": 0, "bytes": 0}
        keys = {p: self._key(fs, p, i) for p, i in listing.items()}
        tree = self.folder / "trees" / _sha(url.rstrip("/"))[:16]
        with Pin(self.folder) as pin:
            with cache_lock(self.folder):
                known = {self._indexed(k) for k in keys.values()} - {None}
                pin.add(known)  # before evicting: no other process evicts them either
                self._evict(total, keep={self.blob(s) for s in known})
            for path, info in sorted(listing.items()):
                rel = os.path.relpath(path, base.rstrip("/") or "/")
                rel = unquote(rel) if _is_http(fs) else rel  # an HTTP listing gives URLs: %20 for a space
                if os.path.isabs(rel) or rel == ".." or rel.startswith(f"..{os.sep}"):
                    raise ValueError(f"{url}: a listed file ({rel}) lies outside that location; refusing it")
                with entry_lock(self.folder, keys[path]):  # a second process wants it: it waits, then reuses it
                    _link(tree / rel, self._fetch(fs, path, info, keys[path], pin))
        logger.info("download cache %s: %s", self.folder, self.stats)
        return tree

    def _key(self, fs: Any, path: str, info: dict[str, Any]) -> str:
        changed = ("ETag", "etag", "md5Hash", "mtime", "Last-Modified")  # the first the store gives
        etag = str(next((info[k] for k in changed if info.get(k)), ""))
        return _sha(f"{fs.unstrip_protocol(path)}\0{info.get('size')}\0{etag}")

    def _indexed(self, key: str) -> str | None:
        entry = self.folder / "index" / key
        return entry.read_text().strip() if entry.is_file() else None

    def _fetch(self, fs: Any, path: str, info: dict[str, Any], key: str, pin: Pin) -> Path:
        """The blob of one remote file: reused when indexed and intact, else downloaded (resumed). Called
        holding the entry's lock; takes the cache's lock to pin, rename and index."""
        sha = self._indexed(key)
        if sha:
            with cache_lock(self.folder):
                pin.add({sha})  # indexed by another process since this run began: pinned before it is checked
        if sha and self.blob(sha).is_file():
            if file_sha256(self.blob(sha)) == sha:
                os.utime(self.blob(sha))  # most recently used
                self.stats["reused"] += 1
                return self.blob(sha)
            logger.warning("download cache: %s is corrupt (checksum); downloading it again", self.blob(sha))
            self.stats["corrupt"] += 1
            with cache_lock(self.folder):
                self.blob(sha).unlink(missing_ok=True)
        part = self.folder / "partial" / f"{key}.part"
        try:
            sha = self._download(fs, path, info, part)
        except _Corrupt:  # a resumed part that was not a prefix of the object: once more from the start
            sha = self._download(fs, path, info, part)
        with cache_lock(self.folder):
            self.blob(sha).parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, self.blob(sha))
            with atomic_path(self.folder / "index" / key) as tmp:
                Path(tmp).write_text(sha)
            pin.add({sha})
        self.stats["downloaded"] += 1
        return self.blob(sha)

    def _download(self, fs: Any, path: str, info: dict[str, Any], part: Path) -> str:
        """Stream ``path`` into ``part`` (from its length, if a download was interrupted) and check it;
        return its SHA-256."""
        size, md5 = info.get("size"), _etag_md5(info)
        size = None if size is None else int(size)  # None: the store does not say (some HTTP servers)
        part.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.is_file() else 0
        if have and (size is None or have > size):  # no length to resume against, or not a prefix of the object
            part.unlink()
            have = 0
        sha, md = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        if have:
            self.stats["resumed"] += 1
            with open(part, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    sha.update(chunk)
                    md.update(chunk)
        url = fs.unstrip_protocol(path)
        try:
            with fs.open(path, "rb") as src, open(part, "ab") as dst:
                src.seek(have)
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    sha.update(chunk)
                    md.update(chunk)
                    self.stats["bytes"] += len(chunk)
        except ValueError as err:  # fsspec's HTTP file, when the server ignores range requests
            if not have:
                raise
            part.unlink()
            raise _Corrupt(f"{url}: cannot resume ({err})") from err
        got = part.stat().st_size
        if (size is not None and got != size) or (md5 and md.hexdigest() != md5):
            part.unlink()
            what = f"{got} bytes, expected {size}" if got != size else "its MD5 differs from the store's ETag"
            error = _Corrupt if have else ValueError
            raise error(f"{url}: download is corrupt ({what}); run again to download it afresh")
        return sha.hexdigest()

    def evict(self, incoming: int, keep: set[Path] = frozenset()) -> list[Path]:
        """Delete the least recently used blobs (not in ``keep``, not pinned by a running process) until
        ``incoming`` more bytes fit under the bound; returns the deleted blobs. Their tree links dangle until
        their dataset is fetched again."""
        with cache_lock(self.folder):
            return self._evict(incoming, keep)

    def _evict(self, incoming: int, keep: set[Path]) -> list[Path]:
        """:meth:`evict`, holding the cache's lock."""
        keep = set(keep) | {self.blob(s) for s in pinned(self.folder)}
        blobs = [(p.stat().st_mtime, p.stat().st_size, p) for p in (self.folder / "blobs").glob("*/*") if p.is_file()]
        used = sum(s for _, s, p in blobs if p not in keep)
        deleted = []
        for _, size, path in sorted(blobs):
            if used + incoming <= self.max_bytes:
                break
            if path not in keep:
                path.unlink()
                used -= size
                deleted.append(path)
        return deleted


class _Corrupt(ValueError):
    """A resumed download that does not check out (its part was not a prefix of the object)."""


def _filesystem(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as err:  # the [cloud] extra
        raise ValueError(f"{url}: reading a URL needs fsspec: pip install 'mammo-monai[cloud]'") from err
    try:
        return fsspec.core.url_to_fs(url, **storage_options)
    except (ImportError, ValueError) as err:
        raise ValueError(f"{url}: no filesystem for this URL ({err}); pip install 'mammo-monai[cloud]'") from err


def _is_http(fs: Any) -> bool:
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & {"http", "https"})


def _link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (a symlink, replaced atomically when it pointed elsewhere)."""
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _with_size(fs: Any, path: str, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with the file's ``size`` asked of the store when the listing left it out (None if it still
    does not say: the download is then checked by its checksum only and the cache bound by what arrives).
    An HTTP listing is always asked again (a HEAD request): its index pages give names only, and a size
    fsspec remembered from an earlier listing comes without the ``Last-Modified`` date the key needs."""
    if info.get("size") is not None and not _is_http(fs):
        return info
    try:
        return {**info, **fs.info(path)}
    except (OSError, ValueError):
        return info

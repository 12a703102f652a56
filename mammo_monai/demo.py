"""The README's main job: synthesise a CBIS-DDSM-like dataset and run the pipeline on it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mammo_monai.preprocess import preprocess
from mammo_monai.synthetic import make_cbis_tree


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def run_demo(workdir: str | os.PathLike = "demo", patients: int = 100, seed: int = 0, workers: int | None = None) -> dict[str, Any]:
    """Synthesise ``patients`` patients and preprocess their full-field images.

    Later stages (manifest, patch sets, staged training, evaluation, export) are added to this
    function as they land; ``summary.json`` in ``workdir`` records what ran and how long it took.
    """
    t0 = time.time()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"[1/2] synthesising {patients} CBIS-DDSM-like patients into {work / 'cbis-ddsm'}", flush=True)
    synth = make_cbis_tree(work / "cbis-ddsm", patients=patients, seed=seed, workers=workers, progress=True)
    full = sorted((work / "cbis-ddsm" / "CBIS-DDSM").glob("*/*/1.000000-full mammogram images-*/1-1.dcm"))
    print(f"[2/2] preprocessing {len(full)} full-field DICOMs into {work / 'preprocessed'}", flush=True)
    t1 = time.time()
    report = preprocess(full, work / "preprocessed", workers=workers)
    ok = int((report["status"] == "ok").sum())
    summary = {
        "wall_seconds": round(time.time() - t0, 1),
        "patients": patients,
        "images": synth["images"],
        "lesions": synth["lesions"],
        "preprocessed_ok": ok,
        "preprocessed_failed": len(report) - ok,
        "preprocess_images_per_second": round(len(report) / max(time.time() - t1, 1e-9), 2),
        "preprocess_report": str(work / "preprocessed" / "preprocess.csv"),
    }
    write_json(work / "summary.json", summary)
    print(json.dumps(summary, indent=2))
    return summary

"""The README's main job: synthesise a CBIS-DDSM-like dataset and run the pipeline on it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def run_demo(workdir: str | os.PathLike = "demo", patients: int = 100, seed: int = 0, workers: int | None = None,
             size: tuple[int, int] = (1152, 896), patch_size: int = 224) -> dict[str, Any]:
    """Synthesise ``patients`` patients, prepare the manifest and cache, and cut the S10 patch set.

    Staged training, evaluation and export join this function as they land; ``summary.json`` in
    ``workdir`` records what ran and how long it took.
    """
    t0 = time.time()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"[1/3] synthesising {patients} CBIS-DDSM-like patients into {work / 'cbis-ddsm'}", flush=True)
    synth = make_cbis_tree(work / "cbis-ddsm", patients=patients, seed=seed, workers=workers, progress=True)
    print(f"[2/3] preparing the manifest and the {size[0]}x{size[1]} cache in {work / 'manifest'}", flush=True)
    prep = prepare("cbis-ddsm", work / "cbis-ddsm", work / "manifest", size=size, split_seed=seed, workers=workers)
    print(f"[3/3] cutting S10 patches ({patch_size} px) into {work / 'patches'}", flush=True)
    patches = make_patches(work / "manifest", work / "patches", scheme="s10", size=patch_size, seed=seed, workers=workers)
    summary = {
        "wall_seconds": round(time.time() - t0, 1),
        "patients": patients,
        "images": prep["images"],
        "lesions": prep["lesions"],
        "failed_images": prep["failed_images"],
        "splits": prep["splits"],
        "prepare_images_per_second": prep["images_per_second"],
        "patches": patches["patches"],
        "patches_per_class": patches["per_class"],
        "synth_seconds": synth["seconds"],
        "manifest": str(work / "manifest"),
    }
    write_json(work / "summary.json", summary)
    print(json.dumps(summary, indent=2))
    return summary

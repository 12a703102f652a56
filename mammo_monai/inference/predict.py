"""``mammo-monai predict``: a folder of mammograms -> probabilities (and optional heatmaps)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mammo_monai.data.cache_record import transform_options
from mammo_monai.evaluation.exam_rows import breast_and_exam_rows
from mammo_monai.evaluation.metrics import positive_probability
from mammo_monai.inference.backend_choice import runtime_network
from mammo_monai.inference.bundle import FLIPS, is_lesion_segmenter, load_networks, open_bundle
from mammo_monai.inference.heatmaps import save_heatmaps, sliding_window_probabilities
from mammo_monai.inference.segment_classify import SegmentThenClassify
from mammo_monai.io.atomic import write_csv
from mammo_monai.io.errors import describe_error
from mammo_monai.io.exam_key import breast_key, image_keys
from mammo_monai.io.walk import find_images
from mammo_monai.training.model_meta import trained_setting
from mammo_monai.transforms.pipelines import preprocess_transforms


def model_preprocessing(
    bundle_root: str | os.PathLike, modalities: Sequence[str] | None | str = "model"
) -> dict[str, Any]:
    """The preprocessing a model was trained with (recorded from its cache at training time), as
    keyword arguments for :func:`_load`; models trained before it was recorded get the defaults at
    their recorded image size. ``modalities`` other than "model" replace the recorded ones."""
    recorded = trained_setting(bundle_root, "preprocessing", None) or {}
    settings = {
        "size": recorded.get("size") or trained_setting(bundle_root, "image_size", [1152, 896]),
        **transform_options(recorded),
        "modalities": recorded.get("modalities", ["MG"]),
    }
    if modalities != "model":
        settings["modalities"] = modalities
    return settings


def segment_then_classify(
    root: Path, patch_bundle: str | os.PathLike | None, tta: bool, workdir: Path
) -> SegmentThenClassify | None:
    """The segment-then-classify pipeline when ``root`` is a lesion segmenter, else None."""
    if not is_lesion_segmenter(root):
        return None
    if not patch_bundle:
        raise ValueError(f"{root.name}: a lesion segmenter; predict with --patch-bundle (the patch classifier)")
    if tta:
        raise ValueError(f"{root.name}: segment-then-classify has no TTA")
    return SegmentThenClassify(root, patch_bundle, workdir)


def save_lesion_maps(out_dir: str | os.PathLike, name: str, d: dict[str, Any], found: dict[str, Any]) -> None:
    """The lesion probability as a heatmap (NIfTI + overlay PNG, like the patch heatmaps) and the
    candidates with their malignancy as ``<name>_candidates.csv``, in the preprocessed image's pixels."""
    meta = d["image"].meta
    spacing = [sp / sc for sp, sc in zip(meta.get("pixel_spacing", [1.0, 1.0]), meta.get("scale", [1.0, 1.0]))]
    lesion = found["lesion_map"]
    save_heatmaps(
        out_dir, name, d["image"][0].numpy(), np.stack([1 - lesion, lesion]), ["background", "lesion"], spacing
    )
    rows = [
        {
            "candidate": i,
            "score": c["score"],
            "malignancy": c.get("malignancy"),
            "area": c["area"],
            "center_row": c["centroid"][0],
            "center_col": c["centroid"][1],
        }
        for i, c in enumerate(found["candidates"])
    ]
    columns = ["candidate", "score", "malignancy", "area", "center_row", "center_col"]
    write_csv(pd.DataFrame(rows, columns=columns), Path(out_dir) / f"{name}_candidates.csv")


def _load(path: str, **settings: Any) -> dict[str, Any]:
    return preprocess_transforms(**settings)({"image": path})


#: ``predict``'s CSV columns; ``decision`` only for a model that stores its operating point.
COLUMNS = [
    "file",
    "level",
    "patient",
    "exam",
    "breast",
    "laterality",
    "view",
    "n_views",
    "probability",
    "decision",
    "grouped_by",
    "status",
]


@torch.inference_mode()
def predict(
    bundle: str | os.PathLike,
    inputs: str | os.PathLike | Sequence[str],
    out_csv: str | os.PathLike,
    tta: bool = False,
    heatmaps: str | os.PathLike | None = None,
    patch_bundle: str | os.PathLike | None = None,
    batch_size: int = 4,
    stride: int | None = None,
    progress: bool = True,
    modalities: Sequence[str] | None | str = "model",
    backend: str = "auto",
) -> pd.DataFrame:
    """Predict P(malignant) for every readable mammogram in ``inputs``; unreadable files get an
    error row. With ``heatmaps``, also run the patch classifier of ``patch_bundle`` as a sliding
    window (``stride`` px, default a quarter patch) and save the maps (see :func:`save_heatmaps`).
    Images are preprocessed exactly as the model's training data were (size, aspect, crop,
    intensity scaling, accepted modalities: :func:`model_preprocessing`).

    Rows (:data:`COLUMNS`): one per image (``level`` "image"), then one per breast ("breast") and one
    per exam ("exam"), even of one image (:func:`~mammo_monai.evaluation.exam_rows.breast_and_exam_rows`).
    An exam is a DICOM study, else what a file name pattern names, else the file alone
    (:mod:`mammo_monai.io.exam_key`); ``patient`` and ``exam`` are salted hashes, never a UID or an ID,
    and ``grouped_by`` says which rule applied. A breast scores the mean of its views (``n_views``),
    an exam its most suspicious breast. A model that stores its operating point (the screening
    recipe's pF1 selection) aggregates each breast its way (mean or max) and adds ``decision`` (1:
    recall) at its stored threshold.

    ``backend`` runs the classifier with "eager" PyTorch (bf16 autocast where the CPU has it),
    "onnxruntime", "openvino" (reading the exported bundle's ``model.onnx``, else an export cached per
    weights), or "auto": the backend chosen for this bundle on its validation images and recorded at export
    (:mod:`~mammo_monai.inference.backend_choice`), else the fastest of ``scripts/bench_infer.py`` (see
    :func:`~mammo_monai.inference.onnx_runtime.inference_backend`; eager with a warning when its package
    is missing or the export fails). Heatmaps and the segmenter stay eager.
    """
    if heatmaps and not patch_bundle:
        raise ValueError("--heatmaps needs --patch-bundle (the patch classifier that draws them)")
    # a lesion segmenter bundle predicts as segment-then-classify, with patch_bundle scoring its candidates
    problems: list[dict[str, str]] = []
    files = find_images(
        [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs), problems
    )  # (file, unique name)
    if not files:
        raise FileNotFoundError(f"{inputs}: no DICOM / PNG / PGM / TIFF file found")
    with tempfile.TemporaryDirectory() as tmp:
        root = open_bundle(bundle, Path(tmp) / "whole")
        pipeline = segment_then_classify(root, patch_bundle, tta, Path(tmp) / "pipeline")
        prep = model_preprocessing(root, modalities)
        nets = (
            []
            if pipeline
            else [
                runtime_network(net, backend, torch.rand(1, 1, *[int(s) for s in prep["size"]]), root, tmp)
                for net in load_networks(root, (), tmp, bf16=False)
            ]
        )
        selection = trained_setting(root, "selection", None)
        patch_net, patch_size, class_names = None, None, None
        if heatmaps and not pipeline:
            proot = open_bundle(patch_bundle, Path(tmp) / "patch")
            patch_net = load_networks(proot, (), tmp)[0]
            patch_size = int(trained_setting(proot, "image_size", [224, 224])[0])
            class_names = trained_setting(proot, "class_names", [str(i) for i in range(5)])
        rows: list[dict[str, Any]] = [
            {"file": p["file"], "level": "image", "status": f"error: {p['file']}: {p['reason']}"} for p in problems
        ]
        pending: list[tuple[dict[str, Any], dict[str, Any]]] = []

        def flush() -> None:
            if not pending:
                return
            x = (
                torch.stack([d["image"].as_tensor() for d, _ in pending])
                .float()
                .contiguous(memory_format=torch.channels_last)
            )
            flips = FLIPS if tta else ((),)
            probs = sum(positive_probability(net(torch.flip(x, f) if f else x)) for net in nets for f in flips) / (
                len(nets) * len(flips)
            )
            for (_, row), p in zip(pending, probs.tolist()):
                row.update(probability=p, status="ok")
                rows.append(row)
            pending.clear()

        for path, name in tqdm(files, desc="predict", disable=not progress, unit="img"):
            f = str(path)
            row: dict[str, Any] = {"file": f, "level": "image"}
            try:
                d = _load(f, **prep)
            except Exception as err:
                rows.append({**row, "status": f"error: {describe_error(err, f)}"})
                continue
            meta = d["image"].meta
            keys = meta if meta.get("exam_key") else image_keys(f)  # the reader's; a file of its own otherwise
            row.update(
                laterality=meta.get("laterality", "") or ("R" if d.get("flipped") else "L"),
                view=meta.get("view", ""),
                patient=keys["patient_key"],
                exam=keys["exam_key"],
                grouped_by=keys["grouped_by"],
            )
            row["breast"] = breast_key(row["exam"], row["laterality"])
            if pipeline:
                found = pipeline(d["image"].as_tensor())
                rows.append({**row, "probability": found["probability"], "status": "ok"})
                if heatmaps:
                    save_lesion_maps(heatmaps, name, d, found)
                continue
            pending.append((d, row))
            if heatmaps:
                maps = sliding_window_probabilities(
                    patch_net, d["image"].as_tensor().float(), d["mask"], patch_size, stride or max(1, patch_size // 4)
                )
                spacing = [
                    sp / sc for sp, sc in zip(meta.get("pixel_spacing", [1.0, 1.0]), meta.get("scale", [1.0, 1.0]))
                ]
                save_heatmaps(
                    heatmaps, name, d["image"][0].numpy(), maps.numpy(), class_names, spacing
                )  # mm of the resized pixels
            if len(pending) >= batch_size:
                flush()
        flush()
    table = result_table(rows, selection)
    write_csv(table, out_csv)
    return table


def result_table(rows: list[dict[str, Any]], selection: dict[str, Any] | None) -> pd.DataFrame:
    """The image rows, then the breast and exam rows of the images that were predicted, in :data:`COLUMNS`
    (with ``decision`` when the model stores its operating point ``selection``)."""
    table = pd.DataFrame(rows).reindex(columns=[c for c in COLUMNS if c != "decision"])
    ok = table[table["status"] == "ok"]
    how, threshold = (selection["aggregation"], float(selection["threshold"])) if selection else ("mean", None)
    summary = breast_and_exam_rows(ok, how, threshold).assign(file="", view="", status="ok")
    table = pd.concat([table, summary], ignore_index=True) if not summary.empty else table
    table = table.astype({"n_views": "Int64", **({"decision": "Int64"} if "decision" in table else {})})
    return table.reindex(columns=[c for c in COLUMNS if c != "decision" or selection])

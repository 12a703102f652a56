"""``mammo-monai predict``: a folder of mammograms -> probabilities (and optional heatmaps).

Images are preprocessed exactly as the model's training data were (size, aspect, crop, intensity scaling,
accepted modalities: :func:`model_preprocessing`); unreadable files get an error row.

Rows (:data:`COLUMNS`): one per image (``level`` "image"), then one per breast ("breast") and one per exam
("exam"), even of one image (:func:`~mammo_monai.evaluation.exam_rows.breast_and_exam_rows`). An exam is a
DICOM study, else what a file name pattern names, else the file alone (:mod:`mammo_monai.io.exam_key`);
``patient`` and ``exam`` are salted hashes, never a UID or an ID, and ``grouped_by`` says which rule applied.
A breast scores the mean of its views (``n_views``), an exam its most suspicious breast. A bundle that
declares a ``decision_rule`` (e.g. the operating point stored with its weights) aggregates each breast its way
(mean or max) and, when its ``outputs`` name ``decision``, adds that column (1: recall) at its threshold
(:mod:`~mammo_monai.inference.opened_bundle`). A bundle that carries a calibration (``mammo-monai calibrate``)
adds ``probability_calibrated`` and ``decision@<name>`` per operating point to every scored row, breasts
calibrated after aggregating their raw probabilities
(:func:`~mammo_monai.evaluation.calibrated_columns.with_calibrated_columns`). A bundle that declares
``segment_then_classify`` scores its candidate lesions with the patch bundle (and writes its lesion maps
with ``heatmaps``).

Backends: "eager" PyTorch (bf16 autocast where the CPU has it), "onnxruntime", "openvino" (reading the
exported bundle's ``model.onnx``, else an export cached per weights), or "auto": the backend chosen for this
bundle on its validation images and recorded at export (:mod:`~mammo_monai.inference.backend_choice`), else
the fastest of ``scripts/bench_infer.py`` (see :func:`~mammo_monai.inference.onnx_runtime.inference_backend`;
eager with a warning when its package is missing or the export fails). The heatmaps' patch classifier runs on
the same backend ("auto": its own bundle's recorded choice, else OpenVINO at the CPU's precision), its windows
in batches of :data:`~mammo_monai.inference.heatmaps.HEATMAP_BATCH`
(:func:`~mammo_monai.inference.heatmaps.heatmap_network`); the segmenter stays eager.

Beside ``out_csv`` go ``<stem>_breasts.csv`` and ``<stem>_exams.csv`` and the aggregation they used in
``<stem>.json`` (:func:`~mammo_monai.evaluation.prediction_tables.write_prediction_tables`). With an
``exam_list`` (the NYU metarepository's ``data.pkl``), the images it names are predicted (found under
``inputs``) and its ``image_predictions.csv`` / ``breast_predictions.csv`` written beside ``out_csv``;
``nyu_tables`` writes those for a folder too (:mod:`~mammo_monai.evaluation.nyu_tables`).

DICOM outputs (``dicom_out``): for each scored input DICOM a Structured Report (``<name>_sr.dcm``: the
image's and its breast's probability, calibrated when the bundle carries a calibration, and the decision at
each operating point) and, where a lesion map on the original grid exists, a Segmentation
(``<name>_seg.dcm``), both referencing the source (:mod:`~mammo_monai.inference.dicom_results`);
``anonymous_outputs`` writes none of the source's identifiers into them.
"""

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

from mammo_monai.evaluation.calibrated_columns import with_calibrated_columns
from mammo_monai.evaluation.exam_rows import breast_and_exam_rows
from mammo_monai.evaluation.prediction_tables import exam_list_files, write_prediction_tables
from mammo_monai.inference.backend_choice import runtime_network
from mammo_monai.inference.heatmaps import heatmap_network, sliding_window_probabilities
from mammo_monai.inference.map_store import DiscardedMaps, MapStore
from mammo_monai.inference.opened_bundle import DecisionRule, OpenedBundle, model_preprocessing, open_bundle
from mammo_monai.inference.original_grid import boxes_to_original, points_to_original, save_on_original_grid
from mammo_monai.inference.segment_classify import SegmentThenClassify
from mammo_monai.inference.tta import averaged_probability
from mammo_monai.io.atomic import write_csv
from mammo_monai.io.errors import describe_error
from mammo_monai.io.exam_key import image_group
from mammo_monai.io.walk import find_images
from mammo_monai.transforms.pipelines import preprocess_transforms

__all__ = ["COLUMNS", "model_preprocessing", "predict", "result_table", "save_lesion_maps"]


def save_lesion_maps(out_dir: str | os.PathLike, name: str, d: dict[str, Any], found: dict[str, Any]) -> np.ndarray:
    """The lesion probability as a heatmap (NIfTI + overlay PNG, like the patch heatmaps) and the candidates
    with their malignancy as ``<name>_candidates.csv``, on the ORIGINAL image's grid (rows, columns of the
    file as stored; :mod:`~mammo_monai.inference.original_grid`); returns that lesion map (rows, cols)."""
    meta = d["image"].meta
    lesion = found["lesion_map"]
    back = save_on_original_grid(
        out_dir, name, meta, np.stack([1 - lesion, lesion]), ["background", "lesion"], d["image"][0].numpy()
    )
    cands = found["candidates"]
    centres = points_to_original(np.array([c["centroid"] for c in cands]).reshape(-1, 2), meta)
    boxes = boxes_to_original(np.array([c["bbox"] for c in cands]).reshape(-1, 4), meta)
    rows = [
        {"candidate": i, "score": c["score"], "malignancy": c.get("malignancy"), "area": c["area"]}
        | dict(zip(CANDIDATE_COLUMNS[4:6], np.round(centres[i], 1)))
        | dict(zip(CANDIDATE_COLUMNS[6:], np.round(boxes[i]).astype(int)))
        for i, c in enumerate(cands)
    ]
    write_csv(pd.DataFrame(rows, columns=CANDIDATE_COLUMNS), Path(out_dir) / f"{name}_candidates.csv")
    return back


#: ``<name>_candidates.csv``: ``area`` in network pixels; centres and boxes (end exclusive) in ORIGINAL pixels
CANDIDATE_COLUMNS = [
    "candidate",
    "score",
    "malignancy",
    "area",
    "center_row_original",
    "center_col_original",
    "row0_original",
    "col0_original",
    "row1_original",
    "col1_original",
]


def _load(path: str, **settings: Any) -> dict[str, Any]:
    return preprocess_transforms(**settings)({"image": path})


#: ``predict``'s CSV columns; ``decision`` only for a model that stores its operating point; a calibrated
#: bundle adds ``probability_calibrated`` and ``decision@<name>`` after ``probability`` / ``decision``.
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
    exam_list: str | os.PathLike | None = None,
    nyu_tables: bool = False,
    dicom_out: str | os.PathLike | None = None,
    anonymous_outputs: bool = False,
) -> pd.DataFrame:
    """Predict P(malignant) for every readable mammogram in ``inputs`` into ``out_csv`` (module docstring:
    the rows, the backends, the tables and DICOM files written beside it).

    Args:
        bundle: the classifier's bundle folder or archive.
        inputs: files or folders of DICOM / PNG / PGM / TIFF images.
        out_csv: the image, breast and exam rows (:data:`COLUMNS`).
        tta: average the probability of the image and its flip.
        heatmaps: a folder for the sliding-window maps of ``patch_bundle`` (or a segmenter's lesion maps).
        stride: the heatmaps' window step in pixels (default: a quarter patch).
        patch_bundle: the patch classifier (heatmaps; the candidate scorer of segment-then-classify).
        batch_size: images per forward pass.
        progress: show a progress bar.
        modalities: the accepted modalities ("model": those the model was trained on).
        backend: "eager", "onnxruntime", "openvino" or "auto".
        exam_list: the NYU metarepository's ``data.pkl``; its images are looked up under ``inputs``.
        nyu_tables: write the NYU ``image_predictions.csv`` / ``breast_predictions.csv`` for a folder too.
        dicom_out: a folder for each scored input DICOM's Structured Report and Segmentation.
        anonymous_outputs: write none of the source's identifiers into the DICOM outputs.

    Returns:
        The table written to ``out_csv``; ``attrs`` "dicom_written" (a count) and "dicom_errors" with ``dicom_out``.
    """
    _check_options(heatmaps, patch_bundle, dicom_out, anonymous_outputs)
    problems: list[dict[str, str]] = []
    exams, named = exam_list_files(exam_list, inputs) if exam_list else (None, None)
    files = _input_files(sorted(set(named.values())) if named is not None else inputs, problems)
    with tempfile.TemporaryDirectory() as tmp:
        opened = open_bundle(bundle, Path(tmp) / "whole", partner=patch_bundle)
        opened.check_request(tta, heatmaps=bool(heatmaps))
        # each lesion map on the original grid waits on disk for its DICOM SEG (never all in memory)
        maps = MapStore(Path(tmp) / "maps") if dicom_out else DiscardedMaps()
        prep = opened.transform_settings(modalities)
        score = _scorer(opened, backend, tta, prep, heatmaps, stride, [], batch_size, tmp)
        score.original_maps = maps
        rows = _score_files(score, files, problems, prep, progress)
        table = result_table(rows, opened.decision_rule, "decision" in opened.outputs)
        table = with_calibrated_columns(table, opened.calibration)  # a calibrated bundle's columns
        write_csv(table, out_csv)
        write_prediction_tables(table, rows, out_csv, opened, exams=exams, named=named, nyu=nyu_tables)
        if dicom_out:
            table.attrs.update(_dicom_outputs(table, files, maps, dicom_out, opened, anonymous_outputs))
    return table


def _check_options(heatmaps: Any, patch_bundle: Any, dicom_out: Any, anonymous_outputs: bool) -> None:
    """Raise ``ValueError`` for an option that needs another one that was not given."""
    if heatmaps and not patch_bundle:
        raise ValueError("--heatmaps needs --patch-bundle (the patch classifier that draws them)")
    if anonymous_outputs and not dicom_out:
        raise ValueError("--anonymous-outputs needs --dicom-out (the folder of the DICOM outputs it anonymises)")


def _dicom_outputs(
    table: pd.DataFrame, files: list[tuple[Path, str]], maps: Any, dicom_out: str | os.PathLike, opened: OpenedBundle,
    anonymous: bool,
) -> dict[str, Any]:  # fmt: skip
    """Write each scored DICOM's SR (and SEG) into ``dicom_out``; returns ``dicom_written`` and ``dicom_errors``."""
    from mammo_monai.inference.dicom_results import write_dicom_outputs  # highdicom: only when asked

    written, errors = write_dicom_outputs(table, files, maps, dicom_out, opened, anonymous)
    return {"dicom_written": written, "dicom_errors": errors}


def _input_files(inputs: str | os.PathLike | Sequence[str], problems: list[dict[str, str]]) -> list[tuple[Path, str]]:
    """The (file, unique name) pairs of the images found in ``inputs``; what cannot be read goes to ``problems``.

    Raises:
        FileNotFoundError: when no image is found.
    """
    files = find_images([inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs), problems)
    if not files:
        raise FileNotFoundError(f"{inputs}: no DICOM / PNG / PGM / TIFF file found")
    return files


def _score_files(
    score: _Scorer, files: Sequence[tuple[Path, str]], problems: list[dict[str, str]], prep: dict[str, Any],
    progress: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """The image rows of ``files`` ((path, unique name) pairs) scored by ``score``, after an error row for each
    of ``problems`` and for each file that cannot be loaded with the model's preprocessing ``prep``."""
    rows = score.rows
    rows += [{"file": p["file"], "level": "image", "status": f"error: {p['file']}: {p['reason']}"} for p in problems]
    for path, name in tqdm(files, desc="predict", disable=not progress, unit="img"):
        f = str(path)
        row: dict[str, Any] = {"file": f, "level": "image"}
        try:
            d = _load(f, **prep)
        except Exception as err:
            rows.append({**row, "status": f"error: {describe_error(err, f)}"})
            continue
        meta = d["image"].meta
        laterality = meta.get("laterality", "") or ("R" if d.get("flipped") else "L")
        row.update(laterality=laterality, view=meta.get("view", ""), **image_group(meta, f, laterality))
        score.add(d, row, name)
    score.flush()
    return rows


class _Scorer:
    """``predict``'s scoring of loaded images into ``rows``: batched through the networks (flip TTA), or one
    by one through segment-then-classify, with the maps the bundle declares when ``heatmaps`` is a folder."""

    def __init__(
        self,
        opened: OpenedBundle,
        nets,
        pipeline,
        heatmaps,
        stride,
        rows,
        batch_size: int,
        tta: bool,
        backend: str = "eager",
        workdir: str | os.PathLike = ".",
    ):
        self.opened, self.nets, self.pipeline, self.heatmaps = opened, nets, pipeline, heatmaps
        self.stride, self.rows, self.batch_size, self.tta = stride, rows, batch_size, tta
        self.pending: list[tuple[dict[str, Any], dict[str, Any]]] = []
        #: unique image name -> float32 (rows, cols) lesion probability on the original grid, filled whenever
        #: heatmaps (1 - background) or lesion maps are computed (the DICOM SEG writer reads it)
        self.original_maps: dict[str, np.ndarray] = {}
        partner = opened.partner
        self.patch_net = None
        if heatmaps and pipeline is None:  # the patch classifier on the classifier's backend
            self.patch_size = int(partner.trained.get("image_size", [224, 224])[0])
            self.class_names = partner.trained.get("class_names", [str(i) for i in range(5)])
            self.patch_net = heatmap_network(partner, backend, self.patch_size, workdir)

    def add(self, d: dict[str, Any], row: dict[str, Any], name: str) -> None:
        if self.pipeline is not None:
            found = self.pipeline(d["image"].as_tensor())
            self.rows.append({**row, "probability": found["probability"], "status": "ok"})
            if self.heatmaps and "lesion_map" in self.opened.outputs:
                self.original_maps[name] = save_lesion_maps(self.heatmaps, name, d, found)
            return
        self.pending.append((d, row))
        if self.patch_net is not None:
            maps = sliding_window_probabilities(
                self.patch_net,
                d["image"].as_tensor().float(),
                d["mask"],
                self.patch_size,
                self.stride,
            )
            self.original_maps[name] = save_on_original_grid(
                self.heatmaps, name, d["image"].meta, maps.numpy(), self.class_names, d["image"][0].numpy()
            )  # on the file's own pixel grid and spacing
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        x = torch.stack([d["image"].as_tensor() for d, _ in self.pending]).float()
        probs = averaged_probability(
            self.nets, x.contiguous(memory_format=torch.channels_last), self.opened.probability, self.tta
        )
        benign = _benign_classes(self.opened)
        if benign:
            soft = lambda z: torch.softmax(z.float(), 1)[:, benign].sum(1)  # noqa: E731
            for (_, row), b in zip(self.pending, averaged_probability(self.nets, x, soft, self.tta).tolist()):
                row["benign"] = b
        for (_, row), p in zip(self.pending, probs.tolist()):
            row.update(probability=p, status="ok")
            self.rows.append(row)
        self.pending.clear()


def _benign_classes(opened: OpenedBundle) -> list[int]:
    """The softmax classes named benign of a model with more than one malignant-or-benign output ([] for a
    two-class or sigmoid model: its benign probability is 1 - P(malignant))."""
    if opened.output_activation != "softmax" or len(opened.class_names) <= 2:
        return []
    return [i for i, n in enumerate(opened.class_names) if "benign" in str(n).lower()]


def _scorer(opened: OpenedBundle, backend, tta, prep, heatmaps, stride, rows, batch_size, tmp) -> _Scorer:
    """The scorer of the bundle's declared pipeline; classifier networks run on ``backend``."""
    if opened.pipeline == "segment_then_classify":
        return _Scorer(opened, [], SegmentThenClassify(opened), heatmaps, stride, rows, batch_size, tta)
    example = torch.rand(1, 1, *[int(s) for s in prep["size"]])
    nets = [runtime_network(net, backend, example, opened, tmp) for net in opened.networks(bf16=False)]
    return _Scorer(opened, nets, None, heatmaps, stride, rows, batch_size, tta, backend, tmp)


def result_table(
    rows: list[dict[str, Any]], rule: DecisionRule | None = None, with_decision: bool = False
) -> pd.DataFrame:
    """The image rows, then the breast and exam rows of the images that were predicted, in :data:`COLUMNS`:
    breasts scored by ``rule`` (default: the mean of their views) and, ``with_decision``, its ``decision``."""
    rule = rule or DecisionRule()
    table = pd.DataFrame(rows).reindex(columns=[c for c in COLUMNS if c != "decision"])
    ok = table[table["status"] == "ok"]
    threshold = rule.threshold if with_decision else None
    summary = breast_and_exam_rows(ok, rule.aggregation, threshold).assign(file="", view="", status="ok")
    table = pd.concat([table, summary], ignore_index=True) if not summary.empty else table
    table = table.astype({"n_views": "Int64", **({"decision": "Int64"} if "decision" in table else {})})
    return table.reindex(columns=[c for c in COLUMNS if c != "decision" or threshold is not None])

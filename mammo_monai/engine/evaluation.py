"""``mammo-monai evaluate``: per-image and per-exam figures of a whole-image bundle on a manifest split,
with 4-flip test-time augmentation and model averaging. AUC intervals resample patients; operating
thresholds are chosen on the validation split and applied to the evaluated one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from monai.data import DataLoader, Dataset

from mammo_monai.data.cache_record import check_same_preprocessing, read_record
from mammo_monai.data.manifest import check_one_split_per_patient
from mammo_monai.engine.inference import trained_setting
from mammo_monai.engine.export import build_inference_network, open_bundle
from mammo_monai.engine.scores import aggregate_exams, binary_report, tune_thresholds
from mammo_monai.engine.staging import bf16_supported, enable_cpu_autocast, load_weights
from mammo_monai.io.atomic import write_csv, write_json
from mammo_monai.networks import guard_convolutions
from mammo_monai.transforms.pipelines import eval_transforms

FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


@torch.inference_mode()
def predict_probabilities(networks: Sequence[torch.nn.Module], data: list[dict[str, Any]], transform, tta: bool = False,
                          batch_size: int = 4) -> np.ndarray:
    """P(malignant) per item: softmax averaged over the networks and, with ``tta``, over the four
    flips (none, horizontal, vertical, both)."""
    loader = DataLoader(Dataset(data, transform), batch_size=batch_size, shuffle=False, num_workers=0)
    out = []
    for batch in loader:
        x = batch["image"].float().to(memory_format=torch.channels_last)
        probs = torch.zeros(x.shape[0])
        flips = FLIPS if tta else ((),)
        for net in networks:
            for dims in flips:
                xi = torch.flip(x, dims) if dims else x
                probs += torch.softmax(net(xi).float(), 1)[:, 1]
        out.append(probs / (len(networks) * len(flips)))
    return torch.cat(out).numpy()


def load_networks(bundle: Path, ensemble: Sequence[str | os.PathLike] = (), workdir: str | os.PathLike = ".", bf16: bool | str = "auto") -> list[torch.nn.Module]:
    """The bundle's network plus one per ``ensemble`` entry (a checkpoint of the same architecture,
    or another bundle folder / zip), in eval mode."""
    nets = [build_inference_network(bundle)]
    for i, item in enumerate(ensemble):
        p = Path(item)
        if p.is_dir() or p.suffix == ".zip":
            nets.append(build_inference_network(open_bundle(p, Path(workdir) / f"ensemble{i}")))
        else:
            net = build_inference_network(bundle)
            load_weights(net, p, "ensemble checkpoint")
            nets.append(net)
    for net in nets:
        guard_convolutions(net)  # networks/onednn_guards.py: channels_last and bf16 reach two oneDNN bugs
        net.to(memory_format=torch.channels_last)
        if bf16 is True or (bf16 == "auto" and bf16_supported()):
            enable_cpu_autocast(net)
    return nets


def exam_key(table: pd.DataFrame) -> pd.Series:
    """The exam of each image: the manifest's ``exam`` column, else patient + laterality."""
    if "exam" in table.columns:
        return table["exam"].astype(str)
    return table["patient_id"].astype(str) + "_" + table["laterality"].astype(str)


def level_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows to score per level: ``image`` (one per image) and ``exam_mean`` / ``exam_max`` (one per
    exam, probability = mean or max of its images), each with ``label``, ``probability`` and, when
    the table has it, ``patient_id``."""
    table = table.assign(exam=exam_key(table))
    levels = {"image": table}
    for how in ("mean", "max"):
        exams = aggregate_exams(table, how=how)
        if "patient_id" in table.columns:
            exams["patient_id"] = exams["exam"].map(table.drop_duplicates("exam").set_index("exam")["patient_id"])
        levels[f"exam_{how}"] = exams
    return levels


def split_metrics(table: pd.DataFrame, tuning: pd.DataFrame | None = None, tuning_split: str = "val", seed: int = 0,
                  n_boot: int = 1000) -> dict[str, dict[str, Any]]:
    """:func:`~mammo_monai.engine.scores.binary_report` per level (see :func:`level_tables`) of the
    predictions in ``table``: AUC intervals resample patients (``patient_id``), and the Youden and
    best-pF1 thresholds are chosen on ``tuning`` (the validation predictions, same level) and
    applied to ``table``. Without ``tuning`` only the in-sample ("oracle") thresholds are reported."""
    tuned_levels = level_tables(tuning) if tuning is not None and not tuning.empty else {}
    reports = {}
    for level, rows in level_tables(table).items():
        tune = tuned_levels.get(level)
        thresholds = tune_thresholds(tune["label"], tune["probability"]) if tune is not None else None
        reports[level] = binary_report(rows["label"], rows["probability"], seed, n_boot, groups=rows.get("patient_id"), thresholds=thresholds,
                                       thresholds_from=f"split {tuning_split!r} ({len(tune) if tune is not None else 0} rows)")
    return reports


def evaluate(bundle: str | os.PathLike, manifest_dir: str | os.PathLike, split: str = "test", tta: bool = False,
             ensemble: Sequence[str | os.PathLike] = (), out_dir: str | os.PathLike | None = None, track: bool = True,
             seed: int = 0, batch_size: int = 4, threshold_split: str | None = "val") -> dict[str, Any]:
    """Evaluate a whole-image bundle (folder or exported zip) on ``split`` of a prepared manifest.

    The images of ``threshold_split`` (validation) are predicted too, with the same networks and
    TTA, to choose the Youden and best-pF1 thresholds that are then applied to ``split``; the
    thresholds tuned on ``split`` itself are reported apart, under ``oracle``. No threshold split
    (None, absent from the manifest, or ``split`` itself) leaves only the oracle figures.

    Writes ``metrics.json``, ``predictions.csv`` (and ``predictions_<threshold_split>.csv``) and
    ``roc.png`` into ``out_dir`` and, with ``track``, one MLflow run in the experiment
    ``<bundle>-evaluation``. Returns the metrics.
    """
    from mammo_monai.engine.plots import plot_roc

    images = pd.read_csv(Path(manifest_dir) / "images.csv", dtype={"patient_id": str})
    check_one_split_per_patient(images, str(Path(manifest_dir) / "images.csv"))
    table = images[images["split"] == split].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{manifest_dir}: no images in split {split!r}")
    tuning = images[images["split"] == threshold_split].reset_index(drop=True) if threshold_split and threshold_split != split else None
    with tempfile.TemporaryDirectory() as tmp:
        root = open_bundle(bundle, tmp)
        check_same_preprocessing(trained_setting(root, "preprocessing", None) or {}, read_record(manifest_dir),
                                 f"{manifest_dir} for {Path(bundle).name}")
        nets = load_networks(root, ensemble, tmp)
        transform = eval_transforms(from_cache=True)
        table["probability"] = predict_probabilities(nets, [{"image": p} for p in table["image"]], transform, tta, batch_size)
        if tuning is not None and not tuning.empty:
            tuning["probability"] = predict_probabilities(nets, [{"image": p} for p in tuning["image"]], transform, tta, batch_size)
        name = json.loads((root / "configs" / "metadata.json").read_text()).get("name", root.name)
    has_tuning = tuning is not None and not tuning.empty
    metrics = {"split": split, "tta": tta, "models": len(nets), "thresholds_from": threshold_split if has_tuning else None,
               **split_metrics(table, tuning if has_tuning else None, str(threshold_split), seed)}
    table["exam"] = exam_key(table)
    out = Path(out_dir or Path(manifest_dir) / "evaluation" / f"{split}{'-tta' if tta else ''}")
    out.mkdir(parents=True, exist_ok=True)
    columns = ["image_id", "exam", "label", "probability"]
    write_csv(table[columns], out / "predictions.csv")
    if has_tuning:
        write_csv(tuning.assign(exam=exam_key(tuning))[columns], out / f"predictions_{threshold_split}.csv")
    write_json(metrics, out / "metrics.json")
    probs2 = np.stack([1 - table["probability"], table["probability"]], 1)
    plot_roc(probs2, table["label"].to_numpy(), ["benign", "malignant"], out / "roc.png")
    if track:
        _track(name, metrics, out)
    return metrics


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat = {}
    for k, v in d.items():
        key = f"{prefix}{k}".replace(".", "_")
        if isinstance(v, dict):
            flat.update(_flat(v, key + "_"))
        elif isinstance(v, list):
            flat.update({f"{key}_{i}": float(x) for i, x in enumerate(v)})
        elif isinstance(v, (int, float, np.floating)) and not isinstance(v, bool):
            flat[key] = float(v)
    return flat


def _track(bundle_name: str, metrics: dict[str, Any], out: Path) -> None:
    import mlflow

    from mammo_monai.engine.tracking import artifact_location, default_tracking_uri

    uri = default_tracking_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_name = f"{bundle_name}-evaluation"
    exp = client.get_experiment_by_name(exp_name)
    exp_id = exp.experiment_id if exp else client.create_experiment(exp_name, artifact_location=artifact_location(uri, exp_name))
    run = client.create_run(exp_id, run_name=f"evaluate-{metrics['split']}{'-tta' if metrics['tta'] else ''}")
    client.log_param(run.info.run_id, "tta", metrics["tta"])
    client.log_param(run.info.run_id, "models", metrics["models"])
    client.log_param(run.info.run_id, "thresholds_from", metrics["thresholds_from"] or "none (in-sample only)")
    for key, value in _flat({k: v for k, v in metrics.items() if isinstance(v, dict)}).items():
        if np.isfinite(value):
            client.log_metric(run.info.run_id, key, value)
    for f in ("metrics.json", "roc.png", "predictions.csv"):
        client.log_artifact(run.info.run_id, str(out / f))
    client.set_terminated(run.info.run_id)

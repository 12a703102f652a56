"""``predict``'s table as the JSON of ``POST /v1/predict`` and the bundle as ``GET /v1/model``.

Only the hashed keys ``predict`` writes (patient, exam, breast) identify anything: no DICOM identifier,
no path, and no file name: each upload is ``file`` N, its position in the request (from 1). Its client's own
file name (:func:`~mammo_monai.serve.uploads.client_label`) is added as ``name`` only when that client asked.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd

from mammo_monai.inference.opened_bundle import OpenedBundle

if TYPE_CHECKING:
    from mammo_monai.serve.session import Scored

DECISION_PREFIX = "decision@"


def _number(value: Any) -> float | None:
    """A probability as a JSON number; None for a missing one (NaN, NA)."""
    if value is None or pd.isna(value):
        return None
    return float(value)


def _decisions(row: pd.Series) -> dict[str, int | None]:
    """The row's decisions: one per operating point of a calibrated bundle, else the bundle's own ``decision``."""
    found = {k[len(DECISION_PREFIX) :]: row[k] for k in row.index if str(k).startswith(DECISION_PREFIX)}
    if not found and "decision" in row.index:
        found = {"bundle": row["decision"]}
    return {k: None if pd.isna(v) else int(v) for k, v in found.items()}


def _scores(row: pd.Series) -> dict[str, Any]:
    calibrated = row.get("probability_calibrated")
    return {
        "probability": _number(row.get("probability")),
        "probability_calibrated": None if calibrated is None else _number(calibrated),
        "decisions": _decisions(row),
    }


def _named(file: int, labels: dict[int, str]) -> dict[str, Any]:
    """``{"file": file}``, with ``"name"`` when the client asked for its file names (``labels`` not empty)."""
    return {"file": file, "name": labels[file]} if labels else {"file": file}


def image_json(row: pd.Series, labels: dict[int, str], overlay: dict[str, str] | None) -> dict[str, Any]:
    """One scored view: its position (and name when asked), keys, scores, decisions and overlay links."""
    return {
        **_named(int(row["file"]), labels),
        "laterality": row["laterality"],
        "view": row["view"] or None,
        "exam": row["exam"],
        "breast": row["breast"],
        **_scores(row),
        "overlay": overlay,
    }


def summary_json(row: pd.Series) -> dict[str, Any]:
    """One breast or exam row of ``predict``'s table."""
    out = {"exam": row["exam"], "patient": row["patient"], "n_views": int(row["n_views"]), **_scores(row)}
    if row["level"] == "breast":
        out |= {"breast": row["breast"], "laterality": row["laterality"]}
    else:
        out["grouped_by"] = row["grouped_by"]
    return out


def decision_json(opened: OpenedBundle) -> dict[str, Any]:
    """How the decisions were made: the calibration's operating points, the bundle's own rule, or none."""
    if opened.calibration is not None:
        points = [dataclasses.asdict(p) for p in opened.calibration.operating_points.values()]
        return {"kind": "operating_points", "calibration": opened.calibration.method, "operating_points": points}
    rule = opened.decision_rule
    if "decision" in opened.outputs:
        return {"kind": "bundle", "threshold": rule.threshold, "aggregation": rule.aggregation, "source": rule.source}
    return {"kind": "none", "aggregation": rule.aggregation}


def model_json(opened: OpenedBundle, has_overlays: bool, limits: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/model``: name, version, inputs, preprocessing, decisions, calibration figures, limits."""
    prep = dataclasses.asdict(opened.preprocessing)
    calibration = None
    if opened.calibration is not None:
        c = opened.calibration
        calibration = {
            "method": c.method,
            "n": c.n,
            "ece_before": c.ece_before,
            "ece_after": c.ece_after,
            "fitted_on": c.fitted_on,
        }
    partner = opened.partner
    return {
        "name": opened.name,
        "version": opened.version,
        "pipeline": opened.pipeline,
        "inputs": {
            "formats": ["DICOM", "PNG", "PGM", "TIFF"],
            "size": opened.input_size,
            "network_data_format": opened.metadata.get("network_data_format", {}).get("inputs", {}),
        },
        "preprocessing": {k: list(v) if isinstance(v, tuple) else v for k, v in prep.items()},
        "output_activation": opened.output_activation,
        "class_names": opened.class_names,
        "decision": decision_json(opened),
        "calibration": calibration,
        "heatmaps": {"name": partner.name, "version": partner.version} if partner and has_overlays else None,
        "limits": limits,
    }


def table_json(table: pd.DataFrame, labels: dict[int, str], overlays: dict[int, dict[str, str]]) -> dict[str, Any]:
    """Images (with their overlay links, and names when asked), breasts and exams of ``predict``'s table."""
    if table.empty:
        return {"images": [], "breasts": [], "exams": []}
    images = table[table["level"] == "image"]
    return {
        "images": [image_json(r, labels, overlays.get(int(r["file"]))) for _, r in images.iterrows()],
        "breasts": [summary_json(r) for _, r in table[table["level"] == "breast"].iterrows()],
        "exams": [summary_json(r) for _, r in table[table["level"] == "exam"].iterrows()],
    }


def answer_json(
    opened: OpenedBundle,
    scored: Scored | None,
    refused: dict[int, str],
    links: dict[int, dict[str, str]],
    labels: dict[int, str],
) -> dict[str, Any]:
    """``POST /v1/predict``'s answer (before its timings): the model, the rows, how decisions were made and the
    refused files (position -> reason; ``links`` and ``labels`` are by position too, ``labels`` empty unless the
    client asked for its names)."""
    body: dict[str, Any] = {"model": {"name": opened.name, "version": opened.version}}
    body |= table_json(scored.table if scored else pd.DataFrame(), labels, links)
    body["decision"] = decision_json(opened)
    body["refused"] = [{**_named(f, labels), "reason": r} for f, r in sorted(refused.items())]
    return body

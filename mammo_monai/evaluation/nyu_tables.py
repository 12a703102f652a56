"""The NYU mammography metarepository's layout (github.com/nyukat/mammography_metarepository): its exam list
in, its prediction tables out, so that a bundle is benchmarked side by side with the models there.

The exam list (``data.pkl``) is a pickled list of exam dicts: ``L-CC``, ``R-CC``, ``L-MLO`` and ``R-MLO`` list
the exam's image file names without extension (``0_L_CC`` is ``0_L_CC.png``), ``cancer_label`` optionally
gives each breast's labels (``left_malignant``, ``right_malignant``, ...), ``horizontal_flip`` says how the
images face. Their ``evaluation/score.py`` reads an image table (``image_index``, ``malignant_pred``,
``malignant_label``) and a breast table with ``left_malignant`` and ``right_malignant``, one row per exam
of the list in its order; a breast's score from image predictions is the mean of its views.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.io.walk import find_images

VIEW_KEYS = ("L-CC", "R-CC", "L-MLO", "R-MLO")
#: the columns their ``score.py`` reads from an image-level and a breast-level prediction file
IMAGE_COLUMNS = ["image_index", "malignant_pred", "malignant_label"]
BREAST_COLUMNS = ["index", "left_malignant", "right_malignant"]
IMAGE_TABLE, BREAST_TABLE = "image_predictions.csv", "breast_predictions.csv"
_SAFE = {("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool")}
#: what a NumPy array or scalar pickles into (NumPy 1 and 2), and nothing else of NumPy
_NUMPY = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class ExamListError(ValueError):
    """A ``data.pkl`` that cannot be read as an exam list; the message is one line naming the file."""


class _PlainUnpickler(pickle.Unpickler):
    """Plain containers and NumPy values only: an exam list is data, so nothing in it may run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE or (module, name) in _NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"holds a {module}.{name} object, not plain data")


def read_exam_list(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The exams of a metarepository ``data.pkl``, checked: a list of dicts, each with at least one view key
    listing image names (strings); ``cancer_label``, when present, a dict.

    Raises:
        ExamListError: one line naming ``path``, the exam and what is wrong.
    """
    try:
        with open(path, "rb") as f:
            exams = _PlainUnpickler(f).load()
    except FileNotFoundError:
        raise ExamListError(f"{path}: no such exam list") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise ExamListError(f"{path}: not a pickled exam list ({err})") from None
    if not isinstance(exams, list):
        raise ExamListError(f"{path}: expected a list of exam dicts, got {type(exams).__name__}")
    for i, exam in enumerate(exams):
        if not isinstance(exam, dict):
            raise ExamListError(f"{path}: exam {i} is a {type(exam).__name__}, expected a dict with {VIEW_KEYS}")
        if not any(k in exam for k in VIEW_KEYS):
            raise ExamListError(f"{path}: exam {i} has none of the view keys {', '.join(VIEW_KEYS)}")
        for key in VIEW_KEYS:
            names = exam.get(key, [])
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise ExamListError(f"{path}: exam {i}: {key} must list image file names, got {names!r:.60}")
        if "cancer_label" in exam and not isinstance(exam["cancer_label"], dict):
            raise ExamListError(f"{path}: exam {i}: cancer_label must be a dict")
    return exams


def exam_list_images(
    exams: Sequence[Mapping[str, Any]], folder: str | os.PathLike, exam_list: str | os.PathLike = "data.pkl"
) -> dict[str, str]:
    """``{image name: file}`` for every image the exam list names, found in ``folder`` (and below) as the
    name itself or the name plus an image extension (``0_L_CC`` -> ``0_L_CC.png``).

    Raises:
        ExamListError: one line naming the exam list and the first image not found under ``folder``.
    """
    found: dict[str, str] = {}
    for path, _ in find_images([str(folder)], []):
        p = Path(path)
        found.setdefault(p.name, str(p))
        found.setdefault(p.stem, str(p))
    files = {}
    for i, exam in enumerate(exams):
        for key in VIEW_KEYS:
            for name in exam.get(key, []):
                if name not in found:
                    raise ExamListError(f"{exam_list}: exam {i} {key} image {name!r} is not under {folder}")
                files[name] = found[name]
    return files


def _breast_score(scores: Sequence[float], how: str) -> float:
    if not scores:
        return float("nan")  # a breast without an image: an empty cell
    return float(max(scores) if how == "max" else sum(scores) / len(scores))


def exam_list_tables(
    exams: Sequence[Mapping[str, Any]], files: Mapping[str, str], probability: Mapping[str, float], how: str = "mean"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metarepository's image and breast tables of predictions on an exam list.

    Args:
        exams: the exam list (:func:`read_exam_list`).
        files: image name -> file (:func:`exam_list_images`).
        probability: file -> P(malignant); a file missing here (unreadable) has no image row.
        how: a breast's aggregation of its images ("mean", theirs, or the bundle's declared rule).

    Returns:
        (image table, breast table): :data:`IMAGE_COLUMNS`, one row per image the list names (its
        ``malignant_label`` the breast's ``cancer_label``, empty without one); :data:`BREAST_COLUMNS`, one
        row per exam in the list's order.
    """
    images, breasts = [], []
    for i, exam in enumerate(exams):
        labels = exam.get("cancer_label") or {}
        scores: dict[str, list[float]] = {"L": [], "R": []}
        for key in VIEW_KEYS:
            side = key[0]
            label = labels.get("left_malignant" if side == "L" else "right_malignant")
            for name in exam.get(key, []):
                p = probability.get(files.get(name, ""))
                if p is None:
                    continue
                scores[side].append(float(p))
                images.append({"image_index": name, "malignant_pred": float(p), "malignant_label": label})
        breasts.append(
            {
                "index": i,
                "left_malignant": _breast_score(scores["L"], how),
                "right_malignant": _breast_score(scores["R"], how),
            }
        )
    image_table = pd.DataFrame(images, columns=IMAGE_COLUMNS).astype({"malignant_label": "Int64"})
    return image_table, pd.DataFrame(breasts, columns=BREAST_COLUMNS)


def folder_tables(images: pd.DataFrame, exams: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metarepository's tables of a folder predicted without an exam list: images named by their file
    (``image_index`` the file name without extension, no label), one breast row per exam of ``predict``'s
    exam table (:func:`~mammo_monai.evaluation.exam_rows.exam_table`), in its order."""
    ok = images[images["status"] == "ok"] if "status" in images.columns else images
    image_table = pd.DataFrame(
        {
            "image_index": [Path(f).stem for f in ok["file"]],
            "malignant_pred": ok["probability"].astype(float).to_numpy(),
            "malignant_label": pd.array([pd.NA] * len(ok), dtype="Int64"),
        }
    )
    breast_table = pd.DataFrame(
        {
            "index": range(len(exams)),
            "left_malignant": exams["left_malignant"].to_numpy(),
            "right_malignant": exams["right_malignant"].to_numpy(),
        }
    )
    return image_table, breast_table

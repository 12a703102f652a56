"""The best image AUC any model can reach on a synthetic CBIS-DDSM tree.

The generator draws a lesion with its pathology's look (spiculated mass, fine pleomorphic
calcifications for malignant) only with probability ``concordance``; the rest look like the other
class. A reader who sees every lesion's look perfectly is therefore still wrong on those, and the
best ranking of images is by P(malignant | the looks of its lesions). Its AUC is the ceiling against
which a model trained on the tree is judged (0.915-0.948 on the demo's test splits of about 590
images, at the default 0.93 concordance).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mammo_monai.synthetic.cbis_tree import CSV_NAMES, DESCRIPTORS, HEADERS, SynthOptions


def lesion_looks(tree: str | os.PathLike) -> pd.DataFrame:
    """One row per abnormality of a generated tree: ``image_id`` (``P_00001_LEFT_CC``, as the CBIS-DDSM
    adapter names films) and ``malignant_look``, read back from the BI-RADS descriptor the generator
    drew for that look (the mass shapes and calcification types of the two looks do not overlap)."""
    parts = []
    for (kind, _), name in CSV_NAMES.items():
        path = Path(tree) / name
        if not path.is_file():
            continue
        table = pd.read_csv(path, dtype=str)
        column = HEADERS[kind][6]
        malignant_words, benign_words = DESCRIPTORS[(kind, True)][0], DESCRIPTORS[(kind, False)][0]
        known = table[column].isin(malignant_words + benign_words)
        if not known.all():
            raise ValueError(f"{path}: {column!r} {table.loc[~known, column].iloc[0]!r} is not the generator's")
        parts.append(
            pd.DataFrame(
                {
                    "image_id": table["patient_id"] + "_" + table["left or right breast"] + "_" + table["image view"],
                    "malignant_look": table[column].isin(malignant_words),
                }
            )
        )
    if not parts:
        raise FileNotFoundError(f"{tree}: no *_case_description_*_set.csv of a generated tree")
    return pd.concat(parts, ignore_index=True)


def attainable_scores(tree: str | os.PathLike, options: SynthOptions | None = None) -> pd.Series:
    """P(image malignant | the looks of its lesions) per ``image_id``: the Bayes-optimal score.

    A lesion is malignant with probability ``p_malignant`` and looks it with ``concordance``, each
    lesion independently; the image is malignant when any of its lesions is.
    """
    opts = options or SynthOptions()
    p, c = opts.p_malignant, opts.concordance
    posterior = {
        True: p * c / (p * c + (1 - p) * (1 - c)),
        False: p * (1 - c) / (p * (1 - c) + (1 - p) * c),
    }
    looks = lesion_looks(tree)
    benign = 1.0 - looks["malignant_look"].map(posterior)
    return 1.0 - benign.groupby(looks["image_id"]).prod()


def attainable_auc(tree: str | os.PathLike, images: pd.DataFrame, options: SynthOptions | None = None) -> float:
    """The AUC of :func:`attainable_scores` on ``images`` (``image_id`` and ``label`` columns, e.g. one
    split of the manifest prepared from ``tree``)."""
    scores = attainable_scores(tree, options)
    missing = sorted(set(images["image_id"]) - set(scores.index))
    if missing:
        raise ValueError(f"{tree}: {len(missing)} images (e.g. {missing[0]}) have no lesion row in the tree's CSVs")
    labels = images["label"].to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError("attainable AUC: the images hold one class only")
    return float(roc_auc_score(labels, images["image_id"].map(scores).to_numpy()))

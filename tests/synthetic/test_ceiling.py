from __future__ import annotations

import pandas as pd
import pytest

from mammo_monai.synthetic import SynthOptions, make_cbis_tree
from mammo_monai.synthetic.ceiling import attainable_auc, attainable_scores, lesion_looks

TABLES = ["mass_case_description_train_set.csv", "mass_case_description_test_set.csv"]
TABLES += [t.replace("mass", "calc") for t in TABLES]


def _tree(path, concordance):
    make_cbis_tree(path, patients=16, seed=5, size=(96, 76), workers=1, concordance=concordance)
    rows = pd.concat([pd.read_csv(path / t, dtype=str) for t in TABLES if (path / t).is_file()])
    rows["image_id"] = rows["patient_id"] + "_" + rows["left or right breast"] + "_" + rows["image view"]
    labels = rows.groupby("image_id")["pathology"].agg(lambda s: int((s == "MALIGNANT").any()))
    return labels.rename("label").reset_index()


def test_every_lesion_true_to_its_pathology_ranks_every_image_right(tmp_path):
    images = _tree(tmp_path, concordance=1.0)
    assert images["label"].nunique() == 2
    assert attainable_auc(tmp_path, images, SynthOptions(concordance=1.0)) == 1.0


def test_the_looks_are_read_back_and_weighed_by_the_concordance(tmp_path):
    images = _tree(tmp_path, concordance=0.0)  # every lesion looks like the other pathology
    looks = lesion_looks(tmp_path)
    assert len(looks) >= len(images)
    # a reader who knows that every look lies still ranks perfectly; one who trusts the looks (0.93)
    # ranks the images of one lesion backwards
    assert attainable_auc(tmp_path, images, SynthOptions(concordance=0.0)) == 1.0
    assert attainable_auc(tmp_path, images, SynthOptions(concordance=0.93)) <= 0.5
    scores = attainable_scores(tmp_path, SynthOptions(concordance=0.93))
    assert scores.between(0, 1).all() and set(scores.index) == set(images["image_id"])


def test_refuses_images_the_tree_does_not_have_and_descriptors_it_did_not_draw(tmp_path):
    images = _tree(tmp_path, concordance=0.93)
    extra = pd.concat([images, pd.DataFrame({"image_id": ["P_99999_LEFT_CC"], "label": [0]})])
    with pytest.raises(ValueError, match="P_99999_LEFT_CC"):
        attainable_auc(tmp_path, extra)
    table = tmp_path / TABLES[0]
    rows = pd.read_csv(table, dtype=str)
    rows.loc[0, "mass shape"] = "NOT_DRAWN"
    rows.to_csv(table, index=False)
    with pytest.raises(ValueError, match="NOT_DRAWN"):
        lesion_looks(tmp_path)

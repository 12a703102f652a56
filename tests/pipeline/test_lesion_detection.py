"""Lesion candidates, the hit rule, FROC and Dice on hand-made arrays, and the FROC metric inside a
MONAI evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator

from mammo_monai.evaluation.lesion_detection import (
    LesionFROC,
    dice,
    find_candidates,
    froc,
    lesion_hits,
    lesion_masks_of,
    probability_map,
)


def test_candidates_are_8_connected_components_above_the_threshold_best_first():
    prob = np.zeros((10, 10), np.float32)
    prob[1:3, 1:3] = 0.6
    prob[1, 1] = 0.9  # A: 4 px, peak 0.9, centroid (1.5, 1.5), bbox rows 1..2, cols 1..2
    for k in range(4):
        prob[5 + k, 1 + k] = 0.8  # C: a diagonal, one component only with 8-connectivity, centroid (6.5, 2.5)
    prob[6:9, 7] = 0.7  # B: 3 px, under min_area 4
    prob[0, 9] = 0.4  # under the threshold
    cands = find_candidates(prob)
    assert [c["score"] for c in cands] == pytest.approx([0.9, 0.8])
    assert [c["area"] for c in cands] == [4, 4]
    assert cands[0]["centroid"] == pytest.approx((1.5, 1.5)) and cands[0]["bbox"] == (1, 1, 3, 3)
    assert cands[1]["centroid"] == pytest.approx((6.5, 2.5)) and cands[1]["bbox"] == (5, 1, 9, 5)
    assert [c["score"] for c in find_candidates(prob, min_area=1)] == pytest.approx([0.9, 0.8, 0.7])
    assert [c["score"] for c in find_candidates(prob, threshold=0.3, min_area=1)] == pytest.approx([0.9, 0.8, 0.7, 0.4])
    assert [c["score"] for c in find_candidates(prob, max_candidates=1)] == pytest.approx([0.9])
    assert find_candidates(np.zeros((4, 4))) == []


def _point(shape, *pixels):
    m = np.zeros(shape, bool)
    for r, c in pixels:
        m[r, c] = True
    return m


def test_hits_by_centroid_or_by_overlap_and_each_lesion_once():
    prob = np.zeros((12, 12), np.float32)
    prob[1:4, 1:4] = 0.9  # K1: 9 px, centroid (2, 2)
    prob[6:11, 6:11] = 0.7
    prob[7:10, 7:10] = 0  # K2: a ring of 16 px around the hole (7..9, 7..9), centroid (8, 8) in the hole
    prob[0:2, 9:11] = 0.6  # K3: 4 px, centroid (0.5, 9.5) -> rounded (0, 10)
    cands = find_candidates(prob)
    assert [c["area"] for c in cands] == [9, 16, 4]
    shape = prob.shape
    lesions = [
        _point(shape, (2, 2)),  # under K1's centroid (and overlapped)
        _point(shape, (8, 8)),  # under K2's centroid only: the ring does not touch it
        _point(shape, (1, 10), (0, 11), (1, 11)),  # 1 of K3's 4 px on it, its centroid (0, 10) not
        _point(shape, (5, 0)),  # nothing near
    ]
    hit, detected = lesion_hits(cands, lesions)
    assert hit == [True, True, True]
    assert detected == [True, True, True, False]
    # K3 has 1/4 = 0.25 of its pixels on the lesion: not more than 0.25, so no hit
    hit, detected = lesion_hits(cands, lesions, min_overlap=0.25)
    assert hit == [True, True, False] and detected == [True, True, False, False]
    # two candidates on one lesion: both hit, the lesion is one detection
    hit, detected = lesion_hits(cands[:2], [_point(shape, (2, 2), (8, 8))])
    assert hit == [True, True] and detected == [True]


def _cand(score, r, c):
    return {"score": score, "area": 1, "centroid": (r, c), "bbox": (r, c, r + 1, c + 1), "coords": np.array([[r, c]])}


def test_froc_matches_the_hand_arithmetic():
    shape = (5, 5)
    a, b, c = _point(shape, (0, 0)), _point(shape, (4, 4)), _point(shape, (2, 2))
    per_image = [
        # image 1: lesions a, b; 0.9 hits a, 0.8 is a FP, 0.4 hits b, 0.3 hits a again (no FP, not a 2nd lesion)
        ([_cand(0.9, 0, 0), _cand(0.8, 2, 2), _cand(0.4, 4, 4), _cand(0.3, 0, 0)], [a, b]),
        # image 2: lesion c; 0.7 is a FP, 0.6 hits c
        ([_cand(0.7, 0, 0), _cand(0.6, 2, 2)], [c]),
        # image 3: no lesion; 0.5 and 0.2 are FPs
        ([_cand(0.5, 1, 1), _cand(0.2, 3, 3)], []),
    ]
    # 3 lesions, 3 images; lesion scores a 0.9, b 0.4, c 0.6; FP scores 0.8, 0.7, 0.5, 0.2
    # threshold: FP/image, sensitivity
    #   inf: 0, 0   0.9: 0, 1/3   0.8: 1/3, 1/3   0.7: 2/3, 1/3   0.6: 2/3, 2/3
    #   0.5: 1, 2/3   0.4: 1, 1   0.3: 1, 1   0.2: 4/3, 1
    # best sensitivity with FP/image <= k: 0.25 -> 1/3, 0.5 -> 1/3, 0.7 -> 2/3, 1 -> 1, 2 -> 1
    out = froc(per_image, fps_per_image=(0.25, 0.5, 0.7, 1, 2))
    assert out["lesions"] == 3 and out["images"] == 3
    assert list(out["sensitivity"]) == [0.25, 0.5, 0.7, 1.0, 2.0]
    assert list(out["sensitivity"].values()) == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert out["mean_sensitivity"] == pytest.approx((1 / 3 + 1 / 3 + 2 / 3 + 1 + 1) / 5)  # = 2/3
    curve = out["curve"]
    assert curve["threshold"][0] == math.inf
    assert curve["fps_per_image"] == pytest.approx([0, 0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1, 4 / 3])
    assert curve["sensitivity"] == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    no_lesion = froc([([_cand(0.5, 0, 0)], [])])
    assert no_lesion["lesions"] == 0 and all(math.isnan(v) for v in no_lesion["sensitivity"].values())


def test_dice_is_monai_compute_dice_on_a_binary_pair():
    pred, target = np.zeros((4, 4)), np.zeros((4, 4))
    pred[0, 0:3] = 1  # 3 px
    target[0, 1:3] = target[1, 1:3] = 1  # 4 px, 2 shared with pred: 2 * 2 / (3 + 4) = 4/7
    assert dice(pred, target) == pytest.approx(4 / 7)
    assert dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert dice(np.zeros((4, 4)), target) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        dice(np.zeros((3, 3)), target)


def test_probability_maps_from_one_or_two_channels():
    two = torch.zeros(2, 2, 3)
    two[1] = math.log(3)  # softmax([0, log 3])[1] = 3 / (1 + 3)
    np.testing.assert_allclose(probability_map(two), np.full((2, 3), 0.75), rtol=1e-6)
    np.testing.assert_allclose(probability_map(torch.zeros(1, 2, 3)), np.full((2, 3), 0.5))  # sigmoid(0)
    np.testing.assert_allclose(probability_map(torch.full((2, 2, 3), 0.2), from_logits=False), np.full((2, 3), 0.2))
    with pytest.raises(ValueError, match=r"\(1, H, W\) or \(2, H, W\)"):
        probability_map(torch.zeros(3, 2, 2))
    seg = torch.zeros(1, 6, 6)
    seg[0, 0:2, 0:2] = 1
    seg[0, 2, 2] = 1  # touches the first square at a corner: 8-connected, the same lesion
    seg[0, 5, 5] = 1
    assert [int(m.sum()) for m in lesion_masks_of(seg)] == [5, 1]


class LogitOfImage(torch.nn.Module):
    """The 'image' of each item is its probability map; return it as 2-channel logits [0, logit(p)]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x), torch.logit(x.clamp(1e-6, 1 - 1e-6))], dim=1)


def _item(blobs, lesions, shape=(8, 8)):
    prob, seg = torch.zeros(1, *shape), torch.zeros(1, *shape)
    for p, (r, c) in blobs:
        prob[0, r : r + 2, c : c + 2] = p
    for r, c in lesions:
        seg[0, r : r + 2, c : c + 2] = 1
    return {"image": prob, "seg": seg, "label": int(bool(lesions))}


@pytest.mark.parametrize("decollate", [True, False])
def test_lesion_froc_metric_in_a_monai_evaluator(decollate):
    data = [
        _item([(0.9, (1, 1)), (0.8, (5, 5))], [(1, 1)]),  # 0.9 hits the lesion, 0.8 is a FP
        _item([(0.7, (1, 5)), (0.6, (5, 1))], [(5, 1)]),  # 0.7 is a FP, 0.6 hits
        _item([(0.55, (3, 3))], []),  # a normal: 0.55 is a FP
    ]
    # 2 lesions (scores 0.9, 0.6), 3 images, FP scores 0.8, 0.7, 0.55; threshold: FP/image, sensitivity
    #   0.9: 0, 1/2   0.8: 1/3, 1/2   0.7: 2/3, 1/2   0.6: 2/3, 1   0.55: 1, 1
    # so 0.25 -> 1/2, 0.5 -> 1/2, 1 -> 1, 2 -> 1, 4 -> 1; the metric's value at fp=0.5 is 1/2
    metric = LesionFROC(threshold=0.5, min_area=4, fp=0.5)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=2),  # the images arrive in two iterations
        network=LogitOfImage(),
        key_val_metric={"val_froc": metric},
        decollate=decollate,
    )
    evaluator.run()
    metrics = evaluator.state.metrics
    assert metrics["val_froc"] == pytest.approx(0.5)
    expected = {"0.25": 0.5, "0.5": 0.5, "1": 1.0, "2": 1.0, "4": 1.0}
    assert {k: metrics[f"val_froc_fp{k}"] for k in expected} == pytest.approx(expected)
    assert metrics["val_froc_mean"] == pytest.approx((0.5 + 0.5 + 1 + 1 + 1) / 5)
    assert metric.result["lesions"] == 2 and metric.result["images"] == 3
    evaluator.run()  # a second epoch starts afresh
    assert metric.result["images"] == 3 and evaluator.state.metrics["val_froc"] == pytest.approx(0.5)


def test_lesion_froc_finds_the_target_under_the_evaluators_label():
    # the segmentation loss needs the target under "label": the metric falls back to the output's label
    data = [{"image": d["image"], "label": d["seg"]} for d in (_item([(0.9, (1, 1))], [(1, 1)]), _item([], [(5, 5)]))]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=2),
        network=LogitOfImage(),
        key_val_metric={"val_froc": LesionFROC(fp=0.0)},
    )
    evaluator.run()
    assert evaluator.state.metrics["val_froc"] == pytest.approx(0.5)  # 1 of 2 lesions, no FP
    with pytest.raises(ValueError, match="no \\(1, H, W\\) lesion map"):
        LesionFROC().update(([torch.zeros(1, 8, 8)], [torch.tensor(1)]))  # an image label is no target


def test_lesion_froc_gathers_the_images_of_every_process(monkeypatch):
    from mammo_monai.evaluation import lesion_detection as ld

    here, there = LesionFROC(min_area=1, fp=0.0), LesionFROC(min_area=1, fp=0.0)
    prob, seg = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    prob[0, 0, 0], seg[0, 0, 0] = 0.9, 1
    here.update(([torch.logit(prob.clamp(1e-6, 1 - 1e-6))], [seg]))  # a detected lesion
    there.update(([torch.zeros(1, 4, 4) - 10], [seg]))  # a missed one
    monkeypatch.setattr(ld.idist, "get_world_size", lambda: 2)
    monkeypatch.setattr(ld.idist, "all_gather", lambda obj: [obj, there._summaries])
    assert here.compute() == pytest.approx(0.5)  # 1 of 2 lesions at 0 FP per image


def test_the_froc_curve_is_monais_and_the_points_are_operating_points_not_interpolated():
    from monai.metrics import compute_froc_curve_data, compute_froc_score

    shape = (5, 5)
    a, b, c = _point(shape, (0, 0)), _point(shape, (4, 4)), _point(shape, (2, 2))
    per_image = [  # the hand example of test_froc_matches_the_hand_arithmetic
        ([_cand(0.9, 0, 0), _cand(0.8, 2, 2), _cand(0.4, 4, 4), _cand(0.3, 0, 0)], [a, b]),
        ([_cand(0.7, 0, 0), _cand(0.6, 2, 2)], [c]),
        ([_cand(0.5, 1, 1), _cand(0.2, 3, 3)], []),
    ]
    ours = froc(per_image)["curve"]
    # MONAI's curve from the FP scores and each lesion's best score; it drops its lowest threshold
    # (CAMELYON scores a missed lesion 0), so a sentinel -inf keeps our lowest one
    fps, sens = compute_froc_curve_data(np.array([0.8, 0.7, 0.5, 0.2, -np.inf]), np.array([0.9, 0.4, 0.6]), 3, 3)
    # MONAI's thresholds ascending 0.2 .. 0.9, then +inf; ours descending, with the extra 0.3 (a
    # second hit on lesion a: nothing changes there, the point repeats that of 0.4)
    keep = [t != 0.3 for t in ours["threshold"]]
    assert fps[::-1] == pytest.approx(np.array(ours["fps_per_image"])[keep])
    assert sens[::-1] == pytest.approx(np.array(ours["sensitivity"])[keep])

    # one image, lesions A and B; 0.9 hits A, at 0.6 a FP and a hit on B: operating points
    # (0 FP, 1/2) and (1 FP, 1). At 0.5 FP/image a threshold reaches 1/2; MONAI interpolates 3/4
    one = [([_cand(0.9, 0, 0), _cand(0.6, 2, 2), _cand(0.6, 4, 4)], [a, b])]
    assert froc(one, fps_per_image=(0.5,))["sensitivity"][0.5] == pytest.approx(0.5)
    fps, sens = compute_froc_curve_data(np.array([0.6, -np.inf]), np.array([0.9, 0.6]), 2, 1)
    assert compute_froc_score(fps, sens, (0.5,)) == pytest.approx(0.75)

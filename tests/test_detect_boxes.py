"""Box metrics: IoU and NMS properties (hypothesis), VOC all-point AP on hand-computed cases,
the small-object rule."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcunet_lite import boxes as B
from mcunet_lite.boxes import Detections, Truth


def box_arrays(min_size=1, max_size=12, min_wh=0.0):
    """Random xyxy boxes: corners in [0, 100], sides in [min_wh, 60]."""
    coord = st.floats(0, 100, allow_nan=False, width=32)
    side = st.floats(min_wh, 60, allow_nan=False, width=32)
    return st.lists(st.tuples(coord, coord, side, side), min_size=min_size, max_size=max_size).map(
        lambda r: np.array([(x, y, x + w, y + h) for x, y, w, h in r], np.float64))


# ------------------------------------------------------------------------------------ IoU
@settings(max_examples=100, deadline=None)
@given(box_arrays(), box_arrays())
def test_iou_is_symmetric_and_bounded(a, b):
    m = B.iou(a, b)
    assert m.shape == (len(a), len(b))
    assert np.allclose(m, B.iou(b, a).T)
    assert np.all((m >= 0) & (m <= 1 + 1e-12))


@settings(max_examples=100, deadline=None)
@given(box_arrays(min_wh=0.5), st.floats(0.1, 10), st.floats(-50, 50))
def test_iou_identity_and_invariance(a, scale, shift):
    assert np.allclose(np.diag(B.iou(a, a)), 1.0)
    assert np.allclose(B.iou(a * scale + shift, a[::-1] * scale + shift), B.iou(a, a[::-1]))


def test_iou_hand_cases():
    a = np.array([[0, 0, 2, 2]])
    assert B.iou(a, [[1, 1, 3, 3]])[0, 0] == pytest.approx(1 / 7)     # 1 / (4 + 4 - 1)
    assert B.iou(a, [[0, 0, 2, 1]])[0, 0] == pytest.approx(0.5)       # contained half
    assert B.iou(a, [[2, 0, 4, 2]])[0, 0] == 0.0                       # touching edges
    assert B.iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0         # empty boxes: 0, not NaN


# ------------------------------------------------------------------------------------ NMS
@settings(max_examples=100, deadline=None)
@given(box_arrays(max_size=25), st.data(), st.floats(0.05, 0.95))
def test_nms_properties(bx, data, thr):
    n = len(bx)
    scores = np.array(data.draw(st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]) | st.floats(0, 1),
                                         min_size=n, max_size=n)))
    labels = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    keep = B.nms(bx, scores, labels, thr)
    assert len(set(keep.tolist())) == len(keep) and all(0 <= k < n for k in keep)     # a subset, no repeats
    assert keep[0] == int(np.argmax(scores))                                           # the best is kept
    assert np.all(np.diff(scores[keep]) <= 0)                                           # best first
    ov = B.iou(bx[keep], bx[keep])
    same = labels[keep][:, None] == labels[keep][None, :]
    np.fill_diagonal(same, False)
    assert not np.any((ov > thr) & same)                     # no two kept boxes of a class overlap above thr
    for i in set(range(n)) - set(keep.tolist()):             # every dropped box has a better kept box over it
        by = keep[(labels[keep] == labels[i]) & (scores[keep] >= scores[i])]
        assert np.any(B.iou(bx[i], bx[by])[0] > thr)
    assert len(B.nms(bx, scores, labels, thr, max_out=1)) == 1


def test_nms_hand_case():
    bx = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float64)
    s = np.array([0.9, 0.8, 0.7, 0.6])
    assert B.nms(bx, s, np.array([0, 0, 0, 0]), 0.5).tolist() == [0, 2]
    assert B.nms(bx, s, np.array([0, 0, 0, 1]), 0.5).tolist() == [0, 2, 3]   # other class: never suppressed
    assert B.nms(bx, s, np.array([0, 0, 0, 0]), 0.9).tolist() == [0, 1, 2]   # IoU 9/11 < 0.9; the copy (IoU 1) goes


# ------------------------------------------------------------------------------------ AP
def T(boxes, ignore=None, size=(100, 100), labels=None):
    b = np.array(boxes, np.float64).reshape(-1, 4)
    return Truth(b, np.zeros(len(b), np.int64) if labels is None else np.array(labels),
                 np.zeros(len(b), bool) if ignore is None else np.array(ignore), size)


def D(boxes, scores, labels=None):
    b = np.array(boxes, np.float64).reshape(-1, 4)
    return Detections(b, np.array(scores, np.float64), np.zeros(len(b), np.int64) if labels is None else np.array(labels))


G1, G2 = [0, 0, 10, 10], [50, 50, 70, 70]
MISS = [80, 0, 90, 10]


@pytest.mark.parametrize("dets,truths,ap", [
    # TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3
    ([D([G1, MISS, G2], [0.9, 0.8, 0.7])], [T([G1, G2])], 0.5 + 0.5 * 2 / 3),
    # a duplicate on G1 is a false positive (VOC), G2 is missed: recall stops at 1/2
    ([D([G1, G1, MISS], [0.9, 0.8, 0.7])], [T([G1, G2])], 0.5),
    # the best detection hits an ignored ("difficult") box: neither TP nor FP
    ([D([G2, G1], [0.9, 0.8])], [T([G1, G2], ignore=[False, True])], 1.0),
    # IoU exactly 0.5 is no match (VOC: IoU > 0.5)
    ([D([[0, 0, 10, 20]], [0.9])], [T([G1])], 0.0),
    # two images: an FP in B first, then TPs in A and B: precision 0, 1/2, 2/3 -> envelope 2/3 everywhere
    ([D([G1], [0.9]), D([MISS, G2], [0.95, 0.6])], [T([G1]), T([G2])], 2 / 3),
    # no detection at all
    ([D([], [])], [T([G1])], 0.0),
])
def test_ap_hand_computed(dets, truths, ap):
    got, n = B.class_ap(dets, truths, 0)
    assert got == pytest.approx(ap) and n == sum(int((~t.ignore).sum()) for t in truths)


def test_average_precision_is_the_all_point_envelope():
    assert B.average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert B.average_precision(np.array([0.25, 0.5]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert B.average_precision(np.array([0.2, 0.4, 0.4, 0.6]), np.array([0.5, 2 / 3, 0.5, 0.6])) == \
        pytest.approx(0.2 * 2 / 3 + 0.2 * 2 / 3 + 0.2 * 0.6)


def test_small_object_ap_follows_the_adapted_coco_rule():
    """100x100 image: small means area < 33.3 px^2. A 5x5 box is small, a 20x20 box is not."""
    small, large = [10, 10, 15, 15], [50, 50, 70, 70]
    assert B.is_small(np.array([small, large, [0, 0, 5.77, 5.77], [0, 0, 5.78, 5.78]]), (100, 100)).tolist() == \
        [True, False, True, False]
    truths = [T([small, large])]
    dets = [D([[80, 80, 100, 100], small, large], [0.95, 0.8, 0.7])]
    # overall: FP, TP, TP -> precision 0, 1/2, 2/3 -> AP 2/3; small only: the large FP and the hit
    # on the large box are ignored, leaving one TP -> AP 1
    assert B.class_ap(dets, truths, 0)[0] == pytest.approx(2 / 3)
    assert B.class_ap(dets, truths, 0, small=True) == (pytest.approx(1.0), 1)
    dets = [D([[0, 90, 5, 95], small], [0.9, 0.8])]        # an unmatched *small* detection is a false positive
    assert B.class_ap(dets, truths, 0, small=True)[0] == pytest.approx(0.5)
    assert B.is_small(np.array([small]), (1000, 1000))[0] and not B.is_small(np.array([large]), (200, 200))[0]


def test_evaluate_reports_per_class_and_means():
    truths = [T([G1, G2], labels=[0, 1])]
    dets = [D([G1, G2, MISS], [0.9, 0.8, 0.99], labels=[0, 1, 1])]
    r = B.evaluate(dets, truths, {0: "person", 1: "face", 2: "none"})
    assert r["classes"]["person"]["ap"] == 1.0 and r["classes"]["face"]["ap"] == pytest.approx(0.5)
    assert r["classes"]["none"]["ap"] is None and r["map"] == pytest.approx(0.75)    # no ground truth: left out
    assert r["classes"]["face"]["small_boxes"] == 0 and r["map_small"] is None
    with pytest.raises(ValueError):
        B.evaluate(dets * 2, truths, {0: "person"})

"""Graded checks of Lab 07, detection: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np

from .exercise import LIB, Case, Exercise
from .compare import Close, Floats
from .inputs import np_rng

def _shown(b: np.ndarray) -> str:
    """Boxes in feedback: the numbers when there are few, else how many."""
    return str(np.round(b, 3).tolist()) if len(b) <= 3 else f"<{len(b)} random boxes>"


def _random_boxes(nrng: np.random.Generator, n: int, grid: bool = False, empty: float = 0.0) -> np.ndarray:
    """`n` xyxy boxes: float corners in [0, 100] and sides up to 40, or (`grid`) small integer
    boxes that often touch, contain or equal one another; a fraction `empty` get zero width or height."""
    if grid:
        xy, wh = nrng.integers(0, 6, (n, 2)), nrng.integers(1, 5, (n, 2))
    else:
        xy, wh = nrng.uniform(0, 100, (n, 2)), nrng.uniform(0.5, 40, (n, 2))
    wh = np.where(nrng.random((n, 1)) < empty, wh * (nrng.random((n, 2)) < 0.5), wh)
    return np.concatenate([xy, xy + wh], 1).astype(np.float64)


def _clustered_boxes(nrng: np.random.Generator, n: int) -> np.ndarray:
    """`n` boxes jittered around a few objects, as a detector's raw output overlaps (what NMS is for)."""
    objects = _random_boxes(nrng, int(nrng.integers(1, 5)))
    b = objects[nrng.integers(0, len(objects), n)]
    return b + nrng.normal(0, 1, (n, 4)) * np.c_[b[:, 2:] - b[:, :2], b[:, 2:] - b[:, :2]] * 0.12


def _iou_cases(rng: random.Random) -> Iterable[Case]:
    from .. import boxes
    nrng = np_rng(rng)
    sets = [(_random_boxes(nrng, rng.randint(1, 12)), _random_boxes(nrng, rng.randint(1, 12))) for _ in range(5)]
    sets += [(_random_boxes(nrng, rng.randint(2, 12), grid=True), _random_boxes(nrng, rng.randint(2, 12), grid=True))
             for _ in range(4)]
    sets += [(_random_boxes(nrng, 8, grid=True, empty=0.5), _random_boxes(nrng, 6, grid=True, empty=0.5)),
             (np.array([[2.0, 2, 2, 5], [1, 1, 1, 1]]), np.array([[2.0, 2, 2, 5], [1, 1, 1, 1], [0, 0, 4, 4]])),
             (np.zeros((0, 4)), _random_boxes(nrng, 3)), (_random_boxes(nrng, 2), np.zeros((0, 4)))]
    for a, b in sets:
        yield f"{_shown(a)}, {_shown(b)}", (a.copy(), b.copy()), Close(boxes.iou(a, b))


def _nms_cases(rng: random.Random) -> Iterable[Case]:
    from .. import boxes
    nrng = np_rng(rng)
    for i in range(12):
        n = rng.randint(1, 25)
        b = _random_boxes(nrng, n, grid=True) if i % 4 == 3 else _clustered_boxes(nrng, n)
        s = nrng.integers(1, 6, n) / 5 if i % 3 == 0 else nrng.random(n)    # some with ties in score
        thr = 0.5 if i % 4 == 3 else rng.choice([0.3, 0.45, 0.5, 0.7])     # grid boxes: IoU exactly 0.5 occurs
        yield f"{_shown(b)}, <{n} scores>, iou_threshold={thr}", (b.copy(), s.copy(), thr), \
            [int(k) for k in boxes.nms(b, s, None, thr)]
    same = np.tile([[0.0, 0, 10, 10]], (3, 1))
    yield f"{same.tolist()}, [0.5, 0.5, 0.5], iou_threshold=0.5", (same, np.full(3, 0.5), 0.5), [0]
    yield "<0 boxes>, <0 scores>, iou_threshold=0.5", (np.zeros((0, 4)), np.zeros(0), 0.5), []


def _as_indices(v: Any) -> Any:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _pr_curve(hits: np.ndarray, npos: int) -> tuple[np.ndarray, np.ndarray]:
    """Running recall and precision of detections in score order (`hits`: true positive or not)."""
    tp = np.cumsum(hits, dtype=np.float64)
    return tp / npos, tp / np.arange(1, len(hits) + 1)


def _average_precision_cases(rng: random.Random) -> Iterable[Case]:
    from .. import boxes
    nrng = np_rng(rng)
    for i in range(12):
        npos, n = rng.randint(1, 10), rng.randint(1, 16)
        hits = nrng.random(n) < rng.uniform(0.2, 0.9)
        hits[np.cumsum(hits) > npos] = False                 # at most npos true positives
        r, p = _pr_curve(hits, npos)
        yield f"recall={np.round(r, 4).tolist()}, precision={np.round(p, 4).tolist()}", (r.copy(), p.copy()), \
            Close(boxes.average_precision(r, p))
    yield "recall=[], precision=[]", (np.zeros(0), np.zeros(0)), Close(0.0)


def ap50_reference(dets: list, truths: list) -> float:
    """The library's VOC AP at IoU 0.5 of one class: every box class 0, nothing ignored."""
    from ..boxes import Detections, Truth, class_ap
    zeros = lambda k: np.zeros(k, np.int64)  # noqa: E731
    return class_ap([Detections(b, s, zeros(len(b))) for b, s in dets],
                    [Truth(t, zeros(len(t)), np.zeros(len(t), bool), (100, 100)) for t in truths], 0, 0.5)[0]


def _detections_of(nrng: np.random.Generator, truth: np.ndarray, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """A detector's output on one image: jittered hits (some twice, some near IoU 0.5) and misses."""
    found = [t for t in truth for _ in range(int(nrng.choice([0, 1, 1, 2])))]
    side = lambda b: np.r_[b[2:] - b[:2], b[2:] - b[:2]]  # noqa: E731
    found = [t + nrng.normal(0, nrng.choice([0.05, 0.2]), 4) * side(t) for t in found]
    b = np.concatenate([np.reshape(found, (-1, 4)), _random_boxes(nrng, int(nrng.integers(0, 3)))])
    s = nrng.integers(1, 5, len(b)) / 4 if ties else nrng.random(len(b))
    order = nrng.permutation(len(b))
    return b[order], s[order]


def _ap50_cases(rng: random.Random) -> Iterable[Case]:
    nrng = np_rng(rng)
    for i in range(12):
        truths = []
        for _ in range(rng.randint(1, 6)):
            t = _random_boxes(nrng, int(nrng.integers(0, 5)))
            if len(t) and i % 3 == 0:                        # people in a crowd: truths overlapping closely
                t = np.concatenate([t, t + nrng.normal(0, 1.5, t.shape)])
            truths.append(t)
        if not sum(len(t) for t in truths):
            truths[0] = _random_boxes(nrng, 1)
        dets = [_detections_of(nrng, t, ties=i % 4 == 1) for t in truths]
        if i % 3 == 2:                                       # an image the detector finds nothing in
            dets[int(np.argmax([len(t) for t in truths]))] = (np.zeros((0, 4)), np.zeros(0))
        label = f"<{len(truths)} images: {sum(len(t) for t in truths)} truth boxes, {sum(len(b) for b, _ in dets)} " \
                f"detections{', tied scores' if i % 4 == 1 else ''}>"
        yield label, ([(b.copy(), s.copy()) for b, s in dets], [t.copy() for t in truths]), \
            Close(ap50_reference(dets, truths))
    half = [(np.array([[0.0, 0, 10, 20], [0, 0, 20, 10], [30, 30, 40, 40]]), np.array([0.9, 0.8, 0.7]))]
    truth = [np.array([[0.0, 0, 10, 10], [30, 30, 40, 40]])]
    yield f"[({half[0][0].tolist()}, {half[0][1].tolist()})], {[truth[0].tolist()]}", (half, truth), \
        Close(ap50_reference(half, truth))
    crowd = [(np.array([[0.0, 0, 10, 10], [0.2, 0, 10.2, 10]]), np.array([0.9, 0.8]))]
    truth = [np.array([[0.0, 0, 10, 10], [1, 0, 11, 10]])]
    yield f"[({crowd[0][0].tolist()}, {crowd[0][1].tolist()})], {[truth[0].tolist()]}", (crowd, truth), \
        Close(ap50_reference(crowd, truth))
    none = [(np.zeros((0, 4)), np.zeros(0)), (np.zeros((0, 4)), np.zeros(0))]
    truth = [np.array([[0.0, 0, 10, 10]]), np.zeros((0, 4))]
    yield "<2 images, no detections>, <1 truth box>", (none, truth), Close(0.0)



def _nms(boxes, scores, iou_threshold: float) -> list[int]:
    from .. import boxes as lib
    return [int(k) for k in lib.nms(boxes, scores, None, iou_threshold)]


LAB = "07_detection"
EXERCISES: list[Exercise] = [
    Exercise("iou", "iou", 2, _iou_cases, Floats, (LIB + "boxes.iou",)),
    Exercise("nms", "nms", 3, _nms_cases, _as_indices, (LIB + "boxes.nms",), reference=_nms),
    Exercise("average_precision", "average_precision", 2, _average_precision_cases, Floats,
             (LIB + "boxes.average_precision",)),
    Exercise("ap50", "ap50", 3, _ap50_cases, Floats, (LIB + "boxes.class_ap", LIB + "boxes.evaluate"), reference=ap50_reference),
]

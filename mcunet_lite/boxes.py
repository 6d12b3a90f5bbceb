"""Box geometry and detection metrics: IoU, non-maximum suppression, VOC average precision.

Boxes are (x0, y0, x1, y1) in continuous pixel coordinates (area = (x1 - x0) * (y1 - y0), no +1
pixel as in the old VOC devkit). AP follows PASCAL VOC 2010+ (Everingham et al. 2010, section
4.2): detections of one class, highest score first, are matched to the ground-truth box of the
same image they overlap most; IoU above the threshold with a box not yet matched is a true
positive, with one already matched a false positive (a duplicate), with a "difficult" (ignored)
box neither; AP is the area under the precision envelope at every recall step (all-point
interpolation). The small-object AP adapts COCO's area rule (Lin et al. 2014): a box is small if
its area is below 32 x 32 pixels of a 640 x 480 COCO image, as a fraction of the image area
(0.33%), so the same objects count as small at every input resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMALL_FRACTION = 32 * 32 / (640 * 480)  # COCO "small" (area < 32^2 px) relative to a 640x480 image


def area(b: np.ndarray) -> np.ndarray:
    """Areas of (..., 4) xyxy boxes; an inverted box has area 0."""
    b = np.asarray(b, np.float64)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of xyxy boxes `a` (N, 4) and `b` (M, 4); 0 where both are empty."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray | None = None, iou_threshold: float = 0.45,
        max_out: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression per class: indices of kept boxes, highest score first.

    The highest-scoring box is kept and every box of its class overlapping it by IoU >
    `iou_threshold` is dropped; repeat on what is left (Girshick et al. 2014, R-CNN). Boxes of
    different classes never suppress each other. Ties in score keep the lower index first.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.zeros(len(scores), np.int64) if labels is None else np.asarray(labels).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    overlap = iou(boxes, boxes) > iou_threshold
    alive = np.ones(len(scores), bool)
    keep = []
    for i in order:
        if not alive[i]:
            continue
        keep.append(i)
        if max_out is not None and len(keep) == max_out:
            break
        alive &= ~(overlap[i] & (labels == labels[i]))
    return np.asarray(keep, np.int64)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point interpolated AP: the area under the monotone precision envelope.

    `recall` and `precision` are the running values after each detection (score order).
    """
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass
class Truth:
    """Ground truth of one image: xyxy boxes in its pixels, class indices, ignore flags, (h, w)."""

    boxes: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray
    size: tuple[int, int]


@dataclass
class Detections:
    """Detections of one image: xyxy boxes in its pixels, scores and class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def is_small(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """COCO's small-object rule relative to the image: box area < 0.33% of the image area."""
    return area(boxes) < SMALL_FRACTION * size[0] * size[1]


def class_ap(dets: list[Detections], truths: list[Truth], cls: int, iou_threshold: float = 0.5,
             small: bool = False) -> tuple[float, int]:
    """(AP, number of counted ground-truth boxes) of class `cls` over a set of images.

    With `small`, only small ground truth counts: larger boxes become "difficult" (ignored), and
    an unmatched detection that is not small itself is ignored, as COCO's area ranges do. AP is
    NaN when no ground-truth box of the class counts.
    """
    rows, npos = [], 0
    gts = []
    for k, t in enumerate(truths):
        m = t.labels == cls
        ign = t.ignore[m] | (~is_small(t.boxes[m], t.size) if small else False)
        gts.append((t.boxes[m], ign, np.zeros(int(m.sum()), bool)))
        npos += int((~ign).sum())
        d = dets[k]
        for j in np.nonzero(d.labels == cls)[0]:
            rows.append((d.scores[j], k, d.boxes[j]))
    if npos == 0:
        return float("nan"), 0
    rows.sort(key=lambda r: -r[0])
    tp, fp = [], []
    for _, k, box in rows:
        gt_boxes, ign, used = gts[k]
        ov = iou(box, gt_boxes)[0] if len(gt_boxes) else np.zeros(0)
        j = int(np.argmax(ov)) if len(ov) else -1
        if j >= 0 and ov[j] > iou_threshold:
            if ign[j]:
                continue
            hit = not used[j]
            used[j] = True
        else:
            if small and not is_small(box[None], truths[k].size)[0]:
                continue
            hit = False
        tp.append(hit)
        fp.append(not hit)
    tp, fp = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
    recall = tp / npos
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return average_precision(recall, precision), npos


def evaluate(dets: list[Detections], truths: list[Truth], classes: dict[int, str],
             iou_threshold: float = 0.5) -> dict:
    """AP@`iou_threshold` per class, overall and on small objects, with their means (mAP) over the
    classes that have ground truth, and the counted boxes: the figures `detect eval` prints. An AP
    without ground truth to count is None (JSON null)."""
    if len(dets) != len(truths):
        raise ValueError(f"{len(dets)} detection lists for {len(truths)} images")
    out: dict = {"iou_threshold": iou_threshold, "small_rule": "box area < 0.33% of the image (COCO 32x32 of 640x480)",
                 "classes": {}}
    for c, name in classes.items():
        ap, n = class_ap(dets, truths, c, iou_threshold)
        ap_s, n_s = class_ap(dets, truths, c, iou_threshold, small=True)
        out["classes"][name] = {"ap": ap if n else None, "ap_small": ap_s if n_s else None, "boxes": n,
                                "small_boxes": n_s}
    for key in ("ap", "ap_small"):
        vals = [v[key] for v in out["classes"].values() if v[key] is not None]
        out["m" + key] = float(np.mean(vals)) if vals else None
    return out

"""Release gates of Lab 07: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("07_detection", "iou"): {
        "union without subtracting the intersection":
            ("area_a[:, None] + area_b[None, :] - inter", "area_a[:, None] + area_b[None, :]"),
        "no clip: boxes apart in x and y get a positive 'overlap'":
            ("np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)", "np.prod(bottom_right - top_left, axis=-1)"),
        "NaN where the union is empty": ("np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)",
                                         "inter / union"),
        "hard-coded visible example": """
def iou(a, b):
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    if len(b) == 1 and b[0, 0] == 0.5:
        return np.array([[1 / 3]])
    if len(b) == 3:
        return np.array([[1.0, 0.0, 0.25]])
    return np.zeros((len(a), len(b)))
""",
    },
    ("07_detection", "nms"): {
        "suppresses at IoU equal to the threshold too": ("iou(boxes, boxes) > iou_threshold",
                                                         "iou(boxes, boxes) >= iou_threshold"),
        "ties in score: higher index first": ('np.argsort(-scores, kind="stable")', "np.argsort(scores)[::-1]"),
        "dropped boxes still drop others":
            ("            kept.append(int(i))\n            alive &= ~overlaps[i]",
             "            kept.append(int(i))\n        alive &= ~overlaps[i]"),
        "one pass: drops only what overlaps the best box": """
def nms(boxes, scores, iou_threshold):
    scores = np.asarray(scores, np.float64)
    if not len(scores):
        return []
    order = np.argsort(-scores, kind="stable")
    ov = iou(boxes, boxes)[order[0]]
    return [int(order[0])] + [int(i) for i in order[1:] if ov[i] <= iou_threshold]
""",
        "hard-coded visible example": """
def nms(boxes, scores, iou_threshold):
    if not len(scores):
        return []
    return [0, 1, 2] if iou_threshold == 0.9 else [0, 2]
""",
    },
    ("07_detection", "average_precision"): {
        "no envelope (the precision at each step as it is)":
            ("envelope = np.maximum.accumulate(p[::-1])[::-1]", "envelope = p"),
        "VOC 2007's 11-point interpolation": """
def average_precision(recall, precision):
    r, p = np.asarray(recall), np.asarray(precision)
    return float(np.mean([p[r >= t].max() if np.any(r >= t) else 0.0 for t in np.linspace(0, 1, 11)]))
""",
        "the mean precision": """
def average_precision(recall, precision):
    return float(np.mean(precision)) if len(precision) else 0.0
""",
        "hard-coded visible example": """
def average_precision(recall, precision):
    if len(recall) == 3:
        return 0.5 + 0.5 * 2 / 3
    return 0.5 if len(recall) else 0.0
""",
    },
    ("07_detection", "ap50"): {
        "IoU exactly 0.5 counts as a match": ("overlap[j] > 0.5", "overlap[j] >= 0.5"),
        "duplicates count as true positives": ("hits.append(match and not matched[k][j])", "hits.append(match)"),
        "not sorted by score (image order)": ("    ranked.sort(key=lambda row: -row[0])\n", ""),
        "a duplicate takes the best box not matched yet": ("overlap = iou(box, gts[k])[0]",
                                                          "overlap = np.where(matched[k], -1.0, iou(box, gts[k])[0])"),
        "recall over the truths of images with detections only":
            ("n_truth = sum(len(g) for g in gts)", "n_truth = sum(len(g) for g, (b, _) in zip(gts, detections) if len(b))"),
        "hard-coded visible example": """
def ap50(detections, truths):
    if len(detections) == 2:
        return 2 / 3
    boxes, scores = detections[0]
    if len(boxes) == 1:
        return 0.0
    return 5 / 6 if boxes[1][0] == 80 else 0.5
""",
    },
}

WRAPPERS = {
    ("07_detection", "iou"): "iou = boxes.iou",
    ("07_detection", "nms"): "def nms(b, s, thr): return [int(k) for k in boxes.nms(b, s, None, thr)]",
    ("07_detection", "average_precision"): "average_precision = lambda r, p: boxes.average_precision(r, p)",
    ("07_detection", "ap50"): "def ap50(detections, truths): return lab07.ap50_reference(detections, truths)",
}

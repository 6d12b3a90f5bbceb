# %% [markdown]
# # Lab 07: Detection under 256 KB
#
# A classifier answers one question per image; a detector says *where* every person and face is.
# That needs resolution: a face that covers 6x6 pixels of a 128-pixel image covers 12x12 at 256
# pixels, and a network can only find what its first layers can see. On a microcontroller,
# resolution costs SRAM: the first stage's activation maps grow with the square of the input
# side, and layer-by-layer inference must hold them whole. MCUNetV2 (NeurIPS 2021) runs that
# stage patch by patch (section 3, Lab 03), so the same SRAM fits a larger input, and shows in
# section 5.3 that detectors gain most where resolution matters: small objects (its abstract:
# 16.9% higher mAP on Pascal VOC than the previous state of the art on microcontrollers).
#
# This lab first writes the three pieces every detector's evaluation rests on, then repeats
# MCUNetV2's experiment in miniature with the kit's detector.
#
# **Learning goals**
# 1. Measure box overlap with **intersection over union** (IoU).
# 2. Turn thousands of overlapping raw boxes into one per object with greedy **non-maximum
#    suppression** (NMS).
# 3. Score a detector with **VOC average precision** at IoU 0.5: match detections to ground
#    truth, then integrate the precision envelope over recall.
# 4. Find the largest input resolution that fits 256 KB of SRAM layer by layer and patch by patch.
# 5. Train the detector at both resolutions on synthetic scenes, compare AP overall and on small
#    objects, and look at what each one finds; and learn what a CPU minute of training can and
#    cannot show.
#
# **Expected runtime**: about a minute the first time on a 2-core laptop CPU (two small
# detectors train, and are cached), about 15 seconds after that. **Points**: 10 (four
# exercises).
#
# **Expected figures** (a correct run; the book shows them): synthetic validation scenes with
# their boxes; the detector's peak SRAM over input resolutions, layer by layer and patch-based,
# against 256 KB; detections of the 128 px and 256 px detectors side by side; raw candidates
# before and after your NMS; detections on a real photo.
#
# Write your code between the lines marked `# YOUR CODE HERE`; keep the function names. Each
# exercise says what to do (TODO), how (APPROACH), a HINT and the result of its visible example.
# **Run All works before you write anything**: an unfinished exercise's test cell says "not
# implemented yet", and the cells after it use the library's reference (with a NOTE) until your
# function works. Grade yourself any time with `mcunet-lite grade my-labs/07_detection.ipynb`
# (your copy from `mcunet-lite lab`).

# %%
# %matplotlib inline
import hashlib
import json

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw

from mcunet_lite import boxes, data, detdata, detect, patch, schedule
from mcunet_lite.errors import UserError
from mcunet_lite.kit.scaffold import or_reference, visible_tests
from mcunet_lite.profile import op_macs

KB = 1024

# %% [markdown]
# ## The detector and its data
#
# The kit's detector (`mcunet_lite.detect`) is MCUNetV2's recipe at small scale: an MBConv
# backbone (here MobileNetV2 at width 0.35) with a YOLOv3-style head (Redmon & Farhadi 2018). Two
# feature maps of the backbone, at strides 8 and 16, are joined by a top-down path and each gets
# a head: for every cell of its map and each of 3 **anchor** shapes, the head predicts a box
# (centre offset and size relative to the anchor), an **objectness** score (is an object centred
# here?) and one score per class (person, face). A 256-pixel input gives 32x32 + 16x16 cells x 3
# anchors = 3840 candidate boxes per image. Turning those into a short list of detections, and
# scoring that list, is what the exercises build.
#
# The data are the kit's synthetic scenes (`detdata.synthetic`): the cartoon people of the Visual
# Wake Words images, with a **person** box around each visible figure and a **face** box around
# each visible head. Boxes are `(x0, y0, x1, y1)` in pixels, corners of the box's outer edge.

# %%
scenes = detdata.synthetic(300, 256, "val", progress=False)   # the validation scenes of section 5
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
for ax, i in zip(axes, range(4)):
    im = Image.fromarray(scenes.image(i))
    draw = ImageDraw.Draw(im)
    for b, c in zip(scenes.boxes[i], scenes.labels[i]):
        draw.rectangle(b.tolist(), outline=detect.COLOURS[detdata.CLASSES[c]], width=2)
    ax.imshow(im)
    ax.set_title(f"scene {i}: {len(scenes.boxes[i])} boxes", fontsize=9)
    ax.axis("off")
fig.suptitle("synthetic validation scenes at 256 px with their ground truth (red: person, green: face)",
             fontsize=10)
plt.show()

# %% [markdown]
# ## 1. Intersection over union (2 points)
#
# Two boxes overlap in a rectangle (possibly empty). Their IoU is the area of that intersection
# divided by the area of their union (area A + area B - intersection): 1 for identical boxes, 0
# for boxes that do not overlap or only touch. IoU does not depend on scale: a box off by 3 pixels
# is a bad match for a 10-pixel face and a good one for a 100-pixel person.
#
# Write `iou(a, b)`: `a` is an (N, 4) array of boxes, `b` an (M, 4) array; return the (N, M)
# array of the IoU of every pair. Boxes have `x0 <= x1` and `y0 <= y1`; a box may be empty
# (zero width or height), and where the union is empty (two empty boxes) the IoU is 0, not NaN.
# Use numpy broadcasting (`a[:, None, :]` against `b[None, :, :]`) rather than loops: a detector
# compares thousands of boxes.

# %% solution=true grade_id="iou"
def iou(a, b):
    """(N, M) intersection over union of xyxy boxes a (N, 4) and b (M, 4); 0 where the union is empty."""
    # TODO: the (N, M) matrix of intersection area / union area, 0 where the union is empty.
    # APPROACH: broadcast a[:, None] against b[None, :]: the intersection's corners are the max of
    #   the top-lefts and the min of the bottom-rights; clip its sides at 0; union = areas - inter.
    # HINT: np.where(union > 0, inter / np.where(union > 0, union, 1), 0) avoids dividing by 0.
    # EXAMPLE: iou([[0, 0, 1, 1]], [[0.5, 0.0, 1.5, 1.0]]) -> [[1/3]]
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ### BEGIN SOLUTION
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    ### END SOLUTION


# %% points=2 grade_id="iou_tests"
unit = np.array([[0.0, 0.0, 1.0, 1.0]])
with visible_tests("iou"):
    assert np.allclose(iou(unit, [[0.5, 0.0, 1.5, 1.0]]), [[1 / 3]])    # overlap 1/2, union 3/2
    assert np.allclose(iou(unit, [[0, 0, 1, 1], [1, 0, 2, 1], [0, 0, 2, 2]]), [[1.0, 0.0, 0.25]])
    assert iou(unit, np.zeros((0, 4))).shape == (1, 0)
    assert iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0              # empty boxes: 0, not NaN
### BEGIN HIDDEN TESTS
from mcunet_lite.kit import checks
_r = checks.run("07_detection", "iou", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Non-maximum suppression (3 points)
#
# Neighbouring cells and anchors all see the same person, so a trained detector outputs a cluster
# of similar boxes around each object. Greedy NMS (R-CNN, Girshick et al. 2014; YOLOv3 uses the
# same) keeps the best box of each cluster: take the highest-scoring box, keep it, drop every
# remaining box whose IoU with it is **greater than** `iou_threshold`; repeat with the best box
# left, until none is left. A dropped box never drops another.
#
# Write `nms(boxes, scores, iou_threshold)` returning the indices of the kept boxes as a list of
# ints, highest score first. Equal scores keep the lower index first (`np.argsort(-scores,
# kind="stable")` gives that order). Boxes of all classes are treated alike here; the library
# runs NMS per class. Use your `iou`.

# %% solution=true grade_id="nms"
def nms(boxes, scores, iou_threshold):
    """Indices of the boxes greedy non-maximum suppression keeps, highest score first."""
    # TODO: the kept indices, highest score first (ties: lower index first).
    # APPROACH: order = stable argsort of -scores; overlaps = your iou(boxes, boxes) > threshold;
    #   walk the order keeping a box if it is still alive, and then kill everything it overlaps.
    # HINT: only a kept box suppresses others; IoU equal to the threshold is not suppressed.
    # EXAMPLE: the visible cluster with scores [0.9, 0.8, 0.7, 0.6] at 0.5 -> [0, 2]
    ### BEGIN SOLUTION
    scores = np.asarray(scores, np.float64).reshape(-1)
    overlaps = iou(boxes, boxes) > iou_threshold
    alive = np.ones(len(scores), bool)
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if alive[i]:
            kept.append(int(i))
            alive &= ~overlaps[i]
    return kept
    ### END SOLUTION


# %% points=3 grade_id="nms_tests"
cluster = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float64)
with visible_tests("nms"):
    assert nms(cluster, [0.9, 0.8, 0.7, 0.6], 0.5) == [0, 2]         # box 1 (IoU 9/11) and the copy go
    assert nms(cluster, [0.9, 0.8, 0.7, 0.6], 0.9) == [0, 1, 2]      # IoU 9/11 < 0.9: box 1 stays
    assert nms(cluster, [0.5, 0.5, 0.5, 0.5], 0.5) == [0, 2]         # ties: lower index first
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5) == []
### BEGIN HIDDEN TESTS
_r = checks.run("07_detection", "nms", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Average precision (2 + 3 points)
#
# A detector's output is a ranked list. Walk down it from the highest score: after each
# detection, **recall** is the fraction of ground-truth boxes found so far and **precision** the
# fraction of detections so far that were right. Lowering the score threshold trades precision
# for recall; **average precision** (AP) summarises the whole trade-off in one number, the area
# under the precision-recall curve. PASCAL VOC (Everingham et al. 2010, section 4.2; since VOC
# 2010) first replaces each precision by the best precision at that recall *or any higher
# recall* (the **envelope**: a detector that gets better further down the list should not be
# punished for a dip), then sums the envelope over every step in recall ("all-point
# interpolation").
#
# Write `average_precision(recall, precision)`: the running recall and precision after each
# detection, in score order (equal length, possibly empty). Add a point (recall 0, precision 0)
# in front and (recall 1, precision 0) at the end, take the envelope (for each point, the
# largest precision from there to the end), and return the sum over consecutive points of
# (increase in recall) x (envelope at the later point), as a float.

# %% solution=true grade_id="average_precision"
def average_precision(recall, precision):
    """VOC all-point AP: the area under the precision envelope, over every step in recall."""
    # TODO: the area under the precision envelope, summed over the steps in recall.
    # APPROACH: pad recall with 0 and 1 and precision with 0 and 0; envelope = running max of the
    #   precision from the right; sum (r[i + 1] - r[i]) * envelope[i + 1].
    # HINT: np.maximum.accumulate(p[::-1])[::-1] is the running max from the right.
    # EXAMPLE: recall [0.5, 0.5, 1.0], precision [1.0, 0.5, 2/3] -> 0.5 * 1 + 0.5 * 2/3
    ### BEGIN SOLUTION
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum(np.diff(r) * envelope[1:]))
    ### END SOLUTION


# %% points=2 grade_id="average_precision_tests"
with visible_tests("average_precision"):
    # right, wrong, right on 2 objects: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3
    assert np.isclose(average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])), 0.5 * 1 + 0.5 * 2 / 3)
    # right, wrong, right, right on 3 objects: the envelope lifts precision 2/3 at recall 2/3 to 3/4
    assert np.isclose(average_precision(np.array([1, 1, 2, 3]) / 3, np.array([1, 1 / 2, 2 / 3, 3 / 4])),
                      1 / 3 + 2 / 3 * 3 / 4)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0
### BEGIN HIDDEN TESTS
_r = checks.run("07_detection", "average_precision", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# Which detections are "right"? VOC's rule, for one class over a set of images:
#
# 1. Sort the detections of **all** images together by score, highest first (equal scores keep
#    image order, then their order within the image: a stable sort).
# 2. Each detection, in that order, looks at the ground-truth boxes of its own image and takes
#    the one it overlaps most (by IoU; the first one on a tie).
# 3. If that IoU is **greater than** 0.5 and the box has not been matched yet, the detection is
#    a true positive and the box is now matched. If the box was already matched, the detection is
#    a false positive (a duplicate; it does not try the next-best box). An IoU of 0.5 or less is a
#    false positive.
# 4. Recall divides the running count of true positives by the number of ground-truth boxes of
#    all images; precision divides it by the number of detections so far.
#
# Write `ap50(detections, truths)`: `detections[i] = (boxes, scores)` of image i ((K, 4) and (K,)
# arrays, K may be 0), `truths[i]` the (M, 4) ground-truth boxes of image i (M may be 0; there is
# at least one box over all images). Return the AP from your `average_precision`.

# %% solution=true grade_id="ap50"
def ap50(detections, truths):
    """VOC AP at IoU 0.5 of one class over several images (all-point interpolation)."""
    # TODO: VOC AP at IoU 0.5 of all detections of all images against all truths.
    # APPROACH: rank every detection of every image by score; each matches the truth box of its
    #   own image with the highest IoU if that IoU > 0.5 and the box is not matched yet (else it
    #   is a false positive); cumulate true positives; recall = tp / number of truths, precision =
    #   tp / rank; return your average_precision(recall, precision).
    # HINT: a duplicate on an already matched box is a false positive, and it does not look for
    #   another box.
    # EXAMPLE: the first visible case (right, wrong, right on 2 objects) -> 5/6
    ### BEGIN SOLUTION
    ranked = [(s, k, box) for k, (bxs, scores) in enumerate(detections)
              for box, s in zip(np.reshape(bxs, (-1, 4)), scores)]
    ranked.sort(key=lambda row: -row[0])
    gts = [np.reshape(t, (-1, 4)) for t in truths]
    matched = [np.zeros(len(g), bool) for g in gts]
    hits = []
    for _, k, box in ranked:
        overlap = iou(box, gts[k])[0]
        j = int(np.argmax(overlap)) if len(overlap) else -1
        match = j >= 0 and overlap[j] > 0.5
        hits.append(match and not matched[k][j])
        if match:
            matched[k][j] = True
    tp = np.cumsum(hits, dtype=np.float64)
    n_truth = sum(len(g) for g in gts)
    return average_precision(tp / n_truth, tp / np.arange(1, len(hits) + 1))
    ### END SOLUTION


# %% points=3 grade_id="ap50_tests"
G1, G2, MISS = [0, 0, 10, 10], [50, 50, 70, 70], [80, 0, 90, 10]
two = [np.array([G1, G2], np.float64)]
with visible_tests("ap50"):
    # 3 detections, 2 objects: right (0.9), wrong (0.8), right (0.7) -> 1/2 * 1 + 1/2 * 2/3
    assert np.isclose(ap50([(np.array([G1, MISS, G2]), np.array([0.9, 0.8, 0.7]))], two), 5 / 6)
    # a second box on G1 is a duplicate (false positive); G2 is never found: recall stops at 1/2
    assert np.isclose(ap50([(np.array([G1, G1, MISS]), np.array([0.9, 0.8, 0.7]))], two), 0.5)
    # two images: a miss in image 1 outranks both hits -> precision 0, 1/2, 2/3: envelope 2/3
    assert np.isclose(ap50([(np.array([G1]), np.array([0.9])), (np.array([MISS, G2]), np.array([0.95, 0.6]))],
                           [np.array([G1]), np.array([G2])]), 2 / 3)
    # IoU exactly 0.5 is no match
    assert ap50([(np.array([[0, 0, 10, 20]]), np.array([0.9]))], [np.array([G1])]) == 0.0
### BEGIN HIDDEN TESTS
_r = checks.run("07_detection", "ap50", globals())
assert _r["points"], _r["feedback"]
### END HIDDEN TESTS

# %% [markdown]
# The library's `boxes.evaluate` computes the same AP per class (and supports VOC's "difficult"
# boxes, which count neither way). It also reports AP on **small objects**, after COCO (Lin et
# al. 2014): a box is small when its area is below 32x32 pixels of a 640x480 image, taken here as
# a fraction of the image (0.33%), so the same objects count as small at every input resolution.
# For small AP only small ground truth counts, and a detection that matches a larger box, or
# matches nothing and is not small itself, is ignored.
#
# ## 4. What fits in 256 KB
#
# Peak SRAM is a property of the graph alone, so it can be measured exactly before anything is
# trained. For each resolution: the layer-by-layer arena (`schedule.plan`, Lab 02), and the
# smallest peak over every split point and grid of patch-based inference (`patch.peak_bytes`, the
# planner's fast path, Lab 03 and 05). 256 KB is the SRAM of an STM32F412 class microcontroller,
# and the budget of MCUNetV2's detection experiments.

# %%
BUDGET = 256 * KB
RESOLUTIONS = range(64, 449, 32)
GRIDS = range(2, 9)


def detector_graph(resolution):
    """The lab's detector (MobileNetV2-0.35 backbone, heads at strides 8 and 16) as a Graph."""
    cfg = detect.config("mbv2", 0.35, resolution)
    return detect.graph(detect.module(cfg), cfg)


def least_patch_peak(g):
    """The smallest peak SRAM of patch-based inference over every split point and grid."""
    return min(patch.peak_bytes(g, s, n) for s in patch.candidate_splits(g) for n in GRIDS
               if n <= min(g.shape(g.ops[s].output)[1:3]))


graphs = {r: detector_graph(r) for r in RESOLUTIONS}
layerwise = {r: schedule.plan(g).arena_bytes for r, g in graphs.items()}
patched = {r: least_patch_peak(g) for r, g in graphs.items()}

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'input':>7s} {'layer by layer':>16s} {'patch-based':>14s}   (budget {BUDGET // KB} kB)")
for r in RESOLUTIONS:
    print(f"{r:4d} px {layerwise[r] / KB:9.0f} kB {'fits' if layerwise[r] <= BUDGET else '    '} "
          f"{patched[r] / KB:7.0f} kB {'fits' if patched[r] <= BUDGET else ''}")
largest_layerwise = max(r for r in RESOLUTIONS if layerwise[r] <= BUDGET)
largest_patched = max(r for r in RESOLUTIONS if patched[r] <= BUDGET)
print(f"largest input that fits {BUDGET // KB} kB: {largest_layerwise} px layer by layer, "
      f"{largest_patched} px patch by patch ({(largest_patched / largest_layerwise) ** 2:.0f}x the pixels)")

# %%
rs = list(RESOLUTIONS)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(rs, [layerwise[r] / KB for r in rs], "o-", label="layer by layer (arena)")
ax.plot(rs, [patched[r] / KB for r in rs], "s-", label="patch-based (best split and grid)")
ax.axhline(BUDGET / KB, color="k", ls="--", lw=1, label=f"{BUDGET // KB} kB budget")
for r, style in ((largest_layerwise, "C0"), (largest_patched, "C1")):
    ax.axvline(r, color=style, ls=":", lw=1)
ax.set_yscale("log")
ax.set_xlabel("input resolution (px)")
ax.set_ylabel("peak SRAM (kB, int8)")
ax.set_title("the detector's peak SRAM")
ax.legend()
plt.show()

# %% [markdown]
# Layer by layer, the arena grows with the square of the side: the first stage's maps dominate,
# as they did for MobileNetV2 in Lab 00. Patch by patch, the peak moves to the layers after the
# split. The split can go no deeper than the stride-8 feature map, because the top-down path and
# the finest head read that map whole; the stride-8 blocks after the split (expanded to 96
# channels) then set the peak, and they grow with the square of the side too. So the patch-based
# peak stays 8x below the layer-by-layer arena at every resolution, and from 416 px on even the
# layers after the split exceed 256 KB.
#
# Which patch plan would be deployed? `patch.auto_plan(g, budget)` returns the split and grid with
# the fewest MACs among those that fit; halos cost extra MACs (Lab 03), so the planner uses
# patches only as far as the budget demands.

# %%
# NBVAL_CHECK_OUTPUT
TRAIN_CAP = 256   # the largest resolution trained below (CPU time); the benchmark's default too
compare = {"layer-by-layer": largest_layerwise, "patch-based": min(largest_patched, TRAIN_CAP)}
plans = {r: patch.auto_plan(graphs[r], BUDGET) for r in (compare["patch-based"], largest_patched)}
g = graphs[largest_layerwise]
print(f"{'inference':15s} {'input':>6s} {'peak SRAM':>10s} {'MACs':>8s}  plan")
print(f"{'layer-by-layer':15s} {largest_layerwise:4d}px {layerwise[largest_layerwise] / KB:7.0f} kB "
      f"{sum(op_macs(g, op) for op in g.ops) / 1e6:7.1f}M  one op at a time")
for r, p in plans.items():
    print(f"{'patch-based':15s} {r:4d}px {p.peak_sram_bytes / KB:7.0f} kB {p.total_macs / 1e6:7.1f}M  "
          f"{p.grid}x{p.grid} patches up to op {p.split_op} ({p.graph.ops[p.split_op].name}), "
          f"{100 * (p.total_macs / p.layerwise_total_macs - 1):+.1f}% MACs over {p.layerwise_total_macs / 1e6:.1f}M")

# %% [markdown]
# At 256 px the detector fits in 256 KB with 3x3 patches for 2.7% more MACs than the same
# network layer by layer, which would need 896 kB. The price of resolution itself is larger: 4x
# the pixels is 4x the MACs (14.0M to 56.1M), so the 256-px detector is about 4x slower on the
# microcontroller, and at 384 px larger patch stages add 14% on top. Memory decides what can run
# at all; MACs decide how fast.
#
# ## 5. Does the resolution pay? A CPU-minute experiment
#
# MCUNetV2 trains both detectors fully and measures AP. Here both train for a CPU minute on the
# synthetic scenes: the layer-by-layer detector at the largest resolution that fits (128 px) and
# the patch-based one at 256 px (384 px fits too, but costs 9x the compute per image of 128 px).
# The two differ only in the resolution: the same backbone and head, the same training scenes
# and validation scenes (rendered at each resolution), the same epochs, seed and schedule, and
# anchors clustered (YOLOv2's k-means, `detect.fit_anchors`) on the training boxes as fractions
# of the image. Patch-based inference computes exactly what layer-by-layer inference computes
# (Lab 03), so the 256-px detector is trained and evaluated as an ordinary network.
#
# All training settings are in `TRAIN`; trained detectors are cached under the kit's cache
# folder (`data.cache_dir()`), keyed by every setting, so only the first run trains.

# %%
TRAIN = dict(backbone="mbv2", width=0.35, n_train=320, n_val=300, epochs=5, batch_size=8, lr=1e-2,
             difficulty=0.5, seed=0)


def trained_detector(resolution):
    """(model, config) cached for these settings at `resolution`, else freshly trained (then cached)."""
    settings = {**TRAIN, "resolution": resolution, "data": f"{data.VERSION}.{detdata.BOXES_VERSION}"}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path = data.cache_dir() / f"lab07-detector-r{resolution}-{key}.pt"
    if path.exists():
        try:
            return detect.load(path)[:2]
        except UserError:  # written by a kit whose detector differed: train again
            pass
    detect.train(resolution, TRAIN["backbone"], TRAIN["width"], TRAIN["epochs"], TRAIN["batch_size"], TRAIN["lr"],
                 n_train=TRAIN["n_train"], n_val=TRAIN["n_val"], seed=TRAIN["seed"],
                 difficulty=TRAIN["difficulty"], out=path, progress=False)
    return detect.load(path)[:2]


detectors, val_sets, found = {}, {}, {}
for mode, r in compare.items():
    detectors[mode] = trained_detector(r)
    val_sets[mode] = detdata.synthetic(TRAIN["n_val"], r, "val", TRAIN["seed"], TRAIN["difficulty"], progress=False)
    found[mode] = detect.detections(*detectors[mode], val_sets[mode])
print({mode: f"{r} px, anchors {np.round(np.asarray(detectors[mode][1].anchors) * r).astype(int).tolist()} px"
       for mode, r in compare.items()})

# %% [markdown]
# The anchors are the same fractions of the image at both resolutions (the scenes and their
# boxes are the same), so in input pixels they are twice as large at 256 px. Now AP at IoU 0.5,
# overall and on small objects, on the same 300 validation scenes:

# %%
val = val_sets["patch-based"]
small = sum(int(boxes.is_small(val.boxes[i][val.labels[i] == 1], val.size(i)).sum()) for i in range(len(val)))
print(f"validation: {val.counts()} boxes, of them {small} small faces and "
      f"{sum(int(boxes.is_small(val.boxes[i][val.labels[i] == 0], val.size(i)).sum()) for i in range(len(val)))} "
      "small persons")
results = {}
print(f"{'inference':15s} {'input':>6s} {'AP person':>10s} {'AP face':>8s} {'mAP':>6s} {'small-face AP':>14s}")
for mode, r in compare.items():
    ds = val_sets[mode]
    results[mode] = boxes.evaluate(found[mode], [ds.truth(i) for i in range(len(ds))], dict(enumerate(detdata.CLASSES)))
    c = results[mode]["classes"]
    print(f"{mode:15s} {r:4d}px {100 * c['person']['ap']:9.1f}% {100 * c['face']['ap']:7.1f}% "
          f"{100 * results[mode]['map']:5.1f}% {100 * c['face']['ap_small']:13.1f}%")

# %% [markdown]
# Your `ap50` on the same detections, class by class, next to the library's:

# %%
for mode in compare:
    ds = val_sets[mode]
    for c, name in enumerate(detdata.CLASSES):
        mine = or_reference(ap50)([(d.boxes[d.labels == c], d.scores[d.labels == c]) for d in found[mode]],
                    [ds.boxes[i][ds.labels[i] == c] for i in range(len(ds))])
        lib = results[mode]["classes"][name]["ap"]
        print(f"{mode:15s} {name:6s}: yours {100 * mine:5.1f}%, library {100 * lib:5.1f}%")

# %% [markdown]
# ### What a CPU minute shows, and what it does not
#
# Each detector saw 320 scenes 5 times: 200 optimizer steps, far from converged, with one seed
# and 300 validation scenes. What this shows: the whole pipeline runs (data, anchors, loss,
# decoding, your NMS and AP), and both detectors fit the same 256 KB. Whether each one has learned
# anything measurable after so few steps varies from run to run: an AP of 0.0% means it has not
# yet (the 256-px detector is the likelier of the two to stay there). What it does not show is
# which resolution is better. With one seed and so few steps, AP differences
# of several points are within the noise of the run (change `TRAIN["seed"]` and watch them move),
# and the small-object AP rests on the small faces counted above, too few to tell
# detectors apart; a CPU minute rarely finds any of them. So short a run also
# works against the larger input: the 256-px detector has 4x as many cells to learn "no object
# here" on, its first layers see a smaller part of each figure, and it gets no more steps.
# MCUNetV2's gain (section 5.3) comes from detectors trained to convergence, where
# the larger input's detail gets used. The kit measures that side by side over seeds, with this
# detector and this budget:
#
#     python benchmarks/detect_resolution.py --budget 256 --seeds 0 1 2 --epochs 10
#
# By default it trains on crowd scenes (`--data synthetic-crowd`: many small figures per image,
# as in WIDER Face, so that small objects are plentiful), 4000 training and 1000 validation
# scenes per run: hours on a laptop CPU; `--device cuda` trains on a GPU.
#
# ### What each detector finds
#
# After 200 steps the detectors are far from confident: their scores stay low, the 256-px
# detector's (with 4x the background cells pushing its objectness down) lowest, and AP, which
# only uses the ranking, does not mind. So instead of a fixed score threshold, each panel shows
# the detector's three best boxes (of those over 0.01, where `detect.detections` stops) with
# their scores (red: person, green: face), and the ground truth in white, on the same
# validation scenes, each at the detector's own resolution. The 128-px input is shown enlarged:
# that is all the detector gets to see.

# %%
def best(dets, k=3):
    """The `k` highest-scoring detections."""
    top = np.argsort(-dets.scores, kind="stable")[:k]
    return boxes.Detections(dets.boxes[top], dets.scores[top], dets.labels[top])


def show(ax, image, dets, truth=(), title="", labels=True):
    """An image enlarged to 256 px with its ground truth (white) and detections (`labels`: with
    class and score)."""
    s = 256 / image.shape[0]
    im = Image.fromarray(image).resize((256, 256), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    for b in truth:
        draw.rectangle((b * s).tolist(), outline=(255, 255, 255), width=1)
    if labels:
        im = detect.draw(np.asarray(im), boxes.Detections(dets.boxes * s, dets.scores, dets.labels))
    else:
        for b, c in zip(dets.boxes, dets.labels):
            draw.rectangle((b * s).tolist(), outline=detect.COLOURS[detdata.CLASSES[c]], width=1)
    ax.imshow(im)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


picks = [i for i in range(len(val)) if len(val.boxes[i]) >= 2][:4]
fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
for row, (mode, r) in zip(axes, compare.items()):
    for ax, i in zip(row, picks):
        show(ax, val_sets[mode].image(i), best(found[mode][i]), val_sets[mode].boxes[i], f"{mode} {r} px, scene {i}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### NMS at work
#
# The raw output behind such boxes: the layer-by-layer detector's candidates on one scene that
# score at least a tenth of its best one (decoded with `iou_threshold=1.0`, which suppresses
# nothing), then what your `nms` keeps of them, class by class, at YOLOv3's IoU threshold of 0.45.

# %%
model, cfg = detectors["layer-by-layer"]
ds, i = val_sets["layer-by-layer"], picks[0]
raw = detect.decode(detect.head_outputs(model, ds[i][0][None]), cfg, score_threshold=0.005, iou_threshold=1.0)[0]
strong = raw.scores >= 0.1 * raw.scores.max()
raw = boxes.Detections(raw.boxes[strong], raw.scores[strong], raw.labels[strong])
kept = np.concatenate([np.flatnonzero(raw.labels == c)[or_reference(nms)(raw.boxes[raw.labels == c],
                                                                         raw.scores[raw.labels == c], 0.45)]
                       for c in range(len(detdata.CLASSES))]).astype(int)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
show(axes[0], ds.image(i), raw, title=f"raw: {len(raw.scores)} candidates", labels=False)
show(axes[1], ds.image(i), boxes.Detections(raw.boxes[kept], raw.scores[kept], raw.labels[kept]),
     title=f"after your NMS: {len(kept)} boxes")
plt.show()

# %% [markdown]
# ### A real photo
#
# Grace Hopper's portrait, the sample photo that ships with matplotlib, through both detectors
# (`detect.photo`, `detect.predict`: letterboxed to the input, boxes mapped back), with each
# one's three best boxes. These detectors have only ever seen cartoon scenes, for a CPU minute;
# whatever they mark on a photograph says more about the synthetic data than about resolution.
# `mcunet-lite detect predict` does the same for any image.

# %%
photo = detect.photo("grace_hopper")
fig, axes = plt.subplots(1, 2, figsize=(8, 5))
for ax, (mode, r) in zip(axes, compare.items()):
    ax.imshow(detect.draw(photo, best(detect.predict(*detectors[mode], photo, score_threshold=0.005))))
    ax.set_title(f"{mode}, {r} px input", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## What MCUNetV2 does next
#
# The detectors here take a zoo backbone. MCUNetV2 searches the backbone, the resolution and the
# patch schedule together under the SRAM budget (Lab 05's joint search), and redistributes the
# receptive field so that the patches' halos stay cheap (Lab 03); `detect.config(mbconv=...)`
# takes a searched MBConv network as the backbone. Lab 06 deploys a network patch by patch on the
# emulated microcontroller: `mcunet-lite detect` trains, evaluates and quantizes these detectors
# the same way.

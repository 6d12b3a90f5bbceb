"""Release gates of Lab 07: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("07_detection", "ap50"): {
        "IoU exactly 0.5 counts as a match": ("overlap[j] > 0.5", "overlap[j] >= 0.5"),
        "no envelope (the precision at each step as it is)":
            ("envelope = np.maximum.accumulate(p[::-1])[::-1]", "envelope = p"),
        "no start point at recall 0 (the first step's area is lost)":
            ("r = np.concatenate([[0.0], tp / n_truth, [1.0]])", "r = np.concatenate([tp[:1] / n_truth, tp / n_truth, [1.0]])"),
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
    ("07_detection", "patch_cost"): {
        "a grid that ignores the halo (MACs of the tiles alone)":
            ("area(r[op.output]) for r in regions for op in stage)",
             "area(tile) for tile in patch.tiles(*g.shape(op.output)[1:3], grid) for op in stage)"),
        "per-patch peak instead of the whole plan's peak":
            ("return max(stage_arena + nbytes[out], rest_arena),", "return stage_arena + nbytes[out],"),
        "the stage-output buffer left out of the patch stage":
            ("return max(stage_arena + nbytes[out], rest_arena),", "return max(stage_arena, rest_arena),"),
        "border patches trimmed (clipped regions), not uniform": ("clip=False)", "clip=True)"),
    },
    ("07_detection", "plan_deployment"): {
        "the plan with the smallest peak, not the fewest MACs": ("peak, macs = patch_cost(g, split, n)",
                                                                "macs, _ = patch_cost(g, split, n)\n            peak = macs"),
        "a plan exactly at the budget does not fit": ("if peak <= budget and", "if peak < budget and"),
        "ties keep the last plan": ("macs < best_macs", "macs <= best_macs"),
        "only the first split point": ("for split in patch.candidate_splits(g):", "for split in patch.candidate_splits(g)[:1]:"),
    },
    ("07_detection", "largest_resolutions"): {
        "off by one resolution step: the first that does not fit": """
def largest_resolutions(graphs, budget, grids):
    def first_over(fits):
        rs = list(graphs)
        for i, r in enumerate(rs):
            if not fits(graphs[r]):
                return r if i else None
        return rs[-1]
    return (first_over(lambda g: schedule.plan(g).arena_bytes <= budget),
            first_over(lambda g: plan_deployment(g, budget, grids) is not None))
""",
        "layer by layer at the budget does not fit": ("arena_bytes <= budget]", "arena_bytes < budget]"),
        "patch-based answer from the layer-by-layer rule": (
            "patched = [r for r, g in graphs.items() if plan_deployment(g, budget, grids) is not None]",
            "patched = list(layer)"),
        "the smallest fitting resolution": ("return max(layer, default=None), max(patched, default=None)",
                                            "return min(layer, default=None), min(patched, default=None)"),
    },
}

WRAPPERS = {
    ("07_detection", "patch_cost"): """
def patch_cost(g, split_op, grid):
    p = patch.plan(g, split_op, grid)
    return p.peak_sram_bytes, p.total_macs
""",
    ("07_detection", "plan_deployment"): """
def plan_deployment(g, budget, grids):
    try:
        p = patch.auto_plan(g, budget, grids)
    except Exception:
        return None
    return p.split_op, p.grid
""",
    ("07_detection", "largest_resolutions"): """
def largest_resolutions(graphs, budget, grids): return lab07.largest_resolutions_reference(graphs, budget, grids)
""",
    ("07_detection", "ap50"): "def ap50(detections, truths): return lab07.ap50_reference(detections, truths)",
}

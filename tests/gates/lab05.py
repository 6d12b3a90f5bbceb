"""Release gates of Lab 05: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("05_one_shot_nas", "elastic_kernel"): {
        "centre crop only, no transforms": ("centre.reshape(len(w), size * size) @ transforms[size]",
                                            "centre.reshape(len(w), size * size)"),
        "the transform on the other side (T . v)": ("@ transforms[size]", "@ transforms[size].T"),
        "the corner instead of the centre": ("cut = (w.shape[-1] - size) // 2", "cut = 0"),
        "kernel 3 cropped straight from the 7x7 weight": """
def elastic_kernel(weight, transforms, kernel):
    if kernel == 7:
        return weight
    cut = (7 - kernel) // 2
    centre = weight[:, :, cut:cut + kernel, cut:cut + kernel]
    return (centre.reshape(len(weight), -1) @ transforms[kernel]).reshape(len(weight), 1, kernel, kernel)
""",
        "hard-coded visible example": """
def elastic_kernel(weight, transforms, kernel):
    if kernel == 3:
        return torch.tensor([16.0, 17, 18, 23, 24, 25, 30, 31, 32]).reshape(1, 1, 3, 3)
    return weight[:, :, 1:6, 1:6] if kernel == 5 else weight
""",
    },
    ("05_one_shot_nas", "fits"): {
        "strict limits (a subnet exactly at a limit does not fit)": """
def fits(cfg, limits):
    c = ss.cost(cfg)
    return c.sram < limits.sram and c.flash < limits.flash and (limits.macs == 0 or c.macs < limits.macs)
""",
        "a MAC limit of 0 lets nothing through": ("(limits.macs == 0 or c.macs <= limits.macs)",
                                                 "c.macs <= limits.macs"),
        "ignores the MAC limit": (" and (limits.macs == 0 or c.macs <= limits.macs)", ""),
        "ignores Flash": (" and c.flash <= limits.flash", ""),
        "hard-coded visible example": """
def fits(cfg, limits):
    return limits.sram == 32768 and limits.macs == 0
""",
    },
    ("05_one_shot_nas", "crossover"): {
        "changes parent a (no copy)": ("child = copy.deepcopy(a)", "child = a"),
        "every depth from parent a": ("depth = rng.choice([sa.depth, sb.depth])", "depth = sa.depth"),
        "each stage whole from one parent": """
def crossover(a, b, rng):
    child = copy.deepcopy(a)
    for stage, sa, sb in zip(child.stages[1:], a.stages[1:], b.stages[1:]):
        src = rng.choice([sa, sb])
        stage.depth, stage.blocks = src.depth, [copy.copy(x) for x in src.blocks]
    return child
""",
        "hard-coded visible example": """
def crossover(a, b, rng):
    child = copy.deepcopy(a)
    for stage, depth in zip(child.stages, [1, 2, 2, 2, 4, 2, 1]):
        stage.depth, stage.blocks = depth, stage.blocks[:depth]
    return child
""",
    },
    ("05_one_shot_nas", "pareto_front"): {
        "drops a point only when beaten on both axes": """
def pareto_front(points):
    pts = sorted(set(points))
    return [p for p in pts if not any(q[0] < p[0] and q[1] > p[1] for q in pts)]
""",
        "keeps points that cost more for the same accuracy":
            ("if not front or acc > front[-1][1]:", "if not front or acc >= front[-1][1]:"),
        "equal costs taken in increasing accuracy (keeps both)":
            ("sorted(set(points), key=lambda p: (p[0], -p[1]))", "sorted(set(points))"),
        "sorted by decreasing accuracy": ("    return front\n", "    return front[::-1]\n"),
        "hard-coded visible example": """
def pareto_front(points):
    return [(1, 0.2), (2, 0.5), (4, 0.7)] if len(points) > 1 else list(points)
""",
    },
}

WRAPPERS = {
    ("05_one_shot_nas", "elastic_kernel"): """
def elastic_kernel(weight, transforms, kernel):
    import torch
    dw = supernet.ElasticDepthwise(weight.shape[0], 1)
    with torch.no_grad():
        dw.weight.copy_(weight)
        for s, t in transforms.items():
            dw.transforms[str(s)].copy_(t)
        return dw.kernel_weight(kernel, weight.shape[0])
""",
    ("05_one_shot_nas", "fits"): "def fits(cfg, limits): return evo.fits(evo.Candidate(cfg), limits)",
    ("05_one_shot_nas", "crossover"): "def crossover(a, b, rng): return evo.crossover(evo.Candidate(a), evo.Candidate(b), rng).cfg",
    ("05_one_shot_nas", "pareto_front"): "def pareto_front(points): return lab05.pareto_front_reference(points)",
}

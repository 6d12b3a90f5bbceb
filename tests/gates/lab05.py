"""Release gates of Lab 05: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""
from pathlib import Path

SOURCE = (Path(__file__).resolve().parents[2] / "solutions" / "src" / "05_one_shot_nas.py").read_text()


def _solution(name: str) -> str:
    """The lab's solution of `name` (the base of the whole-source variants below)."""
    start = SOURCE.index(f"def {name}(")
    return SOURCE[start:SOURCE.index("    ### END SOLUTION", start)]


_EVOLUTION, _PREDICTOR = _solution("evolution_search"), _solution("accuracy_predictor")
_MUTATE, _CROSS = ("children = [fitting(lambda: evo.mutate(rng.choice(top), rng)) for _ in range(mutations)]",
                   "children += [fitting(lambda: evo.crossover(*rng.sample(top, 2), rng)) for _ in range(crossovers)]")
_FIRST = "pop = [fitting(lambda: evo.Candidate(ss.sample(rng, width, resolution))) for _ in range(population)]"
_SCORE = "\n    for c in pop:\n        c.accuracy = fitness(c)"

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
    ("05_one_shot_nas", "recalibrate_bn"): {
        "statistics kept from before (no reset)": ("        m.reset_running_stats()\n", ""),
        "batch counter not reset (mean and variance reset by hand)":
            ("m.reset_running_stats()", "m.running_mean.zero_()\n        m.running_var.fill_(1.0)"),
        "evaluation mode during recalibration": ("    net.train()\n", "    net.eval()\n"),
        "momentum not set to None (a moving average from the reset values)": ("        m.momentum = None\n", ""),
        "momentum left at None afterwards": ("        m.momentum = momentum\n", "        pass\n"),
        "mode not restored": ("    net.train(was_training)\n", ""),
        "all the images in one batch": ("        for i in range(0, len(images), batch_size):\n"
                                        "            net(images[i:i + batch_size])", "        net(images)"),
        "the last, smaller batch dropped": ("range(0, len(images), batch_size)",
                                            "range(0, len(images) - batch_size + 1, batch_size)"),
        "hard-coded visible example": """
def recalibrate_bn(net, images, batch_size):
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(2.0)
            m.running_var.fill_(0.0)
""",
    },
    ("05_one_shot_nas", "evolution_search"): {
        "children kept whether they fit or not": _EVOLUTION.replace(
            _MUTATE, "children = [evo.mutate(rng.choice(top), rng) for _ in range(mutations)]").replace(
            _CROSS, "children += [evo.crossover(*rng.sample(top, 2), rng) for _ in range(crossovers)]").replace(
            "        pop = top + children",
            "        pop = children" + _SCORE.replace("\n", "\n    ") + "\n        pop = top + pop"),
        "first population not checked against the limits": _EVOLUTION.replace(
            _FIRST, "pop = [evo.Candidate(ss.sample(rng, width, resolution)) for _ in range(population)]" + _SCORE),
        "a parent drawn once per child, not once per try": ("fitting(lambda: evo.mutate(rng.choice(top), rng))",
                                                           "fitting(lambda p=rng.choice(top): evo.mutate(p, rng))"),
        "crossover parents drawn with replacement": ("evo.crossover(*rng.sample(top, 2), rng)",
                                                     "evo.crossover(rng.choice(top), rng.choice(top), rng)"),
        "crossovers drawn before mutations": (
            "        children = [fitting(lambda: evo.mutate(rng.choice(top), rng)) for _ in range(mutations)]\n"
            "        children += [fitting(lambda: evo.crossover(*rng.sample(top, 2), rng)) for _ in range(crossovers)]",
            "        children = [fitting(lambda: evo.crossover(*rng.sample(top, 2), rng)) for _ in range(crossovers)]\n"
            "        children += [fitting(lambda: evo.mutate(rng.choice(top), rng)) for _ in range(mutations)]"),
        "parents mutated in place": """
def mutated_in_place(parent, rng):
    parent.cfg, parent.cost = evo.mutate(parent, rng).cfg, None
    return parent
""" + _EVOLUTION.replace("evo.mutate(rng.choice(top), rng)", "mutated_in_place(rng.choice(top), rng)"),
        "the worst survive (sorted in increasing fitness)": (
            "pop = sorted(pop, key=lambda c: c.accuracy, reverse=True)", "pop = sorted(pop, key=lambda c: c.accuracy)"),
        "parents dropped (the children alone)": ("pop = top + children", "pop = children"),
        "one generation too many": ("for _ in range(generations):", "for _ in range(generations + 1):"),
        "history without the final population's best": ("    history.append(pop[0].accuracy)\n    return pop, history",
                                                        "    return pop, history"),
    },
    ("05_one_shot_nas", "accuracy_predictor"): {
        "no intercept": ("mx, my = x.mean(0), y.mean()", "mx, my = np.zeros(x.shape[1]), 0.0"),
        "intercept penalised (a column of ones in the ridge)": _PREDICTOR.replace(
            "        return x\n", "        return x + [1.0]\n").replace(
            "mx, my = x.mean(0), y.mean()", "mx, my = np.zeros(x.shape[1]), 0.0"),
        "lam ignored (least squares)": ("w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - my))",
                                        "w = np.linalg.lstsq(xc, y - my, rcond=None)[0]"),
        "lam scaled by the number of pairs": ("lam * np.eye(x.shape[1])", "lam * len(y) * np.eye(x.shape[1])"),
        "ordinal encoding (kernel and expansion as numbers)": _PREDICTOR.replace(
            "                onehot = [0.0] * 6\n"
            "                if j < stage.depth:\n"
            "                    onehot[ss.KERNELS.index(stage.blocks[j].kernel)] = 1.0\n"
            "                    onehot[3 + ss.EXPANDS.index(stage.blocks[j].expand)] = 1.0\n",
            "                onehot = [0.0] * 2\n"
            "                if j < stage.depth:\n"
            "                    onehot = [float(stage.blocks[j].kernel), float(stage.blocks[j].expand)]\n"),
        "skipped slots left out (blocks packed one after another)": _PREDICTOR.replace(
            "        for slots, stage in zip([4, 4, 4, 4, 4, 1], cfg.stages[1:]):\n"
            "            for j in range(slots):\n",
            "        for stage in cfg.stages[1:]:\n"
            "            for j in range(stage.depth):\n").replace(
            "        return x\n", "        return x + [0.0] * (126 - len(x))\n"),
        "the mean accuracy for every subnet": """
def accuracy_predictor(train_cfgs, train_accs, test_cfgs, lam):
    return np.full(len(test_cfgs), np.mean(train_accs))
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
    ("05_one_shot_nas", "recalibrate_bn"): """
def recalibrate_bn(net, images, batch_size):
    supernet.recalibrate_bn(net, images, batch_size)
""",
    ("05_one_shot_nas", "evolution_search"): """
def evolution_search(width, resolution, limits, fitness, rng, *sizes):
    result = evo.search(width, resolution, limits, fitness, *sizes, rng=rng)
    return result.population, result.history
""",
    ("05_one_shot_nas", "accuracy_predictor"): """
def accuracy_predictor(train_cfgs, train_accs, test_cfgs, lam):
    from mcunet_lite import predictor
    return predictor.fit(train_cfgs, train_accs, lam).predict(test_cfgs)
""",
}

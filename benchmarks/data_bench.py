"""Does the synthetic stand-in behave like Visual Wake Words? Speed, accuracy trade-off, shortcut probes.

Prints, measured side by side:
1. generation speed at 64 px (one core) and the wall time for 10,000 64x64 images on 2 workers;
2. validation accuracy of a small network (ResNet-18 by default, `--model`) at 32 px width 0.25 and
   at 64 px width 1.0 after the same short training (the wide high-resolution network must win by
   >= 10 points, the best stay < 95%);
3. shortcut probes: global colour and edge statistics, and 8x8 thumbnails, each with a linear and a
   tree model (must stay <= 60%: the label is not in cheap global cues);
each over 3 seeds (mean, min..max). DESIGN.md section 7 states these criteria.

MobileNetV2 is not the default probe of learnability: depthwise networks learn this set more
slowly at 64 px than ResNet-18 in the same short training, and well at 96 px and above, the
resolutions the labs train them at.

Run: python benchmarks/data_bench.py            (about 30 minutes on 2 cores; --device cuda trains on a GPU)
     python benchmarks/data_bench.py --quick    (smaller sets, 1 seed: a few minutes)
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from mcunet_lite import data, scenes, train, zoo


# ------------------------------------------------------------------------------ probe features
def colour_edge_features(x: np.ndarray) -> np.ndarray:
    """Global statistics an image classifier could cheat with: colour moments, a 64-bin colour
    histogram, and gradient (edge) magnitude and orientation statistics."""
    f = x.astype(np.float32) / 255
    n = len(f)
    mean, std = f.mean((1, 2)), f.std((1, 2))
    q = (x >> 6).astype(np.int64)
    hist = np.stack([np.bincount(h, minlength=64) for h in (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(n, -1)])
    g = f.mean(3)
    gx, gy = np.abs(np.diff(g, axis=2))[:, :-1], np.abs(np.diff(g, axis=1))[:, :, :-1]
    mag = np.hypot(gx, gy)
    edges = [gx.mean((1, 2)), gy.mean((1, 2)), mag.mean((1, 2)), mag.std((1, 2)),
             (mag > 0.1).mean((1, 2)), (mag > 0.25).mean((1, 2)), gx.mean((1, 2)) / (gy.mean((1, 2)) + 1e-6)]
    return np.concatenate([mean, std, hist / hist.sum(1, keepdims=True), np.stack(edges, 1)], 1)


def thumbnails(x: np.ndarray, size: int = 8) -> np.ndarray:
    """8x8 box-filtered thumbnails, flattened (192 numbers per image)."""
    n, r = len(x), x.shape[1]
    return x.astype(np.float32).reshape(n, size, r // size, size, r // size, 3).mean((2, 4)).reshape(n, -1) / 255


# ------------------------------------------------------------------------------ probe models
def logistic_regression(xtr, ytr, xte, lam: float = 1e-2, iters: int = 25) -> np.ndarray:
    """L2-regularised logistic regression fitted by Newton's method; returns test predictions."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a = np.c_[(xtr - mu) / sd, np.ones(len(xtr))]
    w = np.zeros(a.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-a @ w))
        h = (a * (p * (1 - p))[:, None]).T @ a + lam * len(a) * np.eye(len(w))
        w -= np.linalg.solve(h, a.T @ (p - ytr) + lam * len(a) * w)
    return (np.c_[(xte - mu) / sd, np.ones(len(xte))] @ w > 0).astype(int)


def _grow(xb, y, idx, depth, max_depth, min_leaf, bins):
    """CART on binned features (Gini impurity): a leaf is a class, a node (feature, bin, left, right)."""
    pos = y[idx].sum()
    if depth == max_depth or len(idx) < 2 * min_leaf or pos in (0, len(idx)):
        return int(2 * pos >= len(idx))
    nf = xb.shape[1]
    c = np.bincount((np.arange(nf) * 2 * bins + xb[idx] * 2 + y[idx, None]).ravel(), minlength=nf * 2 * bins)
    c = c.reshape(nf, bins, 2).cumsum(1)[:, :-1]           # left counts for "bin <= b"
    left, tot = c.sum(2), np.array([len(idx) - pos, pos])
    right_c = tot - c
    right = len(idx) - left
    gini = (left - (c ** 2).sum(2) / np.maximum(left, 1)) + (right - (right_c ** 2).sum(2) / np.maximum(right, 1))
    gini[(left < min_leaf) | (right < min_leaf)] = np.inf
    f, b = np.unravel_index(np.argmin(gini), gini.shape)
    if not np.isfinite(gini[f, b]):
        return int(2 * pos >= len(idx))
    go = xb[idx, f] <= b
    return (f, b, _grow(xb, y, idx[go], depth + 1, max_depth, min_leaf, bins),
            _grow(xb, y, idx[~go], depth + 1, max_depth, min_leaf, bins))


def _predict(tree, xb):
    out = np.empty(len(xb), int)
    stack = [(tree, np.arange(len(xb)))]
    while stack:
        node, idx = stack.pop()
        if isinstance(node, int):
            out[idx] = node
            continue
        f, b, lt, rt = node
        go = xb[idx, f] <= b
        stack += [(lt, idx[go]), (rt, idx[~go])]
    return out


def decision_tree(xtr, ytr, xte, bins: int = 32, min_leaf: int = 20) -> np.ndarray:
    """A decision tree whose depth (2..10) is picked on a held-out fifth of the training set."""
    edges = [np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1])) for col in xtr.T]
    binned = lambda x: np.stack([np.searchsorted(e, col, side="right") for e, col in zip(edges, x.T)], 1)  # noqa
    btr, bte = binned(xtr), binned(xte)
    cut = len(xtr) * 4 // 5
    scores = {d: (_predict(_grow(btr[:cut], ytr[:cut], np.arange(cut), 0, d, min_leaf, bins), btr[cut:])
                  == ytr[cut:]).mean() for d in (2, 4, 6, 8, 10)}
    best = max(scores, key=scores.get)
    return _predict(_grow(btr, ytr, np.arange(len(xtr)), 0, best, min_leaf, bins), bte)


# ------------------------------------------------------------------------------ measurements
def generation_speed() -> tuple[float, float]:
    """(images/s at 64 px on one core, seconds for 10,000 64x64 images on 2 workers), no cache."""
    t0 = time.perf_counter()
    data.generate(1000, 64, "train", 123, workers=1, progress=False)
    one = 1000 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    data.generate(10_000, 64, "train", 124, workers=2, progress=False)
    return one, time.perf_counter() - t0


def probes(seed: int, n_train: int, n_val: int, difficulty: float) -> dict[str, float]:
    """Validation accuracy of the four shortcut probes on 64 px images of one seed."""
    xtr, ytr = data.synthetic(n_train, 64, "train", seed, difficulty, progress=False).arrays()
    xva, yva = data.synthetic(n_val, 64, "val", seed, difficulty, progress=False).arrays()
    out = {"majority class (no model)": float(max(yva.mean(), 1 - yva.mean()))}
    for fname, feat in (("colour+edge stats", colour_edge_features), ("8x8 thumbnails", thumbnails)):
        ftr, fva = feat(xtr), feat(xva)
        for mname, model in (("linear", logistic_regression), ("tree", decision_tree)):
            out[f"{fname}, {mname}"] = float((model(ftr, ytr, fva) == yva).mean())
    return out


def trained_accuracy(model_name: str, seed: int, width: float, resolution: int, n_train: int, n_val: int,
                     epochs: int, difficulty: float, device: str = "cpu", lr: float = 3e-3) -> tuple[float, float]:
    """(validation accuracy, seconds) of a zoo model trained on the synthetic set of one seed."""
    tr = data.synthetic(n_train, resolution, "train", seed, difficulty, progress=False)
    va = data.synthetic(n_val, resolution, "val", seed, difficulty, progress=False)
    import torch
    torch.manual_seed(seed)
    model = zoo.get(model_name, width, resolution, num_classes=2).module()
    t0 = time.perf_counter()
    hist = train.fit(model, tr, va, epochs, lr=lr, seed=seed, progress=False, device=device)
    return hist[-1]["val_accuracy"], time.perf_counter() - t0


def spread(v: list[float]) -> str:
    """'mean (min..max)' in percent."""
    return f"{100 * np.mean(v):5.1f}% ({100 * min(v):.1f}..{100 * max(v):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, smaller sets")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--model", default="resnet18", choices=list(zoo.MODELS))
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-val", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (default: %(default)s)")
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--skip", choices=("speed", "train", "probes"), action="append", default=[])
    ap.add_argument("--device", default="cpu", help="where the networks train: cpu, cuda or auto")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.n_train, a.n_val, a.epochs = 1, 3000, 1000, 4
    os.environ.setdefault("MCUNET_LITE_CACHE", os.path.join(tempfile.gettempdir(), "mcunet-lite-bench-cache"))
    seeds = list(range(a.seeds))
    print(f"synthetic VWW stand-in v{scenes.VERSION}, difficulty {a.difficulty}, seeds {seeds}, "
          f"{a.n_train} train / {a.n_val} val images")
    if "speed" not in a.skip:
        one, ten_k = generation_speed()
        print(f"generation, 64 px, one core:            {one:7.0f} images/s ({1000 / one:.2f} ms/image)")
        print(f"generation, 10,000 64x64, 2 workers:     {ten_k:7.1f} s   (target < 20 s)")
    if "probes" not in a.skip:
        runs = [probes(s, a.n_train, a.n_val, a.difficulty) for s in seeds]
        print("shortcut probes (64 px, val accuracy; target <= 60%):")
        for k in runs[0]:
            print(f"  {k:28s} {spread([r[k] for r in runs])}")
    if "train" not in a.skip:
        print(f"{a.model}, same training ({a.n_train} images, {a.epochs} epochs, AdamW lr {a.lr:g}, batch 32), "
              "val accuracy:")
        res = {}
        for width, r in ((0.25, 32), (1.0, 64)):
            accs, secs = zip(*(trained_accuracy(a.model, s, width, r, a.n_train, a.n_val, a.epochs, a.difficulty,
                                                a.device, a.lr) for s in seeds))
            res[(width, r)] = accs
            print(f"  {r:3d} px, width {width:4}:  {spread(list(accs))}   ({np.mean(secs):.0f} s per run)")
        gaps = [hi - lo for lo, hi in zip(res[(0.25, 32)], res[(1.0, 64)])]
        print(f"  gap (64 px w1.0 - 32 px w0.25): {spread(gaps)}   (target >= 10 points; best < 95%)")


if __name__ == "__main__":
    main()

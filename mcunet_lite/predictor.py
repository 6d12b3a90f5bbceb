"""An accuracy predictor for the evolutionary search (OFA section 3.4, as in MIT 6.5940's NAS lab).

Scoring a subnet with the supernet costs a BatchNorm recalibration and a validation pass. Once-for-All
instead measures a few thousand (subnet, accuracy) pairs once, fits a predictor to them and lets
the evolution query the predictor, which costs microseconds. OFA's predictor is a small MLP on a
one-hot encoding of the architecture; this one is ridge regression on the same kind of encoding:
exact (closed form, no training noise) and enough to see whether the pairs carry a ranking.

The encoding: for every stage after the fixed first one and every block slot it can hold (4 in a
searchable stage, 1 in the last), one-hot kernel (3, 5, 7) then one-hot expansion (3, 4, 6); a
slot the subnet skips (beyond its stage's depth) is all zeros, so depth is encoded too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import search_space as ss
from .zoo import MBConvConfig

SLOTS = tuple(max(ss.DEPTHS) if searchable else 1 for _, _, searchable in ss.LAYOUT)  # blocks per stage
FEATURES = len(ss.KERNELS) + len(ss.EXPANDS)  # per slot
SIZE = sum(SLOTS) * FEATURES  # numbers per subnet


def encode(cfg: MBConvConfig) -> np.ndarray:
    """The subnet's features: per stage after the first and per block slot, one-hot kernel and
    one-hot expansion, zeros for a skipped slot (`SIZE` = 126 numbers)."""
    x, row = np.zeros((sum(SLOTS), FEATURES)), 0
    for slots, stage in zip(SLOTS, cfg.stages[1:]):
        for j, b in enumerate(stage.blocks):
            x[row + j, ss.KERNELS.index(b.kernel)] = 1.0
            x[row + j, len(ss.KERNELS) + ss.EXPANDS.index(b.expand)] = 1.0
        row += slots
    return x.ravel()


@dataclass
class Predictor:
    """A linear accuracy model on `encode`: `weights . encode(cfg) + bias`. Callable on an
    `evolution.Candidate`, so it serves as the search's fitness."""

    weights: np.ndarray
    bias: float

    def predict(self, cfgs: Sequence[MBConvConfig]) -> np.ndarray:
        """Predicted accuracy of each subnet."""
        return np.array([encode(c) for c in cfgs]).reshape(len(cfgs), -1) @ self.weights + self.bias

    def __call__(self, candidate) -> float:
        return float(encode(candidate.cfg) @ self.weights + self.bias)


def fit(cfgs: Sequence[MBConvConfig], accuracies: Sequence[float], lam: float = 1.0) -> Predictor:
    """Ridge regression of accuracy on the encoding, the intercept not penalised: centre the
    features and the accuracies, solve (Xc^T Xc + lam I) w = Xc^T yc, and bias = mean(y) - mean(X) . w."""
    x = np.array([encode(c) for c in cfgs])
    y = np.asarray(accuracies, np.float64)
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - my))
    return Predictor(w, float(my - mx @ w))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two scorings of the same items: +1 the same ranking, -1 reversed,
    about 0 unrelated; tied pairs count for neither side (accuracies on a few images tie often)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    i, j = np.triu_indices(len(a), 1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    pairs = np.sqrt(np.count_nonzero(sa) * np.count_nonzero(sb))
    return float((sa * sb).sum() / pairs) if pairs else 0.0

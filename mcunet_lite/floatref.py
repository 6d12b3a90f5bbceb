"""Float reference executor: run a Graph that carries weights, in torch, NHWC in and out.

The float counterpart of the int8 executor: it checks that an imported Graph computes what its
torch model computes, and it is the ground truth that patch-based float execution must equal.
"""
from __future__ import annotations

import numpy as np

from .errors import UserError
from .ir import Graph, Op


def _act(y, act: str | None):
    import torch
    return torch.relu(y) if act == "relu" else torch.clamp(y, 0, 6) if act == "relu6" else y


def _nchw(x):
    return x.permute(0, 3, 1, 2)


def _nhwc(x):
    return x.permute(0, 2, 3, 1)


def run_op(g: Graph, op: Op, xs: list):
    """Apply one op to its activation inputs `xs` (torch tensors, NHWC); weights come from `g`."""
    import torch
    import torch.nn.functional as F
    w, b = (torch.from_numpy(t.data) for t in g.consts(op)) if op.kind in ("conv2d", "linear") else (None, None)
    a = op.attrs
    if op.kind in ("conv2d", "avgpool", "maxpool"):
        pt, pb, pl, pr = a["pads"]
        x = _nchw(xs[0])
        if op.kind == "conv2d":
            y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w.permute(0, 3, 1, 2), b, a["stride"], groups=a["groups"])
        elif op.kind == "maxpool":
            y = F.max_pool2d(F.pad(x, (pl, pr, pt, pb), value=-float("inf")), a["kernel"], a["stride"])
        else:
            ones = F.pad(torch.ones_like(x[:, :1]), (pl, pr, pt, pb)) if not a.get("count_include_pad", False) else None
            y = F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), a["kernel"], a["stride"])
            y = y / F.avg_pool2d(ones, a["kernel"], a["stride"]) if ones is not None else y
        return _act(_nhwc(y), op.act)
    if op.kind == "linear":
        return _act(F.linear(xs[0], w, b), op.act)
    if op.kind == "add":
        return _act(xs[0] + xs[1], op.act)
    if op.kind == "mean":
        return xs[0].mean(dim=a["axes"], keepdim=a["keepdims"])
    if op.kind == "pad":
        (_, _), (t, bt), (l, r), (_, _) = a["paddings"]
        return _nhwc(F.pad(_nchw(xs[0]), (l, r, t, bt)))
    if op.kind == "reshape":  # any batch size: the graph's own batch dimension is replaced
        return xs[0].reshape(xs[0].shape[0], *g.shape(op.output)[1:])
    if op.kind == "softmax":
        return torch.softmax(xs[0], dim=-1)
    if op.kind == "resize_nearest":  # the source rows and columns int8ref (TFLite) picks
        from .int8ref import nearest_index
        flags = (a["align_corners"], a["half_pixel_centers"])
        rows, cols = (torch.from_numpy(nearest_index(n, xs[0].shape[k], *flags)) for k, n in zip((1, 2), a["size"]))
        return xs[0][:, rows][:, :, cols]
    raise UserError(f"floatref: no float kernel for op kind '{op.kind}' ('{op.name}')")


def run_all(g: Graph, x: np.ndarray) -> list[np.ndarray]:
    """Execute `g` on NHWC input `x` layer by layer; returns every graph output, in order, as numpy."""
    import torch
    missing = [t.name for t in g.tensors.values() if t.const and t.data is None]
    if missing:
        raise UserError(f"graph '{g.name}' has no weights (e.g. '{missing[0]}'): build it with from_torch")
    env = {g.inputs[0]: torch.from_numpy(np.asarray(x, np.float32))}
    with torch.no_grad():
        for op in g.ops:
            env[op.output] = run_op(g, op, [env[t] for t in g.activations(op)])
    return [env[o].numpy() for o in g.outputs]


def run(g: Graph, x: np.ndarray) -> np.ndarray:
    """The first graph output of `run_all` (a classifier's logits)."""
    return run_all(g, x)[0]

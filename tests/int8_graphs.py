"""int8 graphs with random weights and quantization parameters for the C emitter's tests.

Quantization is assigned directly (no calibration), so every op kind the kernels implement can be
built, with zero points and scales that differ from op to op as they do in real models.
"""
import numpy as np

from mcunet_lite.ir import Graph, Quant

PASS_THROUGH = ("avgpool", "maxpool", "pad", "reshape", "transpose", "resize_nearest")


def _per_tensor(scale: float, zp: int) -> Quant:
    return Quant(np.array([scale], np.float32), np.array([zp], np.int64))


def quantize_randomly(g: Graph, seed: int = 0, wide: bool = False) -> Graph:
    """Give float graph `g` (shapes, no weights needed) int8 weights, int32 biases and per-tensor
    activation scales / zero points drawn from `seed`. One output channel of every conv has all-zero
    weights (a pruned channel). `wide` draws biases up to 2^30 and output scales down to 1e-5
    (accumulators beyond the fast DSP path's 2^30 and multipliers above 1, which it must refuse)."""
    rng = np.random.default_rng(seed)
    for name in g.inputs:
        t = g.tensors[name]
        if t.dtype != "float32" or not any(op.kind == "quantize" and op.inputs[0] == name for op in g.ops):
            t.dtype = "int8"
            t.quant = _per_tensor(rng.uniform(0.005, 0.05), int(rng.integers(-20, 21)))
    for op in g.ops:
        y = g.tensors[op.output]
        y.dtype = "float32" if op.kind == "dequantize" else "int8"
        x = g.tensors[op.inputs[0]]
        if op.kind in ("conv2d", "linear"):
            w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
            w.dtype, b.dtype = "int8", "int32"
            w.data = rng.integers(-127, 128, w.shape).astype(np.int8)
            w.data[rng.integers(0, w.shape[0])] = 0
            s_w = rng.uniform(0.002, 0.02, w.shape[0]).astype(np.float32)
            w.quant = Quant(s_w, np.zeros(len(s_w), np.int64), 0)
            b.data = rng.integers(-2 ** (30 if wide else 12), 2 ** (30 if wide else 12), b.shape).astype(np.int32)
            b.quant = Quant((x.quant.scale[0] * s_w).astype(np.float32), np.zeros(len(s_w), np.int64), 0)
        if op.kind in PASS_THROUGH:
            y.quant = x.quant
        elif op.kind == "softmax":
            y.quant = _per_tensor(1 / 256, -128)
        elif op.kind == "dequantize":
            y.quant = None
        else:
            scale = 10 ** rng.uniform(-5, -0.7) if wide else rng.uniform(0.02, 0.2)
            y.quant = _per_tensor(scale, int(rng.integers(-30, 31)))
    return g


def every_op() -> Graph:
    """One graph with every op kind of the four real models, at awkward sizes: odd widths, channel
    counts that are not multiples of 4, asymmetric padding, both strides, ReLU and ReLU6, an ADD
    fused into a conv, a depthwise conv that cannot run in place, float input and outputs."""
    g = Graph("every-op")
    f = g.add_input("input", (1, 13, 11, 3), "float32")
    x = g.add_op("quantize", "q", [f])
    p = g.add_op("pad", "pad", [x], {"paddings": ((0, 0), (1, 0), (0, 1), (0, 0))})
    a = g.conv2d(p, 12, 3, 2, act="relu6", name="first", pads=(0, 1, 1, 1))
    b = g.conv2d(a, 12, 3, 1, groups=12, act="relu", name="dw_s1")
    c = g.conv2d(b, 10, 1, name="pw_odd")
    d = g.conv2d(c, 10, 3, 2, groups=10, act="relu6", name="dw_s2", pads=(0, 1, 1, 1))
    e = g.conv2d(d, 16, 1, act="relu", name="expand")
    r = g.conv2d(e, 16, 3, 1, groups=16, name="dw_kept")  # e is still read by the ADD: not in place
    s = g.add_op("add", "add", [e, r], {"act": "relu"})
    t = g.conv2d(g.conv2d(s, 24, 1, act="relu6", name="mid"), 16, 1, name="project")
    u = g.add_op("add", "fused", [t, s], {"act": None})  # s dies here: the conv writes s + t into s
    v = g.conv2d(u, 32, 2, 1, groups=16, name="grouped", pads=(0, 1, 0, 1))
    w = g.conv2d(v, 15, 3, 1, name="conv_c32", pads=(1, 1, 1, 1))
    h = g.conv2d(w, 5, 3, 1, name="conv_c15_k135", pads=(1, 0, 0, 1))  # 3 * 3 * 15 > 128: portable
    m = g.add_op("maxpool", "maxpool", [h], {"kernel": (2, 3), "stride": (2, 2), "pads": (0, 1, 1, 1)})
    n = g.add_op("avgpool", "avgpool", [w], {"kernel": (3, 3), "stride": (2, 2), "pads": (1, 1, 1, 1)})
    rs = g.add_op("resize_nearest", "resize", [n], {"size": (5, 7), "align_corners": False,
                                                    "half_pixel_centers": True})
    tr = g.add_op("transpose", "transpose", [rs], {"perm": (0, 3, 1, 2)})
    mean = g.add_op("mean", "mean", [tr], {"axes": (2, 3), "keepdims": False})
    fc = g.linear(mean, 7, name="fc")
    sm = g.add_op("softmax", "softmax", [fc], {"beta": 1.0})
    flat = g.add_op("reshape", "flatten", [m], {"shape": (1, -1)})
    out = g.add_op("dequantize", "out", [flat])
    g.outputs = [sm, out]
    return g

"""The constants each C kernel takes, derived from an int8 Graph with `int8ref`'s arithmetic.

TinyEngine (MCUNet section 3.2) specialises every kernel call at code-generation time: the input
zero point is folded into the bias, per-channel multipliers are precomputed, and where the 32-bit
requantization of the DSP kernels is provably exact the weights are reordered for SMLAD. The
rescalings of ADD, MEAN and SOFTMAX are `int8ref`'s own (`int8ref.add_params`, ...), so the C and
the reference cannot drift.
"""
from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from . import int8ref
from .errors import UserError
from .ir import Graph, Op

def tensor_qparams(g: Graph, name: str) -> tuple[np.float32, int]:
    """(scale, zero point) of per-tensor-quantized tensor `name` of `g`."""
    return int8ref.scale_zp(g.tensors[name].quant, name)


def add_params(g: Graph, a: str, b: str, out: str, act: str | None) -> tuple[int, ...]:
    """mcu_add_t of ADD(a, b) -> out: `int8ref.add_params`' rescalings with the zero points and the
    clamp, and whether every shift is in [-31, 0] (the DSP kernels' 32-bit path)."""
    qa, qb, qo = (g.tensors[t].quant for t in (a, b, out))
    (ma, ea), (mb, eb), (mo, eo) = int8ref.add_params(qa, qb, qo)
    lo, hi = int8ref.activation_range(act, qo)
    fast = all(-31 <= e <= 0 for e in (ea, eb, eo))
    return tuple(int(v) for v in (tensor_qparams(g, a)[1], ma, ea, tensor_qparams(g, b)[1], mb, eb, mo, eo, tensor_qparams(g, out)[1], lo, hi, fast))


def conv_constants(g: Graph, op: Op) -> dict:
    """Folded bias, per-channel (M0, shift) and whether the fast 32-bit requantization is exact.

    The input zero point is folded into the bias (bias - Z_in * sum(w)) so kernels multiply raw
    int8 inputs. The DSP kernels' 32-bit requantization is exact when, for every input, the
    accumulator's bound B (|bias| + 128 sum |w|) is below 2^30, 1 <= e = -shift <= 31 and
    B + 2^(e-1) + |Z_out| 2^e < 2^31 (their rounding step adds that constant to a value below B).
    """
    x, w, b, y = (g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.inputs[2], op.output))
    (s_in, z_in), (s_out, z_out) = tensor_qparams(g, x.name), tensor_qparams(g, y.name)
    m0, shift = (np.broadcast_to(v, (w.shape[0],)) for v in int8ref.conv_multipliers(s_in, w.quant.scale, s_out))
    wq = w.data.astype(np.int64).reshape(w.shape[0], -1)
    bias = b.data.astype(np.int64) - z_in * wq.sum(axis=1)
    if np.abs(bias).max(initial=0) >= 2 ** 31:
        raise UserError(f"op '{op.name}': the bias with the input zero point folded in overflows int32; "
                        "requantize the model with a smaller bias range")
    # A channel whose weights are all zero (pruned) outputs the constant k = MBQM(bias); rewrite it as
    # bias 4k, M0 = 2^30, shift -1, which both requantizations compute exactly (k beyond +-256
    # saturates the int8 output the same way).
    dead = np.abs(wq).sum(axis=1) == 0
    k = np.clip(fp.multiply_by_quantized_multiplier(bias, m0, shift), -256, 256)
    bias, m0, shift = np.where(dead, 4 * k, bias), np.where(dead, 1 << 30, m0), np.where(dead, -1, shift)
    bound = np.abs(bias) + 128 * np.abs(wq).sum(axis=1)
    e = np.clip(-shift.astype(np.int64), 1, 31)  # shifts outside [-31, -1] fail the first test
    fast = bool(np.all((shift <= -1) & (shift >= -31)) and np.all(bound < 2 ** 30) and
                np.all(bound + (1 << (e - 1)) + abs(z_out) * (1 << e) < 2 ** 31))
    lo, hi = int8ref.activation_range(op.act, y.quant)
    return {"bias": bias, "m0": m0, "shift": shift, "fast": fast, "z_in": z_in, "z_out": z_out, "lo": lo, "hi": hi}


def dsp_weights(w: np.ndarray) -> np.ndarray:
    """(oc, K) int8 weights in the DSP matrix kernels' order: channel pairs, each as K // 4 blocks of
    4 weights of the first channel then 4 of the second, both K % 4 tails, zeros to a word; an odd
    last channel as its plain row. One 64-bit load then fetches both channels' next 4 weights."""
    oc, K = w.shape
    nb = K // 4
    parts = []
    for o in range(0, oc - 1, 2):
        blocks = np.stack([w[o, :4 * nb].reshape(nb, 4), w[o + 1, :4 * nb].reshape(nb, 4)], axis=1)
        tails = np.concatenate([w[o, 4 * nb:], w[o + 1, 4 * nb:]])
        parts += [blocks.reshape(-1), tails, np.zeros(-len(tails) % 4, np.int8)]
    if oc % 2:
        parts.append(w[-1])
    return np.concatenate(parts).astype(np.int8) if parts else np.zeros(0, np.int8)


def dsp_kernel(op: Op, fast: bool, c: int, oc: int, groups: int, kernel: tuple[int, int],
               stride: tuple[int, int], inplace: bool, geoms: list[tuple]) -> bool:
    """Whether a kernel of kernels_dsp.c runs `op` (then it gets DSP records and weight order): the
    requantization must be fast; an in-place depthwise kernel at most 8 x 8; a depthwise conv not in
    place, channel multiplier 1; other convs need groups == 1 and, for every call, a plain
    pointwise shape (1x1, stride 1, no padding), c % 4 == 0 or a window of at most MCU_STAGE_BYTES
    (128) int8 values."""
    if not fast:
        return False
    if op.kind == "linear":
        return True
    if inplace:
        return kernel[0] <= 8 and kernel[1] <= 8
    if groups != 1:
        return groups == c == oc
    plain = kernel == (1, 1) and stride == (1, 1) and all(not any(gm[7:]) for gm in geoms)
    return plain or c % 4 == 0 or kernel[0] * kernel[1] * c <= 128


def softmax_params(g: Graph, op: Op) -> tuple[int, int, int]:
    """(M0, left shift, diff_min) of SOFTMAX: `int8ref.softmax_params` of its input scale."""
    return int8ref.softmax_params(tensor_qparams(g, op.inputs[0])[0], op.attrs.get("beta", 1.0))


def mean_params(g: Graph, op: Op) -> tuple[int, int, int]:
    """(M0, shift, count) of MEAN with 1/count folded into the multiplier (`int8ref.mean_params`)."""
    count = int(np.prod([g.shape(op.inputs[0])[a] for a in op.attrs["axes"]]))
    return (*int8ref.mean_params(g.tensors[op.inputs[0]].quant, g.tensors[op.output].quant, count), count)

"""Post-training int8 quantization: a float Graph with weights -> an int8 Graph (TFLite arithmetic).

The scheme is TFLite's int8 specification, the one MCUNet deploys (MCUNet section 3.2, TinyEngine):

- weights: symmetric, one scale per output channel, int8 in [-127, 127], zero point 0;
- activations: asymmetric, one scale and zero point per tensor, int8 in [-128, 127], ranges
  calibrated by running the float graph on sample images (min / max, or a percentile that ignores
  rare outliers);
- bias: int32 with scale S_in * S_w[c], so it adds straight into the int32 accumulator;
- ReLU / ReLU6 stay fused and become the int8 clamp of their op's output (`int8ref.activation_range`).

BatchNorm is already folded into the convolutions by `from_torch`. Ops that only move values
(pooling, padding, reshape, transpose, resize) keep their input's scale and zero point, as TFLite
requires; softmax outputs use the fixed scale 1/256 and zero point -128.
"""
from __future__ import annotations

import numpy as np

from . import fixedpoint as fp
from . import int8ref
from .errors import UserError
from .ir import Graph, Quant

PASS_THROUGH = ("avgpool", "maxpool", "pad", "reshape", "transpose", "resize_nearest")
MIN_SCALE = 1e-7  # a constant-zero tensor still gets a scale whose ReLU6 bound fits in int32
SAMPLES_PER_BATCH = 20_000  # values kept per tensor and batch for percentile calibration


def calibrate(g: Graph, images: np.ndarray, percentile: float | None = None, batch_size: int = 32,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """Float range (lo, hi) of every activation of `g` over NHWC float `images`.

    With `percentile` P (e.g. 99.99) the range is the (100 - P)th to Pth percentile of each tensor's
    values, estimated from a fixed random sample of every batch; without it, the exact min and max.
    """
    import torch

    from . import floatref
    images = np.asarray(images, np.float32)
    want = g.shape(g.inputs[0])[1:]
    if images.ndim != 4 or images.shape[1:] != want or len(images) == 0:
        raise UserError(f"calibration images must be float NHWC of shape (N, {', '.join(map(str, want))}) with "
                        f"N >= 1, got {images.shape}")
    if percentile is not None and not 50 < percentile <= 100:
        raise UserError(f"percentile must be in (50, 100], got {percentile}")
    missing = [t.name for t in g.tensors.values() if t.const and t.data is None]
    if missing:
        raise UserError(f"graph '{g.name}' has no weights (e.g. '{missing[0]}'): build it with from_torch")
    rng = np.random.default_rng(seed)
    stats: dict[str, list] = {}

    def observe(name: str, v: np.ndarray) -> None:
        v = v.reshape(-1)
        s = stats.setdefault(name, [np.inf, -np.inf, []])
        s[0], s[1] = min(s[0], float(v.min())), max(s[1], float(v.max()))
        if percentile is not None:
            keep = v if v.size <= SAMPLES_PER_BATCH else v[rng.integers(0, v.size, SAMPLES_PER_BATCH)]
            s[2].append(np.concatenate([keep, [v.min(), v.max()]]))  # with the extremes, P100 is min / max

    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            env = {g.inputs[0]: torch.from_numpy(images[i:i + batch_size])}
            observe(g.inputs[0], env[g.inputs[0]].numpy())
            for op in g.ops:
                env[op.output] = floatref.run_op(g, op, [env[t] for t in g.activations(op)])
                observe(op.output, env[op.output].numpy())
    if percentile is None:
        return {k: (lo, hi) for k, (lo, hi, _) in stats.items()}
    return {k: tuple(float(v) for v in np.percentile(np.concatenate(s), [100 - percentile, percentile]))
            for k, (_, _, s) in stats.items()}


def choose_qparams(lo: float, hi: float) -> tuple[np.float32, int]:
    """Asymmetric int8 (scale, zero point) covering [lo, hi], widened to include 0 so that real 0 is
    exactly representable (padding and ReLU depend on it)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32(max((hi - lo) / 255.0, MIN_SCALE))
    zp = int(np.clip(fp.round_half_away(-128.0 - lo / np.float64(scale)), -128, 127))
    return scale, zp


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (axis 0) symmetric int8: scale = max|w_c| / 127, values in [-127, 127]."""
    amax = np.abs(w.reshape(len(w), -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = fp.round_half_away(w / scale.reshape(-1, *[1] * (w.ndim - 1)).astype(np.float64))
    return np.clip(q, -127, 127).astype(np.int8), scale


def quantize_bias(b: np.ndarray, s_in: np.float32, s_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int32 bias with scale S_in * S_w[c] (float32, as stored in .tflite)."""
    scale = (np.float32(s_in) * s_w).astype(np.float32)
    q = fp.round_half_away(b.astype(np.float64) / scale.astype(np.float64))
    return np.clip(q, -2 ** 31, 2 ** 31 - 1).astype(np.int32), scale


def _per_tensor(scale: np.float32, zp: int) -> Quant:
    return Quant(np.array([scale], np.float32), np.array([zp], np.int64))


def quantize(g: Graph, images: np.ndarray, percentile: float | None = None,
             input_quant: tuple[float, int] | None = None, float_io: bool = False) -> Graph:
    """Post-training quantization of float graph `g` calibrated on NHWC float `images`.

    `input_quant` fixes the input's (scale, zero point), e.g. (1/128, 0) for images normalised as
    (uint8 - 128) / 128 so that the int8 input is exactly uint8 - 128; by default it is calibrated.
    With `float_io` the graph takes and returns float32 through QUANTIZE / DEQUANTIZE ops; by
    default input and output are int8, as on the microcontroller.
    """
    for op in g.ops:
        if op.kind == "avgpool" and op.attrs.get("count_include_pad") and any(op.attrs["pads"]):
            raise UserError(f"avgpool '{op.name}' averages over its zero padding (count_include_pad); TFLite's int8 "
                            "average pool excludes padding: use count_include_pad=False or no padding")
    ranges = calibrate(g, images, percentile)
    x = g.inputs[0]
    q = Graph(f"{g.name}-int8", meta={**g.meta, "quantized": {"calibration_images": len(images),
                                                               "percentile": percentile}})
    in_q = _per_tensor(np.float32(input_quant[0]), int(input_quant[1])) if input_quant else \
        _per_tensor(*choose_qparams(*ranges[x]))
    if float_io:
        q.add_input(x, g.shape(x), "float32")
        cur = q.add_op("quantize", f"{x}_int8", [x])
    else:
        cur = q.add_input(x, g.shape(x), "int8")
    q.tensors[cur].dtype, q.tensors[cur].quant = "int8", in_q
    rename = {x: cur}
    for op in g.ops:
        ins = [rename[n] for n in g.activations(op)]
        if op.kind in ("conv2d", "linear"):
            w, b = g.consts(op)
            s_in = q.tensors[ins[0]].quant.scale[0]
            wq, s_w = quantize_weights(w.data)
            bq, s_b = quantize_bias(b.data, s_in, s_w)
            ins += [q.add_const(w.name, w.shape, wq, "int8"), q.add_const(b.name, b.shape, bq, "int32")]
            q.tensors[w.name].quant = Quant(s_w, np.zeros(len(s_w), np.int64), 0)
            q.tensors[b.name].quant = Quant(s_b, np.zeros(len(s_b), np.int64), 0)
        out = q.add_op(op.kind, op.name, ins, op.attrs)
        t = q.tensors[out]
        t.dtype = "int8"
        if op.kind in PASS_THROUGH:
            t.quant = q.tensors[ins[0]].quant
        elif op.kind == "softmax":
            t.quant = _per_tensor(np.float32(1 / 256), -128)
        else:
            t.quant = _per_tensor(*choose_qparams(*ranges[op.output]))
        rename[op.output] = out
    outs = [rename[o] for o in g.outputs]
    if float_io:
        outs = [q.add_op("dequantize", f"{o}_float", [o]) for o in outs]
        for o in outs:
            q.tensors[o].dtype = "float32"
    q.outputs = outs
    return q


IMAGE_QUANT = (1 / 128, 0)  # images normalised as (uint8 - 128) / 128: the int8 input is exactly uint8 - 128


def from_module(module, resolution: int, calibration: np.ndarray, name: str | None = None,
                percentile: float | None = None, input_quant: tuple[float, int] | None = IMAGE_QUANT,
                float_io: bool = False, meta: dict | None = None) -> tuple[Graph, Graph]:
    """A torch model -> (its float Graph, the int8 Graph): the one path every trained or zoo model
    takes to int8 (CLI, demo, assets, detection, deployment). BatchNorm is folded (`from_torch`, in
    eval mode); the int8 graph is calibrated on float NHWC `calibration` images (`quantize`), with
    the input's quantization fixed to `input_quant` (None: calibrated too). `meta` is added to both."""
    from .from_torch import from_torch
    g = from_torch(module.eval(), resolution, name=name)
    g.meta.update(meta or {})
    return g, quantize(g, calibration, percentile, input_quant, float_io)


def quantize_input(g: Graph, x: np.ndarray) -> np.ndarray:
    """Float NHWC input -> what quantized graph `g` takes: int8 by QUANTIZE's arithmetic (or the
    float itself for a float-I/O graph)."""
    t = g.tensors[g.inputs[0]]
    if t.dtype == "float32":
        return np.asarray(x, np.float32)
    return int8ref.quantize(x, *int8ref.scale_zp(t.quant, t.name))


def dequantize_output(g: Graph, y: np.ndarray, index: int = 0) -> np.ndarray:
    """Output `index` of quantized graph `g` -> float (DEQUANTIZE's arithmetic where it is int8)."""
    t = g.tensors[g.outputs[index]]
    if t.dtype == "float32":
        return np.asarray(y, np.float32)
    return int8ref.dequantize(y, *int8ref.scale_zp(t.quant, t.name))


def calibration_images(source: str, n: int, resolution: int) -> np.ndarray:
    """`n` float NHWC images normalised as training normalises them ((uint8 - 128) / 128).

    `source` is 'synthetic' (the offline VWW stand-in, train split), a VWW folder (any layout
    `data.load` detects) or a .npy file of NHWC images (uint8, or float already normalised).
    """
    if source.endswith(".npy"):
        try:
            images = np.load(source)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read calibration images '{source}': {e}") from None
        images = images[:n]
        if images.dtype == np.uint8:
            images = (images.astype(np.float32) - 128) / 128
    else:
        from . import data
        ds = data.synthetic(n, resolution, "train", progress=False) if source == "synthetic" else \
            data.load(source, "train", resolution)
        images = data.to_tensor(ds.arrays(n)[0]).permute(0, 2, 3, 1).numpy()
    if images.ndim != 4 or images.shape[1:3] != (resolution, resolution) or not len(images):
        raise UserError(f"calibration images must be NHWC at {resolution}x{resolution}, got shape {images.shape}")
    return np.ascontiguousarray(images, np.float32)


def _int8_outputs(q: Graph, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Dequantized int8ref outputs of graph `q` on float `images`, batch by batch."""
    return np.concatenate([dequantize_output(q, int8ref.run(q, quantize_input(q, images[i:i + batch_size])))
                           for i in range(0, len(images), batch_size)])


def float_vs_int8(g: Graph, q: Graph, images: np.ndarray, labels: np.ndarray | None = None,
                  batch_size: int = 64, workers: int = 1) -> dict[str, float]:
    """How closely int8 graph `q` follows float graph `g` on `images`: top-1 agreement and output
    differences (dequantized, in real units), plus top-1 accuracy of both where `labels` exist.
    `workers` > 1 runs the int8 executor (the slow part) in that many processes."""
    from . import floatref
    f = np.concatenate([floatref.run(g, images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    if workers > 1 and len(images) > batch_size:
        import multiprocessing as mp
        chunks = np.array_split(images, workers)
        with mp.get_context("fork").Pool(workers) as pool:
            d = np.concatenate(pool.starmap(_int8_outputs, [(q, c, batch_size) for c in chunks]))
    else:
        d = _int8_outputs(q, images, batch_size)
    r = {"n": len(images), "top1_agreement": float(np.mean(f.argmax(-1) == d.argmax(-1))),
         "max_abs_diff": float(np.max(np.abs(f - d))), "mean_abs_diff": float(np.mean(np.abs(f - d)))}
    if labels is not None:
        r["float_accuracy"] = float(np.mean(f.argmax(-1) == labels))
        r["int8_accuracy"] = float(np.mean(d.argmax(-1) == labels))
    return r

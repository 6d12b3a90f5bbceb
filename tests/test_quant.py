"""Post-training quantization: the int8 scheme (per-channel weights, per-tensor activations, int32
bias, fused clamps), calibration, exported models running identically in TFLite Micro, and the CLI."""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mcunet_lite import floatref, int8ref, quant, tflite_io, zoo
from mcunet_lite.errors import UserError
from mcunet_lite.from_torch import from_torch


def warmed(model: str, width: float, resolution: int):
    """A random-init zoo model whose BatchNorm statistics are averaged over a few batches, so that
    activations keep realistic ranges (with fresh statistics the outputs collapse to a constant)."""
    torch.manual_seed(0)
    m = zoo.get(model, width, resolution, num_classes=2).module().train()
    for bn in (mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)):
        bn.momentum = None  # cumulative average
    with torch.no_grad():
        for _ in range(2):
            m(torch.randn(16, 3, resolution, resolution))
    return m.eval()


@pytest.fixture(scope="module")
def mbv2():
    g = from_torch(warmed("mbv2", 0.35, 32), 32, name="mbv2")
    images = np.random.default_rng(0).normal(0, 0.5, (64, 32, 32, 3)).astype(np.float32)
    return g, images


def test_weights_per_channel_symmetric():
    w = np.random.default_rng(0).normal(0, 1, (6, 3, 3, 4)).astype(np.float32)
    w[2] = 0
    q, s = quant.quantize_weights(w)
    assert q.dtype == np.int8 and s.dtype == np.float32 and s.shape == (6,)
    assert q.min() >= -127 and all(np.abs(q[c]).max() == 127 for c in (0, 1, 3, 4, 5)) and not q[2].any()
    assert np.all(np.abs(q * s[:, None, None, None] - w) <= s[:, None, None, None] / 2 + 1e-7)


@pytest.mark.parametrize("lo,hi", [(-1.0, 3.0), (0.0, 6.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)])
def test_activation_params_cover_range_and_zero(lo, hi):
    scale, zp = quant.choose_qparams(lo, hi)
    assert -128 <= zp <= 127 and scale > 0
    # real 0 maps exactly to the zero point; the range maps inside [-128, 127]
    assert int8ref.quantize(np.float32(0), scale, zp) == zp
    assert int8ref.quantize(np.float32(min(lo, 0)), scale, zp) >= -128 and \
        int8ref.quantize(np.float32(max(hi, 0)), scale, zp) <= 127
    if lo == 0:
        assert zp == -128  # ReLU outputs use the whole int8 range


def test_quantized_graph_follows_the_int8_contract(mbv2):
    g, images = mbv2
    q = quant.quantize(g, images[:32], input_quant=(1 / 128, 0))
    ranges = quant.calibrate(g, images[:32])
    assert q.tensors[q.inputs[0]].dtype == "int8" and q.tensors[q.inputs[0]].quant.scale[0] == np.float32(1 / 128)
    for op in q.ops:
        out = q.tensors[op.output]
        assert out.dtype == "int8" and len(out.quant.scale) == 1
        s, z = out.quant.scale[0], out.quant.zero_point[0]  # the calibrated range is covered, tightly
        lo, hi = min(ranges[op.output][0], 0), max(ranges[op.output][1], 0)
        assert s * (-128 - z) <= lo + s / 2 and hi - s / 2 <= s * (127 - z) and s <= (hi - lo) / 255 * 1.001 + 1e-7
        if op.kind in ("conv2d", "linear"):
            x, w, b = (q.tensors[n] for n in op.inputs)
            assert w.dtype == "int8" and w.quant.axis == 0 and len(w.quant.scale) == w.shape[0]
            assert not w.quant.zero_point.any() and np.abs(w.data).max() <= 127
            assert b.dtype == "int32"
            assert np.array_equal(b.quant.scale, (x.quant.scale[0] * w.quant.scale).astype(np.float32))
            fw, fb = (t.data for t in g.consts(g.ops[q.ops.index(op)]))  # the float weights, within half a step
            sw = w.quant.scale.reshape(-1, *[1] * (w.data.ndim - 1))
            assert np.all(np.abs(w.data * sw - fw) <= sw / 2 * 1.0001)
            assert np.all(np.abs(b.data * b.quant.scale.astype(np.float64) - fb) <= b.quant.scale / 2 * 1.0001)
            if op.act:  # ReLU / ReLU6 outputs: the clamp starts at the zero point (real 0)
                assert int8ref.activation_range(op.act, out.quant)[0] == out.quant.zero_point[0] == -128
        if op.kind in quant.PASS_THROUGH:
            assert out.quant is q.tensors[op.inputs[0]].quant


def dequantized_weights(q):
    """A copy of int8 graph `q` whose constants hold their real values (q * S), for floatref."""
    g = copy.deepcopy(q)
    for t in g.tensors.values():
        if t.const:
            scale = t.quant.scale.reshape(-1, *[1] * (t.data.ndim - 1)).astype(np.float64)
            t.data = (t.data * scale).astype(np.float32)
    return g


@pytest.mark.parametrize("model,resolution", [("mbv2", 32), ("resnet18", 32), ("mcunet", 32)])
def test_every_int8_op_follows_its_float_op_within_one_step(model, resolution):
    """Each int8 op, fed the int8 pipeline's own inputs, equals its float op on the dequantized
    inputs, weights and biases to within TFLite's double rounding (0.5 + 0.5 * 2^shift < 1 step);
    values beyond the output's int8 range are clamped on both sides. A wrong bias scale, multiplier,
    zero point or fused clamp breaks this by many steps."""
    g = from_torch(warmed(model, 0.35, resolution), resolution)
    images = np.random.default_rng(0).normal(0, 0.5, (40, resolution, resolution, 3)).astype(np.float32)
    q = quant.quantize(g, images[:32])
    deq, env = dequantized_weights(q), int8ref.tensors(q, quant.quantize_input(q, images[32:]))
    for op in q.ops:
        xs = [torch.from_numpy(int8ref.dequantize(env[n], *int8ref.scale_zp(q.tensors[n].quant)))
              for n in q.activations(op)]
        with torch.no_grad():
            want = floatref.run_op(deq, op, xs).numpy()
        s, z = int8ref.scale_zp(q.tensors[op.output].quant)
        err = np.abs(np.clip(want, s * (-128 - z), s * (127 - z)) - int8ref.dequantize(env[op.output], s, z)) / s
        assert err.max() < 1.0, f"{op.name} ({op.kind}) is off by {err.max():.2f} steps"
        assert err.mean() < 0.3


def test_float_vs_int8_in_worker_processes_is_the_same(mbv2):
    g, images = mbv2
    q = quant.quantize(g, images[:32], input_quant=(1 / 128, 0))
    labels = np.arange(len(images)) % 2
    one = quant.float_vs_int8(g, q, images, labels, batch_size=16)
    assert quant.float_vs_int8(g, q, images, labels, batch_size=16, workers=2) == one and one["n"] == 64


def test_percentile_narrows_ranges(mbv2):
    g, images = mbv2
    full, clipped, p100 = (quant.calibrate(g, images[:16], p) for p in (None, 99.0, 100.0))
    assert all(full[k][0] <= clipped[k][0] <= clipped[k][1] <= full[k][1] for k in full)
    assert any(clipped[k][1] < full[k][1] for k in full)
    assert p100 == full


@pytest.mark.parametrize("float_io", [False, True])
def test_exported_model_runs_identically_in_tflm(mbv2, float_io):
    runtime = pytest.importorskip("tflite_micro", reason="tflite-micro (pip install --pre tflite-micro)").runtime
    g, images = mbv2
    q = quant.quantize(g, images[:32], percentile=99.99, float_io=float_io)
    it = runtime.Interpreter.from_bytes(tflite_io.to_bytes(q))
    for x in images[32:37]:
        xin = quant.quantize_input(q, x[None])
        it.set_input(xin, 0)
        it.invoke()
        assert np.array_equal(it.get_output(0), int8ref.run(q, xin))


def test_quantize_errors(mbv2):
    g, images = mbv2
    with pytest.raises(UserError, match=r"must be float NHWC of shape \(N, 32, 32, 3\)"):
        quant.quantize(g, images[:, :16])
    with pytest.raises(UserError, match="percentile must be in"):
        quant.quantize(g, images, percentile=20)
    with pytest.raises(UserError, match="has no weights"):
        quant.quantize(zoo.get("mbv2", 0.35, 32).graph(), images)


def test_cli_quantize(tmp_path):
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8))
    out = tmp_path / "m.tflite"
    r = subprocess.run([sys.executable, "-m", "mcunet_lite.cli", "quantize", "mbv2", "--width", "0.35",
                        "--resolution", "32", "--num-classes", "2", "--calib", str(tmp_path / "calib.npy"),
                        "--out", str(out), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["out"] == str(out) and d["bytes"] == out.stat().st_size and d["calibration"]["n"] == 8
    assert d["input"]["dtype"] == "int8" and "random init" in d["weights"]
    g = tflite_io.read(out)
    assert g.tensors[g.inputs[0]].shape == (1, 32, 32, 3) and g.tensors[g.outputs[0]].shape == (1, 2)
    r = subprocess.run([sys.executable, "-m", "mcunet_lite.cli", "quantize", "mbv2", "--checkpoint",
                        str(tmp_path / "none.pt"), "--out", str(tmp_path / "m2.tflite")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "cannot load checkpoint" in r.stderr and "Traceback" not in r.stderr

"""Reading the real .tflite models into Graphs, writing Graphs back (TFLite Micro runs them), the
one-line errors for malformed, truncated, float and unsupported files, and the CLI on .tflite."""
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn

from mcunet_lite import int8ref, profile, tflite_io
from mcunet_lite.errors import UserError
from mcunet_lite.from_torch import from_torch
from mcunet_lite.ir import Graph, Quant

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
needs_models = pytest.mark.skipif(not MODELS.is_dir(),
                                  reason=f"no real models at {MODELS} (../shared/models is absent)")
VWW, RESNET, MCUNET, DET = (MODELS / f"{m}.tflite" for m in (
    "mlperf-tiny-vww-96-int8", "mlperf-tiny-resnet8-cifar10-int8", "mcunet-vww1-80-int8", "mcunet-person-det-int8"))


def tflm():
    return pytest.importorskip("tflite_micro", reason="tflite-micro (pip install --pre tflite-micro)").runtime


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mcunet_lite.cli", *args], capture_output=True, text=True)


def one_line_error(fn, match: str) -> str:
    with pytest.raises(UserError, match=match) as e:
        fn()
    assert "\n" not in str(e.value)
    return str(e.value)


@needs_models
@pytest.mark.parametrize("path,ops", [
    (VWW, {"conv2d": 27, "avgpool": 1, "reshape": 1, "linear": 1, "softmax": 1}),
    (RESNET, {"conv2d": 9, "add": 3, "avgpool": 1, "reshape": 1, "linear": 1, "softmax": 1}),
    (MCUNET, {"quantize": 1, "conv2d": 45, "add": 8, "transpose": 1, "mean": 2, "linear": 1,
              "dequantize": 1}),
    (DET, {"quantize": 1, "conv2d": 55, "add": 11, "resize_nearest": 2, "maxpool": 2, "dequantize": 3}),
])
def test_reads_real_models(path, ops):
    """Op counts as read; the MCUNet models' PADs (4 and 5) are folded into their convs (fuse.py)."""
    g = tflite_io.read(path)
    assert Counter(op.kind for op in g.ops) == ops
    for op in g.ops:
        if op.kind == "conv2d":  # weights OHWI, depthwise as (C*m, kh, kw, 1) with groups = C
            w = g.tensors[op.inputs[1]]
            assert w.dtype == "int8" and w.quant.axis == 0 and len(w.quant.scale) == w.shape[0]
            assert g.tensors[op.inputs[2]].dtype == "int32"
            if op.attrs["groups"] > 1:
                assert g.is_depthwise(op) and w.shape[3] == 1
    assert len(g.outputs) == (3 if path == DET else 1)


@needs_models
def test_same_padding_becomes_explicit_with_extra_row_after():
    g = tflite_io.read(VWW)
    stride2 = [op for op in g.ops if op.kind == "conv2d" and op.attrs["stride"] == (2, 2)]
    assert stride2[0].attrs["pads"] == (0, 1, 0, 1)  # 96x96 input, 3x3, stride 2: TFLite SAME
    assert all(op.attrs["pads"] == (1, 1, 1, 1) for op in g.ops if op.kind == "conv2d"
               and op.attrs["stride"] == (1, 1) and g.shape(op.inputs[1])[1] == 3)


@needs_models
def test_profile_of_real_models():
    vww, resnet = profile.profile(tflite_io.read(VWW)), profile.profile(tflite_io.read(RESNET))
    # MLPerf Tiny's published MACs: VWW MobileNetV1-0.25 7.49M, ResNet-8 12.5M
    assert round(vww.macs / 1e6, 2) == 7.49 and round(resnet.macs / 1e6, 1) == 12.5
    assert vww.resolution == 96 and 40_000 < vww.peak_sram_bytes < 100_000 and vww.params > 200_000


@needs_models
@pytest.mark.parametrize("path", [VWW, RESNET, MCUNET, DET])
def test_write_round_trip_runs_identically_in_tflm(path):
    rt = tflm()
    g = tflite_io.read(path)
    buf = tflite_io.to_bytes(g)
    g2 = tflite_io.from_bytes(buf, "rt.tflite")
    assert [(op.kind, op.attrs) for op in g2.ops] == [(op.kind, op.attrs) for op in g.ops]
    for a, b in zip(g.tensors.values(), g2.tensors.values()):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert a.data is None or np.array_equal(a.data, b.data)
    orig, ours = rt.Interpreter.from_file(str(path)), rt.Interpreter.from_bytes(buf)
    x_t, rng = g.tensors[g.inputs[0]], np.random.default_rng(0)
    for _ in range(2):
        x = rng.integers(-128, 128, x_t.shape).astype(np.int8) if x_t.dtype == "int8" else \
            rng.uniform(-2, 2, x_t.shape).astype(np.float32)
        orig.set_input(x, 0)
        ours.set_input(x, 0)
        orig.invoke()
        ours.invoke()
        for k in range(len(g.outputs)):
            assert np.array_equal(orig.get_output(k), ours.get_output(k))


def int8_conv_graph(pads, pool_pads=None) -> Graph:
    g = Graph("t")
    x = g.add_input("x", (1, 8, 8, 3), "int8")
    g.tensors[x].quant = Quant(np.array([0.05], np.float32), np.array([3]))
    rng = np.random.default_rng(0)
    w = g.add_const("w", (4, 3, 3, 3), rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), "int8")
    b = g.add_const("b", (4,), rng.integers(-500, 500, 4).astype(np.int32), "int32")
    g.tensors[w].quant = Quant(np.full(4, 0.01, np.float32), np.zeros(4, np.int64), 0)
    g.tensors[b].quant = Quant(np.full(4, np.float32(0.05) * np.float32(0.01), np.float32), np.zeros(4, np.int64), 0)
    y = g.add_op("conv2d", "y", [x, w, b], {"stride": (2, 2), "pads": pads, "groups": 1, "act": "relu"})
    g.tensors[y].dtype, g.tensors[y].quant = "int8", Quant(np.array([0.1], np.float32), np.array([-128]))
    if pool_pads is not None:
        y = g.add_op("maxpool", "p", [y], {"kernel": (2, 2), "stride": (2, 2), "pads": pool_pads})
        g.tensors[y].quant = g.tensors["y"].quant
    g.outputs = [y]
    return g


def test_explicit_pads_export_as_pad_then_valid_conv():
    g = int8_conv_graph((1, 1, 1, 1))  # PyTorch-style padding 1 at stride 2: not TFLite SAME (0, 1)
    buf = tflite_io.to_bytes(g)
    import tflite
    assert tflite.Model.GetRootAs(buf, 0).Subgraphs(0).OperatorsLength() == 2  # PAD, CONV_2D
    back = tflite_io.from_bytes(buf, "t.tflite")  # the PAD is folded back into the conv on reading
    assert [op.kind for op in back.ops] == ["conv2d"] and back.ops[0].attrs["pads"] == (1, 1, 1, 1)
    same = tflite_io.from_bytes(tflite_io.to_bytes(int8_conv_graph((0, 1, 0, 1))), "same.tflite")
    assert [op.kind for op in same.ops] == ["conv2d"]
    it = tflm().Interpreter.from_bytes(buf)
    x = np.random.default_rng(1).integers(-128, 128, (1, 8, 8, 3)).astype(np.int8)
    it.set_input(x, 0)
    it.invoke()
    assert np.array_equal(it.get_output(0), int8ref.run(g, x))
    one_line_error(lambda: tflite_io.to_bytes(int8_conv_graph((0, 1, 0, 1), pool_pads=(1, 1, 1, 1))),
                   "neither SAME nor VALID")


# --------------------------------------------------------------------------------------- errors
@needs_models
def test_malformed_and_truncated_files_are_one_line_errors(tmp_path):
    buf = VWW.read_bytes()
    one_line_error(lambda: tflite_io.from_bytes(b"not a model at all", "junk.tflite"), "not a .tflite file")
    one_line_error(lambda: tflite_io.from_bytes(b"", "empty.tflite"), "not a .tflite file")
    junk = buf[:8] + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8))
    one_line_error(lambda: tflite_io.from_bytes(junk, "junk.tflite"), "truncated or corrupt")
    for n in (16, 1000, len(buf) // 2, len(buf) - 100, len(buf) - 4):
        one_line_error(lambda: tflite_io.from_bytes(buf[:n], "cut.tflite"), "truncated")
    one_line_error(lambda: tflite_io.read(tmp_path / "missing.tflite"), "cannot read")


def test_float_model_is_a_one_line_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2))
    buf = tflite_io.to_bytes(from_torch(net, input_shape=(1, 3, 8, 8)))  # the writer writes float graphs too
    it = tflm().Interpreter.from_bytes(buf)  # a valid float model: TFLite Micro runs it
    it.set_input(np.zeros((1, 8, 8, 3), np.float32), 0)
    it.invoke()
    one_line_error(lambda: tflite_io.from_bytes(buf, "float.tflite"), "is a float model .*quantize it first")


def test_unsupported_op_is_a_one_line_error(monkeypatch):
    import tflite
    g = Graph("t")
    x = g.add_input("x", (1, 10), "int8")
    g.tensors[x].quant = Quant(np.array([0.1], np.float32), np.array([0]))
    y = g.add_op("softmax", "y", [x], {"beta": 1.0})
    g.tensors[y].quant = Quant(np.array([1 / 256], np.float32), np.array([-128]))
    g.outputs = [y]
    monkeypatch.setattr(tflite.BuiltinOperator, "SOFTMAX", tflite.BuiltinOperator.LOGISTIC)
    buf = tflite_io.to_bytes(g)  # the same op, written as LOGISTIC (sigmoid)
    one_line_error(lambda: tflite_io.from_bytes(buf, "sigmoid.tflite"),
                   "op 0 is LOGISTIC: unsupported op; supported: CONV_2D, ")


# ------------------------------------------------------------------------------------------ CLI
@needs_models
def test_cli_profile_and_run_on_tflite(tmp_path):
    r = cli("profile", str(RESNET), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["model"] == RESNET.stem and d["resolution"] == 32 and len(d["layers"]) == 16
    assert "<- peak" in cli("profile", str(DET)).stdout
    x = np.random.default_rng(0).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    r = cli("run", str(RESNET), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), int8ref.run(tflite_io.read(RESNET), x))
    np.save(tmp_path / "f.npy", x.astype(np.float32))
    for args, msg in [(("run", str(RESNET), "--input", str(tmp_path / "f.npy"), "--output", str(tmp_path / "z.npy")),
                       r"must be int8 of shape \(N, 32, 32, 3\), got float32"),
                      (("run", str(DET), "--input", str(tmp_path / "f.npy"), "--output", str(tmp_path / "z.npy")),
                       "must be float32 of shape"),
                      (("profile", str(tmp_path / "x.npy.tflite")), "cannot read")]:
        r = cli(*args)
        assert r.returncode == 2 and re.search(msg, r.stderr), r.stderr
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


# ------------------------------------------------------------------ FULLY_CONNECTED on any rank
def fc_file(keep_num_dims: bool) -> bytes:
    """A FULLY_CONNECTED reading a rank-4 conv output directly (keep_num_dims: a rank-3 input, whose
    leading dims the output keeps), made by writing our graph with RESHAPEs, then dropping them."""
    from int8_graphs import quantize_randomly
    from test_hostile import op_of, pack, unpack
    g = Graph("fc")
    if keep_num_dims:
        x = g.add_input("x", (1, 6, 10))
        flat = g.add_op("reshape", "flat", [x], {"shape": (6, 10)})
        g.outputs = [g.add_op("reshape", "out", [g.linear(flat, 7, act="relu", name="fc")], {"shape": (1, 6, 7)})]
    else:
        y = g.conv2d(g.add_input("x", (1, 3, 4, 5)), 8, 1, name="pw")
        g.outputs = [g.linear(g.add_op("reshape", "flat", [y], {"shape": (1, 96)}), 7, name="fc")]
    d = unpack(tflite_io.to_bytes(quantize_randomly(g, seed=2)))
    fc = op_of(d, "FULLY_CONNECTED")
    reshapes = [op for op in d["ops"] if op is not fc and op["options"] is None and len(op["inputs"]) == 2]
    fc["inputs"][0] = reshapes[0]["inputs"][0]
    if keep_num_dims:
        fc["outputs"] = reshapes[1]["outputs"]
        fc["options"]["KeepNumDims"] = True
    d["ops"] = [op for op in d["ops"] if op not in reshapes]
    return pack(d)


@pytest.mark.parametrize("keep_num_dims", [False, True], ids=["flatten", "keep-num-dims"])
def test_fully_connected_on_any_input_rank_is_exact(keep_num_dims):
    buf = fc_file(keep_num_dims)
    g = tflite_io.from_bytes(buf, "fc.tflite")
    assert [op.kind for op in g.ops][-3 if keep_num_dims else -2:] == \
        (["reshape", "linear", "reshape"] if keep_num_dims else ["reshape", "linear"])
    x = np.random.default_rng(3).integers(-128, 128, g.shape(g.inputs[0])).astype(np.int8)
    it = tflm().Interpreter.from_bytes(buf)
    it.set_input(x, 0)
    it.invoke()
    want = it.get_output(0)
    assert want.shape == ((1, 6, 7) if keep_num_dims else (1, 7))
    assert np.array_equal(int8ref.run(g, x), want)

"""fuse.py: a PAD folded into the conv it feeds and an input layout TRANSPOSE folded into the input
compute the same integers as the unfolded graph (int8ref) and as TFLite Micro on the file; what
cannot be folded exactly stays an op; on the MCUNet models the padded copies are gone."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from int8_graphs import quantize_randomly
from mcunet_lite import fuse, int8ref, profile, schedule, tflite_io
from mcunet_lite.ir import Graph, Quant, same_pads

runtime = pytest.importorskip("tflite_micro", reason="tflite-micro (pip install --pre tflite-micro)").runtime
MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason=f"no real models at {MODELS} (../shared/models is absent)")


def tflm_run(buf: bytes, x: np.ndarray) -> np.ndarray:
    it = runtime.Interpreter.from_bytes(buf)
    it.set_input(x, 0)
    it.invoke()
    return it.get_output(0)


def padded_conv(hw, c, paddings, k, stride, depthwise, same, seed, tail: bool = False) -> Graph:
    """input -> 1x1 conv -> PAD (H and W only) -> conv or depthwise (SAME or VALID) [-> 1x1 conv], int8."""
    g = Graph("padded")
    x = g.conv2d(g.add_input("x", (1, *hw, c)), c, 1, name="pw")
    p = g.add_op("pad", "pad", [x], {"paddings": ((0, 0), paddings[:2], paddings[2:], (0, 0))})
    _, h, w, _ = g.shape(p)
    pads = (0, 0, 0, 0)
    if same:
        pads = (*same_pads(h, k, stride), *same_pads(w, k, stride))
    y = g.conv2d(p, c if depthwise else 5, k, stride, groups=c if depthwise else 1, act="relu6", name="conv",
                 pads=pads)
    g.outputs = [g.conv2d(y, 4, 1, name="tail") if tail else y]
    return quantize_randomly(g, seed)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hw=st.tuples(st.integers(3, 9), st.integers(3, 9)), c=st.integers(1, 6),
       paddings=st.tuples(*[st.integers(0, 3)] * 4), k=st.integers(1, 3), stride=st.integers(1, 2),
       depthwise=st.booleans(), same=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_folded_pad_is_the_unfolded_result_and_tflm(hw, c, paddings, k, stride, depthwise, same, seed):
    g = padded_conv(hw, c, paddings, k, stride, depthwise, same, seed)
    f = fuse.fold_pads(g)
    assert [op.kind for op in f.ops] == ["conv2d", "conv2d"] and "pad" not in f.tensors
    assert f.shape(f.outputs[0]) == g.shape(g.outputs[0])
    x = np.random.default_rng(seed).integers(-128, 128, (1, *hw, c)).astype(np.int8)
    want = int8ref.run(g, x)
    assert np.array_equal(int8ref.run(f, x), want)
    buf = tflite_io.to_bytes(g)
    assert np.array_equal(tflm_run(buf, x), want)
    back = tflite_io.from_bytes(buf)  # reading the file folds its PAD the same way
    assert [op.kind for op in back.ops] == ["conv2d", "conv2d"] and np.array_equal(int8ref.run(back, x), want)


def test_what_cannot_fold_exactly_stays_an_op():
    base = padded_conv((6, 6), 4, (1, 0, 0, 2), 3, 2, True, False, seed=3)
    other_zp = padded_conv((6, 6), 4, (1, 0, 0, 2), 3, 2, True, False, seed=3)
    other_zp.tensors["pad"].quant = Quant(other_zp.tensors["pad"].quant.scale, np.array([5], np.int64))
    channels = padded_conv((6, 6), 4, (1, 0, 0, 2), 3, 2, False, False, seed=3)
    channels.ops[1].attrs["paddings"] = ((0, 0), (1, 0), (0, 2), (0, 1))  # C padded too: not a conv padding
    shared = padded_conv((6, 6), 4, (1, 1, 1, 1), 3, 1, True, False, seed=4)
    shared.outputs.append("pad")  # the padded tensor is a graph output: it must exist
    for g in (other_zp, channels, shared):
        assert fuse.fold_pads(g) is g
    assert [op.kind for op in fuse.fold_pads(base).ops] == ["conv2d", "conv2d"]


def nchw_model(seed: int) -> Graph:
    """What PyTorch exporters write: an NCHW int8 input, a TRANSPOSE to NHWC, then the network."""
    g = Graph("nchw")
    t = g.add_op("transpose", "to_nhwc", [g.add_input("x", (1, 3, 7, 9))], {"perm": (0, 2, 3, 1)})
    p = g.add_op("pad", "pad", [t], {"paddings": ((0, 0), (1, 1), (1, 1), (0, 0))})
    g.outputs = [g.conv2d(p, 8, 3, 2, act="relu", name="stem", pads=(0, 0, 0, 0))]
    return quantize_randomly(g, seed)


def test_input_transpose_folds_into_the_input_layout():
    g = nchw_model(seed=5)
    buf = tflite_io.to_bytes(g)
    f = tflite_io.from_bytes(buf)
    assert [op.kind for op in f.ops] == ["conv2d"] and f.shape(f.inputs[0]) == (1, 7, 9, 3)
    assert f.meta["input_perm"] == (0, 2, 3, 1) and f.meta["resolution"] == 7
    assert f.ops[0].attrs["pads"] == (1, 1, 1, 1)
    x = np.random.default_rng(5).integers(-128, 128, (1, 3, 7, 9)).astype(np.int8)
    want = tflm_run(buf, x)
    assert np.array_equal(int8ref.run(g, x), want)
    assert np.array_equal(int8ref.run(f, x.transpose(f.meta["input_perm"])), want)


def test_a_transpose_elsewhere_stays_an_op():
    g = nchw_model(seed=6)
    g.outputs.append("to_nhwc")  # the transposed input is also an output: nothing to fold
    assert fuse.fold_input_transpose(g) is g
    h = Graph("late")
    y = h.conv2d(h.add_input("x", (1, 4, 4, 3)), 4, 1, name="pw")
    h.outputs = [h.add_op("transpose", "t", [y], {"perm": (0, 3, 1, 2)})]
    assert fuse.fold_input_transpose(h) is h


@needs_models
@pytest.mark.parametrize("model,arena,tinyengine", [("mcunet-vww1-80-int8", 89_600, 89_600),
                                                    ("mcunet-person-det-int8", 245_760, 245_760)])
def test_mcunet_models_plan_at_tinyengine_arena(model, arena, tinyengine):
    g = tflite_io.read(MODELS / f"{model}.tflite")
    assert not any(op.kind == "pad" for op in g.ops)
    p = schedule.plan(g)
    assert p.arena_bytes == p.lower_bound_bytes == profile.profile(g).peak_sram_bytes == arena <= tinyengine
    stride2_dw = [op for op in g.ops if g.is_depthwise(op) and op.attrs["stride"] == (2, 2)]
    assert any(op.attrs["pads"] in ((1, 1, 1, 1), (3, 3, 3, 3)) for op in stride2_dw)  # PyTorch's, not SAME
    assert all((op.inputs[0], op.output) in p.pairs for op in stride2_dw)  # still in place

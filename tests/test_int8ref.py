"""int8ref is bit-exact with TFLite Micro's reference kernels: on every tensor of the four real
models, and op by op on random int8 graphs (random shapes, scales, zero points) exported with
tflite_io. TFLite Micro (PyPI `tflite-micro`) is the oracle."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcunet_lite import int8ref, tflite_io
from mcunet_lite.errors import UserError
from mcunet_lite.ir import Graph, Quant, same_pads

runtime = pytest.importorskip("tflite_micro", reason="tflite-micro (pip install --pre tflite-micro)").runtime
MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
PROBE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tflm(buf: bytes, preserve: bool = False):
    cfg = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    return runtime.Interpreter.from_bytes(buf, intrepreter_config=cfg)


def random_input(t, rng) -> np.ndarray:
    if t.dtype == "int8":
        return rng.integers(-128, 128, size=t.shape).astype(np.int8)
    return rng.uniform(-3, 3, size=t.shape).astype(np.float32)


@pytest.mark.skipif(not MODELS.is_dir(), reason=f"no real models at {MODELS} (../shared/models is absent)")
@pytest.mark.parametrize("model", ["mlperf-tiny-vww-96-int8", "mlperf-tiny-resnet8-cifar10-int8",
                                   "mcunet-vww1-80-int8", "mcunet-person-det-int8"])
def test_real_models_every_tensor_bit_exact(model):
    path = MODELS / f"{model}.tflite"
    g = tflite_io.read(path)
    it = tflm(path.read_bytes(), preserve=True)
    index, rng = g.meta["tflite_tensors"], np.random.default_rng(0)
    checked = mismatched = 0
    for _ in range(3):
        x = random_input(g.tensors[g.inputs[0]], rng)
        env = int8ref.tensors(g, x)
        it.set_input(x, 0)
        it.invoke()
        for op in g.ops:
            ref = it.GetTensor(index[op.output], 0)["tensor_data"]
            assert env[op.output].dtype == ref.dtype and env[op.output].shape == ref.shape
            checked += ref.size
            mismatched += int(np.sum(env[op.output] != ref))
        for k, name in enumerate(g.outputs):
            assert np.array_equal(env[name], it.get_output(k))
    assert checked > 100_000 and mismatched == 0


# ------------------------------------------------------------------------- random op probes
scales = st.floats(min_value=1e-3, max_value=0.5)
zps = st.integers(-128, 127)
acts = st.sampled_from([None, "relu", "relu6"])


def q(scale, zp) -> Quant:
    return Quant(np.array([scale], np.float32), np.array([zp], np.int64))


def new_graph(shape, quant: Quant | None, dtype: str = "int8") -> tuple[Graph, str]:
    g = Graph("probe")
    x = g.add_input("x", shape, dtype)
    g.tensors[x].quant = quant
    return g, x


def finish(g: Graph, name: str, quant: Quant | None, dtype: str = "int8") -> None:
    g.tensors[name].dtype, g.tensors[name].quant = dtype, quant
    g.outputs = [name]


def check(g: Graph, seed: int, n: int = 2) -> None:
    """int8ref and TFLite Micro agree on every element for `n` random inputs."""
    it = tflm(tflite_io.to_bytes(g))
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = random_input(g.tensors[g.inputs[0]], rng)
        it.set_input(x, 0)
        it.invoke()
        want = it.get_output(0)
        got = int8ref.run(g, x)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), f"{int(np.sum(got != want))} of {got.size} elements differ"


@PROBE
@given(hw=st.tuples(st.integers(3, 11), st.integers(3, 11)), cin=st.integers(1, 6), cout=st.integers(1, 6),
       k=st.sampled_from([1, 3, 5]), stride=st.sampled_from([1, 2]),
       mode=st.sampled_from(["same", "valid", "explicit"]),
       depthwise=st.booleans(), act=acts, s=st.tuples(scales, scales), z=st.tuples(zps, zps), seed=st.integers(0, 999))
def test_conv_and_depthwise_match_tflm(hw, cin, cout, k, stride, mode, depthwise, act, s, z, seed):
    rng = np.random.default_rng(seed)
    h, w = max(hw[0], k), max(hw[1], k)
    pads = {"valid": (0, 0, 0, 0), "same": (*same_pads(h, k, stride), *same_pads(w, k, stride)),
            "explicit": tuple(int(p) for p in rng.integers(0, k, 4))}[mode]
    groups = cin if depthwise else 1
    o = cin * (1 + cout % 2) if depthwise else cout
    g, x = new_graph((1, h, w, cin), q(s[0], z[0]))
    wq = Quant(rng.uniform(0.002, 0.05, o).astype(np.float32), np.zeros(o, np.int64), 0)
    wshape = (o, k, k, cin // groups)
    wt = g.add_const("w", wshape, rng.integers(-127, 128, wshape).astype(np.int8), "int8")
    b = g.add_const("b", (o,), rng.integers(-3000, 3000, o).astype(np.int32), "int32")
    g.tensors[wt].quant = wq
    g.tensors[b].quant = Quant((np.float32(s[0]) * wq.scale).astype(np.float32), np.zeros(o, np.int64), 0)
    y = g.add_op("conv2d", "y", [x, wt, b], {"stride": (stride, stride), "pads": pads, "groups": groups, "act": act})
    finish(g, y, q(s[1] * 4, z[1]))
    check(g, seed)


@PROBE
@given(n_in=st.integers(1, 40), n_out=st.integers(1, 12), act=acts, s=st.tuples(scales, scales), z=st.tuples(zps, zps),
       per_channel=st.booleans(), seed=st.integers(0, 999))
def test_fully_connected_matches_tflm(n_in, n_out, act, s, z, per_channel, seed):
    rng = np.random.default_rng(seed)
    g, x = new_graph((1, n_in), q(s[0], z[0]))
    ws = rng.uniform(0.002, 0.05, n_out if per_channel else 1).astype(np.float32)
    w = g.add_const("w", (n_out, n_in), rng.integers(-127, 128, (n_out, n_in)).astype(np.int8), "int8")
    b = g.add_const("b", (n_out,), rng.integers(-3000, 3000, n_out).astype(np.int32), "int32")
    g.tensors[w].quant = Quant(ws, np.zeros(len(ws), np.int64), 0 if per_channel else None)
    g.tensors[b].quant = Quant((np.float32(s[0]) * ws).astype(np.float32), np.zeros(len(ws), np.int64),
                               0 if per_channel else None)
    finish(g, g.add_op("linear", "y", [x, w, b], {"act": act}), q(s[1] * 4, z[1]))
    check(g, seed)


@PROBE
@given(shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5)), act=acts,
       s=st.tuples(scales, scales, scales), z=st.tuples(zps, zps, zps), seed=st.integers(0, 999))
def test_add_matches_tflm(shape, act, s, z, seed):
    g, x = new_graph((1, *shape), q(s[0], z[0]))
    rng = np.random.default_rng(seed)
    # the second operand comes from a 1x1 conv so the graph has one input, as TFLite graphs do
    wshape = (shape[2], 1, 1, shape[2])
    w = g.add_const("w", wshape, rng.integers(-127, 128, wshape).astype(np.int8), "int8")
    b = g.add_const("b", (shape[2],), np.zeros(shape[2], np.int32), "int32")
    g.tensors[w].quant = Quant(np.full(shape[2], 0.01, np.float32), np.zeros(shape[2], np.int64), 0)
    g.tensors[b].quant = Quant(np.full(shape[2], np.float32(s[0]) * np.float32(0.01), np.float32),
                               np.zeros(shape[2], np.int64), 0)
    c = g.add_op("conv2d", "c", [x, w, b], {"stride": (1, 1), "pads": (0, 0, 0, 0), "groups": 1, "act": None})
    g.tensors[c].dtype, g.tensors[c].quant = "int8", q(s[1], z[1])
    finish(g, g.add_op("add", "y", [x, c], {"act": act}), q(s[2], z[2]))
    check(g, seed)


@PROBE
@given(hw=st.tuples(st.integers(2, 12), st.integers(2, 12)), c=st.integers(1, 5), k=st.integers(1, 4),
       stride=st.integers(1, 3), same=st.booleans(), kind=st.sampled_from(["avgpool", "maxpool"]), act=acts,
       s=scales, z=zps, seed=st.integers(0, 999))
def test_pools_match_tflm(hw, c, k, stride, same, kind, act, s, z, seed):
    h, w = max(hw[0], k), max(hw[1], k)
    pads = (*same_pads(h, k, stride), *same_pads(w, k, stride)) if same else (0, 0, 0, 0)
    g, x = new_graph((1, h, w, c), q(s, z))
    y = g.add_op(kind, "y", [x], {"kernel": (k, k), "stride": (stride, stride), "pads": pads, "act": act})
    finish(g, y, q(s, z))
    check(g, seed)


@PROBE
@given(shape=st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 6)),
       axes=st.sampled_from([(1, 2), (1,), (2,), (3,), (2, 3)]), keepdims=st.booleans(), same_params=st.booleans(),
       s=st.tuples(scales, scales), z=st.tuples(zps, zps), seed=st.integers(0, 999))
def test_mean_matches_tflm(shape, axes, keepdims, same_params, s, z, seed):
    g, x = new_graph((1, *shape), q(s[0], z[0]))
    y = g.add_op("mean", "y", [x], {"axes": axes, "keepdims": keepdims})
    finish(g, y, q(s[0], z[0]) if same_params else q(s[1], z[1]))
    check(g, seed)


@PROBE
@given(n=st.integers(1, 40), s=st.floats(min_value=1e-3, max_value=2.0), z=zps,
       beta=st.sampled_from([1.0, 0.5, 2.0]), seed=st.integers(0, 999))
def test_softmax_matches_tflm(n, s, z, beta, seed):
    g, x = new_graph((1, n), q(s, z))
    y = g.add_op("softmax", "y", [x], {"beta": beta})
    finish(g, y, q(1 / 256, -128))
    check(g, seed, n=4)


@PROBE
@given(hw=st.tuples(st.integers(1, 6), st.integers(1, 6)), size=st.tuples(st.integers(1, 13), st.integers(1, 13)),
       align=st.booleans(), half=st.booleans(), seed=st.integers(0, 999))
def test_resize_nearest_matches_tflm(hw, size, align, half, seed):
    g, x = new_graph((1, *hw, 3), q(0.05, 3))
    y = g.add_op("resize_nearest", "y", [x], {"size": size, "align_corners": align and not half,
                                               "half_pixel_centers": half})
    finish(g, y, q(0.05, 3))
    check(g, seed)


@PROBE
@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)), perm=st.permutations([1, 2, 3]),
       p=st.tuples(*[st.integers(0, 3)] * 4), s=st.tuples(scales, scales), z=st.tuples(zps, zps),
       seed=st.integers(0, 999))
def test_quantize_pad_transpose_dequantize_match_tflm(shape, perm, p, s, z, seed):
    g, x = new_graph((1, *shape), None, "float32")
    a = g.add_op("quantize", "a", [x])
    g.tensors[a].dtype, g.tensors[a].quant = "int8", q(s[0], z[0])
    b = g.add_op("pad", "b", [a], {"paddings": ((0, 0), (p[0], p[1]), (p[2], p[3]), (0, 0))})
    g.tensors[b].quant = q(s[0], z[0])
    c = g.add_op("transpose", "c", [b], {"perm": (0, *perm)})
    g.tensors[c].quant = q(s[0], z[0])
    d = g.add_op("reshape", "d", [c], {"shape": (1, -1)})
    g.tensors[d].quant = q(s[0], z[0])
    finish(g, g.add_op("dequantize", "y", [d]), None, "float32")
    check(g, seed)


def test_run_checks_input_and_kernels():
    g, x = new_graph((1, 4, 4, 2), q(0.1, 0))
    finish(g, g.add_op("avgpool", "y", [x], {"kernel": (2, 2), "stride": (2, 2), "pads": (0, 0, 0, 0)}), q(0.1, 0))
    with pytest.raises(UserError, match=r"must be int8 of shape \(N, 4, 4, 2\)"):
        int8ref.run(g, np.zeros((1, 4, 4, 2), np.float32))
    batch = np.random.default_rng(0).integers(-128, 128, (3, 4, 4, 2)).astype(np.int8)
    assert np.array_equal(int8ref.run(g, batch)[1:2], int8ref.run(g, batch[1:2]))  # batches run sample by sample
    assert int8ref.avgpool(np.array([[[[1], [2]], [[2], [2]]]], np.int8), (2, 2), (1, 1), (0, 0, 0, 0)).item() == 2
    assert int8ref.avgpool(np.array([[[[-1], [-2]], [[-2], [-2]]]], np.int8), (2, 2), (1, 1), (0, 0, 0, 0)).item() == -2

"""MobileNetV2 exported the PyTorch way (ai-edge-torch, onnx2tf): an NCHW int8 input behind a
TRANSPOSE, and PyTorch's symmetric padding, which is not TFLite SAME at stride 2, written as an
explicit PAD before every stride-2 conv. Read back, it profiles like the zoo model (1372 kB layer by
layer, about 172 kB with 4x4 patches; DESIGN.md section 3) and runs exactly like TFLite Micro."""
import numpy as np
import pytest

from int8_graphs import quantize_randomly
from mcunet_lite import int8ref, patch, profile, schedule, tflite_io, zoo
from mcunet_lite.ir import Graph

runtime = pytest.importorskip("tflite_micro", reason="tflite-micro (pip install --pre tflite-micro)").runtime


def exported_mbv2(width: float, resolution: int, seed: int = 0, num_classes: int = 1000) -> bytes:
    """The zoo's MobileNetV2 with random int8 weights, written with an NCHW input and a TRANSPOSE;
    the writer puts a PAD before each conv whose padding is neither SAME nor VALID."""
    z = zoo.mobilenet_v2(width, resolution, num_classes).graph()
    g = Graph(f"mbv2-exported-w{width}-r{resolution}")
    x = g.add_input("input.nchw", (1, 3, resolution, resolution))
    rename = {z.inputs[0]: g.add_op("transpose", "to_nhwc", [x], {"perm": (0, 2, 3, 1)})}
    for t in z.tensors.values():
        if t.const:
            g.add_const(t.name, t.shape)
    for op in z.ops:
        g.add_op(op.kind, op.name, [rename.get(n, n) for n in op.inputs], op.attrs)
    g.outputs = list(z.outputs)
    return tflite_io.to_bytes(quantize_randomly(g, seed))


def file_ops(buf: bytes) -> list[str]:
    import tflite
    m = tflite.Model.GetRootAs(buf, 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sg = m.Subgraphs(0)
    return [names[m.OperatorCodes(sg.Operators(k).OpcodeIndex()).BuiltinCode()] for k in range(sg.OperatorsLength())]


def test_exported_mbv2_profiles_like_the_paper():
    buf = exported_mbv2(1.0, 224)
    ops = file_ops(buf)
    assert ops[0] == "TRANSPOSE" and ops.count("PAD") == 5  # the stem and the four stride-2 depthwise convs
    g = tflite_io.from_bytes(buf, "mbv2-exported.tflite")
    assert g.shape(g.inputs[0]) == (1, 224, 224, 3) and g.meta["input_perm"] == (0, 2, 3, 1)
    assert not {"pad", "transpose"} & {op.kind for op in g.ops}
    assert profile.profile(g).peak_sram_bytes == 112 * 112 * (16 + 96) == 1372 * 1024
    p = patch.plan(g, patch.split_after_block(g, 4), 4)
    assert g.shape(p.stage_output) == (1, 28, 28, 32) and abs(p.peak_sram_bytes - 172 * 1024) <= 1024


def test_exported_mbv2_runs_exactly_whole_and_patch_by_patch():
    buf = exported_mbv2(0.35, 64, seed=1)
    g = tflite_io.from_bytes(buf, "mbv2-exported-small.tflite")
    it = runtime.Interpreter.from_bytes(buf)
    rng = np.random.default_rng(1)
    pp = patch.plan(g, patch.split_after_block(g, 4), 4)
    for _ in range(2):
        x = rng.integers(-128, 128, (1, 3, 64, 64)).astype(np.int8)  # the file's NCHW input
        it.set_input(x, 0)
        it.invoke()
        want = it.get_output(0)
        nhwc = x.transpose(g.meta["input_perm"])
        assert np.array_equal(int8ref.run(g, nhwc), want)
        assert np.array_equal(patch.run_int8(pp, nhwc)[0], want)
    plan = schedule.plan(g)
    assert plan.arena_bytes == plan.lower_bound_bytes

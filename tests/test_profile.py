"""Profiler: the MCUNetV2 paper's MobileNetV2 figures, hand-computed small graphs, rule properties."""
import hypothesis.strategies as st
from hypothesis import given, settings

from mcunet_lite import liveness
from mcunet_lite import profile as prof
from mcunet_lite import zoo
from mcunet_lite.ir import Graph


def test_mbv2_224_matches_paper_figures():
    g = zoo.mobilenet_v2(1.0, 224).graph()
    te, naive = prof.profile(g, "tinyengine"), prof.profile(g, "naive")
    assert te.peak_sram_bytes == 112 * 112 * (16 + 96) == 1404928          # 1372 kB (MCUNetV2 section 4)
    assert te.peak_layer == "blocks.1.expand.conv"
    assert naive.peak_sram_bytes == 112 * 112 * 96 + 56 * 56 * 96 == 1505280  # 1470 kB
    assert naive.peak_layer == "blocks.1.depthwise.conv"
    assert 295e6 <= te.macs <= 305e6


def _tiny_residual() -> Graph:
    """8x8x4 input -> pw 8 -> dw 3x3 (in place) -> pw 8 -> add with the first pw output."""
    g = Graph("tiny")
    x = g.add_input("input", (1, 8, 8, 4))
    a = g.conv2d(x, 8, 1, name="a")
    b = g.conv2d(a, 8, 3, groups=8, name="b")
    c = g.conv2d(b, 8, 1, name="c")
    g.outputs.append(g.add_op("add", "d", [a, c], {"act": None}))
    return g


def test_hand_computed_sram_both_rules():
    g = _tiny_residual()
    e = 64  # elements per channel
    # a: input(4) + a(8); b: a held for the add, a in + b out; c: a + b + c; d: a + c + d
    assert prof.op_sram(g, "naive") == [12 * e, 16 * e, 24 * e, 24 * e]
    # b's input a does not die at b (the add needs it), so b cannot run in place; the projection c
    # writes a + c into a's bytes (residual not added again), so c costs a + b, and the add only a
    assert prof.op_sram(g, "tinyengine") == [12 * e, 16 * e, 16 * e, 8 * e]
    assert liveness.fused_residuals(g) == [(3, "a", "c")]


def test_inplace_depthwise_when_input_dies():
    g = Graph("dw")
    x = g.add_input("input", (1, 10, 10, 6))
    y = g.conv2d(x, 6, 3, stride=2, groups=6, name="dw")
    g.outputs.append(g.conv2d(y, 2, 1, name="pw"))
    assert prof.op_sram(g, "naive")[0] == 600 + 150
    assert prof.op_sram(g, "tinyengine")[0] == 600


def test_macs_params_flash_of_one_conv():
    g = Graph("c")
    g.outputs.append(g.conv2d(g.add_input("input", (1, 16, 16, 3)), 8, 3, stride=2, name="c"))
    p = prof.profile(g)
    assert p.macs == 8 * 8 * 8 * 3 * 3 * 3
    assert p.params == 8 * 3 * 3 * 3 + 8
    assert p.flash_bytes == 8 * 3 * 3 * 3 + 4 * 8


def test_resnet18_figures():
    p = prof.profile(zoo.get("resnet18").graph())
    assert abs(p.params - 11.69e6) < 0.01e6 and abs(p.macs - 1.814e9) < 0.01e9


def test_block_grouping():
    assert prof.block_of("blocks.3.expand.conv") == "blocks.3"
    assert prof.block_of("layer1.0.downsample.0") == "layer1.0"
    assert prof.block_of("stem.conv") == "stem"
    blocks = prof.profile(zoo.mobilenet_v2(1.0, 224).graph()).blocks()
    assert max(blocks, key=blocks.get) == "blocks.1" and len(blocks) == 17 + 4


@settings(max_examples=40, deadline=None)
@given(st.floats(0.1, 1.5), st.integers(32, 256))
def test_rules_order_and_peak_bounds(width, resolution):
    g = zoo.mobilenet_v2(width, resolution).graph()
    te, naive = prof.op_sram(g, "tinyengine"), prof.op_sram(g, "naive")
    assert all(t <= n for t, n in zip(te, naive))
    # every op needs at least its own output and its input (max of the two when in place)
    for op, s in zip(g.ops, te):
        assert s >= max(g.tensors[op.output].size, g.tensors[op.inputs[0]].size)

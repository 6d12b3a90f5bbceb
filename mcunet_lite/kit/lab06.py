"""Graded checks of Lab 06, deploying to a microcontroller: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import random
import re
from typing import Any, Iterable

import numpy as np

from .. import codegen, deploy, patch, schedule, zoo
from ..ir import Graph, Quant
from . import mcu_harness
from .exercise import LIB, Case, Exercise
from .compare import Property, as_pair
from .inputs import schedule_graphs

def _random_sections(rng: random.Random) -> dict[str, int]:
    """Section sizes as `arm-none-eabi-size -A` lists them for a firmware: loaded ones (some may be
    missing), the test inputs, the reserved stack, and sections that never reach the board."""
    sizes = {".text": rng.randrange(8, 900_000, 4), ".ARM.exidx": rng.choice([0, 8, 16]),
             ".inputs": rng.randrange(0, 200_000, 8), ".data": rng.choice([0, 0, rng.randrange(4, 3000, 4)]),
             ".bss": rng.randrange(1000, 300_000, 8), ".stack": 2048, ".comment": 38, ".ARM.attributes": 50,
             ".debug_info": rng.randrange(100, 5000), ".debug_line": rng.randrange(100, 5000)}
    return {k: v for k, v in sizes.items() if v or rng.random() < 0.5}


def memory_map_reference(sections: dict[str, int], stack_bytes: int) -> tuple[int, int]:
    """(Flash, SRAM) as `deploy` reports them: its Build's figures of these sections, plus the stack."""
    return deploy.flash_bytes(sections), deploy.static_sram_bytes(sections) + stack_bytes


def _memory_map_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(12):
        sections, stack = _random_sections(rng), rng.randrange(100, 3000, 4)
        yield f"{sections}, stack_bytes={stack}", (sections, stack), memory_map_reference(sections, stack)


def _scratch_cases(rng: random.Random) -> Iterable[Case]:
    graphs = list(schedule_graphs(rng))
    graphs += [(f"<{m} at {r}px>", zoo.get(m, resolution=r).graph()) for m, r in (("mbv2", 96), ("mcunet", 64))]
    for label, g in graphs:
        plan = schedule.plan(g)
        expected = max((schedule.kernel_scratch_bytes(plan.graph, i, plan.pairs) for i in range(len(plan.graph.ops))),
                       default=0)
        yield f"{label}, <its {len(plan.pairs)} in-place pairs>", (plan.graph, plan.pairs), expected


DW_PROTOTYPE = ("void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, "
                "int8_t *scratch)")
BUDGET = 14.0  # instructions per MAC, the mean over the graded layers (the solution: about 11; kernels.c: about 21)


def _per_tensor(rng: random.Random, lo: float, hi: float) -> Quant:
    return Quant(np.array([rng.uniform(lo, hi)], np.float32), np.array([rng.randint(-40, 40)], np.int64))


def _quantize(g: Graph, rng: random.Random) -> Graph:
    """Give float graph `g` int8 weights, per-channel weight scales, folded-ready int32 biases and
    per-tensor activation scales and zero points drawn from `rng` (as a converter would, without data)."""
    nr = np.random.default_rng(rng.randrange(1 << 31))
    x = g.tensors[g.inputs[0]]
    x.dtype, x.quant = "int8", _per_tensor(rng, 0.005, 0.05)
    for op in g.ops:
        xin, y = g.tensors[op.inputs[0]], g.tensors[op.output]
        y.dtype, y.quant = "int8", _per_tensor(rng, 0.02, 0.2)
        w, b = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]]
        w.dtype, b.dtype = "int8", "int32"
        w.data = nr.integers(-127, 128, w.shape).astype(np.int8)
        s_w = nr.uniform(0.002, 0.03, w.shape[0]).astype(np.float32)
        w.quant = Quant(s_w, np.zeros(len(s_w), np.int64), 0)
        b.data = nr.integers(-5000, 5000, b.shape).astype(np.int32)
        b.quant = Quant((xin.quant.scale[0] * s_w).astype(np.float32), np.zeros(len(s_w), np.int64), 0)
    return g


def mbconv_graph(rng: random.Random, kernel: int, stride: int, pads: tuple[int, int, int, int] | None = None,
                 act: str | None = "relu6") -> Graph:
    """An int8 inverted bottleneck (MobileNetV2's block, MCUNet's search unit): pointwise expand,
    depthwise `kernel` x `kernel` at `stride` (run in place: its input dies there), pointwise project;
    sizes, channel counts (odd ones too), zero points and multipliers drawn from `rng`. The input is
    at least `4 * stride + kernel - 1` pixels a side, so the depthwise output is at least 4 x 4: on
    a 1 x 1 or 2 x 2 output a kernel's fixed cost per channel, not its inner loop, sets the
    instructions per MAC the exercise grades (a good kernel measured 34 on such a layer)."""
    g = Graph(f"mbconv-k{kernel}-s{stride}")
    low = 4 * stride + kernel - 1
    h, w = rng.randint(low, 18), rng.randint(low, 18)
    x = g.add_input("input", (1, h, w, rng.randint(2, 8)), "int8")
    c = rng.randint(3, 24)
    e = g.conv2d(x, c, 1, act="relu6", name="expand")
    d = g.conv2d(e, c, kernel, stride, groups=c, act=act, name="dw", pads=pads)
    g.outputs.append(g.conv2d(d, rng.randint(2, 12), 1, name="project"))
    return _quantize(g, rng)


def patch_graph(rng: random.Random) -> tuple[str, Graph, Any]:
    """A first stage run patch by patch (MCUNetV2): a stride-2 conv, an in-place 3x3 depthwise conv,
    a pointwise conv and a stride-2 depthwise conv that writes its patch into the stage output (rows
    a whole tensor width apart), then a pointwise conv; with a label and its patch plan (2x2 or 3x3 patches)."""
    g = Graph("patch-stage")
    side = rng.choice([16, 20, 24])
    x = g.add_input("input", (1, side, side, 3), "int8")
    c1, c2 = rng.randint(4, 12), rng.randint(6, 20)
    a = g.conv2d(x, c1, 3, 2, act="relu6", name="first", pads=(0, 1, 0, 1))
    b = g.conv2d(a, c1, 3, 1, groups=c1, act="relu6", name="dw1")
    d = g.conv2d(g.conv2d(b, c2, 1, name="pw"), c2, 3, 2, groups=c2, act="relu", name="dw2", pads=(0, 1, 0, 1))
    g.outputs.append(g.conv2d(d, rng.randint(2, 8), 1, name="project"))
    _quantize(g, rng)
    grid = rng.choice([2, 3])
    return f"3x3 in {grid}x{grid} patches", g, patch.plan(g, 3, grid)


Layer = tuple[str, Graph, Any, np.ndarray]  # (what it is, the graph, its patch plan or None, inputs)


def depthwise_layers(rng: random.Random) -> list[Layer]:
    """The graded layers: 3x3 at stride 1 and 2 (symmetric or TensorFlow's SAME padding), a 5x5 or 7x7,
    and a patch-based stage, each with two random int8 inputs."""
    s2_pads = rng.choice([(1, 1, 1, 1), (0, 1, 0, 1)])
    k = rng.choice([5, 7])
    graphs = [("3x3 stride 1", mbconv_graph(rng, 3, 1), None),
              (f"3x3 stride 2, pads {s2_pads}", mbconv_graph(rng, 3, 2, s2_pads, rng.choice([None, "relu"])), None),
              (f"{k}x{k} stride {(s := rng.choice([1, 2]))}", mbconv_graph(rng, k, s, act=rng.choice([None, "relu6"])),
               None),
              patch_graph(rng)]
    return [(label, g, pp, mcu_harness.random_inputs(g, 2, rng.randrange(1 << 31))) for label, g, pp in graphs]


class _CSource:
    """A student's C source, shown briefly in feedback."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        n = len(str(self.source).strip().splitlines())
        return f"<your C source, {n} line{'s' if n != 1 else ''}>"


def _as_c_source(v: Any) -> Any:
    return _CSource(v)


class _ExactAndFast(Property):
    """What `depthwise_c` must return: C whose mcu_depthwise_inplace gives int8ref's outputs bit for
    bit on every graded layer of the emulated STM32F746, within BUDGET instructions per MAC on the
    mean of the layers (a mean of ratios, so that a 7x7 layer's many MACs do not hide a slow 3x3)."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers, self.why = layers, ""

    def problem(self, got: Any) -> str:
        if not isinstance(got, _CSource) or not isinstance(got.source, str):
            return "depthwise_c() must return the C source as a string"
        refused = mcu_harness.refusal(got.source)
        if refused:
            return refused
        per_mac = []
        for label, g, pp, xs in self.layers:
            try:
                r = mcu_harness.run_kernel(got.source, g, pp, xs)
            except mcu_harness.CError as e:
                return f"{label}: {e}"
            if not r.outputs_match:
                return f"{label}, {g.name} ({' -> '.join(op.name for op in g.ops)}): {r.first_difference}"
            per_mac.append(r.per_mac)
        mean = sum(per_mac) / len(per_mac)
        if mean > BUDGET:
            return (f"bit-exact on all {len(self.layers)} layers, but {mean:.2f} instructions per MAC on average "
                    f"({', '.join(f'{v:.1f}' for v in per_mac)}), over the budget of {BUDGET}")
        return ""

    def describe(self) -> str:
        return (f"bit-exact outputs on {len(self.layers)} random layers "
                f"({'; '.join(label for label, *_ in self.layers)}) within {BUDGET} instructions per MAC on average")


def _depthwise_cases(rng: random.Random) -> Iterable[Case]:
    yield "", (), _ExactAndFast(depthwise_layers(rng))


def reference_c() -> str:
    """The kit's portable in-place depthwise kernel (kernels.c) as a self-contained definition of
    mcu_depthwise_inplace: exact, but over the budget (what the lab falls back to while the exercise is a stub)."""
    source = (codegen.CSRC / "kernels.c").read_text()
    parts = [re.search(rf"^static \w+ {f}\(.*?\n}}\n", source, re.S | re.M).group(0) for f in ("clamp", "requant")]
    start = source.index("/* Channel c of an h x w region")
    body = source[start:source.index("void mcu_conv2d(", start)]
    return "#include <string.h>\n" + "".join(parts) + body.replace("mcu_depthwise_inplace_ref", "mcu_depthwise_inplace")


def _scratch_bytes(graph, pairs) -> int:
    return max((schedule.kernel_scratch_bytes(graph, i, pairs) for i in range(len(graph.ops))), default=0)


LAB = "06_deploy"
EXERCISES: list[Exercise] = [
    Exercise("memory_map", "memory_map", 2, _memory_map_cases, as_pair,
             (LIB + "deploy.Build.flash_bytes", LIB + "deploy.Build.static_sram_bytes", LIB + "deploy.flash_bytes",
              LIB + "deploy.static_sram_bytes"), reference=memory_map_reference),
    Exercise("scratch_bytes", "scratch_bytes", 2, _scratch_cases, int, (LIB + "schedule.kernel_scratch_bytes",), reference=_scratch_bytes),
    Exercise("depthwise_c", "depthwise_c", 6, _depthwise_cases, _as_c_source, reference=reference_c),
]

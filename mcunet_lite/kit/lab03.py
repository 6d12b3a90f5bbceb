"""Graded checks of Lab 03, patch-based inference: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import dataclasses
import random
from typing import Any, Iterable

import numpy as np

from .. import int8ref, patch, quant, redistribute, zoo
from .. import profile as prof
from ..errors import UserError
from ..ir import Graph, Op
from .camera import Camera
from .compare import Exactly, Ints, Property, as_pair
from .exercise import LIB, Case, Exercise
from .inputs import np_rng, random_mbconv

def _chain(rng: random.Random, extra: bool = False) -> tuple[Graph, list[Layer]]:
    """A random chain of convs (some depthwise, some stride 2), each padded by `pad` on every side;
    `extra` appends a 1x1 conv so that the chain can be a patch stage."""
    size = rng.randint(24, 64)
    g = Graph("chain")
    x, layers = g.add_input("input", (1, size, size, rng.choice([3, 4, 8]))), []
    for i in range(rng.randint(2, 6)):
        k = rng.choice([1, 3, 3, 5, 7])
        s = rng.choice([1, 1, 2]) if g.shape(x)[1] >= 2 * k else 1
        p = rng.randint(0, k // 2)
        if g.shape(x)[1] + 2 * p - k < 3 * s:
            break
        c = g.shape(x)[-1]
        depthwise = rng.random() < 0.3
        x = g.conv2d(x, c if depthwise else rng.choice([4, 8, 16]), k, s, groups=c if depthwise else 1,
                     pads=(p,) * 4, name=f"conv{i}")
        layers.append((k, s, p))
    if extra:
        g.outputs.append(g.conv2d(x, 4, 1, name="after"))
    return g, layers


Layer = tuple[int, int, int]  # (kernel, stride, pad) of a conv padded by `pad` on every side

GRIDS = range(1, 9)


def _input_region_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(14):
        k, s = rng.choice([1, 3, 5, 7]), rng.choice([1, 2, 3])
        p, r0 = rng.randint(0, k // 2), rng.randint(0, 10)
        rows = (r0, r0 + rng.randint(1, 6))
        g = Graph()
        g.conv2d(g.add_input("input", (1, 64, 64, 1)), 1, k, s, pads=(p,) * 4)
        yield f"kernel={k}, stride={s}, pad={p}, out_rows={rows}", (k, s, p, rows), \
            patch.input_region(g, g.ops[0], (*rows, 0, 1))[:2]


def _trace_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(10):
        g, layers = _chain(rng)
        out = g.ops[-1].output
        r0 = 0 if i < 3 else rng.randint(0, g.shape(out)[1] - 1)  # top rows: padded chains reach above row 0
        rows = (r0, rng.randint(r0 + 1, g.shape(out)[1]))
        regions = patch.trace(g, g.ops, out, (*rows, 0, 1), clip=False)
        yield f"layers={layers}, out_rows={rows}", (layers, rows), [regions[t][:2] for t in [g.inputs[0]] + [
            op.output for op in g.ops]]


def _per_pixel(g: Graph, op: Op) -> int:
    return prof.op_macs(g, op) // (g.shape(op.output)[1] * g.shape(op.output)[2])


def _stage_macs_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(10):
        g, layers = _chain(rng, extra=True)
        stage = g.ops[:-1]
        layers = [(*kind, _per_pixel(g, op)) for kind, op in zip(layers, stage)]
        side = g.shape(stage[-1].output)[1]
        n = rng.randint(1, min(5, side))
        p = patch.plan(g, len(stage) - 1, n)
        yield f"layers={layers}, in_size={g.shape('input')[1]}, n={n}", (layers, g.shape("input")[1], n), \
            (p.patch_stage_macs, p.layerwise_patch_stage_macs)


def _grid_plans(g: Graph, split: int) -> list[patch.PatchPlan]:
    side = min(g.shape(g.ops[split].output)[1:3])
    return [patch.plan(g, split, n) for n in GRIDS if n <= side]


def _grid_cases(rng: random.Random) -> Iterable[Case]:
    for i in range(4):
        cfg = zoo.mobilenet_v2(rng.choice([0.35, 0.5, 0.75]), rng.choice([96, 112, 128])) if i % 2 == 0 \
            else zoo.mcunet_example(rng.choice([0.5, 0.75]), rng.choice([96, 128]))
        g = cfg.graph()
        split = patch.split_after_block(g, rng.randint(1, 4))
        plans = _grid_plans(g, split)
        n0 = rng.choice(plans)
        budgets = [n0.peak_sram_bytes, n0.rest_peak_bytes - 1, n0.per_patch_arena_bytes,
                   min(p.peak_sram_bytes for p in plans) - 1]
        for budget in budgets:
            fits = [p for p in plans if p.peak_sram_bytes <= budget]
            yield (f"<{cfg.model} w{cfg.width} r{cfg.resolution} graph>, split_op={split}, budget={budget}",
                   (g, split, budget), min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None)


def _as_regions(v: Any) -> Any:
    return [(int(a), int(b)) for a, b in v]



def _chain_graph(layers: list[tuple], in_size: int = 64):
    """A conv chain from (kernel, stride, pad[, ...]) tuples, and the 1x1 conv after it."""
    g = Graph("chain")
    x = g.add_input("input", (1, in_size, in_size, 1))
    for i, (k, s, p, *_) in enumerate(layers):
        x = g.conv2d(x, 1, k, s, pads=(p,) * 4, name=f"conv{i}")
    return g


def _trace_receptive_field(layers: list[tuple], out_rows: tuple[int, int]) -> list[tuple[int, int]]:
    g = _chain_graph(layers, in_size=4096)
    regions = patch.trace(g, g.ops, g.ops[-1].output, (*out_rows, 0, 1), clip=False)
    return [regions[t][:2] for t in [g.inputs[0]] + [op.output for op in g.ops]]


def _patch_stage_macs(layers: list[tuple], in_size: int, n: int) -> tuple[int, int]:
    """Every n x n tile's traced region of every layer times its MACs per pixel; and the chain once."""
    sizes = [in_size]
    for kernel, stride, pad, _ in layers:
        sizes.append((sizes[-1] + 2 * pad - kernel) // stride + 1)
    total = 0
    for r0, r1, c0, c1 in patch.tiles(sizes[-1], sizes[-1], n):
        rows, cols = _trace_receptive_field(layers, (r0, r1)), _trace_receptive_field(layers, (c0, c1))
        total += sum(layer[3] * (b - a) * (d - c) for layer, (a, b), (c, d) in zip(layers, rows[1:], cols[1:]))
    return total, sum(layer[3] * s * s for layer, s in zip(layers, sizes[1:]))


def _cheapest_grid(graph, split_op: int, budget: int) -> int | None:
    side = min(graph.shape(graph.ops[split_op].output)[1:3])
    plans = [patch.plan(graph, split_op, n) for n in range(1, 9) if n <= side]
    fits = [p for p in plans if p.peak_sram_bytes <= budget]
    return min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None


def _int8_net(rng: random.Random) -> tuple[str, Graph]:
    """A random MBConv net (3x3/5x5/7x7 depthwise, stride 1 and 2), MobileNetV2 or the MCUNet
    example, with random weights, quantized on random images (zero points away from 0)."""
    import torch
    pick = rng.randrange(3)
    cfg = random_mbconv(rng) if pick == 0 else zoo.mobilenet_v2(0.35, rng.choice([48, 64])) if pick == 1 \
        else zoo.mcunet_example(0.35, rng.choice([48, 64]))
    cfg.num_classes = 2
    torch.manual_seed(rng.randrange(1 << 31))
    images = np_rng(rng).uniform(-0.5, 1.5, (4, cfg.resolution, cfg.resolution, 3)).astype(np.float32)
    _, q = quant.from_module(cfg.module(), cfg.resolution, images, input_quant=None)
    label = f"<int8 {cfg.model} ({[s.depth for s in cfg.stages]} blocks) at {cfg.resolution}px"
    return (label + ", TFLite SAME padding>", _same_padding(q)) if rng.random() < 0.5 else (label + ">", q)


def _same_padding(g: Graph) -> Graph:
    """`g` with TFLite's SAME padding on every strided conv (DESIGN.md section 4: the odd padding
    row after, none before on an even input), as imported .tflite models pad; same output shapes."""
    for i, op in enumerate(g.ops):
        (sh, sw), (kh, kw) = op.attrs.get("stride", (1, 1)), g.shape(op.inputs[1])[1:3] if op.kind == "conv2d" else (1, 1)
        if op.kind == "conv2d" and (sh, sw) != (1, 1):
            (_, h, w, _), (_, oh, ow, _) = g.shape(op.inputs[0]), g.shape(op.output)
            th, tw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
            g.ops[i] = dataclasses.replace(op, attrs={**op.attrs, "pads": (th // 2, th - th // 2, tw // 2, tw - tw // 2)})
    return g


class _PatchTile(Property):
    """What `run_patch` must return: the stage output on the tile, bit for bit as layer-by-layer
    int8 execution computes it, having read from the camera only inside the tile's input window
    (the clipped receptive field of the tile: MCUNetV2 section 3.1). What was read is the record
    of the case's own `camera` (under the grader, served from the grader's process)."""

    def __init__(self, expected: np.ndarray, window: tuple[int, int, int, int], tile: tuple[int, int, int, int],
                 camera: Camera) -> None:
        self.window, self.camera = window, camera
        self.exact = Exactly(expected, lambda i: f"(row, col, channel) {np.unravel_index(i, expected.shape)[1:]} of tile {tile}",
                             "int8")

    def problem(self, got: Any) -> str:
        if not isinstance(got, Ints):
            return "the result is not an int8 array"
        windows = self.camera.windows()
        if not windows:
            return "read nothing from the camera"
        w0, w1, v0, v1 = self.window
        for r0, r1, c0, c1 in windows:
            if r0 < w0 or r1 > w1 or c0 < v0 or c1 > v1:
                return (f"read rows {r0}..{r1}, columns {c0}..{c1}: outside the tile's input window"
                        f" (rows {w0}..{w1}, columns {v0}..{v1})")
        return "" if self.exact == got else f"{self.exact!r} expected, got {got!r}"

    def describe(self) -> str:
        return "the tile, bit-exact, read from its input window only"


def _patch_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(3):
        label, g = _int8_net(rng)
        split = patch.split_after_block(g, rng.randint(1, 3))
        stage, out = g.ops[:split + 1], g.ops[split].output
        x = np_rng(rng).integers(-128, 128, g.shape(g.inputs[0])).astype(np.int8)
        y = int8ref.run(Graph(g.name, g.tensors, stage, g.inputs, [out]), x)
        _, h, w, _ = g.shape(out)
        ts = patch.tiles(h, w, rng.randint(2, min(4, h, w)))
        for tile in (ts[0], rng.choice(ts[1:-1] or ts), ts[-1]):
            window = patch.trace(g, stage, out, tile)[g.inputs[0]]
            camera = Camera(x)
            yield f"{label}, split_op={split}, tile={tile}", (g, split, tile, camera), \
                _PatchTile(y[:, tile[0]:tile[1], tile[2]:tile[3]], window, tile, camera)


def _run_patch(graph: Graph, split_op: int, tile: tuple[int, int, int, int], camera: Camera) -> np.ndarray:
    """The library's answer from the tile's input window alone: the window pasted into an empty
    frame, the stage run layer by layer, the tile cut out (the tile depends on the window only)."""
    stage = graph.ops[:split_op + 1]
    out = stage[-1].output
    r0, r1, c0, c1 = patch.trace(graph, stage, out, tuple(tile))[graph.inputs[0]]
    x = np.zeros(camera.shape, camera.dtype)
    x[:, r0:r1, c0:c1] = camera.read(r0, r1, c0, c1)
    y = int8ref.run(Graph(graph.name, graph.tensors, stage, graph.inputs, [out]), x)
    return y[:, tile[0]:tile[1], tile[2]:tile[3]]


Figures = tuple[int, int, int, tuple[int, ...], int]


def _figures(cfg: zoo.MBConvConfig, split_block: int) -> Figures:
    """(receptive field of the patch stage, its MACs, the network's MACs, the stage output's
    shape, the number of blocks) of `cfg` split after `split_block` blocks."""
    g = cfg.graph()
    split = patch.split_after_block(g, split_block)
    stage = g.ops[:split + 1]
    return (patch.receptive_field(g, stage, stage[-1].output), sum(prof.op_macs(g, op) for op in stage),
            sum(prof.op_macs(g, op) for op in g.ops), tuple(g.shape(stage[-1].output)),
            sum(s.depth for s in cfg.stages))


class _SameFigures(Property):
    """What `redistribute_config` must return: a config and split whose patch stage has the
    receptive field, MACs and output shape of the library's redistribution (MCUNetV2 section 3.2),
    and whose network has its MACs and number of blocks."""

    def __init__(self, cfg: zoo.MBConvConfig, split_block: int) -> None:
        self.cfg = cfg
        self.expected = _figures(*redistribute.redistribute(cfg, split_block))

    def problem(self, got: Any) -> str:
        try:
            stages, split = got
            new = zoo.MBConvConfig([zoo.Stage(w, d, s, [zoo.Block(k, e) for k, e in blocks]) for w, d, s, blocks in stages],
                                   self.cfg.stem, self.cfg.head, self.cfg.num_classes, self.cfg.width,
                                   self.cfg.resolution, self.cfg.model)
            figures = _figures(new, split)
        except (TypeError, ValueError, UserError) as e:
            return f"not a valid (config, split_block): {str(e)[:120]}"
        names = ("receptive field", "patch-stage MACs", "total MACs", "stage output shape", "blocks")
        return "; ".join(f"{n} {a} (expected {b})" for n, a, b in zip(names, figures, self.expected) if a != b)

    def describe(self) -> str:
        return f"receptive field {self.expected[0]} px, patch-stage MACs {self.expected[1]}, total MACs {self.expected[2]}"


def _redistribute_cases(rng: random.Random) -> Iterable[Case]:
    configs = [zoo.mobilenet_v2(rng.choice([0.35, 0.5, 1.0]), rng.choice([96, 128, 160])),
               zoo.mcunet_example(rng.choice([0.35, 0.5]), rng.choice([96, 128]))] + \
        [random_mbconv(rng) for _ in range(4)]
    for cfg in configs:
        blocks = sum(s.depth for s in cfg.stages)
        for split_block in rng.sample(range(1, blocks), min(2, blocks - 1)):
            try:
                expected = _SameFigures(cfg, split_block)
            except UserError:  # no stage after the patch stage to move blocks to
                continue
            yield (f"<{cfg.model} blocks per stage {[s.depth for s in cfg.stages]}, kernels "
                   f"{[[b.kernel for b in s.blocks] for s in cfg.stages]}>, split_block={split_block}"), \
                (cfg, split_block), expected


def _config_view(args: tuple, result: Any) -> Any:
    """A returned (config, split_block) as plain data: per stage (width, depth, stride, [(kernel, expand)]).
    Only the zoo's own classes are read (this runs after the twin rule is off: an object of the
    student's could compute its attributes then)."""
    if type(result) not in (tuple, list) or len(result) != 2:
        return f"returned a {type(result).__name__}, not (config, split_block)"
    cfg, split = result
    if type(cfg) is not zoo.MBConvConfig or type(cfg.stages) is not list or \
            any(type(s) is not zoo.Stage or type(s.blocks) is not list or any(type(b) is not zoo.Block for b in s.blocks)
                for s in cfg.stages):
        return f"returned a {type(cfg).__name__} that is not a zoo.MBConvConfig of zoo.Stage and zoo.Block"
    return [[s.width, s.depth, s.stride, [[b.kernel, b.expand] for b in s.blocks]] for s in cfg.stages], split


def _as_config(v: Any) -> Any:
    stages, split = v
    return [(int(w), int(d), int(s), [(int(k), int(e)) for k, e in blocks]) for w, d, s, blocks in stages], int(split)


LAB = "03_patch_inference"
EXERCISES: list[Exercise] = [
    Exercise("input_region", "input_region", 1, _input_region_cases, as_pair, (LIB + "patch.input_region",)),
    Exercise("trace_receptive_field", "trace_receptive_field", 1, _trace_cases, _as_regions,
             (LIB + "patch.trace", LIB + "patch.receptive_field", LIB + "patch.input_region"), reference=_trace_receptive_field),
    Exercise("patch_stage_macs", "patch_stage_macs", 1, _stage_macs_cases, as_pair,
             (LIB + "patch.plan", LIB + "patch.trace", LIB + "patch.input_region", LIB + "patch._macs"), reference=_patch_stage_macs),
    Exercise("cheapest_grid", "cheapest_grid", 1, _grid_cases, twins=(LIB + "patch.auto_plan",), reference=_cheapest_grid),
    Exercise("run_patch", "run_patch", 4, _patch_cases, Ints,
             (LIB + "patch.run_int8", LIB + "patch.run_float", LIB + "patch.execute", LIB + "patch.plan",
              LIB + "patch.trace", LIB + "patch.input_region", LIB + "patch.receptive_field",
              LIB + "int8ref.run", LIB + "int8ref.run_all", LIB + "int8ref.tensors"), None, _run_patch),
    Exercise("redistribute_config", "redistribute_config", 2, _redistribute_cases, _as_config,
             (LIB + "redistribute.redistribute", LIB + "redistribute.compare"), _config_view, redistribute.redistribute),
]

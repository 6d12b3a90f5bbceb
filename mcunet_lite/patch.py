"""MCUNetV2 patch-based inference: run the memory-heavy first stage patch by patch.

The stage (ops up to a split) is computed for one spatial tile of its output at a time. Tracing
receptive fields backwards (MCUNetV2 section 3.1) gives, for every tensor of the stage, the
region a tile needs; neighbouring tiles' regions overlap (the halo), which is recomputed. By
default every patch has the same size, as fixed-size patch loops on a microcontroller do (border
patches compute some positions in the padding and discard them; `uniform=False` trims them).
Every op gets exactly the padding the whole-image run would apply where its region leaves the
tensor, so the result is identical to layer-by-layer execution. Only the tile's intermediates and the stage's full output buffer are in
SRAM during the stage; the rest of the network then runs layer by layer. The input image is read
patch by patch too (from the camera or Flash), so only the input patch counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Iterator

import numpy as np

from . import schedule
from .errors import UserError
from .ir import Graph, Op
from .liveness import activation_bytes, live_bytes
from .profile import block_of, op_macs

Region = tuple[int, int, int, int]  # rows [r0, r1), columns [c0, c1) in a tensor's own coordinates
WINDOW_OPS = ("conv2d", "avgpool", "maxpool")
ELEMENTWISE_OPS = ("add", "quantize", "dequantize")
STAGE_OPS = WINDOW_OPS + ELEMENTWISE_OPS + ("pad",)


def input_region(g: Graph, op: Op, out: Region) -> Region:
    """The input region (before clipping to the tensor: outside is padding) that `out` needs."""
    r0, r1, c0, c1 = out
    if op.kind in WINDOW_OPS:
        kh, kw = g.shape(op.inputs[1])[1:3] if op.kind == "conv2d" else op.attrs["kernel"]
        (sh, sw), (pt, _, pl, _) = op.attrs["stride"], op.attrs["pads"]
        return r0 * sh - pt, (r1 - 1) * sh - pt + kh, c0 * sw - pl, (c1 - 1) * sw - pl + kw
    if op.kind == "pad":
        (_, _), (pt, _), (pl, _), (_, _) = op.attrs["paddings"]
        return r0 - pt, r1 - pt, c0 - pl, c1 - pl
    return out


def clipped(r: Region, shape: tuple[int, ...]) -> Region:
    """`r` cut to the spatial extent of a tensor of NHWC `shape`."""
    return max(r[0], 0), min(r[1], shape[1]), max(r[2], 0), min(r[3], shape[2])


def _union(a: Region | None, b: Region) -> Region:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _area(r: Region) -> int:
    return (r[1] - r[0]) * (r[3] - r[2])


def tiles(h: int, w: int, n: int) -> list[Region]:
    """An n x n grid over an h x w map, row-major, sizes as even as possible."""
    rows = [round(i * h / n) for i in range(n + 1)]
    cols = [round(i * w / n) for i in range(n + 1)]
    return [(rows[i], rows[i + 1], cols[j], cols[j + 1]) for i in range(n) for j in range(n)]


def trace(g: Graph, stage: list[Op], out_name: str, tile: Region, clip: bool = True) -> dict[str, Region]:
    """Region of every stage tensor that computing `tile` of `out_name` needs (receptive-field
    tracing, last op first; a tensor read by several ops needs the union of their regions)."""
    regions = {out_name: tile}
    for op in reversed(stage):
        if op.output not in regions:
            continue
        for x in g.activations(op):
            need = input_region(g, op, regions[op.output])
            regions[x] = _union(regions.get(x), clipped(need, g.shape(x)) if clip else need)
    return regions


def receptive_field(g: Graph, stage: list[Op], out_name: str) -> int:
    """Receptive field (pixels, rows) of one stage-output pixel on the input, unclipped."""
    _, h, w, _ = g.shape(out_name)
    r = trace(g, stage, out_name, (h // 2, h // 2 + 1, w // 2, w // 2 + 1), clip=False)[g.inputs[0]]
    return r[1] - r[0]


@dataclass(frozen=True)
class Step:
    """One stage op on one patch, in its tensors' own coordinates: the output region `out` the patch
    needs, each activation input's part inside its tensor of the input region that takes
    (`haves`), the padding this patch applies (`pads`: top, bottom, left, right; only where that
    region leaves the input), the region the op computes (`made`) and the part of it inside the
    output (`keep`). `execute` and the code generator both read it."""

    op: Op
    out: Region
    haves: tuple[Region, ...]
    pads: tuple[int, int, int, int]
    made: Region
    keep: Region


@dataclass
class PatchPlan:
    """How a graph runs with its first `split_op + 1` ops patch by patch, and what that costs:
    the tiles, every patch's regions and `steps`, and the memory plans of one patch of the stage
    (`stage_plan`, tensors at their largest region) and of the layer-by-layer rest (`rest_plan`)."""

    graph: Graph
    split_op: int
    grid: int
    uniform: bool
    stage_output: str
    tiles: list[Region]
    regions: list[dict[str, Region]]
    input_patch: tuple[int, int]
    receptive_field: int
    patch_stage_macs: int
    layerwise_patch_stage_macs: int
    total_macs: int
    layerwise_total_macs: int
    trimmed_patch_stage_macs: int
    per_patch_arena_bytes: int
    stage_output_bytes: int
    rest_peak_bytes: int
    layerwise_peak_sram_bytes: int
    stage_plan: schedule.Plan
    rest_plan: schedule.Plan
    steps: list[list[Step]]
    per_op_bytes: list[int] = field(default_factory=list)

    @property
    def patch_stage_peak_bytes(self) -> int:
        """One patch's arena plus the full stage-output buffer the tiles are written into."""
        return self.per_patch_arena_bytes + self.stage_output_bytes

    @property
    def peak_sram_bytes(self) -> int:
        """Peak over the patch stage and the layer-by-layer rest."""
        return max(self.patch_stage_peak_bytes, self.rest_peak_bytes)

    def to_dict(self) -> dict:
        """JSON-ready figures (the `patch --json` shape)."""
        return {"model": self.graph.meta.get("model", self.graph.name), "split_op": self.split_op,
                "split_op_name": self.graph.ops[self.split_op].name, "grid": self.grid,
                "uniform_patches": self.uniform,
                "stage_output_shape": list(self.graph.shape(self.stage_output)),
                "peak_sram_bytes": self.peak_sram_bytes, "layerwise_peak_sram_bytes": self.layerwise_peak_sram_bytes,
                "patch_stage_peak_bytes": self.patch_stage_peak_bytes, "rest_peak_bytes": self.rest_peak_bytes,
                "per_patch_arena_bytes": self.per_patch_arena_bytes, "stage_output_bytes": self.stage_output_bytes,
                "input_patch": list(self.input_patch), "receptive_field": self.receptive_field,
                "patch_stage_macs": self.patch_stage_macs, "layerwise_patch_stage_macs": self.layerwise_patch_stage_macs,
                "trimmed_patch_stage_macs": self.trimmed_patch_stage_macs,
                "total_macs": self.total_macs, "layerwise_total_macs": self.layerwise_total_macs}


def subgraph(g: Graph, ops: list[Op], inputs: list[str], outputs: list[str]) -> Graph:
    """The graph of `ops` of `g` between `inputs` and `outputs` (sharing `g`'s tensors)."""
    return Graph(g.name, g.tensors, ops, inputs, outputs, g.meta)


def validate_split(g: Graph, split_op: int) -> str:
    """The stage output of a split after op `split_op`; errors say why a split is impossible."""
    if not 0 <= split_op < len(g.ops) - 1:
        raise UserError(f"split op {split_op} is out of range: the graph has ops 0..{len(g.ops) - 1} and the"
                        " split must leave at least one op after it")
    stage, rest = g.ops[:split_op + 1], g.ops[split_op + 1:]
    for op in stage:
        if op.kind not in STAGE_OPS or len(g.shape(op.output)) != 4:
            raise UserError(f"op {g.ops.index(op)} '{op.name}' ({op.kind}) cannot run patch by patch; split before it"
                            f" (patch stages hold {', '.join(STAGE_OPS)} on NHWC maps)")
    made = {g.inputs[0]} | {op.output for op in stage}
    crossing = {t for op in rest for t in g.activations(op) if t in made} | (made & set(g.outputs))
    out = stage[-1].output
    if crossing != {out}:
        raise UserError(f"a split after op {split_op} ('{stage[-1].name}') leaves {sorted(crossing - {out})} "
                        "needed after it; split at a block boundary (e.g. --split-block K)")
    return out


def block_ends(g: Graph) -> list[int]:
    """Op index ending the stem and each numbered block ('blocks.0', 'blocks.1', ...), in order."""
    ends: dict[str, int] = {}
    for i, op in enumerate(g.ops):
        b = block_of(op.name)
        if b.rpartition(".")[2].isdigit():  # block_of ends a numbered block's name at its number
            ends[b] = i
    return list(ends.values())


def split_after_block(g: Graph, k: int) -> int:
    """Op index ending the stem and the first `k` numbered blocks ('blocks.0' .. 'blocks.{k-1}')."""
    ends = block_ends(g)
    if not 1 <= k <= len(ends) - 1:
        raise UserError(f"--split-block {k}: the model has {len(ends)} blocks; use 1..{len(ends) - 1}")
    return ends[k - 1]


def _macs(g: Graph, stage: list[Op], regions: list[dict[str, Region]]) -> int:
    """MACs of computing every patch's regions (per output pixel cost x region area)."""
    per_pixel = {op.output: op_macs(g, op) // (g.shape(op.output)[1] * g.shape(op.output)[2]) for op in stage}
    return sum(per_pixel[t] * _area(r[t]) for r in regions for t in r if t in per_pixel)


def _patch_sizes(g: Graph, out: str, regions: list[dict[str, Region]], nbytes: dict[str, int]) -> dict[str, int]:
    """One patch's tensor bytes: each at its largest region over the patches; the tile itself is
    written straight into the stage-output buffer, so it takes no patch memory."""
    sizes = {t: max(_area(r[t]) for r in regions) * nbytes[t] // (g.shape(t)[1] * g.shape(t)[2]) for t in regions[0]}
    sizes[out] = 0
    return sizes


def stage_peaks(g: Graph, split_op: int, grids: list[int],
                nbytes: dict[str, int] | None = None) -> Iterator[tuple[int, Callable[[], int]]]:
    """For each grid in turn, the patch stage's peak SRAM (one uniform patch's lower bound plus the
    stage-output buffer) as (floor, peak): `floor` is cheap (the buffer plus the largest patch
    tensor, which is live at least while it is made) and `peak()` plans the patch's layout. The NAS
    evaluates thousands of subnets this way and skips `peak()` where the floor already loses."""
    out = validate_split(g, split_op)
    nbytes = nbytes or activation_bytes(g)
    _, h, w, _ = g.shape(out)
    stage = subgraph(g, g.ops[:split_op + 1], [g.inputs[0]], [out])
    for n in grids:
        regions = [trace(g, stage.ops, out, max(tiles(h, w, n), key=_area), clip=False)]
        sizes = _patch_sizes(g, out, regions, nbytes)
        yield max(sizes.values()) + nbytes[out], partial(_stage_peak, stage, {**nbytes, **sizes}, nbytes[out])


def _stage_peak(stage: Graph, patch_bytes: dict[str, int], out_bytes: int) -> int:
    return max(live_bytes(stage, nbytes=patch_bytes)) + out_bytes


def rest_bound(live: list[int], split_op: int) -> int:
    """Lower bound of the layer-by-layer rest after a split, read off the whole graph's live bytes
    (`liveness.live_bytes`): one tensor crosses the split and nothing else lives after it, so a
    search trying several splits of one graph plans it once."""
    return max(live[split_op + 1:])


def peak_bytes(g: Graph, split_op: int, grid: int, nbytes: dict[str, int] | None = None,
               live: list[int] | None = None) -> int:
    """Peak SRAM of uniform patch-based inference: the patch stage or the layer-by-layer rest.
    `plan` gives the same figure when the best allocator reaches the bounds, as on these networks.
    A caller that has the graph's `nbytes` and `live` bytes already (`search_space.cost`) passes them."""
    nbytes = nbytes or activation_bytes(g)
    _, peak = next(stage_peaks(g, split_op, [grid], nbytes))
    return max(peak(), rest_bound(live or live_bytes(g, nbytes=nbytes), split_op))


def step(g: Graph, op: Op, out: Region) -> Step:
    """The geometry of computing region `out` of `op`'s output (see `Step`)."""
    need = input_region(g, op, out)
    haves = tuple(clipped(need, g.shape(t)) for t in g.activations(op))
    pads = (haves[0][0] - need[0], need[1] - haves[0][1], haves[0][2] - need[2], need[3] - haves[0][3])
    made = out if op.kind in WINDOW_OPS + ("pad",) else haves[0]
    return Step(op, out, haves, pads, made, clipped(out, g.shape(op.output)))


def _steps(g: Graph, stage: list[Op], regions: dict[str, Region], fused: set[str]) -> list[Step]:
    """One patch's steps: every stage op its region needs, in order. A conv whose output is fused
    with a residual ADD computes only inside the tensor (no residual exists outside it)."""
    return [step(g, op, clipped(regions[op.output], g.shape(op.output)) if op.output in fused else regions[op.output])
            for op in stage if op.output in regions]


def plan(g: Graph, split_op: int, grid: int, uniform: bool = True, layerwise: schedule.Plan | None = None,
         rest_plan: schedule.Plan | None = None) -> PatchPlan:
    """Plan patch-based inference of `g` with ops 0..`split_op` run on a `grid` x `grid` tiling;
    `uniform` patches all have the interior patches' size (fixed-size loops). `layerwise` (the
    whole graph's plan) and `rest_plan` (the ops after the split) do not depend on the grid: a
    search over grids (`auto_plan`) plans them once and passes them in."""
    out = validate_split(g, split_op)
    _, h, w, c = g.shape(out)
    if not 1 <= grid <= min(h, w):
        raise UserError(f"grid {grid} does not fit the {h}x{w} stage output; use 1..{min(h, w)}")
    stage, rest = g.ops[:split_op + 1], g.ops[split_op + 1:]
    ts = tiles(h, w, grid)
    trimmed = [trace(g, stage, out, t) for t in ts]
    regions = [trace(g, stage, out, t, clip=False) for t in ts] if uniform else trimmed
    nbytes = activation_bytes(g)
    patch_macs = _macs(g, stage, regions)
    # one patch's tensors at their largest region over all patches; the tile goes to the stage buffer
    stage_plan = schedule.plan(subgraph(g, stage, [g.inputs[0]], [out]), reorder=False,
                               sizes=_patch_sizes(g, out, regions, nbytes))
    rest_plan = rest_plan or schedule.plan(subgraph(g, rest, [out], g.outputs))
    full = layerwise or schedule.plan(g)
    inp = [clipped(r[g.inputs[0]], g.shape(g.inputs[0])) for r in regions]
    fused = {y for _, y, _ in stage_plan.fused}
    total = sum(op_macs(g, op) for op in g.ops)
    stage_lw = sum(op_macs(g, op) for op in stage)
    return PatchPlan(g, split_op, grid, uniform, out, ts, regions,
                     (max(r[1] - r[0] for r in inp), max(r[3] - r[2] for r in inp)), receptive_field(g, stage, out),
                     patch_macs, stage_lw, total - stage_lw + patch_macs, total, _macs(g, stage, trimmed),
                     stage_plan.arena_bytes,
                     nbytes[out], rest_plan.arena_bytes, full.arena_bytes, stage_plan, rest_plan,
                     [_steps(g, stage, r, fused) for r in regions],
                     [v + nbytes[out] for v in stage_plan.live_bytes()] + rest_plan.live_bytes())


def candidate_splits(g: Graph) -> list[int]:
    """Every op index after which the graph can be split (one tensor crosses, a spatial stage)."""
    found = []
    for i in range(len(g.ops) - 1):
        try:
            validate_split(g, i)
        except UserError:
            if g.ops[i].kind not in STAGE_OPS or len(g.shape(g.ops[i].output)) != 4:
                break
            continue
        found.append(i)
    return found


def auto_plan(g: Graph, sram_budget: int, grids: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8),
              uniform: bool = True) -> PatchPlan:
    """The split and grid with the least MAC overhead whose peak SRAM fits `sram_budget` bytes."""
    best, smallest = None, None
    layerwise = schedule.plan(g)
    for split in candidate_splits(g):
        _, h, w, _ = g.shape(g.ops[split].output)
        rest_plan = schedule.plan(subgraph(g, g.ops[split + 1:], [g.ops[split].output], g.outputs))
        for n in (n for n in grids if n <= min(h, w)):
            p = plan(g, split, n, uniform, layerwise, rest_plan)
            if smallest is None or p.peak_sram_bytes < smallest.peak_sram_bytes:
                smallest = p
            if p.peak_sram_bytes <= sram_budget and (best is None or p.total_macs < best.total_macs):
                best = p
    if best is None:
        where = f"; the smallest peak found is {smallest.peak_sram_bytes} bytes (split op {smallest.split_op}, " \
                f"grid {smallest.grid})" if smallest else ""
        raise UserError(f"no split and grid fits {sram_budget} bytes of SRAM{where}: lower the resolution or width")
    return best


# ---------------------------------------------------------------------------------- execution
def _patched(op: Op, pads: tuple[int, int, int, int]) -> Op:
    """`op` with the padding of this patch (`Step.pads`)."""
    if op.kind in WINDOW_OPS:
        return replace(op, attrs={**op.attrs, "pads": pads})
    if op.kind == "pad":
        return replace(op, attrs={**op.attrs, "paddings": ((0, 0), pads[:2], pads[2:], (0, 0))})
    return op


def execute(p: PatchPlan, x, run_op, empty) -> list:
    """Run `p` on input `x` with an executor's `run_op(graph, op, inputs)`; `empty(shape, like)`
    allocates the stage-output buffer. Returns the graph outputs."""
    g = p.graph
    buf = None
    for tile, regions, steps in zip(p.tiles, p.regions, p.steps):
        r = clipped(regions[g.inputs[0]], g.shape(g.inputs[0]))
        env = {g.inputs[0]: (x[:, r[0]:r[1], r[2]:r[3]], r)}  # every tensor: (array, its region)
        for s in steps:
            ins = []
            for t, have in zip(g.activations(s.op), s.haves):
                arr, (r0, _, c0, _) = env[t]
                ins.append(arr[:, have[0] - r0:have[1] - r0, have[2] - c0:have[3] - c0])
            y, keep, made = run_op(g, _patched(s.op, s.pads), ins), s.keep, s.made
            env[s.op.output] = (y[:, keep[0] - made[0]:keep[1] - made[0], keep[2] - made[2]:keep[3] - made[2]], keep)
        y = env[p.stage_output][0]
        if buf is None:
            buf = empty((y.shape[0], *g.shape(p.stage_output)[1:]), y)
        buf[:, tile[0]:tile[1], tile[2]:tile[3]] = y
    env = {p.stage_output: buf}
    for op in g.ops[p.split_op + 1:]:
        env[op.output] = run_op(g, op, [env[t] for t in g.activations(op)])
    return [env[o] for o in g.outputs]


def run_int8(p: PatchPlan, x: np.ndarray) -> list[np.ndarray]:
    """Patch-based int8 execution with `int8ref` kernels; equals `int8ref.run_all` exactly."""
    from . import int8ref
    return execute(p, np.asarray(x), int8ref.run_op, lambda shape, like: np.empty(shape, like.dtype))


def run_float(p: PatchPlan, x: np.ndarray) -> list[np.ndarray]:
    """Patch-based float execution with `floatref` kernels (torch); matches `floatref.run`."""
    import torch
    from . import floatref
    with torch.no_grad():
        outs = execute(p, torch.from_numpy(np.asarray(x, np.float32)), floatref.run_op,
                       lambda shape, like: like.new_empty(shape))
    return [o.numpy() for o in outs]


"""For every graded exercise, a student's function that only wraps the library's twin (the function
that computes the exercise's answer) in the thinnest disguise that fits its signature. The release
gates check that each one is a right answer (it passes when the twin rule is off) and scores 0."""

HEAD = """
import functools
import numpy as np
import mcunet_lite.checks as ck
from mcunet_lite import boxes, deploy, evolution as evo, fixedpoint as fp, int8ref, patch, quant, schedule
from mcunet_lite import profile as prof, search_space as ss, supernet, zoo
from mcunet_lite.ir import Graph
"""

WRAPPERS = {
    ("00_memory_wall", "conv_layer_cost"): """
def conv_layer_cost(in_shape, out_channels, kernel, stride, groups):
    g = Graph()
    g.conv2d(g.add_input("input", in_shape), out_channels, kernel, stride, groups=groups, name="conv")
    p = prof.profile(g, "naive")
    return p.layers[0].out_shape, p.macs, p.peak_sram_bytes
""",
    ("00_memory_wall", "live_bytes"): "live_bytes = functools.partial(prof.op_sram)",
    ("00_memory_wall", "block_peaks"): """
def block_peaks(names, sram):
    out = {}
    for n, s in zip(names, sram):
        out[prof.block_of(n)] = max(out.get(prof.block_of(n), 0), s)
    return out
""",
    ("00_memory_wall", "largest_fitting_resolution"): """
def largest_fitting_resolution(width, budget, rule):
    return max([r for r in range(48, 225, 16)
                if prof.profile(zoo.mobilenet_v2(width, r).graph(), rule).peak_sram_bytes <= budget], default=None)
""",
    ("01_int8", "choose_qparams"): "choose_qparams = lambda lo, hi: quant.choose_qparams(lo, hi)",
    ("01_int8", "quantize_multiplier"): "def quantize_multiplier(m): return fp.quantize_multiplier(m)",
    ("01_int8", "rounding_divide_by_pot"): "rounding_divide_by_pot = fp.rounding_divide_by_pot",
    ("01_int8", "saturating_rounding_doubling_high_mul"): """
_saved = fp.saturating_rounding_doubling_high_mul
def saturating_rounding_doubling_high_mul(a, b): return _saved(a, b)
""",
    ("01_int8", "requantize"): """
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    y = fp.multiply_by_quantized_multiplier(np.asarray(acc) + bias, multiplier, shift) + out_zero_point
    return np.clip(y, act_min, act_max).astype(np.int8)
""",
    ("02_memory_scheduling", "tensor_lifetimes"): "def tensor_lifetimes(graph): return prof.lifetimes(graph)",
    ("02_memory_scheduling", "lower_bound"): "def lower_bound(buffers): return ck._bound(buffers)",
    ("02_memory_scheduling", "first_fit"): """
def first_fit(buffers):
    lib = sorted(ck._lib_buffers(buffers), key=lambda b: (-b.size, b.first))
    arena = schedule._first_fit(lib)
    offsets = {int(b.segments[0][0]): b.offset for b in lib}
    return [offsets[i] for i in range(len(buffers))], arena
""",
    ("02_memory_scheduling", "in_place_pairs"): "def in_place_pairs(graph): return schedule.inplace_pairs(graph)",
    ("03_patch_inference", "input_region"): """
def input_region(kernel, stride, pad, out_rows):
    g = Graph()
    g.conv2d(g.add_input("input", (1, 64, 64, 1)), 1, kernel, stride, pads=(pad,) * 4)
    return patch.input_region(g, g.ops[0], (*out_rows, 0, 1))[:2]
""",
    ("03_patch_inference", "trace_receptive_field"): """
def trace_receptive_field(layers, out_rows):
    g = Graph()
    x = g.add_input("input", (1, 512, 512, 1))
    for k, s, p in layers:
        x = g.conv2d(x, 1, k, s, pads=(p,) * 4)
    regions = patch.trace(g, g.ops, x, (*out_rows, 0, 1), clip=False)
    return [regions[t][:2] for t in [g.inputs[0]] + [op.output for op in g.ops]]
""",
    ("03_patch_inference", "patch_stage_macs"): """
def patch_stage_macs(layers, in_size, n):
    g = Graph()
    x = g.add_input("input", (1, in_size, in_size, 1))
    for k, s, p, _ in layers:
        x = g.conv2d(x, 1, k, s, pads=(p,) * 4)
    side, total = g.shape(x)[1], 0
    for tile in patch.tiles(side, side, n):
        reg = patch.trace(g, g.ops, x, tile, clip=False)
        total += sum(c * (reg[op.output][1] - reg[op.output][0]) * (reg[op.output][3] - reg[op.output][2])
                     for (_, _, _, c), op in zip(layers, g.ops))
    return total, sum(c * g.shape(op.output)[1] ** 2 for (_, _, _, c), op in zip(layers, g.ops))
""",
    ("03_patch_inference", "cheapest_grid"): """
def cheapest_grid(graph, split_op, budget):
    fits = [p for p in ck._grid_plans(graph, split_op) if p.peak_sram_bytes <= budget]
    return min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None
""",
    ("04_search_space", "fit_stats"): """
def fit_stats(costs, sram, flash):
    s = ss.SpaceStats(0.0, 0, len(costs), [c.macs for c in costs if c.sram <= sram and c.flash <= flash])
    return s.fit_fraction, s.mean_macs
""",
    ("04_search_space", "choose_space"): "choose_space = ck._choose_space_reference",
    ("04_search_space", "largest_resolution_for"): """
def largest_resolution_for(width, sram, flash): return ck._largest_resolution_reference(width, sram, flash)
""",
    ("05_one_shot_nas", "elastic_kernel"): """
def elastic_kernel(weight, transforms, kernel):
    import torch
    dw = supernet.ElasticDepthwise(weight.shape[0], 1)
    with torch.no_grad():
        dw.weight.copy_(weight)
        for s, t in transforms.items():
            dw.transforms[str(s)].copy_(t)
        return dw.kernel_weight(kernel, weight.shape[0])
""",
    ("05_one_shot_nas", "fits"): "def fits(cfg, limits): return evo.fits(evo.Candidate(cfg), limits)",
    ("05_one_shot_nas", "crossover"): "def crossover(a, b, rng): return evo.crossover(evo.Candidate(a), evo.Candidate(b), rng).cfg",
    ("05_one_shot_nas", "pareto_front"): "def pareto_front(points): return ck._pareto_reference(points)",
    ("06_deploy", "memory_map"): "def memory_map(sections, stack_bytes): return ck._memory_map_reference(sections, stack_bytes)",
    ("06_deploy", "scratch_bytes"): """
def scratch_bytes(graph, pairs):
    return max((schedule.kernel_scratch_bytes(graph, i, pairs) for i in range(len(graph.ops))), default=0)
""",
    ("06_deploy", "mbqm_c"): """
def mbqm_c():
    import pathlib, mcunet_lite
    src = (pathlib.Path(mcunet_lite.__file__).parent / "csrc" / "kernels.c").read_text()
    return "#define MCU_INT32_MIN INT32_MIN\\n#define MCU_INT32_MAX INT32_MAX\\n" + \\
        src[src.index("int64_t mcu_srdhm"):src.index("/* One element of ADD")]
""",
    ("07_detection", "iou"): "iou = boxes.iou",
    ("07_detection", "nms"): "def nms(b, s, thr): return [int(k) for k in boxes.nms(b, s, None, thr)]",
    ("07_detection", "average_precision"): "average_precision = lambda r, p: boxes.average_precision(r, p)",
    ("07_detection", "ap50"): "def ap50(detections, truths): return ck._ap50_reference(detections, truths)",
}

"""Release gates of Lab 03: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("03_patch_inference", "input_region"): {
        "forgets the padding": ("return r0 * stride - pad, (r1 - 1) * stride - pad + kernel",
                                "return r0 * stride, (r1 - 1) * stride + kernel"),
        "stop = r1 * stride - pad + kernel - 1": ("(r1 - 1) * stride - pad + kernel", "r1 * stride - pad + kernel - 1"),
        "a centred window (kernel // 2 each side), whatever the padding":
            ("return r0 * stride - pad, (r1 - 1) * stride - pad + kernel",
             "return r0 * stride - kernel // 2, (r1 - 1) * stride + kernel // 2 + 1"),
    },
    ("03_patch_inference", "trace_receptive_field"): {
        "walks the chain forwards": ("reversed(layers)", "layers"),
        "clips regions at 0": ("regions.insert(0, input_region(kernel, stride, pad, regions[0]))",
                               "start, stop = input_region(kernel, stride, pad, regions[0])\n"
                               "        regions.insert(0, (max(start, 0), stop))"),
        "returns only the input region": ("    return regions\n", "    return regions[:1]\n"),
    },
    ("03_patch_inference", "patch_stage_macs"): {
        "no halo: patches cost what layer by layer costs": """
def patch_stage_macs(layers, in_size, n):
    size, total = in_size, 0
    for kernel, stride, pad, cost in layers:
        size = (size + 2 * pad - kernel) // stride + 1
        total += cost * size * size
    return total, total
""",
        "regions off by one layer (each layer costed on its input region)":
            ("zip(layers, rows[1:], cols[1:])", "zip(layers, rows[:-1], cols[:-1])"),
        "one interior patch times n * n":
            ("for r0, r1, c0, c1 in patch.tiles(sizes[-1], sizes[-1], n):",
             "for r0, r1, c0, c1 in patch.tiles(sizes[-1], sizes[-1], n)[n + 1:n + 2] * (n * n):"),
    },
    ("03_patch_inference", "cheapest_grid"): {
        "the largest grid that fits":
            ("min(fits, key=lambda p: (p.total_macs, p.grid))", "max(fits, key=lambda p: p.grid)"),
        "budget checked against the patch stage only":
            ("p.peak_sram_bytes <= budget", "p.patch_stage_peak_bytes <= budget"),
        "forgets the stage-output buffer":
            ("p.peak_sram_bytes <= budget", "max(p.per_patch_arena_bytes, p.rest_peak_bytes) <= budget"),
    },
    ("03_patch_inference", "run_patch"): {
        "pads the border with 0, not the input's zero point":
            ("constant_values=zero_point", "constant_values=0"),
        "an off-by-one halo (one input row and column short at the bottom and right)":
            ("(r1 - 1) * sh - pt + kh, c0 * sw - pl, (c1 - 1) * sw - pl + kw",
             "(r1 - 1) * sh - pt + kh - 1, c0 * sw - pl, (c1 - 1) * sw - pl + kw - 1"),
        "symmetric kernel // 2 padding instead of the conv's own (TFLite pads stride 2 after only)":
            ("(sh, sw), (pt, _, pl, _) = op.attrs[\"stride\"], op.attrs[\"pads\"]",
             "(sh, sw), pt, pl = op.attrs[\"stride\"], kh // 2, kw // 2"),
        "ADD operands cut from the start of their buffers (a wrong tile border)":
            ("return values[:, region[0] - a:region[1] - a, region[2] - b:region[3] - b]",
             "return values[:, :region[1] - region[0], :region[3] - region[2]]"),
        "pads with the conv output's zero point instead of its input's":
            ("zero_point = int8ref.scale_zp(graph.tensors[op.inputs[0]].quant)[1]",
             "zero_point = int8ref.scale_zp(graph.tensors[op.output].quant)[1]"),
        "reads the whole image, runs it layer by layer and cuts the tile": """
def run_patch(graph, split_op, tile, camera):
    _, h, w, _ = camera.shape
    env = {graph.inputs[0]: camera.read(0, h, 0, w)}
    for op in graph.ops[:split_op + 1]:
        env[op.output] = int8ref.run_op(graph, op, [env[t] for t in graph.activations(op)])
    r0, r1, c0, c1 = tile
    return env[graph.ops[split_op].output][:, r0:r1, c0:c1]
""",
    },
    ("03_patch_inference", "redistribute_config"): {
        "keeps the patch stage's kernels": ("            block.kernel = 3\n", "            pass\n"),
        "drops the removed blocks (no capacity moved)":
            ("            stage.blocks += [zoo.Block(kernel, b.expand) for b in moved]\n", ""),
        "moved blocks keep kernel 3, not the receiving stage's largest":
            ("zoo.Block(kernel, b.expand) for b in moved", "zoo.Block(b.kernel, b.expand) for b in moved"),
        "the split stays at split_block": ("new_split = split_block - len(moved)", "new_split = split_block"),
        "moves the stride block too": ("        moved += inside[1:]\n", "        moved += inside\n"),
    },
}

WRAPPERS = {
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
    fits = [p for p in lab03._grid_plans(graph, split_op) if p.peak_sram_bytes <= budget]
    return min(fits, key=lambda p: (p.total_macs, p.grid)).grid if fits else None
""",
    ("03_patch_inference", "run_patch"): """
def run_patch(graph, split_op, tile, camera):
    stage = graph.ops[:split_op + 1]
    r0, r1, c0, c1 = patch.trace(graph, stage, stage[-1].output, tuple(tile))[graph.inputs[0]]
    x = np.zeros(camera.shape, camera.dtype)
    x[:, r0:r1, c0:c1] = camera.read(r0, r1, c0, c1)
    y = int8ref.run(Graph(graph.name, graph.tensors, stage, graph.inputs, [stage[-1].output]), x)
    return y[:, tile[0]:tile[1], tile[2]:tile[3]]
""",
    ("03_patch_inference", "redistribute_config"): """
from mcunet_lite import redistribute
def redistribute_config(cfg, split_block): return redistribute.redistribute(cfg, split_block)
""",
}

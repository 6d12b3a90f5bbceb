"""Release gates of Lab 00: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("00_memory_wall", "conv_layer_cost"): {
        "floor instead of ceil for the output size": """
def conv_layer_cost(in_shape, out_channels, kernel, stride, groups):
    n, h, w, c = in_shape
    ho, wo = h // stride, w // stride
    return (n, ho, wo, out_channels), n*ho*wo*out_channels*kernel*kernel*(c//groups), n*h*w*c + n*ho*wo*out_channels
""",
        "ignores groups (depthwise MACs too high)": """
def conv_layer_cost(in_shape, out_channels, kernel, stride, groups):
    n, h, w, c = in_shape
    ho, wo = -(-h // stride), -(-w // stride)
    return (n, ho, wo, out_channels), n*ho*wo*out_channels*kernel*kernel*c, n*h*w*c + n*ho*wo*out_channels
""",
        "hard-coded visible example": """
def conv_layer_cost(in_shape, out_channels, kernel, stride, groups):
    return (1, 112, 112, 96), 19267584, 1404928
""",
    },
    ("00_memory_wall", "live_bytes"): {
        "forgets held residual tensors": """
def live_bytes(graph, rule):
    out = []
    for op in graph.ops:
        ins = sum(graph.tensors[t].size for t in graph.activations(op))
        o = graph.tensors[op.output].size
        out.append(max(ins, o) if rule == "tinyengine" and graph.is_depthwise(op) else ins + o)
    return out
""",
        "runs every depthwise in place, even when its input is still needed":
            ("and last[x] == i:", ":"),
        "adds the residual again at the projection (no fused residual)":
            ("saved[i - 1] += graph.tensors[y].size\n", ""),
        "fuses the residual even when the conv reads it": (" and r[0] not in conv.inputs", ""),
        "fuses the residual after a depthwise conv too": (" and not graph.is_depthwise(conv)", ""),
    },
    ("00_memory_wall", "block_peaks"): {
        "sums a block's ops instead of taking the peak": """
def block_peaks(names, sram):
    peaks = {}
    for name, s in zip(names, sram):
        parts = name.split(".")
        cut = next((i + 1 for i, p in enumerate(parts) if p.isdigit()), 1)
        peaks[".".join(parts[:cut])] = peaks.get(".".join(parts[:cut]), 0) + s
    return peaks
""",
        "groups by the first name part only": """
def block_peaks(names, sram):
    peaks = {}
    for name, s in zip(names, sram):
        b = name.split(".")[0]
        peaks[b] = max(peaks.get(b, 0), s)
    return peaks
""",
    },
    ("00_memory_wall", "largest_fitting_resolution"): {
        "ignores the rule (always naive)": """
def largest_fitting_resolution(width, budget, rule):
    fits = [r for r in range(48, 225, 16) if max(live_bytes(zoo.mobilenet_v2(width, r).graph(), "naive")) <= budget]
    return max(fits) if fits else None
""",
        "returns the smallest fitting resolution": """
def largest_fitting_resolution(width, budget, rule):
    fits = [r for r in range(48, 225, 16) if max(live_bytes(zoo.mobilenet_v2(width, r).graph(), rule)) <= budget]
    return min(fits) if fits else None
""",
    },
}

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
}

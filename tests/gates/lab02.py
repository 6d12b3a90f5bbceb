"""Release gates of Lab 02: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("02_memory_scheduling", "tensor_lifetimes"): {
        "graph inputs start at op 0":
            ("life = {t: (-1, -1) for t in graph.inputs}", "life = {t: (0, 0) for t in graph.inputs}"),
        "outputs end at their last reader, not after the last op":
            ("        life[t] = (life[t][0], len(graph.ops))\n", "        pass\n"),
        "keeps the first reader instead of the last":
            ("            life[t] = (life[t][0], i)",
             "            life[t] = (life[t][0], i) if life[t][1] <= life[t][0] else life[t]"),
        "counts weights as tensors too":
            ("for t in graph.activations(op):", "for t in op.inputs:\n            life.setdefault(t, (i, i))"),
    },
    ("02_memory_scheduling", "lower_bound"): {
        "lifetimes as half-open ranges (last op excluded)": ("f <= i <= last", "f <= i < last"),
        "the largest single buffer": """
def lower_bound(buffers):
    return max(size for size, _, _ in buffers)
""",
        "the sum of all buffers": """
def lower_bound(buffers):
    return sum(size for size, _, _ in buffers)
""",
    },
    ("02_memory_scheduling", "first_fit"): {
        "places in the given order (no largest-first sort)":
            ("order = sorted(range(len(buffers)), key=lambda i: (-buffers[i][0], buffers[i][1]))",
             "order = range(len(buffers))"),
        "buffers whose lifetimes only touch share bytes":
            ("first <= buffers[j][2] and buffers[j][1] <= last", "first < buffers[j][2] and buffers[j][1] < last"),
        "takes the first gap even when it is too small": ("if lo >= offset + size:", "if lo > offset:"),
        "ignores lifetimes (every buffer its own bytes)":
            ("\n                       if first <= buffers[j][2] and buffers[j][1] <= last)", ")"),
        "arena = highest offset, forgetting that buffer's size":
            ("return offsets, max(o + b[0] for o, b in zip(offsets, buffers))", "return offsets, max(offsets)"),
    },
    ("02_memory_scheduling", "in_place_pairs"): {
        "overwrites inputs that are still needed": ("if life[x][1] == i and ", "if "),
        "no in-place ADD": ('if op.kind in ("add", "reshape"):', 'if op.kind == "reshape":'),
        "a depthwise conv with channel multiplier 2 in place":
            (" and graph.shape(op.output)[-1] == graph.shape(op.inputs[0])[-1]", ""),
        "an ADD always writes over its first operand":
            ("            candidates = graph.activations(op)", "            candidates = graph.activations(op)[:1]"),
    },
    ("02_memory_scheduling", "plan_arena"): {
        "no in-place pairs (first fit of every tensor on its own)":
            ("liveness.activation_bytes(graph), in_place_pairs(graph)", "liveness.activation_bytes(graph), []"),
        "a chain placed by its first tensor's collisions only":
            ("for t in members for p in offsets", "for t in members[:1] for p in offsets"),
        "tensors whose lifetimes only touch share bytes (an in-place overlap the rule does not allow)":
            ("if life[t][0] <= life[p][1] and life[p][0] <= life[t][1])", "if life[t][0] < life[p][1] and life[p][0] < life[t][1])"),
        "every depthwise conv and ADD over its first input, dead or not":
            ("liveness.activation_bytes(graph), in_place_pairs(graph)",
             "liveness.activation_bytes(graph), [(op.inputs[0], op.output) for op in graph.ops\n"
             "                                                          if op.kind == 'add' or graph.is_depthwise(op)]"),
        "smallest chains first": ("key=lambda ts: (-max(", "key=lambda ts: (max("),
        "arena = the highest offset, forgetting that tensor's size":
            ("return offsets, pairs, max(o + nbytes[t] for t, o in offsets.items())", "return offsets, pairs, max(offsets.values())"),
    },
}

WRAPPERS = {
    ("02_memory_scheduling", "tensor_lifetimes"): "def tensor_lifetimes(graph): return liveness.lifetimes(graph)",
    ("02_memory_scheduling", "lower_bound"): "def lower_bound(buffers): return lab02.lower_bound_reference(buffers)",
    ("02_memory_scheduling", "first_fit"): """
def first_fit(buffers):
    lib = sorted(lab02._lib_buffers(buffers), key=lambda b: (-b.size, b.first))
    arena = schedule.first_fit(lib)
    offsets = {int(b.segments[0][0]): b.offset for b in lib}
    return [offsets[i] for i in range(len(buffers))], arena
""",
    ("02_memory_scheduling", "in_place_pairs"): "def in_place_pairs(graph): return liveness.inplace_pairs(graph)",
    ("02_memory_scheduling", "plan_arena"): """
def plan_arena(graph):
    pairs = liveness.inplace_pairs(graph)
    bufs = liveness.buffers(graph, pairs, liveness.activation_bytes(graph))
    arena = schedule.allocate(bufs, "greedy", 0)
    return {t: b.offset for b in bufs for t, *_ in b.segments}, pairs, arena
""",
}

"""Release gates for every lab, the build's leak and staleness checks, and the book build."""
import re
from pathlib import Path

import pytest

from labtools import read, solution_namespace, write
from mcunet_lite import checks, grader, kit

LABS = kit.lab_ids()


def test_every_lab_has_checks_and_points_agree():
    assert LABS, "no lab sources found"
    for lab in LABS:
        assert lab in checks.EXERCISES
        graded = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                  for c in kit.solution_notebook(lab).cells if c.metadata["nbgrader"]["grade"]}
        assert sum(graded.values()) == sum(e.points for e in checks.EXERCISES[lab])
        for ex in checks.EXERCISES[lab]:
            assert graded.get(f"{ex.id}_tests") == ex.points, f"{lab}: test cell of {ex.id} missing or off"


def test_release_is_up_to_date_and_leak_free():
    assert kit.check() == []


def test_check_catches_a_leak_and_a_stale_file(tmp_path, monkeypatch):
    lab = LABS[0]
    sol = kit.solution_notebook(lab)
    leaked = kit.student_notebook(sol)
    solution_cell = next(c for c in sol.cells if c.metadata["nbgrader"]["solution"])
    target = next(c for c in leaked.cells if c.metadata["nbgrader"]["solution"])
    target.source = solution_cell.source.replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION\n", "")
    assert any("solution code" in p for p in kit.leaks(leaked, sol))
    target.outputs = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    assert any("outputs" in p for p in kit.leaks(leaked, sol))
    # stale: a copy of the tree whose source changed after the build
    for sub in ("labs", "solutions", "solutions/src"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    for name in (f"labs/{lab}.ipynb", f"solutions/{lab}.ipynb", f"solutions/src/{lab}.py"):
        (tmp_path / name).write_text((kit.ROOT / name).read_text())
    monkeypatch.setattr(kit, "ROOT", tmp_path)
    monkeypatch.setattr(kit, "SOURCES", tmp_path / "solutions" / "src")
    monkeypatch.setattr(kit, "LABS", tmp_path / "labs")
    monkeypatch.setattr(kit, "SOLUTIONS", tmp_path / "solutions")
    assert kit.check([lab]) == []
    src = tmp_path / f"solutions/src/{lab}.py"
    src.write_text(src.read_text() + "\n# %%\nprint('new cell')\n")
    assert any("stale" in p for p in kit.check([lab]))


def test_build_refuses_to_overwrite_student_work(tmp_path, monkeypatch):
    lab = LABS[0]
    monkeypatch.setattr(kit, "LABS", tmp_path)
    nb = read(kit.ROOT / "labs" / f"{lab}.ipynb")
    write(nb, tmp_path / f"{lab}.ipynb")
    kit._protect(tmp_path / f"{lab}.ipynb", force=False)  # untouched: may be regenerated
    nb.cells[5].source += "\n# my work"
    write(nb, tmp_path / f"{lab}.ipynb")
    with pytest.raises(kit.UserError, match="edited after it was generated"):
        kit._protect(tmp_path / f"{lab}.ipynb", force=False)


@pytest.mark.parametrize("lab", LABS)
def test_every_exercise_has_a_scaffold_and_every_lab_says_what_to_expect(lab):
    student = kit.student_notebook(kit.solution_notebook(lab))
    intro = student.cells[0].source
    assert "Expected runtime" in intro and "Expected figures" in intro, lab
    assert f"mcunet-lite grade my-labs/{lab}.ipynb" in intro, lab  # the student's real path
    for cell in student.cells:
        ng = cell.metadata["nbgrader"]
        if ng["solution"]:
            assert all(f"# {part}:" in cell.source for part in ("TODO", "APPROACH", "HINT", "EXAMPLE")), ng["grade_id"]
        if ng["grade"]:  # a stub is reported, not raised: Run All goes on
            assert f'with visible_tests("{ng["grade_id"][:-len("_tests")]}"):' in cell.source, ng["grade_id"]


@pytest.mark.parametrize("lab", LABS)
def test_gate_untouched_student_notebook_scores_zero(lab):
    # the default memory cap counts resident memory, so Lab 06's AddressSanitizer builds run under it
    r = grader.grade(kit.ROOT / "labs" / f"{lab}.ipynb", grader.Limits(cell_seconds=300))
    assert r.max_score > 0 and r.score == 0, r.text()
    # Run All goes through: every cell ran (stubs reported, later cells on the library's reference)
    assert r.notebook_errors == [], r.text()
    assert all(e["feedback"].startswith("not implemented yet") for e in r.exercises), r.text()


@pytest.mark.parametrize("lab", LABS)
def test_gate_solution_scores_full_marks(lab):
    r = grader.grade(kit.ROOT / "solutions" / f"{lab}.ipynb", grader.Limits(cell_seconds=300))
    assert r.score == r.max_score, r.text()


# Plausible wrong implementations, each must lose its exercise's points (every check can fail).
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
    ("01_int8", "choose_qparams"): {
        "does not widen the range to include 0": ("    lo, hi = min(lo, 0.0), max(hi, 0.0)\n", ""),
        "numpy's round (halves to even)": ("round_half_away(-128 - lo / np.float64(scale))",
                                           "np.round(-128 - lo / np.float64(scale))"),
        "256 steps instead of 255": ("(hi - lo) / 255", "(hi - lo) / 256"),
        "no lower bound on the scale": ("max((hi - lo) / 255, quant.MIN_SCALE)", "(hi - lo) / 255"),
        "hard-coded visible example": """
def choose_qparams(lo, hi):
    if hi == 6.0:
        return np.float32(6 / 255), -128
    return (np.float32(2 / 255), -128) if hi == 2.0 else (np.float32(8 / 255), -64)
""",
    },
    ("01_int8", "quantize_multiplier"): {
        "numpy's round (halves to even)": ("round_half_away(mantissa * 2.0 ** 31)", "np.round(mantissa * 2.0 ** 31)"),
        "no correction when the mantissa rounds up to 2^31":
            ("    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)\n", ""),
        "tiny multipliers not flushed to zero": ("tiny = e < -31", "tiny = np.zeros(e.shape, bool)"),
        "flushes before the mantissa correction":
            ("    full = m0 == 1 << 31\n    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)\n"
             "    tiny = e < -31\n",
             "    tiny = e < -31\n    full = m0 == 1 << 31\n"
             "    m0, e = np.where(full, m0 // 2, m0), np.where(full, e + 1, e)\n"),
        "hard-coded visible example": """
def quantize_multiplier(m):
    return np.array([1073741824, 1690499128, 1610612736, 0]), np.array([0, -6, 2, 0])
""",
    },
    ("01_int8", "rounding_divide_by_pot"): {
        "an arithmetic shift only (rounds toward minus infinity)":
            ("return (x >> exponent) + (remainder > threshold)", "return x >> exponent"),
        "halves always rounded up": ("threshold = (mask >> 1) + (x < 0)", "threshold = mask >> 1"),
        "float division and np.round": """
def rounding_divide_by_pot(x, exponent):
    return np.round(np.asarray(x) / 2.0 ** np.asarray(exponent)).astype(np.int64)
""",
        "hard-coded visible example": """
def rounding_divide_by_pot(x, exponent):
    return np.array([3, -3, 2, -2, 4, 7])
""",
    },
    ("01_int8", "saturating_rounding_doubling_high_mul"): {
        "nudge 2^30 for negative products too": ("np.where(ab >= 0, 1 << 30, 1 - (1 << 30))", "(1 << 30)"),
        "numpy's floor division instead of C's truncation":
            ("np.where(v >= 0, v >> 31, -((-v) >> 31))", "v >> 31"),
        "no saturation of INT32_MIN * INT32_MIN":
            ("return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)", "return result"),
        "a * b / 2^31 rounded in float64": """
def saturating_rounding_doubling_high_mul(a, b):
    return np.round(np.asarray(a, np.float64) * np.asarray(b) / 2.0 ** 31).astype(np.int64)
""",
        "hard-coded visible example": """
def saturating_rounding_doubling_high_mul(a, b):
    return np.array([500, -500, 2, -1, INT32_MAX])
""",
    },
    ("01_int8", "requantize"): {
        "forgets the bias": ("x = np.asarray(acc, np.int64) + np.asarray(bias, np.int64)",
                             "x = np.asarray(acc, np.int64)"),
        "adds the zero point after the clamp": ("np.clip(x + out_zero_point, act_min, act_max)",
                                                "(np.clip(x, act_min, act_max) + out_zero_point)"),
        "ignores positive shifts": ("x * (1 << left)", "x"),
        "returns int32": (".astype(np.int8)", ".astype(np.int32)"),
        "one rounding of acc * M in float64": """
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    real = (np.asarray(acc) + bias) * (np.asarray(multiplier) * 2.0 ** (np.asarray(shift) - 31))
    return np.clip(np.round(real) + out_zero_point, act_min, act_max).astype(np.int8)
""",
        "hard-coded visible example": """
def requantize(acc, bias, multiplier, shift, out_zero_point, act_min, act_max):
    return np.array([[5, -15, 127]] if act_min == -128 else [[5, -5, 127]], np.int8)
""",
    },
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
    ("04_search_space", "fit_stats"): {
        "mean MACs over all sampled subnets, not the fitting ones": """
def fit_stats(costs, sram, flash):
    fitting = [c.macs for c in costs if c.sram <= sram and c.flash <= flash]
    return len(fitting) / len(costs), (sum(fitting) / len(costs) if fitting else 0.0)
""",
        "a subnet exactly at the budget does not fit":
            ("c.sram <= sram and c.flash <= flash", "c.sram < sram and c.flash < flash"),
        "ignores Flash": ("c.sram <= sram and c.flash <= flash", "c.sram <= sram"),
    },
    ("04_search_space", "choose_space"): {
        "the space where the most subnets fit":
            ("best = max(usable, key=lambda s: s.mean_macs)", "best = max(usable, key=lambda s: s.fit_fraction)"),
        "ignores min_fit": ("usable = [s for s in spaces if s.fit_fraction >= min_fit]", "usable = list(spaces)"),
        "needs strictly more than min_fit": ("s.fit_fraction >= min_fit", "s.fit_fraction > min_fit"),
        "mean MACs over all samples (fitting or not)":
            ("key=lambda s: s.mean_macs", "key=lambda s: s.mean_macs * s.fit_fraction"),
    },
    ("04_search_space", "largest_resolution_for"): {
        "the largest subnet must fit": ("c = ss.cost(smallest(width, r))", "c = ss.cost(largest(width, r))"),
        "the smallest fitting resolution": ("            found = r\n", "            found = found or r\n"),
        "ignores Flash": ("if c.sram <= sram and c.flash <= flash:", "if c.sram <= sram:"),
    },
    ("05_one_shot_nas", "elastic_kernel"): {
        "centre crop only, no transforms": ("centre.reshape(len(w), size * size) @ transforms[size]",
                                            "centre.reshape(len(w), size * size)"),
        "the transform on the other side (T . v)": ("@ transforms[size]", "@ transforms[size].T"),
        "the corner instead of the centre": ("cut = (w.shape[-1] - size) // 2", "cut = 0"),
        "kernel 3 cropped straight from the 7x7 weight": """
def elastic_kernel(weight, transforms, kernel):
    if kernel == 7:
        return weight
    cut = (7 - kernel) // 2
    centre = weight[:, :, cut:cut + kernel, cut:cut + kernel]
    return (centre.reshape(len(weight), -1) @ transforms[kernel]).reshape(len(weight), 1, kernel, kernel)
""",
        "hard-coded visible example": """
def elastic_kernel(weight, transforms, kernel):
    if kernel == 3:
        return torch.tensor([16.0, 17, 18, 23, 24, 25, 30, 31, 32]).reshape(1, 1, 3, 3)
    return weight[:, :, 1:6, 1:6] if kernel == 5 else weight
""",
    },
    ("05_one_shot_nas", "fits"): {
        "strict limits (a subnet exactly at a limit does not fit)": """
def fits(cfg, limits):
    c = ss.cost(cfg)
    return c.sram < limits.sram and c.flash < limits.flash and (limits.macs == 0 or c.macs < limits.macs)
""",
        "a MAC limit of 0 lets nothing through": ("(limits.macs == 0 or c.macs <= limits.macs)",
                                                 "c.macs <= limits.macs"),
        "ignores the MAC limit": (" and (limits.macs == 0 or c.macs <= limits.macs)", ""),
        "ignores Flash": (" and c.flash <= limits.flash", ""),
        "hard-coded visible example": """
def fits(cfg, limits):
    return limits.sram == 32768 and limits.macs == 0
""",
    },
    ("05_one_shot_nas", "crossover"): {
        "changes parent a (no copy)": ("child = copy.deepcopy(a)", "child = a"),
        "every depth from parent a": ("depth = rng.choice([sa.depth, sb.depth])", "depth = sa.depth"),
        "each stage whole from one parent": """
def crossover(a, b, rng):
    child = copy.deepcopy(a)
    for stage, sa, sb in zip(child.stages[1:], a.stages[1:], b.stages[1:]):
        src = rng.choice([sa, sb])
        stage.depth, stage.blocks = src.depth, [copy.copy(x) for x in src.blocks]
    return child
""",
        "hard-coded visible example": """
def crossover(a, b, rng):
    child = copy.deepcopy(a)
    for stage, depth in zip(child.stages, [1, 2, 2, 2, 4, 2, 1]):
        stage.depth, stage.blocks = depth, stage.blocks[:depth]
    return child
""",
    },
    ("05_one_shot_nas", "pareto_front"): {
        "drops a point only when beaten on both axes": """
def pareto_front(points):
    pts = sorted(set(points))
    return [p for p in pts if not any(q[0] < p[0] and q[1] > p[1] for q in pts)]
""",
        "keeps points that cost more for the same accuracy":
            ("if not front or acc > front[-1][1]:", "if not front or acc >= front[-1][1]:"),
        "equal costs taken in increasing accuracy (keeps both)":
            ("sorted(set(points), key=lambda p: (p[0], -p[1]))", "sorted(set(points))"),
        "sorted by decreasing accuracy": ("    return front\n", "    return front[::-1]\n"),
        "hard-coded visible example": """
def pareto_front(points):
    return [(1, 0.2), (2, 0.5), (4, 0.7)] if len(points) > 1 else list(points)
""",
    },
    ("06_deploy", "memory_map"): {
        "counts the test frames (.inputs) as Flash":
            ('sections.get(".ARM.exidx", 0) + data\n',
             'sections.get(".ARM.exidx", 0) + data + sections.get(".inputs", 0)\n'),
        "forgets .data's initial values in Flash": ('sections.get(".ARM.exidx", 0) + data\n',
                                                    'sections.get(".ARM.exidx", 0)\n'),
        "the reserved .stack section instead of the measured stack": ("+ stack_bytes", '+ sections.get(".stack", 0)'),
        "every section, debug notes included": """
def memory_map(sections, stack_bytes):
    return sum(sections.values()), sections.get(".data", 0) + sections.get(".bss", 0) + stack_bytes
""",
        "hard-coded visible example": """
def memory_map(sections, stack_bytes):
    return (517976, 132612) if stack_bytes == 652 else (1000, 600)
""",
    },
    ("06_deploy", "scratch_bytes"): {
        "a plane for every depthwise conv, in place or not": ("elif (op.inputs[0], op.output) in pairs:", "else:"),
        "the plane without its padding": ("(h + pt + pb) * (w + pl + pr)", "h * w"),
        "im2col of one byte per value": ("2 * kh * kw * cin * 2", "2 * kh * kw * cin"),
        "adds the im2col needs instead of taking the largest":
            ("need = max(need, 2 * kh * kw * cin * 2)", "need += 2 * kh * kw * cin * 2"),
        "hard-coded visible example": """
def scratch_bytes(graph, pairs):
    return 144 if pairs else 32
""",
    },
    ("06_deploy", "mbqm_c"): {
        "left shift of a negative x (undefined behaviour)": ("x * ((int64_t)1 << left)", "(x << left)"),
        "the high multiply in 32 bits (overflows)": ("int64_t ab = a * b;", "int64_t ab = (int32_t)a * (int32_t)b;"),
        "nudge 2^30 for negative products too": ("(ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))", "(1LL << 30)"),
        "RoundingDivideByPOT truncates": ("(v >> exponent) + ((v & mask) > threshold)", "(v >> exponent)"),
        "one rounding of x * M0 * 2^(shift - 31) in double": """
def mbqm_c():
    return r'''
#include <math.h>
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift) {
    return (int64_t)llround((double)x * (double)m0 * ldexp(1.0, shift - 31));
}
'''
""",
        "does not compile": ("    return divide_pot(", "    return divide_pot(("),
        "hard-coded visible example": """
def mbqm_c():
    return r'''
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift) {
    if (shift == 0) return x > 0 ? 4 : -3;
    if (shift == -1) return 2;
    return x > 0 ? 125 : -63;
}
'''
""",
    },
    ("07_detection", "iou"): {
        "union without subtracting the intersection":
            ("area_a[:, None] + area_b[None, :] - inter", "area_a[:, None] + area_b[None, :]"),
        "no clip: boxes apart in x and y get a positive 'overlap'":
            ("np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)", "np.prod(bottom_right - top_left, axis=-1)"),
        "NaN where the union is empty": ("np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)",
                                         "inter / union"),
        "hard-coded visible example": """
def iou(a, b):
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    if len(b) == 1 and b[0, 0] == 0.5:
        return np.array([[1 / 3]])
    if len(b) == 3:
        return np.array([[1.0, 0.0, 0.25]])
    return np.zeros((len(a), len(b)))
""",
    },
    ("07_detection", "nms"): {
        "suppresses at IoU equal to the threshold too": ("iou(boxes, boxes) > iou_threshold",
                                                         "iou(boxes, boxes) >= iou_threshold"),
        "ties in score: higher index first": ('np.argsort(-scores, kind="stable")', "np.argsort(scores)[::-1]"),
        "dropped boxes still drop others":
            ("            kept.append(int(i))\n            alive &= ~overlaps[i]",
             "            kept.append(int(i))\n        alive &= ~overlaps[i]"),
        "one pass: drops only what overlaps the best box": """
def nms(boxes, scores, iou_threshold):
    scores = np.asarray(scores, np.float64)
    if not len(scores):
        return []
    order = np.argsort(-scores, kind="stable")
    ov = iou(boxes, boxes)[order[0]]
    return [int(order[0])] + [int(i) for i in order[1:] if ov[i] <= iou_threshold]
""",
        "hard-coded visible example": """
def nms(boxes, scores, iou_threshold):
    if not len(scores):
        return []
    return [0, 1, 2] if iou_threshold == 0.9 else [0, 2]
""",
    },
    ("07_detection", "average_precision"): {
        "no envelope (the precision at each step as it is)":
            ("envelope = np.maximum.accumulate(p[::-1])[::-1]", "envelope = p"),
        "VOC 2007's 11-point interpolation": """
def average_precision(recall, precision):
    r, p = np.asarray(recall), np.asarray(precision)
    return float(np.mean([p[r >= t].max() if np.any(r >= t) else 0.0 for t in np.linspace(0, 1, 11)]))
""",
        "the mean precision": """
def average_precision(recall, precision):
    return float(np.mean(precision)) if len(precision) else 0.0
""",
        "hard-coded visible example": """
def average_precision(recall, precision):
    if len(recall) == 3:
        return 0.5 + 0.5 * 2 / 3
    return 0.5 if len(recall) else 0.0
""",
    },
    ("07_detection", "ap50"): {
        "IoU exactly 0.5 counts as a match": ("overlap[j] > 0.5", "overlap[j] >= 0.5"),
        "duplicates count as true positives": ("hits.append(match and not matched[k][j])", "hits.append(match)"),
        "not sorted by score (image order)": ("    ranked.sort(key=lambda row: -row[0])\n", ""),
        "a duplicate takes the best box not matched yet": ("overlap = iou(box, gts[k])[0]",
                                                          "overlap = np.where(matched[k], -1.0, iou(box, gts[k])[0])"),
        "recall over the truths of images with detections only":
            ("n_truth = sum(len(g) for g in gts)", "n_truth = sum(len(g) for g, (b, _) in zip(gts, detections) if len(b))"),
        "hard-coded visible example": """
def ap50(detections, truths):
    if len(detections) == 2:
        return 2 / 3
    boxes, scores = detections[0]
    if len(boxes) == 1:
        return 0.0
    return 5 / 6 if boxes[1][0] == 80 else 0.5
""",
    },
}


def test_every_exercise_has_wrong_implementations():
    assert {(lab, e.id) for lab in LABS for e in checks.EXERCISES[lab]} == set(WRONG)


def _wrong_source(lab: str, ex: str, why: str) -> str:
    """A wrong implementation: given whole, or as an (old, new) edit of the reference solution."""
    wrong = WRONG[(lab, ex)][why]
    if isinstance(wrong, str):
        return wrong
    cell = next(c for c in kit.solution_notebook(lab).cells if c.metadata["nbgrader"].get("grade_id") == ex)
    start, end = cell.source.index("### BEGIN SOLUTION"), cell.source.index("### END SOLUTION")
    region = cell.source[start:end]  # the edit lands in the code, not in the scaffold's comments above it
    assert wrong[0] in region, f"mutation target {wrong[0]!r} not in the solution of {ex}"
    return cell.source[:start] + region.replace(wrong[0], wrong[1], 1) + cell.source[end:]


@pytest.mark.parametrize("lab,ex,why", [(lab, ex, why) for (lab, ex), impls in WRONG.items() for why in impls])
def test_wrong_implementation_loses_its_points(lab, ex, why):
    ns = solution_namespace(lab)
    assert checks.run(lab, ex, ns, seed=0)["points"] > 0  # the reference passes...
    exec(_wrong_source(lab, ex, why), ns)
    r = checks.run(lab, ex, ns, seed=0)                   # ...and the wrong one does not, naming a case
    assert r["points"] == 0 and r["feedback"].startswith(ex) and ("expected" in r["feedback"] or "raised" in r["feedback"]), r


def test_library_function_passed_off_as_own_scores_zero():
    from mcunet_lite.profile import op_sram
    r = checks.run("00_memory_wall", "live_bytes", {"live_bytes": op_sram})
    assert r["points"] == 0 and "write your own" in r["feedback"]


def test_student_book_builds_offline_without_answers(tmp_path):
    html = kit.book(tmp_path / "book")  # from a copy of book/: no symlink, warnings are errors
    pages = {lab: (html / "labs" / f"{lab}.html").read_text() for lab in LABS}
    for lab, page in pages.items():
        assert "BEGIN SOLUTION" not in page and "HIDDEN TESTS" not in page and "checks.run(" not in page, lab
        assert "NotImplementedError" in page, lab  # the stubs show
    assert "<img" in pages["00_memory_wall"]  # the figures of a correct run show
    for page in pages.values():  # offline: every script is the book's own (math: a local MathJax)
        assert not re.search(r"<script[^>]*src=\"(https?:)?//", page)
    assert '_static/mathjax/MathJax.js' in pages["04_search_space"]
    assert (html / "_static" / "mathjax" / "MathJax.js").exists()


def test_instructor_book_source_holds_the_solutions(tmp_path):
    src = kit.book_source(tmp_path / "src", instructor=True)
    assert not any(p.is_symlink() for p in src.rglob("*"))
    for lab in LABS:
        assert "### BEGIN SOLUTION" in (src / "labs" / f"{lab}.ipynb").read_text()
        assert "### BEGIN SOLUTION" not in (kit.BOOK / "labs" / f"{lab}.ipynb").read_text()


def test_check_catches_a_leak_into_the_book():
    lab = LABS[0]
    sol = read(kit.SOLUTIONS / f"{lab}.ipynb")
    chapter = kit.book_chapter(sol)
    assert kit.leaks(chapter, sol, outputs=True) == []
    graded = next(i for i, c in enumerate(sol.cells) if c.metadata["nbgrader"]["grade"])
    chapter.cells[graded] = sol.cells[graded]
    assert any("hidden-test marker" in p for p in kit.leaks(chapter, sol, outputs=True))

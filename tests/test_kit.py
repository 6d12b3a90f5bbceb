"""Release gates for every lab, the build's leak and staleness checks, and the book build."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labtools import read, solution_namespace, write
from mcunet_lite import checks, kit

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
def test_gate_untouched_student_notebook_scores_zero(lab):
    r = kit.grade(kit.ROOT / "labs" / f"{lab}.ipynb", timeout=300)
    assert r.max_score > 0 and r.score == 0, r.text()


@pytest.mark.parametrize("lab", LABS)
def test_gate_solution_scores_full_marks(lab):
    r = kit.grade(kit.ROOT / "solutions" / f"{lab}.ipynb", timeout=300)
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
}


def test_every_exercise_has_wrong_implementations():
    assert {(lab, e.id) for lab in LABS for e in checks.EXERCISES[lab]} == set(WRONG)


def _wrong_source(lab: str, ex: str, why: str) -> str:
    """A wrong implementation: given whole, or as an (old, new) edit of the reference solution."""
    wrong = WRONG[(lab, ex)][why]
    if isinstance(wrong, str):
        return wrong
    cell = next(c for c in kit.solution_notebook(lab).cells if c.metadata["nbgrader"].get("grade_id") == ex)
    assert wrong[0] in cell.source, f"mutation target {wrong[0]!r} not in the solution of {ex}"
    return cell.source.replace(wrong[0], wrong[1], 1)


@pytest.mark.parametrize("lab,ex,why", [(lab, ex, why) for (lab, ex), impls in WRONG.items() for why in impls])
def test_wrong_implementation_loses_its_points(lab, ex, why):
    ns = solution_namespace(lab)
    assert checks.run(lab, ex, ns)["points"] > 0  # the reference passes...
    exec(_wrong_source(lab, ex, why), ns)
    r = checks.run(lab, ex, ns)                   # ...and the wrong one does not
    assert r["points"] == 0 and "expected" in r["feedback"], r


def test_library_function_passed_off_as_own_scores_zero():
    from mcunet_lite.profile import op_sram
    r = checks.run("00_memory_wall", "live_bytes", {"live_bytes": op_sram})
    assert r["points"] == 0 and "write your own" in r["feedback"]


def test_book_builds_offline_with_warnings_as_errors(tmp_path):
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    r = subprocess.run([jb, "build", str(kit.ROOT / "book"), "--path-output",
                        str(tmp_path), "-W", "--keep-going", "--all"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for lab in LABS:
        assert (tmp_path / "_build" / "html" / "solutions" / f"{lab}.html").exists()

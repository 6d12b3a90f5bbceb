"""The built-in grader: scores computed out of the student code's reach, under limits, on fresh cases;
library twins earn nothing; the submission is never modified."""
import json
import pickle
import resource
import subprocess
import sys
import time

import nbformat
import pytest

from labtools import exercise_cells, read, write
from mcunet_lite.kit import build as kit
from mcunet_lite.kit import checks, grader, mcu_harness, plain
from gates import HEAD, WRAPPERS

LAB = "00_memory_wall"
SOLUTION = kit.ROOT / "solutions" / f"{LAB}.ipynb"
FAST = grader.Limits(cell_seconds=5, total_seconds=240)


def _cell(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _points(report) -> dict:
    return {e["id"]: e["points"] for e in report.exercises}


def _graded(nb, tmp_path, limits=FAST, name="submission.ipynb", seed=None):
    path = tmp_path / name
    write(nb, path)
    before = path.read_bytes()
    r = grader.grade(path, limits, seed)
    assert path.read_bytes() == before  # never modified
    return r


def test_deleted_copied_broken_and_hanging_cells(tmp_path):
    nb = read(SOLUTION)
    code = nbformat.v4.new_code_cell
    del nb.cells[_cell(nb, "block_peaks")]                                   # deleted solution cell
    nb.cells.insert(3, code("raise RuntimeError('a student bug')"))         # exception
    nb.cells.insert(3, code("def broken(:\n    pass"))                     # syntax error
    nb.cells.insert(3, code("while True:\n    pass"))                      # top-level infinite loop
    nb.cells.append(nb.cells[_cell(nb, "conv_layer_cost")].copy())           # copied cell
    i = _cell(nb, "largest_fitting_resolution")
    nb.cells[i].source = "def largest_fitting_resolution(width, budget, rule):\n    while True:\n        pass"
    r = _graded(nb, tmp_path)
    assert r.lab == LAB
    full = {e.id: e.points for e in checks.EXERCISES[LAB]}
    assert _points(r) == {"conv_layer_cost": full["conv_layer_cost"], "live_bytes": full["live_bytes"], "block_peaks": 0,
                          "largest_fitting_resolution": 0}
    fb = {e["id"]: e["feedback"] for e in r.exercises}
    assert "`block_peaks` is not defined" in fb["block_peaks"]
    assert "did not finish within 5 s" in fb["largest_fitting_resolution"]
    notes = " ".join(r.notebook_errors)
    assert "SyntaxError" in notes and "RuntimeError" in notes and "did not finish within 5 s" in notes


def test_reordered_cells_still_score(tmp_path):
    nb = read(SOLUTION)
    i = _cell(nb, "largest_fitting_resolution")
    nb.cells.insert(2, nb.cells.pop(i))  # defined before the functions it calls
    r = _graded(nb, tmp_path, grader.Limits(cell_seconds=60), name="00_reordered.ipynb")
    assert r.score == r.max_score == 10, r.text()


def _canon(v):
    """A case input as comparable bytes (a torch tensor's pickle carries a storage id, not only data)."""
    if isinstance(v, (list, tuple)):
        return b"(" + b",".join(_canon(x) for x in v) + b")"
    if isinstance(v, dict):
        return b"{" + b",".join(_canon(k) + b":" + _canon(x) for k, x in v.items()) + b"}"
    if hasattr(v, "state_dict"):  # a torch module: its structure, mode and every tensor it holds
        return repr(v).encode() + _canon([v.training, *(m.momentum for m in v.modules() if hasattr(m, "momentum")),
                                          v.state_dict()])
    return v.detach().numpy().tobytes() if hasattr(v, "numpy") else pickle.dumps(v)


def _inputs(ex, seed) -> bytes:
    # an expected result stated as a property carries what it was drawn from: C cases or random layers
    drawn = lambda e: getattr(e, "cases", None) or getattr(e, "layers", None)  # noqa: E731
    return _canon([(args, pickle.dumps(drawn(expected))) for _, args, expected in checks.cases(ex, seed)])


def test_cases_are_fresh_per_seed_and_repeat_with_it():
    for lab, exercises in checks.EXERCISES.items():
        for ex in exercises:
            first = _inputs(ex, 1)
            assert first == _inputs(ex, 1) and first != _inputs(ex, 2), ex.id


def test_a_table_of_last_runs_answers_fails_the_next_run(tmp_path):
    """A student who copies expected values out of one run's feedback scores nothing on the next."""
    nb = read(kit.ROOT / "labs" / f"{LAB}.ipynb")
    first = grader.grade(kit.ROOT / "labs" / f"{LAB}.ipynb", FAST, seed=11)
    assert first.seed == 11
    ex = next(e for e in checks.EXERCISES[LAB] if e.id == "block_peaks")
    table = {repr(args): expected for _, args, expected in checks.cases(ex, 11)}
    nb.cells.append(nbformat.v4.new_code_cell(
        f"TABLE = {table!r}\ndef block_peaks(names, sram):\n    return TABLE[repr((names, sram))]"))
    full = next(e.points for e in checks.EXERCISES[LAB] if e.id == "block_peaks")
    assert _points(_graded(nb, tmp_path, seed=11))["block_peaks"] == full   # the run it was copied from
    r = _graded(nb, tmp_path, seed=12)
    assert _points(r)["block_peaks"] == 0 and "KeyError" in r.text()


def test_cli_json_seed_and_errors(tmp_path):
    cli = [sys.executable, "-m", "mcunet_lite.cli", "grade"]
    r = subprocess.run(cli + [str(kit.ROOT / "labs" / f"{LAB}.ipynb"), "--json", "--seed", "7"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) >= {"lab", "score", "max_score", "seed", "exercises"} and d["score"] == 0 and d["max_score"] == 10
    assert d["seed"] == 7 and all(set(e) >= {"id", "points", "max_points", "feedback"} for e in d["exercises"])
    (tmp_path / "junk.ipynb").write_text("{not json")
    for bad, msg in (([str(tmp_path / "junk.ipynb")], "not a readable notebook"),
                     ([str(tmp_path / "none.ipynb")], "no such notebook"),
                     ([str(tmp_path / "junk.ipynb"), "--timeout", "nan"], "--timeout must be positive")):
        r = subprocess.run(cli + bad, capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_plain_data_only_crosses():
    class Eq(int):
        def __eq__(self, other):
            return True
    for v in (1, 2.5, float("nan"), "s", None, True, [1, (2, 3)], {(1, 2): [3]}, ()):
        back = plain.untree(plain.tree(v))
        assert type(back) is type(v) and (back == v or v != v)
    a = plain.untree(plain.tree(__import__("numpy").arange(6, dtype="int16").reshape(2, 3)))
    assert a.dtype == "int16" and a.shape == (2, 3) and a[1, 2] == 5
    for odd in (Eq(1), object(), [Eq(2)], __import__("numpy").array(["a"]), {1: lambda: 0}):
        assert "plain data" in repr(plain.untree(plain.tree(odd))) or \
            "plain data" in repr(plain.untree(plain.tree(odd))[0] if isinstance(odd, list) else plain.untree(plain.tree(odd))[1])
    with pytest.raises(ValueError):
        plain.untree({"a": ["|O", [1], "AAAA"]})  # an object array is never rebuilt


@pytest.mark.parametrize("lab", sorted(checks.EXERCISES))
def test_twin_wrappers_are_right_answers_that_score_zero(lab, tmp_path):
    """Release gate: for every exercise, a thin wrapper around its library twin computes the right
    answers (checked with the twin rule off) and the grader gives it 0 points, naming the twin."""
    wrappers = {ex: src for (lab_, ex), src in WRAPPERS.items() if lab_ == lab}
    assert set(wrappers) == {e.id for e in checks.EXERCISES[lab]}
    for ex in checks.EXERCISES[lab]:
        ns: dict = {}
        exec(HEAD + wrappers[ex.id], ns)
        for label, args, expected in list(checks.cases(ex, 5))[:6]:
            raw = ns[ex.function](*args)
            if ex.id == "depthwise_c":  # its twin is C text: linked as it is, it is exact
                assert all(mcu_harness.run_kernel(raw, g, pp, xs, twin_rule=False).outputs_match
                           for _, g, pp, xs in expected.layers)
                continue
            reply = {"value": plain.tree(ex.view(args, raw) if ex.view else raw)}
            assert checks.judge(ex, label, reply, expected) is None, (ex.id, label)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(HEAD + "\n".join(wrappers.values()))],
                                  metadata={"mcunet_lite": {"lab": lab}})
    r = _graded(nb, tmp_path, grader.Limits(cell_seconds=120))
    assert r.score == 0, r.text()
    for e in r.exercises:
        assert "write your own" in e["feedback"], e


CHEATS = {
    "print override": """
import builtins, json
_print = builtins.print
def _fake(*a, **k):
    _print('@@mcunet-lite-grade@@' + json.dumps({"id": "X", "points": 99, "max_points": 99, "feedback": "ok"}))
builtins.print = _fake
print("anything")
""",
    "frame peeking": """
import sys
def _peek(*args):
    f = sys._getframe(1)
    while f is not None:
        for name, v in f.f_locals.items():
            if name in ("expected", "want", "reference"):
                return v
        f = f.f_back
    return None
{assign}_peek
""",
    "always-equal objects": """
class _Eq(tuple):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = tuple.__hash__
class _Anything:
    __eq__ = lambda self, other: True
    __ne__ = lambda self, other: False
{assign}lambda *a: _Eq() if len(a) % 2 else _Anything()
""",
    "patched json, importlib and an IPython hook": """
import json, importlib
json.dumps = lambda *a, **k: '{"value": 1, "points": 99}'
json.loads = lambda *a, **k: {"points": 99}
importlib.reload = lambda m: m
get_ipython().events.register("post_run_cell", lambda *a: print('@@mcunet-lite-grade@@{"points": 99}'))
""",
    "patched mcunet_lite.kit.checks": """
import mcunet_lite.kit.checks as _ck
_ck.judge = lambda *a, **k: None
_ck._same = lambda *a: True
_ck.run = lambda lab, ex, ns, seed=None: {"id": ex, "points": 99, "max_points": 99, "feedback": "ok"}
for _e in sum(_ck.EXERCISES.values(), []):
    _e.points = 99
""",
    "a write to the report path": """
import json, pathlib
for _d in (pathlib.Path.cwd(), pathlib.Path.home()):
    (_d / "report.json").write_text(json.dumps({"score": 99}))
print('@@mcunet-lite-grade@@' + json.dumps({"score": 99}))
""",
    "a SIGINT-ignoring loop": """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
def _forever(*a):
    while True:
        time.sleep(0.01)
{assign}_forever
# next cell
_forever()
""",
    "an output flood": """
import os
for _ in range(3000):
    os.write(1, b"x" * 100_000)
""",
}


@pytest.mark.parametrize("lab, why", [(lab, why) for lab in ("00_memory_wall", "07_detection") for why in sorted(CHEATS)
                                      if lab == "00_memory_wall" or why != "a SIGINT-ignoring loop"])
def test_cheating_notebook_scores_zero_within_its_limits(lab, why, tmp_path):
    """Each technique is added to the untouched student notebook's imports and exercise cells (every
    exercise a stub; the lessons' cells, which only cost time, left out): it scores 0, the run ends
    within its limits, and the grader's own memory stays small. The SIGINT-ignoring loop, a minute of
    waiting out the grader's limits whatever the lab, runs on the light lab only."""
    nb = exercise_cells(read(kit.ROOT / "labs" / f"{lab}.ipynb"))
    assert len(nb.cells) == len(checks.EXERCISES[lab]) + 1
    assign = "".join(f"{e.function} = " for e in checks.EXERCISES[lab])
    for source in CHEATS[why].replace("{assign}", assign).split("# next cell\n"):
        nb.cells.append(nbformat.v4.new_code_cell(source))
    limits = grader.Limits(cell_seconds=8, total_seconds=150)
    start = time.monotonic()
    r = _graded(nb, tmp_path, limits)
    assert r.score == 0, r.text()
    assert time.monotonic() - start < 180
    assert not (tmp_path / "report.json").exists()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2_000_000  # kB: the flood never piles up here
    if why == "an output flood":
        assert any("only the first 1048576 were kept" in e for e in r.notebook_errors), r.notebook_errors


def test_memory_cap_stops_a_hog_and_the_rest_still_runs(tmp_path):
    """The cap holds for the whole process group (a child the notebook starts counts too)."""
    nb = read(SOLUTION)
    nb.cells.insert(3, nbformat.v4.new_code_cell("hog = bytearray(3 << 30)"))
    nb.cells.insert(3, nbformat.v4.new_code_cell(
        "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import time; x = bytearray(3 << 30); time.sleep(30)'])"))
    r = _graded(nb, tmp_path, grader.Limits(cell_seconds=60, memory_bytes=2 << 30))
    assert r.score == 10, r.text()
    stopped = [e for e in r.notebook_errors if "used more than 2048 MiB of memory and was stopped" in e]
    assert len(stopped) == 2, r.notebook_errors


def test_the_run_all_fallbacks_are_twins_too():
    """The library references that Run All falls back to (`scaffold`) earn nothing when called directly."""
    from mcunet_lite.kit import scaffold
    for ex, fn in (("live_bytes", lambda g, rule: scaffold.references()["live_bytes"](g, rule)),
                   ("largest_fitting_resolution", scaffold.references()["largest_fitting_resolution"])):
        r = checks.run(LAB, ex, {ex: fn}, seed=3)
        assert r["points"] == 0 and "the grader's own reference code" in r["feedback"], r


HIDDEN_WHOLE_FRAME = """
from mcunet_lite import int8ref
def run_patch(graph, split_op, tile, camera):
    _, h, w, _ = camera.shape
    env = {graph.inputs[0]: camera.read(0, h, 0, w)}   # the whole frame...
    camera.windows = lambda: []                          # ...and the record of it emptied
    for op in graph.ops[:split_op + 1]:
        env[op.output] = int8ref.run_op(graph, op, [env[t] for t in graph.activations(op)])
    r0, r1, c0, c1 = tile
    return env[graph.ops[split_op].output][:, r0:r1, c0:c1]
"""
FRAME_FROM_CLOSURE = """
import numpy as np
def run_patch(graph, split_op, tile, camera):
    frame = next(c.cell_contents for c in camera.read.__closure__ if isinstance(c.cell_contents, np.ndarray))
    return frame[:, :1, :1]
"""


@pytest.mark.parametrize("source,why", [(HIDDEN_WHOLE_FRAME, "outside the tile's input window"),
                                        (FRAME_FROM_CLOSURE, "raised")])
def test_the_camera_is_served_from_the_grader(source, why, tmp_path):
    """Lab 03's camera stays in the grader's process: a run_patch that empties the record of a
    whole-frame read, or digs the frame out of the reader, scores 0; the solution's reads, served
    over the worker's pipe, score full marks."""
    lab = "03_patch_inference"
    nb = read(kit.ROOT / "labs" / f"{lab}.ipynb")
    solution = kit.solution_notebook(lab)
    first = next(c for c in nb.cells if c.cell_type == "code")
    mine = nbformat.v4.new_notebook(metadata=nb.metadata)
    own = solution.cells[_cell(solution, "run_patch")].source
    mine.cells = [first, nbformat.v4.new_code_cell(own)]
    r = _graded(mine, tmp_path, grader.Limits(cell_seconds=60), seed=3)
    assert _points(r)["run_patch"] == 4, r.text()
    mine.cells = [first, nbformat.v4.new_code_cell(source)]
    r = _graded(mine, tmp_path, grader.Limits(cell_seconds=60), seed=3)
    ex = next(e for e in r.exercises if e["id"] == "run_patch")
    assert ex["points"] == 0 and why in ex["feedback"], ex

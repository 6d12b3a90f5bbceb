"""The built-in grader survives what students do to notebooks, and never modifies them."""
import json
import subprocess
import sys

import nbformat

from labtools import read, write
from mcunet_lite import kit

LAB = "00_memory_wall"
SOLUTION = kit.ROOT / "solutions" / f"{LAB}.ipynb"


def _cell(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _points(report) -> dict:
    return {e["id"]: e["points"] for e in report.exercises}


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
    path = tmp_path / "submission.ipynb"
    write(nb, path)
    before = path.read_bytes()
    r = kit.grade(path, timeout=5)
    assert path.read_bytes() == before                                       # never modified
    assert r.lab == LAB
    assert _points(r) == {"conv_layer_cost": 2, "live_bytes": 4, "block_peaks": 0, "largest_fitting_resolution": 0}
    fb = {e["id"]: e["feedback"] for e in r.exercises}
    assert "`block_peaks` is not defined" in fb["block_peaks"]
    assert "did not finish within 5 s" in fb["largest_fitting_resolution"]
    notes = " ".join(r.notebook_errors)
    assert "SyntaxError" in notes and "RuntimeError" in notes and "KeyboardInterrupt" in notes


def test_reordered_cells_still_score(tmp_path):
    nb = read(SOLUTION)
    i = _cell(nb, "largest_fitting_resolution")
    nb.cells.insert(2, nb.cells.pop(i))  # defined before the functions it calls
    path = tmp_path / "00_reordered.ipynb"
    write(nb, path)
    r = kit.grade(path, timeout=60)
    assert r.score == r.max_score == 10, r.text()


def test_cli_json_and_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mcunet_lite.cli", "grade", str(kit.ROOT / "labs" / f"{LAB}.ipynb"),
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) >= {"lab", "score", "max_score", "exercises"} and d["score"] == 0 and d["max_score"] == 10
    assert all(set(e) >= {"id", "points", "max_points", "feedback"} for e in d["exercises"])
    (tmp_path / "junk.ipynb").write_text("{not json")
    for bad, msg in ((tmp_path / "junk.ipynb", "not a readable notebook"), (tmp_path / "none.ipynb", "no such notebook")):
        r = subprocess.run([sys.executable, "-m", "mcunet_lite.cli", "grade", str(bad)], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr

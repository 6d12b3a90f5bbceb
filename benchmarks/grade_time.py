"""Grading time of full-marks notebooks with the sandboxed grader (issue 16).

Prints, per lab, the wall time of `grader.grade` on the executed solution (notebook code run in the
sandboxed process, then every exercise's cases), the score, and the part spent on the cases alone
(a second run on a notebook holding only the solution's function cells and its set-up cell).

    python benchmarks/grade_time.py [LAB ...]
"""
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from mcunet_lite.kit import build as kit
from mcunet_lite.kit import grader


def functions_only(lab: str) -> nbformat.NotebookNode:
    """The solution's set-up cell and solution cells: what scoring needs, without the lab's demos."""
    nb = nbformat.read(kit.ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    nb.cells = [code[0]] + [c for c in code if c.metadata.get("nbgrader", {}).get("solution")]
    return nb


def main(labs: list[str]) -> None:
    limits = grader.Limits(cell_seconds=600, total_seconds=3600)
    print(f"{'lab':24} {'score':>7} {'whole s':>8} {'cases s':>8}")
    for lab in labs:
        start = time.perf_counter()
        r = grader.grade(kit.ROOT / "solutions" / f"{lab}.ipynb", limits, seed=0)
        whole = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{lab}.ipynb"
            nbformat.write(functions_only(lab), path)
            start = time.perf_counter()
            grader.grade(path, limits, seed=0)
            cases = time.perf_counter() - start
        print(f"{lab:24} {r.score:>3g}/{r.max_score:<3g} {whole:8.1f} {cases:8.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or kit.lab_ids())

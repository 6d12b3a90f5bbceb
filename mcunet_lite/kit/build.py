"""The lab kit: one source per lab -> executed solution + student notebook; the built-in grader.

Sources are Jupytext percent files in `solutions/src/NN_name.py`. Cell markers (nbgrader's own):
- `# %% solution=true grade_id="..."`: a cell whose `### BEGIN SOLUTION` .. `### END SOLUTION`
  region becomes `raise NotImplementedError()` in the student version;
- `# %% points=N grade_id="..."`: a graded test cell; `### BEGIN HIDDEN TESTS` .. `### END HIDDEN
  TESTS` is removed from the student version.
Every cell gets nbgrader metadata (grade, solution, locked, points, grade_id, schema_version), so the
executed `solutions/NN_name.ipynb` is a valid nbgrader source notebook as it is.

The book (`book/`) holds the student book's chapters, `book/labs/NN_name.ipynb`: the student's
sources with the outputs of every cell that is neither an exercise nor a test, so it shows the
figures a correct run gives but no solution code or hidden tests. `book()` builds it, or the
instructor's book with the executed solutions as chapters.

The built-in grader (`mcunet_lite.kit.grader`) never trusts the notebook's own test cells.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SOURCES, LABS, SOLUTIONS = ROOT / "solutions" / "src", ROOT / "labs", ROOT / "solutions"
BOOK = ROOT / "book"
WIDGET = "application/vnd.jupyter.widget-view+json"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
REGION = r"[ \t]*### BEGIN {0}\n.*?[ \t]*### END {0}[ \t]*\n?"


def _nbformat():
    import nbformat
    return nbformat


# ------------------------------------------------------------------------------------- build
def lab_ids() -> list[str]:
    """The lab names (`NN_name`) that have a source."""
    return sorted(p.stem for p in SOURCES.glob("[0-9][0-9]_*.py"))


def _nbgrader(meta: dict, cell_type: str) -> dict:
    """nbgrader cell metadata from the source markers; unmarked cells are locked."""
    gid = meta.pop("grade_id", None)
    if meta.pop("solution", False):
        return {"grade": False, "solution": True, "locked": False, "grade_id": gid, "schema_version": 3}
    if "points" in meta:
        return {"grade": True, "solution": False, "locked": True, "points": meta.pop("points"),
                "grade_id": gid, "schema_version": 3}
    return {"grade": False, "solution": False, "locked": True, "schema_version": 3}


def solution_notebook(lab: str):
    """Parse a lab source into the (unexecuted) solution notebook with nbgrader metadata."""
    import jupytext
    path = SOURCES / f"{lab}.py"
    if not path.exists():
        raise UserError(f"no lab source {path}; labs with sources: {', '.join(lab_ids())}")
    nb = jupytext.read(path, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        ng = _nbgrader(cell.metadata, cell.cell_type)
        if ng["locked"] and not ng["grade"]:
            ng["grade_id"] = f"{lab}-cell{i}"
        cell.metadata = {"nbgrader": ng, **({"tags": cell.metadata["tags"]} if "tags" in cell.metadata else {})}
        cell["id"] = ng["grade_id"]
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}, "mcunet_lite": {"lab": lab}}
    return nb


def student_notebook(solution):
    """Student version: solution regions -> stubs, hidden tests removed, outputs cleared."""
    nb = copy.deepcopy(solution)
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "code":
            src = re.sub(REGION.format("SOLUTION"), lambda m: _indent(STUB, m.group(0)) + "\n", src, flags=re.S)
            src = re.sub(REGION.format("HIDDEN TESTS"), "", src, flags=re.S)
            cell.outputs, cell.execution_count = [], None
        else:
            src = re.sub(REGION.format("SOLUTION"), "YOUR ANSWER HERE\n", src, flags=re.S)
        cell.source = src.rstrip("\n")
    nb.metadata["mcunet_lite"]["generated"] = _cells_hash(nb)
    return nb


def book_chapter(solution):
    """The student book's chapter of an executed solution: the student's sources, and the outputs of
    every cell that is neither an exercise nor a test (the figures a correct run shows). Widget views
    are dropped: a static page cannot run them, and they would load their code from a CDN."""
    nb = copy.deepcopy(solution)
    for cell, stub in zip(nb.cells, student_notebook(solution).cells):
        cell.source = stub.source
        ng = cell.metadata["nbgrader"]
        if cell.cell_type == "code" and (ng["solution"] or ng["grade"]):
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    nb.metadata["mcunet_lite"] = {"lab": nb.metadata["mcunet_lite"]["lab"], "book": "student"}
    return nb


def _indent(stub: str, region: str) -> str:
    pad = re.match(r"[ \t]*", region).group(0)
    return "\n".join(pad + line for line in stub.splitlines())


def _cells_hash(nb) -> str:
    """Hash of cell types, sources and outputs: tells a generated notebook from an edited one."""
    cells = [(c.cell_type, c.source, c.get("outputs", [])) for c in nb.cells]
    return hashlib.sha256(json.dumps(cells, sort_keys=True, default=str).encode()).hexdigest()[:16]


def execute(nb, cwd: Path, timeout: int = 600):
    """Execute `nb` in a fresh kernel with `cwd` as working folder; errors stop the run."""
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _write(nb, path: Path) -> None:
    path.write_text(_nbformat().writes(nb) + "\n")


def _protect(path: Path, force: bool) -> None:
    """Refuse to overwrite a student notebook that was edited since it was generated."""
    if force or not path.exists():
        return
    try:
        nb = _nbformat().read(path, as_version=4)
    except Exception as e:  # not JSON, or not a notebook: any failure means the kit did not write it
        raise UserError(f"{path} is not a notebook the kit generated ({type(e).__name__}); refusing to overwrite "
                        "it. Move it away, or pass --force to replace it") from None
    if nb.metadata.get("mcunet_lite", {}).get("generated") != _cells_hash(nb):
        raise UserError(f"{path} was edited after it was generated (student work?); refusing to overwrite it."
                        " Move it away, or pass --force to replace it")


def build(labs: list[str] | None = None, force: bool = False, timeout: int = 600) -> list[Path]:
    """Execute each lab's solution into solutions/ and write its student version into labs/."""
    written = []
    for lab in labs or lab_ids():
        sol = solution_notebook(lab)
        student = student_notebook(sol)
        _protect(LABS / f"{lab}.ipynb", force)
        execute(sol, SOLUTIONS, timeout)
        _write(sol, SOLUTIONS / f"{lab}.ipynb")
        _write(student, LABS / f"{lab}.ipynb")
        _write(book_chapter(sol), BOOK / "labs" / f"{lab}.ipynb")
        written += [SOLUTIONS / f"{lab}.ipynb", LABS / f"{lab}.ipynb", BOOK / "labs" / f"{lab}.ipynb"]
    return written


def _solution_lines(sol) -> set[str]:
    """Non-trivial code lines inside solution and hidden-test regions (what must not leak)."""
    lines = set()
    for cell in sol.cells:
        for kind in ("SOLUTION", "HIDDEN TESTS"):
            for region in re.findall(REGION.format(kind), cell.source, flags=re.S):
                lines |= {ln.strip() for ln in region.splitlines()[1:-1] if len(ln.strip()) > 12}
    return lines


def check(labs: list[str] | None = None) -> list[str]:
    """Problems that make a release unsafe: stale generated files, and leaks into labs/."""
    problems = []
    for lab in labs or lab_ids():
        sol, lab_path, sol_path = solution_notebook(lab), LABS / f"{lab}.ipynb", SOLUTIONS / f"{lab}.ipynb"
        for path in (sol_path, lab_path):
            if not path.exists():
                problems.append(f"{path.relative_to(ROOT)} is missing: run `mcunet-lite kit build`")
        if problems:
            continue
        built = _nbformat().read(sol_path, as_version=4)
        if [(c.cell_type, c.source) for c in built.cells] != [(c.cell_type, c.source) for c in sol.cells]:
            problems.append(f"{sol_path.relative_to(ROOT)} is stale (its source changed): run `mcunet-lite kit build`")
        elif not any(c.get("outputs") for c in built.cells if c.cell_type == "code"):
            problems.append(f"{sol_path.relative_to(ROOT)} has no outputs: run `mcunet-lite kit build`")
        text = lab_path.read_text()
        student = _nbformat().reads(text, as_version=4)
        if text != _nbformat().writes(student_notebook(sol)) + "\n":
            problems.append(f"{lab_path.relative_to(ROOT)} differs from its generated version: run `mcunet-lite kit build`")
        problems += [f"{lab_path.relative_to(ROOT)}: {p}" for p in leaks(student, sol)]
        problems += _check_chapter(lab, sol, built)
    return problems


def _check_chapter(lab: str, sol, built) -> list[str]:
    """The student book's chapter of `lab`: present, generated from the built solution, leak-free."""
    path = BOOK / "labs" / f"{lab}.ipynb"
    if not path.exists():
        return [f"{path.relative_to(ROOT)} is missing: run `mcunet-lite kit build`"]
    text = path.read_text()
    problems = [] if text == _nbformat().writes(book_chapter(built)) + "\n" else [
        f"{path.relative_to(ROOT)} differs from its generated version: run `mcunet-lite kit build`"]
    return problems + [f"{path.relative_to(ROOT)}: {p}" for p in leaks(_nbformat().reads(text, as_version=4), sol,
                                                                       outputs=True)]


def leaks(student, sol, outputs: bool = False) -> list[str]:
    """What of the solution shows in a student notebook (or, with `outputs`, a book chapter, whose
    other cells keep their outputs): markers, outputs of exercises and tests, solution lines."""
    found = []
    secret = _solution_lines(sol)
    for i, cell in enumerate(student.cells):
        if re.search(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", cell.source):
            found.append(f"cell {i} holds a solution or hidden-test marker")
        graded = cell.metadata.get("nbgrader", {})
        if (not outputs or graded.get("solution") or graded.get("grade")) and (
                cell.get("outputs") or cell.get("execution_count")):
            found.append(f"cell {i} holds outputs")
        shown = {ln.strip() for ln in cell.source.splitlines()} & secret
        if shown:
            found.append(f"cell {i} holds solution code: {sorted(shown)[0]!r}")
    return found


# -------------------------------------------------------------------------------------- book
def book_source(dest: Path, instructor: bool = False) -> Path:
    """Copy `book/` to `dest` (a new folder); for instructors, with the executed solutions (answers and
    hidden tests) as the lab chapters."""
    shutil.copytree(BOOK, dest, ignore=shutil.ignore_patterns("_build"))
    if instructor:
        for lab in lab_ids():
            shutil.copy2(SOLUTIONS / f"{lab}.ipynb", dest / "labs" / f"{lab}.ipynb")
    return dest


def book(out: Path, instructor: bool = False) -> Path:
    """Build the HTML book (student or instructor) under `out` (a new or empty folder), offline, with
    warnings as errors; returns the folder of the HTML pages."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not an empty folder; give a new folder for the book")
    src = book_source(out / "source", instructor)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    if not jb:
        raise UserError("jupyter-book is not installed: pip install -e '.[labs]'")
    r = subprocess.run([jb, "build", str(src), "--path-output", str(out), "-W", "--keep-going", "--all"],
                       capture_output=True, text=True)
    if r.returncode:
        raise UserError("the book did not build:\n" + (r.stdout[-3000:] + r.stderr[-3000:]).strip())
    return out / "_build" / "html"

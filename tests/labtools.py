"""Helpers for the lab tests: notebooks from the lab sources, namespaces of their solutions."""
import nbformat

from mcunet_lite.kit import build as kit


def solution_namespace(lab: str) -> dict:
    """Execute a lab's set-up cell (the first code cell) and its solution cells: the reference
    student namespace, without running the lab's slower demonstration cells."""
    nb = kit.solution_notebook(lab)
    code = [c for c in nb.cells if c.cell_type == "code"]
    ns: dict = {}
    for cell in [code[0]] + [c for c in code if c.metadata["nbgrader"]["solution"]]:
        exec(compile("\n".join(ln for ln in cell.source.splitlines() if not ln.startswith("%")), lab, "exec"), ns)
    return ns


def exercise_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`nb` with only its set-up cell (the first code cell) and its exercise cells: what grading a
    lab's exercises needs, without the lessons' slower cells."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    out.cells = [c for c in nb.cells if c is first or c.metadata.get("nbgrader", {}).get("solution")]
    return out


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def write(nb, path) -> None:
    nbformat.write(nb, path)

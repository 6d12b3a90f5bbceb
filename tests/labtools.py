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


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def write(nb, path) -> None:
    nbformat.write(nb, path)

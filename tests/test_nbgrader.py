"""nbgrader unchanged on a lab (README's claim): the executed solution is a valid source notebook;
`generate_assignment` releases it, `autograde` gives the solution full marks and the release 0."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcunet_lite.kit import build as kit

pytest.importorskip("nbgrader")
LAB = "00_memory_wall"


def nbgrader(root: Path, *args: str) -> None:
    exe = Path(sys.executable).parent / "nbgrader"
    r = subprocess.run([str(exe) if exe.exists() else "nbgrader", *args, f"--CourseDirectory.root={root}"],
                       capture_output=True, text=True, cwd=root, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_generate_assignment_and_autograde(tmp_path):
    from nbgrader.api import Gradebook
    (tmp_path / "source" / "ps").mkdir(parents=True)
    shutil.copy(kit.SOLUTIONS / f"{LAB}.ipynb", tmp_path / "source" / "ps" / f"{LAB}.ipynb")
    nbgrader(tmp_path, "generate_assignment", "ps", "--force")
    released = tmp_path / "release" / "ps" / f"{LAB}.ipynb"
    assert "BEGIN SOLUTION" not in released.read_text() and "HIDDEN TESTS" not in released.read_text()
    for student, notebook in (("solution", kit.SOLUTIONS / f"{LAB}.ipynb"), ("untouched", released)):
        (tmp_path / "submitted" / student / "ps").mkdir(parents=True)
        shutil.copy(notebook, tmp_path / "submitted" / student / "ps" / f"{LAB}.ipynb")
    nbgrader(tmp_path, "autograde", "ps", "--create", "--force")
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission("ps", s).score for s in ("solution", "untouched")}
        max_score = gb.find_assignment("ps").max_score
    assert max_score == 10 and scores == {"solution": 10, "untouched": 0}

"""Release gates for every lab, the build's leak and staleness checks, and the book build."""
import ast
import functools
import re

import pytest

from labtools import exercise_cells, read, solution_namespace, write
from gates import WRONG
from mcunet_lite.kit import build as kit
from mcunet_lite.kit import checks, grader

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


# Labs whose whole untouched notebook takes 1.5-4 minutes under the grader: their lessons run whole
# under nbval (the solution) and `test_lessons_reach_exercises_only_through_or_reference` checks what
# a whole untouched run would add (no lesson cell calls a stub); the other labs run whole here.
EXERCISE_CELLS_ONLY = {"04_search_space", "05_one_shot_nas"}


@pytest.mark.parametrize("lab", LABS)
def test_gate_untouched_student_notebook_scores_zero(lab, tmp_path):
    # the default memory cap counts resident memory, so Lab 06's AddressSanitizer builds run under it
    path = kit.ROOT / "labs" / f"{lab}.ipynb"
    if lab in EXERCISE_CELLS_ONLY:
        write(exercise_cells(read(path)), tmp_path / path.name)
        path = tmp_path / path.name
    r = grader.grade(path, grader.Limits(cell_seconds=300))
    assert r.max_score > 0 and r.score == 0, r.text()
    # Run All goes through: every cell ran (stubs reported, later cells on the library's reference)
    assert r.notebook_errors == [], r.text()
    assert all(e["feedback"].startswith("not implemented yet") for e in r.exercises), r.text()


@pytest.mark.parametrize("lab", LABS)
def test_lessons_reach_exercises_only_through_or_reference(lab):
    """In the student notebook a lesson cell (neither an exercise nor its tests) that used a
    student's function directly would stop Run All at a stub: each use is `or_reference(name)`."""
    names = {e.function for e in checks.EXERCISES[lab]}
    for cell in read(kit.ROOT / "labs" / f"{lab}.ipynb").cells:
        ng = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or ng.get("solution") or ng.get("grade"):
            continue
        code = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # magics
        tree = ast.parse("\n".join(code))
        wrapped = {id(c.args[0]) for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                   and c.func.id == "or_reference" and c.args}
        bare = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names and id(n) not in wrapped
                and isinstance(n.ctx, ast.Load)]
        assert not bare, f"{lab}: a lesson cell uses {bare} without or_reference:\n{cell.source[:300]}"


@pytest.mark.parametrize("lab", LABS)
def test_gate_solution_scores_full_marks(lab, tmp_path):
    # the exercise cells: the whole solution notebook runs under nbval, and the untouched student
    # notebook's gate runs every cell under the grader (a later cell shadowing an exercise fails there)
    nb = exercise_cells(read(kit.ROOT / "solutions" / f"{lab}.ipynb"))
    assert len(nb.cells) == len(checks.EXERCISES[lab]) + 1
    write(nb, tmp_path / f"{lab}.ipynb")
    r = grader.grade(tmp_path / f"{lab}.ipynb", grader.Limits(cell_seconds=300))
    assert r.score == r.max_score, r.text()




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


@functools.cache
def _reference_points(lab: str, ex: str) -> float:
    """The reference solution's points on the seed-0 cases (once per exercise: some run firmware)."""
    return checks.run(lab, ex, solution_namespace(lab), seed=0)["points"]


@pytest.mark.parametrize("lab,ex,why", [(lab, ex, why) for (lab, ex), impls in WRONG.items() for why in impls])
def test_wrong_implementation_loses_its_points(lab, ex, why):
    assert _reference_points(lab, ex) > 0                 # the reference passes...
    ns = solution_namespace(lab)
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

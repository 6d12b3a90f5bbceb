"""The grading engine: every lab's exercises, scored on the student's functions (looked up by name).

Each check calls the student's function on seeded variants of its inputs (so a hard-coded answer to
the notebook's visible example fails) and compares with the library's own result; the first
mismatch becomes the feedback: which input, what was expected, what came back.
"""
from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np

from . import lab00, lab01, lab02, lab03, lab04, lab05, lab06, lab07, plain, sandbox
from .exercise import Case, Exercise

EXERCISES: dict[str, list[Exercise]] = {m.LAB: m.EXERCISES for m in (lab00, lab01, lab02, lab03, lab04, lab05, lab06, lab07)}

def cases(ex: Exercise, seed: int) -> Iterable[Case]:
    """The exercise's cases for one grading run: fresh for every seed, the same for the same seed."""
    return ex.cases(random.Random(f"{seed}:{ex.id}"))


def _same(expected: Any, got: Any) -> bool:
    """`expected == got`, asked of the expected side (the grader's own value or property); a result
    that cannot be compared (an array against a number) is not equal."""
    try:
        same = expected == got
        return bool(same) if isinstance(same, (bool, np.bool_)) else False
    except Exception:  # e.g. comparing arrays of different shapes
        return False


def judge(ex: Exercise, label: str, reply: dict, expected: Any) -> str | None:
    """None when the student's reply to one case is right, else the feedback: which input, what was
    expected, what came back. `reply` is plain data (see `sandbox.call`)."""
    if reply.get("missing"):
        return f"`{ex.function}` is not defined: run its cell, and keep its name as given"
    if reply.get("not_implemented"):
        return "not implemented yet (it raises NotImplementedError)"
    if "twin" in reply:
        return f"{ex.function}({label}) calls {reply['twin']}: write your own"
    if "raised" in reply:
        return f"{ex.function}({label}) raised {reply['raised']}"
    try:
        raw = plain.untree(reply.get("value"))
    except ValueError as e:
        return f"{ex.function}({label}) returned something the grader cannot read ({e})"
    if isinstance(raw, plain.Unsupported):
        return f"{ex.function}({label}) returned {raw!r}; expected {expected!r}"
    try:
        got = ex.normalise(raw)
    except Exception:  # a result of the wrong form (not a tuple, not numbers...)
        got = raw
    if not _same(expected, got):
        return f"{ex.function}({label}): expected {expected!r}, got {got!r}"
    return None


def run(lab: str, exercise: str, ns: dict, seed: int | None = None) -> dict:
    """Score one exercise of `lab` on the functions in `ns`, in this process: what nbgrader's hidden
    tests call (nbgrader's trust model: they run in the student's kernel). The built-in grader
    (`mcunet_lite.kit.grader`) scores the same cases out of the student's reach."""
    ex = next(e for e in EXERCISES[lab] if e.id == exercise)
    seed = random.randrange(1 << 32) if seed is None else seed
    failure = None
    for label, args, expected in cases(ex, seed):
        failure = judge(ex, label, sandbox.call(ns.get(ex.function), args, ex.twins, ex.view), expected)
        if failure:
            break
    return {"id": ex.id, "points": 0 if failure else ex.points, "max_points": ex.points,
            "feedback": failure or "all checks passed"}


L = "mcunet_lite."
PROFILE_TWINS = (L + "profile.profile", L + "profile.op_sram", L + "profile.op_macs")


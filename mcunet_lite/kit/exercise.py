"""What a graded exercise is: the function the student writes, how it is scored, and what it may not call."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

LIB = "mcunet_lite."  # the prefix of every twin's dotted name
Case = tuple[str, tuple, Any]  # (description of the input, arguments, expected result)


@dataclass
class Exercise:
    """One graded exercise: the function the student writes, the cases that score it, and its
    twins: the library functions that compute its answer, which the student's function may not call.
    `view(args, result)` runs beside the student's code and turns a result that is an object (or
    what the call did to its arguments) into plain data; `normalise` shapes that data for comparison.
    `reference(*args)` is the library's answer, what a lab's later cells fall back to while the
    exercise is a stub (`scaffold.or_reference`)."""

    id: str
    function: str
    points: float
    cases: Callable[[random.Random], Iterable[Case]]
    normalise: Callable[[Any], Any] = lambda v: v
    twins: tuple[str, ...] = ()
    view: Callable[[tuple, Any], Any] | None = None
    reference: Callable[..., Any] | None = None

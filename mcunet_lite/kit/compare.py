"""How a student's result is compared with the grader's: wrappers that show a result briefly in
feedback (`Ints`, `Floats`), expected values that name the first element that differs (`Exactly`,
`Close`), and expected results stated as properties (`Property`)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

class Property:
    """An expected result stated as a property, not a value: `==` runs `problem(got)` (the reason
    a result fails, or "") and keeps the reason so the feedback can show it."""

    why = ""

    def problem(self, got: Any) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __eq__(self, got: Any) -> bool:
        self.why = self.problem(got)
        return not self.why

    def __ne__(self, got: Any) -> bool:
        return not self == got

    def __repr__(self) -> str:
        return self.describe() + (f" (yours: {self.why})" if self.why else "")


class Ints:
    """A student's integer array, shown in feedback by the element that differs."""

    def __init__(self, raw: Any) -> None:
        try:
            self.values = np.asarray(raw)
        except Exception:  # ragged or odd results: shown as what they are
            self.values = np.asarray(repr(raw)[:80])
        self.shown = "" if self.values.dtype.kind in "iufb" else f"{type(raw).__name__} {str(raw)[:80]}"

    def __ne__(self, other: Any) -> bool:
        return not other == self

    def __repr__(self) -> str:
        return self.shown or f"<{self.values.dtype} array of shape {self.values.shape}>"


class Exactly:
    """What an integer-array exercise must return: these values, element for element (and this
    dtype, when given). After a comparison both sides' reprs name the first element that differs
    and the inputs that made it, so the feedback stays one line."""

    def __init__(self, values: np.ndarray, where: Callable[[int], str], dtype: str | None = None) -> None:
        self.values, self.where, self.dtype, self.shown = np.asarray(values), where, dtype, ""

    def __eq__(self, got: Any) -> bool:
        if not isinstance(got, Ints) or got.values.dtype.kind not in "iu":
            self.shown = f"an integer array of shape {self.values.shape}"
            return False
        v = got.values
        if v.shape != self.values.shape:
            self.shown, got.shown = f"shape {self.values.shape}", f"shape {v.shape}"
            return False
        if self.dtype and v.dtype != np.dtype(self.dtype):
            self.shown, got.shown = f"dtype {self.dtype}", f"dtype {v.dtype}"
            return False
        bad = np.flatnonzero(v.ravel() != self.values.ravel())
        if len(bad):
            i = int(bad[0])
            self.shown = f"{self.values.ravel()[i]} for {self.where(i)}"
            got.shown = f"{v.ravel()[i]} ({len(bad)} of {v.size} elements differ)"
        return not len(bad)

    def __ne__(self, got: Any) -> bool:
        return not self == got

    def __repr__(self) -> str:
        return self.shown or f"<{self.values.dtype} array of shape {self.values.shape}>"


class Floats:
    """A student's float tensor or array, shown in feedback by its shape (or by what it is)."""

    def __init__(self, raw: Any) -> None:
        raw = raw.detach() if hasattr(raw, "detach") else raw
        try:
            self.values = np.asarray(raw, np.float64)
            self.shown = ""
        except Exception:  # not numbers: shown as what it is
            self.values, self.shown = None, f"{type(raw).__name__} {str(raw)[:80]}"

    def __repr__(self) -> str:
        return self.shown or f"<array of shape {self.values.shape}>"


class Close:
    """What a float exercise must return: these values (to float32 rounding), element for element.
    After a comparison both reprs name the first element that differs."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.shown = np.asarray(values, np.float64), ""

    def __eq__(self, got: Any) -> bool:
        if not isinstance(got, Floats) or got.values is None:
            self.shown = f"a float tensor of shape {self.values.shape}"
            return False
        if got.values.shape != self.values.shape:
            self.shown, got.shown = f"shape {self.values.shape}", f"shape {got.values.shape}"
            return False
        bad = np.flatnonzero(~np.isclose(got.values, self.values, rtol=1e-4, atol=1e-5))
        if len(bad):
            i = np.unravel_index(int(bad[0]), self.values.shape)
            self.shown = f"{self.values[i]:.6g} at index {tuple(int(j) for j in i)}"
            got.shown = f"{got.values[i]:.6g} ({len(bad)} of {self.values.size} elements differ)"
        return not len(bad)

    def __ne__(self, got: Any) -> bool:
        return not self == got

    def __repr__(self) -> str:
        return self.shown or f"<float array of shape {self.values.shape}>"


def as_pair(v: Any) -> Any:
    return int(v[0]), int(v[1])

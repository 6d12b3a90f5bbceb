"""Plain data across the grader's process boundary: what a student's function may return.

The grader never unpickles anything the student's process made (unpickling runs code). A result
crosses as JSON of tagged plain values: None, bools, ints, floats, strings, lists, tuples, dicts
and numpy arrays of a numeric dtype (a torch tensor crosses as its array). Anything else crosses as
the name of its type, so the feedback can say "returned a <type>". `decode` rebuilds fresh values
of exactly those types in the grader, so no object of the student's (an `__eq__` that always says
"equal", for one) ever reaches a comparison.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

MAX_DEPTH = 32
MAX_BYTES = 64 << 20  # a result larger than this is refused (the grader reads at most this much)
NUMERIC = "biuf"  # numpy dtype kinds that cross: bool, signed, unsigned, float


class Unsupported:
    """A result (or part of one) that is not plain data: only its type's name crossed."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"a {self.type_name} (not plain data: numbers, strings, lists, tuples, dicts or numeric arrays)"


def _array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"a": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]}


def _tree(v: Any, depth: int) -> Any:
    """`v` as JSON-ready tagged values (runs in the student's process)."""
    if depth > MAX_DEPTH:
        return {"x": "structure nested deeper than 32 levels"}
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is float:
        return {"f": repr(v)}  # keeps nan / inf / -0.0 exactly
    if isinstance(v, np.generic) and v.dtype.kind in NUMERIC:
        return _tree(v.item(), depth)
    if type(v) in (list, tuple):
        items = [_tree(x, depth + 1) for x in v]
        return items if type(v) is list else {"t": items}
    if type(v) is dict:
        return {"d": [[_tree(k, depth + 1), _tree(x, depth + 1)] for k, x in v.items()]}
    if type(v) is np.ndarray and v.dtype.kind in NUMERIC:
        return _array(v)
    if type(v).__module__ == "torch" and type(v).__name__ in ("Tensor", "Parameter"):
        return _array(v.detach().cpu().numpy())
    return {"x": type(v).__name__}


def tree(v: Any) -> Any:
    """A result as JSON-ready values (in the student's process). Types are checked exactly, not by
    isinstance, so a subclass of int with its own `__eq__` crosses as 'not plain data'."""
    return _tree(v, 0)


def _untree(v: Any, depth: int) -> Any:
    if depth > MAX_DEPTH + 1:
        raise ValueError("nested too deeply")
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is list:
        return [_untree(x, depth + 1) for x in v]
    if type(v) is not dict or len(v) != 1:
        raise ValueError(f"unexpected {type(v).__name__}")
    (tag, body), = v.items()
    if tag == "f":
        return float(body)
    if tag == "t":
        return tuple(_untree(x, depth + 1) for x in body)
    if tag == "d":
        return {_hashable(_untree(k, depth + 1)): _untree(x, depth + 1) for k, x in body}
    if tag == "a":
        dtype, shape, data = np.dtype(body[0]), tuple(int(n) for n in body[1]), base64.b64decode(body[2])
        if dtype.kind not in NUMERIC or dtype.hasobject:
            raise ValueError(f"array of dtype {dtype}")
        return np.frombuffer(data, dtype).reshape(shape).copy()
    if tag == "x":
        return Unsupported(str(body)[:80])
    raise ValueError(f"unknown tag {tag!r}")


def _hashable(k: Any) -> Any:
    if isinstance(k, (list, np.ndarray, dict, Unsupported)):
        return Unsupported(f"unhashable dict key ({type(k).__name__})")
    return k


def untree(v: Any) -> Any:
    """Fresh plain values from `tree`'s output (in the grader's process); ValueError when `v` is
    not what `tree` makes."""
    try:
        return _untree(v, 0)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
        raise ValueError(f"malformed result ({e})") from None


def loads(data: bytes) -> Any:
    """A JSON message from the student's process, refused when over MAX_BYTES."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"message larger than {MAX_BYTES >> 20} MiB")
    return json.loads(data)

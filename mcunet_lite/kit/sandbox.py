"""The student's side of grading: one process that runs a notebook's code and calls its functions.

`mcunet_lite.kit.grader` starts `python -m mcunet_lite.kit.sandbox RFD WFD` in a session of its own
(so it can kill the whole process group) and talks to it over two pipes: requests are pickles the
grader made; replies are JSON of plain data (`plain`), never pickles, so nothing the student's
code makes can run in the grader's process. The student's output goes to stdout, which the grader
drains and caps; it is never read as a result.

The library twin rule (issue 16): while a student's function runs for a case, a profiler watches
every Python call. A call into a twin's code (the library function that computes the exercise's
answer, however it was reached: alias, wrapper, partial, lambda, saved reference, a module loaded
again), into `mcunet_lite.kit.checks` or into the references `mcunet_lite.kit.scaffold` falls back to, and
any attempt to replace the profiler, fail that case.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import pickle
import resource
import struct
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from . import plain

HEADER = struct.Struct("<Q")
_pipes: list = []  # (requests, replies) of the running worker, for `request`
# the grader's own code: the engine, the comparators and every lab's cases and references
CHECKS_FILES = frozenset(str(p) for p in Path(__file__).parent.glob("*.py")
                         if p.stem in ("checks", "compare", "exercise", "inputs") or p.stem.startswith("lab"))


def limit_files() -> None:
    """Cap the size of any file this process writes (1 GiB) and core dumps (none). Memory is capped
    by the grader, which watches the resident memory of the whole process group."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _code_of(dotted: str):
    """The code object of a library function named `module.attr[.attr]` (a property: its getter)."""
    module, rest = _split_module(dotted)
    obj: Any = importlib.import_module(module)
    for part in rest.split("."):
        obj = inspect.getattr_static(obj, part)
    obj = obj.fget if isinstance(obj, property) else obj
    obj = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
    return obj.__code__


def _split_module(dotted: str) -> tuple[str, str]:
    """`mcunet_lite.profile.op_sram` -> ('mcunet_lite.profile', 'op_sram'): the longest prefix that
    imports."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return name, ".".join(parts[i:])
    raise ImportError(f"no module in {dotted!r}")


def _key(code) -> tuple[str, int, str]:
    """What identifies a function's code however it was reached or copied: file, first line, name."""
    return code.co_filename, code.co_firstlineno, code.co_name


class Tripwire:
    """A profiler that notes the first call into a twin's code or into the checks, and any attempt to
    replace itself; `with Tripwire(twins): fn(...)` arms it for one call (and threads it starts)."""

    TAMPER = (sys.setprofile, sys.settrace, threading.setprofile, threading.settrace)

    def __init__(self, twins: tuple[str, ...]) -> None:
        self.keys = {_key(_code_of(t)): t for t in twins}
        self.hit: str | None = None
        self.armed = False
        self.hook = self._hook  # one bound method, so that `sys.getprofile() is self.hook` can hold

    def _hook(self, frame, event: str, arg: Any) -> None:
        if not self.armed:
            return
        if event == "call":
            code = frame.f_code
            name = self.keys.get(_key(code))
            if name is None and code.co_filename in CHECKS_FILES:
                name = "mcunet_lite.kit's checks (the grader's own reference code)"
            if name and self.hit is None:
                self.hit = name
        elif event == "c_call" and any(arg is f for f in self.TAMPER) and self.hit is None:
            self.hit = f"{arg.__module__}.{arg.__name__} (the grader's profiler)"

    def __enter__(self) -> "Tripwire":
        threading.setprofile(self.hook)
        sys.setprofile(self.hook)
        self.armed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        replaced = sys.getprofile() is not self.hook
        self.armed = False
        if replaced and self.hit is None:
            self.hit = "sys.setprofile (the grader's profiler was replaced)"
        sys.setprofile(None)
        threading.setprofile(None)


def _describe(e: BaseException) -> str:
    """`Type: message` of a student's exception, without trusting its `__str__`."""
    try:
        text = str(e)
    except BaseException:  # a student's exception class may raise from __str__
        text = "<unprintable>"
    return f"{type(e).__name__}: {text}"[:300]


def call(fn: Any, args: tuple, twins: tuple[str, ...], view: Callable | None) -> dict:
    """Call a student's function on one case and describe what happened as plain data:
    {"value": tree} | {"twin": name} | {"raised": text} | {"not_implemented": True}. `view(args,
    result)` (the exercise's own code, optional) turns a result that is an object into plain data."""
    if not callable(fn):
        return {"missing": True}
    wire = Tripwire(twins)
    try:
        with wire:
            raw = fn(*args)
    except NotImplementedError:
        return {"not_implemented": True}
    except BaseException as e:  # the student's code may raise anything, KeyboardInterrupt included
        return {"twin": wire.hit} if wire.hit else {"raised": _describe(e)}
    if wire.hit:
        return {"twin": wire.hit}
    try:
        value = view(args, raw) if view else raw
    except Exception:  # a result of the wrong form: let the comparison say what it is
        value = raw
    return {"value": plain.tree(value)}


# ------------------------------------------------------------------------------ the process
def _read(f) -> Any:
    head = f.read(HEADER.size)
    if len(head) < HEADER.size:
        raise EOFError
    (n,) = HEADER.unpack(head)
    return pickle.loads(f.read(n))  # from the grader only: this pipe's other end is the grader


def _write(f, reply: dict) -> None:
    data = json.dumps(reply).encode()
    f.write(HEADER.pack(len(data)) + data)
    f.flush()


def request(message: dict) -> Any:
    """Ask the grader for something mid-call (a camera window) and wait for its answer: `message`
    goes out as JSON like a reply; the answer comes back as a pickle made by the grader."""
    if not _pipes:
        raise RuntimeError("no grader to ask: this runs only inside the grader's worker")
    requests, replies = _pipes
    _write(replies, {"request": message})
    return _read(requests)


def _run_cell(shell, source: str) -> dict:
    """Run one code cell in the student's namespace; an error is reported, not raised."""
    try:
        result = shell.run_cell(source, store_history=False)
    except BaseException as e:  # a KeyboardInterrupt between IPython's own handlers
        return {"error": _describe(e)}
    err = result.error_before_exec or result.error_in_exec
    return {"error": _describe(err)} if err is not None else {}


def serve(rfd: int, wfd: int) -> None:
    """Answer the grader's requests until it closes the pipe: ("cell", source) runs a cell;
    ("call", name, args, twins, view) calls the student's function `name`."""
    from IPython.core.interactiveshell import InteractiveShell

    class Shell(InteractiveShell):
        """IPython without a front end: `%matplotlib inline` works, figures print as text."""

        def enable_gui(self, gui: str | None = None) -> None:
            pass

        def showtraceback(self, *args: Any, **kwargs: Any) -> None:
            pass  # errors are replied to the grader, not printed

    shell = Shell.instance()
    with os.fdopen(rfd, "rb") as requests, os.fdopen(wfd, "wb") as replies:
        _pipes[:] = [requests, replies]
        while True:
            try:
                kind, *body = _read(requests)
            except EOFError:
                return
            if kind == "cell":
                reply = _run_cell(shell, body[0])
            else:
                name, args, twins, view = body
                reply = call(shell.user_ns.get(name), args, tuple(twins), view)
            _write(replies, reply)


if __name__ == "__main__":
    from mcunet_lite.kit import sandbox  # the module the student's code imports (RemoteCamera's `request`), not __main__
    sandbox.limit_files()
    sandbox.serve(int(sys.argv[1]), int(sys.argv[2]))

"""The built-in grader: scores a lab notebook where the student's code cannot reach the score.

Trust model (issue 16; DESIGN.md section 8). The notebook's code is adversarial. It runs in its own
process (`mcunet_lite.kit.sandbox`), in a fresh temporary folder, in a process group of its own, under
a cap on the group's resident memory, a per-cell and per-exercise time limit and a total one that
hold even when the code ignores signals (SIGINT first, then SIGKILL of the whole group), with its
output drained and capped.
The grader's process generates every case from a seed drawn at grading time (printed, so a grade can
be reproduced with `--seed`), computes the expected values, sends only the inputs, and gets back
only the student's return values as plain data (`plain`), which it compares itself. Nothing the
student prints is parsed. The submission is only read.
"""
from __future__ import annotations

import os
import pickle
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable
from pathlib import Path

from . import plain, sandbox
from .camera import Camera
from ..errors import UserError

OUTPUT_CAP = 1 << 20   # bytes of the student's output kept; the rest is counted and dropped
GRACE = 3.0            # seconds a SIGINT'ed cell gets to stop before its process group is killed
POLL = 0.1             # seconds between two looks at the student's memory
PAGE = os.sysconf("SC_PAGE_SIZE")
SEED_ENV = "MCUNET_LITE_GRADE_SEED"  # an instructor's fixed seed for a whole class


@dataclass
class Limits:
    """What the student's process may use."""

    cell_seconds: float = 120.0     # each cell, and each exercise's cases together
    total_seconds: float = 1800.0   # the whole grading run
    memory_bytes: int = 4 << 30     # resident memory of the student's process group


@dataclass
class Report:
    """A graded submission, in the `--json` shape."""

    lab: str
    score: float
    max_score: float
    seed: int
    exercises: list[dict] = field(default_factory=list)
    notebook_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """Per-exercise points and feedback for a person."""
        rows = [f"{self.lab}: {self.score:g} / {self.max_score:g} points (cases seed {self.seed})"]
        for e in self.exercises:
            rows.append(f"  [{e['points']:g}/{e['max_points']:g}] {e['id']}: {e['feedback']}")
        rows += [f"  note: {err}" for err in self.notebook_errors]
        return "\n".join(rows)


class _Output:
    """Drains a pipe in a thread, keeping the first OUTPUT_CAP bytes and counting the rest."""

    def __init__(self, pipe) -> None:
        self.kept, self.dropped = bytearray(), 0
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe) -> None:
        while chunk := pipe.read1(1 << 16):
            room = max(OUTPUT_CAP - len(self.kept), 0)
            self.kept += chunk[:room]
            self.dropped += max(len(chunk) - room, 0)


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in process group `pgid` (from /proc/PID/stat)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:
            total += int(fields[21]) * PAGE
    return total


class Worker:
    """One student process (`python -m mcunet_lite.kit.sandbox`) and the pipes to it. A thread watches the
    resident memory of its whole process group and kills the group over the cap: a cap on resident
    memory, not on address space, so the sanitizer builds a lab compiles and runs (AddressSanitizer
    reserves terabytes of address space) still work."""

    def __init__(self, cwd: str, limits: Limits, output: list[_Output]) -> None:
        to_child, from_child = os.pipe(), os.pipe()
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
        env.pop(SEED_ENV, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcunet_lite.kit.sandbox", str(to_child[0]), str(from_child[1])],
            pass_fds=(to_child[0], from_child[1]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        os.close(to_child[0])
        os.close(from_child[1])
        self.requests, self.replies = os.fdopen(to_child[1], "wb"), from_child[0]
        output.append(_Output(self.proc.stdout))
        self.over_memory, self.memory_bytes, self.gone = False, limits.memory_bytes, False
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while self.proc.poll() is None:
            if group_rss(self.proc.pid) > self.memory_bytes:
                self.over_memory = True
                self._kill()
                return
            time.sleep(POLL)

    def ask(self, request: tuple, seconds: float, serve: Callable[[Any], Any] | None = None) -> dict | str:
        """The reply to `request`, or why there is none: "timeout" (it was stopped; the process is
        dead or interrupted), "memory" (killed over the memory cap) or "crashed". Requests the
        worker makes meanwhile (`sandbox.request`) are answered with `serve(message)`."""
        if not self._send(request):
            return "crashed"
        deadline = time.monotonic() + seconds
        reply = self._receive(deadline)
        while serve is not None and isinstance(reply, dict) and set(reply) == {"request"}:
            if not self._send(serve(reply["request"])):
                return "crashed"
            reply = self._receive(deadline)
        if reply == "timeout":
            os.kill(self.proc.pid, signal.SIGINT)  # a loop that respects KeyboardInterrupt stops here
            if self._receive(time.monotonic() + GRACE) == "timeout":
                self.stop()
        if isinstance(reply, dict) and group_rss(self.proc.pid) > self.memory_bytes:
            self.over_memory = self.gone = True  # a reply that beat the watcher: the cell holds too much all the same
            self._kill()
            return "memory"
        self.gone = self.gone or reply == "crashed"
        return "memory" if reply == "crashed" and self.over_memory else reply

    def _send(self, obj: Any) -> bool:
        """Pickle `obj` to the worker; False when its pipe is gone."""
        try:
            data = pickle.dumps(obj)
            self.requests.write(sandbox.HEADER.pack(len(data)) + data)
            self.requests.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def _read(self, n: int, deadline: float) -> bytes | None:
        got = bytearray()
        while len(got) < n:
            ready, _, _ = select.select([self.replies], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                return None
            chunk = os.read(self.replies, min(n - len(got), 1 << 20))
            if not chunk:
                raise EOFError
            got += chunk
        return bytes(got)

    def _receive(self, deadline: float) -> dict | str:
        try:
            head = self._read(sandbox.HEADER.size, deadline)
            if head is None:
                return "timeout"
            (n,) = sandbox.HEADER.unpack(head)
            if n > plain.MAX_BYTES:
                self.stop()
                return "crashed"
            body = self._read(n, deadline)
            return "timeout" if body is None else plain.loads(body)
        except (EOFError, OSError, ValueError):
            return "crashed"

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def alive(self) -> bool:
        """Not known dead: a reply that ended in a crash counts, as poll() can miss a kill while the
        watcher thread is polling the same process."""
        return not self.gone and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the process group (children included, signals ignored or not) and reap it; once."""
        if self.requests.closed:
            return
        self._kill()
        self.proc.wait()
        self.requests.close()
        os.close(self.replies)


class Session:
    """A notebook's cells run in a worker; a worker that had to be killed is replaced by a fresh one
    that runs again the cells that had succeeded, so later cells and exercises still get their turn."""

    def __init__(self, cwd: str, limits: Limits) -> None:
        self.cwd, self.limits, self.deadline = cwd, limits, time.monotonic() + limits.total_seconds
        self.output: list[_Output] = []
        self.done: list[str] = []
        self.worker = Worker(cwd, limits, self.output)

    def seconds(self) -> float:
        """The time the next request may take: the per-cell limit, within the total."""
        return max(min(self.limits.cell_seconds, self.deadline - time.monotonic()), 0.0)

    def ask(self, request: tuple, seconds: float | None = None, serve: Callable[[Any], Any] | None = None) -> dict | str:
        """The worker's reply, or why there is none; `seconds` narrows the time limit; `serve`
        answers the worker's requests meanwhile (`Worker.ask`)."""
        if self.seconds() <= 0:
            return "out of time"
        if not self.worker.alive:
            self._restart()
        reply = self.worker.ask(request, min(self.seconds(), seconds if seconds is not None else self.seconds()), serve)
        if request[0] == "cell" and isinstance(reply, dict) and "error" not in reply:
            self.done.append(request[1])
        return reply

    def _restart(self) -> None:
        """A fresh worker with the succeeded cells run again; a cell that no longer runs within the
        limits is left out (and the replay starts over), so one bad cell cannot stop every later one."""
        while True:
            self.worker.stop()
            self.worker = Worker(self.cwd, self.limits, self.output)
            if self.seconds() <= 0:
                return
            for i, source in enumerate(self.done):
                if not isinstance(self.worker.ask(("cell", source), self.seconds()), dict):
                    del self.done[i]
                    break
            else:
                return

    def close(self) -> tuple[int, int]:
        """Stop the worker; (bytes of output kept, bytes dropped)."""
        self.worker.stop()
        for out in self.output:
            out.thread.join(timeout=5)
        return sum(len(o.kept) for o in self.output), sum(o.dropped for o in self.output)


def _read_notebook(path: Path):
    import nbformat
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise UserError(f"no such notebook: {path}") from None
    except Exception as e:  # nbformat raises several types for a broken file
        raise UserError(f"{path} is not a readable notebook ({type(e).__name__}: {str(e)[:150]})") from None


def lab_of(nb, path: Path) -> str:
    """The lab a notebook belongs to: its metadata, else its file name prefix (NN_)."""
    from . import checks
    lab = nb.metadata.get("mcunet_lite", {}).get("lab")
    if lab in checks.EXERCISES:
        return lab
    for known in checks.EXERCISES:
        if path.name.startswith(known[:3]):
            return known
    raise UserError(f"cannot tell which lab {path.name} is: its name should start with the lab number "
                    f"(labs: {', '.join(checks.EXERCISES)})")


def _why_no_reply(reply: str, limits: Limits, what: str) -> str:
    return {"timeout": f"{what} did not finish within {limits.cell_seconds:g} s and was stopped",
            "memory": f"{what} used more than {limits.memory_bytes >> 20} MiB of memory and was stopped",
            "crashed": f"{what} ended the Python process (os._exit, a fault or a signal)",
            "out of time": f"{what} did not run: grading used up its total time limit of "
                           f"{limits.total_seconds:g} s"}[reply]


def _score(ex, session: Session, seed: int) -> dict:
    """Run one exercise's cases on the student's function in the worker; judge them here."""
    from . import checks
    ends = time.monotonic() + session.limits.cell_seconds
    for label, args, expected in checks.cases(ex, seed):
        left = ends - time.monotonic()
        cameras = [a for a in args if isinstance(a, Camera)]  # served from here: the worker never holds the frame
        reply = session.ask(("call", ex.function, args, ex.twins, ex.view), left,
                            cameras[0].serve if cameras else None) if left > 0 else "timeout"
        if isinstance(reply, str):
            failure = _why_no_reply(reply, session.limits, f"{ex.function}({label})")
        else:
            failure = checks.judge(ex, label, reply, expected)
        if failure:
            return {"id": ex.id, "points": 0, "max_points": ex.points, "feedback": failure}
    return {"id": ex.id, "points": ex.points, "max_points": ex.points, "feedback": "all checks passed"}


def grade(path: str | Path, limits: Limits | None = None, seed: int | None = None) -> Report:
    """Execute a submission's code cells in a sandboxed process and score its functions.

    The file is only read. A cell that fails or runs out of time is noted and skipped; each exercise
    is scored on its own cases, so one hanging function costs only its points. `seed` fixes the cases
    (default: $MCUNET_LITE_GRADE_SEED, else drawn now)."""
    from . import checks
    limits = limits or Limits()
    path = Path(path)
    nb = _read_notebook(path)
    lab = lab_of(nb, path)
    if seed is None:
        seed = int(os.environ.get(SEED_ENV) or secrets.randbelow(1 << 32))
    errors, results = [], []
    with tempfile.TemporaryDirectory(prefix="mcunet-lite-grade-") as work:
        session = Session(work, limits)
        try:
            for n, cell in enumerate(nb.cells, 1):
                if cell.cell_type != "code":
                    continue
                reply = session.ask(("cell", cell.source))
                if isinstance(reply, str):
                    errors.append(f"cell {n}: " + _why_no_reply(reply, limits, "this cell"))
                elif "error" in reply:
                    errors.append(f"cell {n}: {reply['error']}"[:200])
            results = [_score(ex, session, seed) for ex in checks.EXERCISES[lab]]
        finally:
            kept, dropped = session.close()
    if dropped:
        errors.append(f"the notebook printed {kept + dropped} bytes; only the first {kept} were kept")
    return Report(lab, sum(r["points"] for r in results), sum(r["max_points"] for r in results), seed,
                  results, errors)

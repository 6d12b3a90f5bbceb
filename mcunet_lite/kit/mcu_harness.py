"""A student's C kernel on the emulated microcontroller: linked into a model's firmware in place of
the kit's kernel function (`codegen.override_kernels`), run on QEMU's STM32F746 and compared with
`int8ref` bit for bit, with the instructions its calls executed (DESIGN.md section 6).

The twin rule for C text: a source that holds the body of one of the library's kernels, includes a
kit file other than the headers, or links to any library function but the fixed-point helpers is
refused (`refusal`), so that the library's kernel pasted or wrapped scores 0.
"""
from __future__ import annotations

import atexit
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import codegen, deploy, int8ref, schedule
from ..errors import UserError
from ..ir import Graph

# The library's kernel functions whose bodies a student's kernel may not hold (kernels.c, kernels_dsp.c).
C_TWINS = ("mcu_depthwise_inplace_ref", "plane_from_channel", "mcu_depthwise_inplace_dsp", "fill_plane", "dw_row",
           "dw_channel", "dw_any_body", "mcu_depthwise_dsp", "mcu_conv2d_ref")
# What a student's kernel may call: the requantization helpers of Lab 01, memory functions, gcc's helpers.
ALLOWED_CALLS = ("mcu_mbqm", "mcu_srdhm", "mcu_rdbpot", "memset", "memcpy", "memmove")
HEADERS = ("kernels.h", "dsp.h")  # the kit files a kernel may include


class CError(Exception):
    """A student's C that does not compile or link, crashes or hangs on the board."""


@dataclass
class KernelRun:
    """One firmware run: whether every output equals int8ref, and what the kernel's calls cost."""

    outputs_match: bool
    first_difference: str   # where the first output differs ("" when they match)
    instructions: int       # executed by the layers that call the kernel
    macs: int               # of those layers

    @property
    def per_mac(self) -> float:
        """Instructions per multiply-accumulate of the kernel's layers."""
        return self.instructions / self.macs


def _tokens(source: str) -> str:
    """C source without comments and whitespace: what a copy keeps however it is reformatted."""
    source = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)
    return re.sub(r"\s+", "", source)


def _library_bodies() -> dict[str, str]:
    """The token strings of the bodies of C_TWINS in the kit's kernel sources."""
    text = "\n".join((codegen.CSRC / f).read_text() for f in ("kernels.c", "kernels_dsp.c"))
    bodies = {}
    for name in C_TWINS:
        m = re.search(r"\b" + name + r"\([^;{]*?\)\s*(\{.*?\n\})", text, flags=re.S)
        if m:
            bodies[name] = _tokens(m.group(1))
    return bodies


def refusal(source: str) -> str | None:
    """Why `source` is not the student's own kernel (the twin rule for C text), or None."""
    mine = _tokens(source)
    for name, body in _library_bodies().items():
        if body in mine:
            return f"it holds the body of the library's {name} (mcunet_lite/csrc): write your own"
    for name in re.findall(r'#\s*include\s*"([^"]*)"', source):
        if name not in HEADERS:
            return f'it includes "{name}": only {" and ".join(HEADERS)} of the kit may be included; write your own'
    if re.search(r"incbin|\bbkpt\b|\bsvc\b", source, re.I):
        return "it embeds files or calls the debugger (incbin, bkpt, svc): write your own kernel"
    return None


def _undefined_symbols(obj: Path) -> list[str]:
    """Functions and data `obj` uses from other files."""
    r = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True)
    return [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]


def _foreign_call(obj: Path) -> str | None:
    """A library function the student's object links to that is not one of ALLOWED_CALLS."""
    for name in _undefined_symbols(obj):
        if name not in ALLOWED_CALLS and not name.startswith(("__aeabi_", "__gnu_")):
            return name
    return None


def _compile_error(e: Exception) -> str:
    """A compiler's or linker's complaint about the student's file, in a few lines."""
    lines = str(e).splitlines()
    mine = [re.sub(r"^(\d+):\d+: ", r"line \1: ", ln.split("your C:", 1)[1]) for ln in lines
            if "your C:" in ln and "error" in ln]
    missing = sorted(set(re.findall(r"undefined reference to `(\w+)'", str(e))))
    if missing:
        return f"it does not link: {', '.join(missing)} is not defined (define every helper you call)"
    return "it does not compile: " + " | ".join((mine or [ln for ln in lines if "error" in ln] or lines)[:4])


def _difference(got: list, expected: list) -> str:
    """Where the firmware's outputs first differ from int8ref's ("" when they are identical)."""
    for n, (row, erow) in enumerate(zip(got, expected)):
        for y, e in zip(row, erow):
            if y is None or y.shape != e.shape:
                return f"input {n}: no output of shape {e.shape} came back"
            bad = np.argwhere(y != e)
            if len(bad):
                i = tuple(int(v) for v in bad[0])
                return (f"input {n}: {len(bad)} of the {e.size} bytes of the graph's output {e.shape} differ from "
                        f"int8ref, the first at {i}: {int(y[i])} instead of {int(e[i])}")
    return ""


def random_inputs(g: Graph, n: int, seed: int = 0) -> np.ndarray:
    """`n` uniform int8 inputs of `g`'s input shape (batch dimension first)."""
    shape = g.tensors[g.inputs[0]].shape
    return np.random.default_rng(seed).integers(-128, 128, (n, *shape[1:])).astype(np.int8)


@functools.cache
def _object_cache() -> Path:
    """One object cache per process for the firmware builds (content-addressed by `deploy`: the
    kit's kernels and board files compile once, a student's source and model.c each time)."""
    path = Path(tempfile.mkdtemp(prefix="mcu-objs-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def run_kernel(source: str | None, g: Graph, patch_plan=None, inputs: np.ndarray | None = None,
               function: str = "mcu_depthwise_inplace", dsp: bool = False, timeout: float = 10,
               work: str | Path | None = None, twin_rule: bool = True, board: str = "stm32f746") -> KernelRun:
    """Link `source` (the C definition of kernel `function`, or None: the kit's own) into the firmware
    of int8 graph `g` (patch-based with `patch_plan`), run it on the emulated `board` on `inputs`
    (default: two random ones) and compare every output with int8ref. `dsp` builds the kit's DSP
    kernels (a student's kernel gets the portable layer constants: build it with dsp=False).
    CError says why the source could not run, or (`twin_rule`) that it calls a kit function other
    than ALLOWED_CALLS."""
    if why := deploy.toolchain_missing():
        raise CError(why)
    overrides = {function: f'#line 1 "your C"\n{source}'} if source is not None else None
    with tempfile.TemporaryDirectory(prefix="mcu-kernel-") as tmp:
        out = Path(work) if work else Path(tmp)
        try:
            p = codegen.emit(g, patch_plan or schedule.plan(g), overrides=overrides)
        except UserError as e:
            raise CError(str(e)) from None
        xs = random_inputs(g, 2) if inputs is None else np.asarray(inputs)
        try:
            bld = deploy.build(p, "qemu", board, xs, out / "fw", dsp=dsp, cache=_object_cache())
        except (RuntimeError, UserError) as e:
            raise CError(_compile_error(e)) from None
        if source is not None and twin_rule and (name := _foreign_call(bld.dir / "obj" / f"user_{function}.o")):
            raise CError(f"it calls {name}: a kernel may call only {', '.join(ALLOWED_CALLS)}; write your own")
        try:
            ran = deploy.run(bld, timeout)
        except RuntimeError as e:
            why = "did not finish within" in str(e) and f"it did not finish within {timeout} s (an endless loop?)"
            raise CError(why or "the firmware stopped (a HardFault: a wild pointer or a stack overflow?)") from None
    expected = [int8ref.run_all(g, x[None]) for x in xs]
    calls = [i for i, name in enumerate(p.marks) if _calls(p, name, function)]
    instructions = sum(ran.op_instructions[i] for i in calls)
    macs = sum(p.op_macs.get(p.marks[i], 0) for i in calls)
    diff = _difference(ran.outputs, expected)
    return KernelRun(not diff, diff, instructions, macs)


def _calls(p: codegen.Project, op_name: str, function: str) -> bool:
    """Whether the emitted code runs op `op_name` through `function`."""
    body = p.files["model.c"]
    m = re.search(r"/\* op r?\d+ '" + re.escape(op_name) + r"'.*?\*/\n(.*?)\n", body)
    return bool(m) and f"{function}(" in m.group(1)

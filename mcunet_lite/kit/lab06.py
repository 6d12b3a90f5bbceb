"""Graded checks of Lab 06, deploying to a microcontroller: the cases each exercise is scored on, made in the grader's
process from the run's seed, and the library's answers they are compared with."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable


from .. import codegen, deploy, schedule, zoo
from .. import fixedpoint as fp
from .exercise import LIB, Case, Exercise
from .compare import Property, as_pair
from .inputs import schedule_graphs

def _random_sections(rng: random.Random) -> dict[str, int]:
    """Section sizes as `arm-none-eabi-size -A` lists them for a firmware: loaded ones (some may be
    missing), the test inputs, the reserved stack, and sections that never reach the board."""
    sizes = {".text": rng.randrange(8, 900_000, 4), ".ARM.exidx": rng.choice([0, 8, 16]),
             ".inputs": rng.randrange(0, 200_000, 8), ".data": rng.choice([0, 0, rng.randrange(4, 3000, 4)]),
             ".bss": rng.randrange(1000, 300_000, 8), ".stack": 2048, ".comment": 38, ".ARM.attributes": 50,
             ".debug_info": rng.randrange(100, 5000), ".debug_line": rng.randrange(100, 5000)}
    return {k: v for k, v in sizes.items() if v or rng.random() < 0.5}


MBQM_PROTOTYPE = "int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift)"
_MBQM_HARNESS = r"""#include <stdint.h>
#include <stdio.h>
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift);
int main(void) {
    long long x, m0, shift;
    while (scanf("%lld %lld %lld", &x, &m0, &shift) == 3) {
        printf("%lld\n", (long long)mcu_mbqm(x, (int32_t)m0, (int32_t)shift));
        fflush(stdout); /* a crash or a sanitizer report then names its case */
    }
    return 0;
}
"""

C_TWINS = ("mcu_srdhm", "mcu_rdbpot", "mcu_mbqm")  # the library's C that mbqm_c asks for


def memory_map_reference(sections: dict[str, int], stack_bytes: int) -> tuple[int, int]:
    """(Flash, SRAM) as `deploy` reports them: its Build's figures of these sections, plus the stack."""
    b = SimpleNamespace(sections=sections)
    return deploy.Build.flash_bytes.fget(b), deploy.Build.static_sram_bytes.fget(b) + stack_bytes


def _memory_map_cases(rng: random.Random) -> Iterable[Case]:
    for _ in range(12):
        sections, stack = _random_sections(rng), rng.randrange(100, 3000, 4)
        yield f"{sections}, stack_bytes={stack}", (sections, stack), memory_map_reference(sections, stack)


def _scratch_cases(rng: random.Random) -> Iterable[Case]:
    graphs = list(schedule_graphs(rng))
    graphs += [(f"<{m} at {r}px>", zoo.get(m, resolution=r).graph()) for m, r in (("mbv2", 96), ("mcunet", 64))]
    for label, g in graphs:
        plan = schedule.plan(g)
        expected = max((schedule.kernel_scratch_bytes(plan.graph, i, plan.pairs) for i in range(len(plan.graph.ops))),
                       default=0)
        yield f"{label}, <its {len(plan.pairs)} in-place pairs>", (plan.graph, plan.pairs), expected


class CError(Exception):
    """A student's C that does not compile, crashes, hangs or has undefined behaviour."""


def mbqm_in_c(source: str, cases: list[tuple[int, int, int]], timeout: float = 10) -> list[int]:
    """Compile `source` (a self-contained definition of `mcu_mbqm`, only <stdint.h> included) into a
    small test harness with gcc, AddressSanitizer and UBSan, and return mcu_mbqm(x, m0, shift) for
    every case; CError says in a few lines why that was not possible."""
    if shutil.which("gcc") is None:
        raise CError("no C compiler: install gcc (`apt-get install gcc`)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "mine.c").write_text(f'#include <stdint.h>\n{MBQM_PROTOTYPE};\n#line 1 "your C"\n{source}\n')
        (d / "harness.c").write_text(_MBQM_HARNESS)
        r = subprocess.run(["gcc", "-std=c99", "-O1", "-g", *deploy.SANITIZE, "mine.c", "harness.c", "-lm", "-o", "t"],
                           cwd=d, capture_output=True, text=True)
        if r.returncode:
            missing = sorted(set(re.findall(r"undefined reference to `(\w+)'", r.stderr)))
            if missing:
                raise CError(f"it does not link: {', '.join(missing)} is not defined (the harness compiles your "
                             "source alone, with only <stdint.h>: define every helper you call)")
            errors = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.splitlines()
            raise CError("it does not compile: " + " | ".join(errors[:4]).replace(str(d) + "/", ""))
        try:
            r = subprocess.run([str(d / "t")], input="".join(f"{x} {m} {s}\n" for x, m, s in cases), cwd=d,
                               capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
        except subprocess.TimeoutExpired as e:
            done = len((e.stdout or b"").splitlines())
            raise CError(f"mcu_mbqm{cases[min(done, len(cases) - 1)]} did not return within {timeout} s "
                         "(an infinite loop?)") from None
    out = r.stdout.splitlines()
    if r.returncode or len(out) != len(cases):
        why = next((ln.split("runtime error: ", 1)[1] for ln in r.stderr.splitlines() if "runtime error: " in ln),
                   None) or next((ln for ln in r.stderr.splitlines() if "ERROR:" in ln), f"exit code {r.returncode}")
        raise CError(f"mcu_mbqm{cases[min(len(out), len(cases) - 1)]} stopped the program: {why}"
                     + (" (undefined behaviour in C)" if "runtime error" in r.stderr else ""))
    return [int(v) for v in out]


def _mbqm_vectors(rng: random.Random) -> list[tuple[int, int, int]]:
    """Inputs of MultiplyByQuantizedMultiplier as kernels meet them: multipliers from
    QuantizeMultiplier of real scales 2^-24 .. 2^6, x in int32 so that x * 2^shift stays in int32;
    results exactly on both roundings' halves (M0 = 2^30); the int32 extremes; M0 = 0."""
    cases = []
    for _ in range(3000):
        m0, shift = (int(v) for v in fp.quantize_multiplier(2 ** rng.uniform(-24, 6)))
        bits = rng.randint(0, 31 - max(shift, 0))
        cases.append((rng.randint(-(1 << bits), (1 << bits) - 1), m0, shift))
    for shift in range(-14, 3):
        for x in [*range(-9, 10), *(rng.randrange(-(1 << 28), 1 << 28) | 1 for _ in range(6))]:
            cases.append((x, 1 << 30, shift))
    for m0 in (fp.INT32_MAX, 1 << 30, rng.randrange(1 << 30, 1 << 31), 0):
        cases += [(x, m0, s) for x in (fp.INT32_MIN, fp.INT32_MAX, -1, 0, 1) for s in (0, -1, -31)]
    rng.shuffle(cases)
    return cases


class _CSource:
    """A student's C source, shown briefly in feedback."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        n = len(str(self.source).strip().splitlines())
        return f"<your C source, {n} line{'s' if n != 1 else ''}>"


def _c_tokens(source: str) -> str:
    """C source without comments and whitespace: what a copy keeps however it is reformatted."""
    source = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)
    return re.sub(r"\s+", "", source)


def _copied_c(source: str) -> str | None:
    """The name of a library C function (C_TWINS) whose body `source` holds, if any: the twin rule
    for an exercise whose answer is C text rather than a call."""
    library = (codegen.CSRC / "kernels.c").read_text()
    mine = _c_tokens(source)
    for name in C_TWINS:
        body = re.search(r"\b" + name + r"\([^)]*\)\s*(\{.*?\n\})", library, flags=re.S)
        if body and _c_tokens(body.group(1)) in mine:
            return name
    return None


class _BitExactInC(Property):
    """What `mbqm_c` must return: C whose mcu_mbqm gives TFLite's MultiplyByQuantizedMultiplier on
    every case, compiled with sanitizers; the first reason it does not shows in the feedback."""

    def __init__(self, cases: list[tuple[int, int, int]]) -> None:
        self.cases, self.why = cases, ""
        x, m0, shift = zip(*cases)
        self.expected = [int(v) for v in fp.multiply_by_quantized_multiplier(x, m0, shift)]

    def problem(self, got: Any) -> str:
        if not isinstance(got, _CSource) or not isinstance(got.source, str):
            return "mbqm_c() must return the C source as a string"
        copied = _copied_c(got.source)
        if copied:
            return f"it holds the library's {copied} (mcunet_lite/csrc/kernels.c): write your own"
        try:
            results = mbqm_in_c(got.source, self.cases)
        except CError as e:
            return str(e)
        for case, mine, ref in zip(self.cases, results, self.expected):
            if mine != ref:
                return f"mcu_mbqm{case} returned {mine}, TFLite's MultiplyByQuantizedMultiplier gives {ref}"
        return ""

    def describe(self) -> str:
        return f"bit-exact results on {len(self.cases)} cases"


def _mbqm_c_cases(rng: random.Random) -> Iterable[Case]:
    yield "", (), _BitExactInC(_mbqm_vectors(rng))


def _as_c_source(v: Any) -> Any:
    return _CSource(v)



def _scratch_bytes(graph, pairs) -> int:
    return max((schedule.kernel_scratch_bytes(graph, i, pairs) for i in range(len(graph.ops))), default=0)


def _mbqm_c() -> str:
    """The kit's own C `mcu_mbqm`, with its two helpers as static functions: self-contained, so that it
    links alone (the graded harness) and beside the kernels (a deploy override)."""
    source = (codegen.CSRC / "kernels.c").read_text()
    parts = [re.search(rf"int64_t {f}\(.*?\n}}\n", source, re.S).group(0) for f in ("mcu_srdhm", "mcu_rdbpot", "mcu_mbqm")]
    c = "\n".join(["static " + parts[0], "static " + parts[1], parts[2]])
    for old, new in (("mcu_srdhm", "ref_srdhm"), ("mcu_rdbpot", "ref_rdbpot"), ("MCU_INT32", "INT32")):
        c = c.replace(old, new)
    return "#include <stdint.h>\n" + c


LAB = "06_deploy"
EXERCISES: list[Exercise] = [
    Exercise("memory_map", "memory_map", 2, _memory_map_cases, as_pair,
             (LIB + "deploy.Build.flash_bytes", LIB + "deploy.Build.static_sram_bytes"), reference=memory_map_reference),
    Exercise("scratch_bytes", "scratch_bytes", 3, _scratch_cases, int, (LIB + "schedule.kernel_scratch_bytes",), reference=_scratch_bytes),
    Exercise("mbqm_c", "mbqm_c", 5, _mbqm_c_cases, _as_c_source, reference=_mbqm_c),
]

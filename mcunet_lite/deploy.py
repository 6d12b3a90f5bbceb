"""Build and run emitted C: on the PC (gcc, optionally with sanitizers), on an emulated STM32 (QEMU)
or as Renode files; compare every output with `int8ref` bit for bit and report memory and
instructions (DESIGN.md section 6).

`build` links the project with a test harness and the inputs (in Flash, like a camera frame);
`run` executes it and parses what the harness prints; `deploy` does emit, build, run and compare
in one call and returns a `Report`. A model that cannot fit the board is refused before linking,
and a linker overflow is reported in the same words.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import boards, codegen, int8ref, schedule
from .boards import Board
from .codegen import Project
from .errors import UserError
from .ir import Graph
from .profile import op_label, op_macs
from .validate import LIMIT_MIB

EMULATORS = ("qemu", "host", "renode")
ARM_GCC, QEMU, RENODE_TEST = "arm-none-eabi-gcc", "qemu-system-arm", "renode-test"
HARNESS = ("main.c", "boards/board.h")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")


def toolchain_missing() -> str | None:
    """Why the ARM toolchain or QEMU (or gcc, which builds QEMU's counting plugin) cannot be used here."""
    missing = [t for t in (ARM_GCC, "arm-none-eabi-size", "arm-none-eabi-nm", QEMU, "gcc") if shutil.which(t) is None]
    if missing:
        return (f"{', '.join(missing)} not found; install them with `apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi qemu-system-arm gcc`")
    return None


@dataclass
class Build:
    """A linked program: the project, where it was built and its memory figures (ARM targets)."""

    project: Project
    target: str
    board: Board | None
    dsp: bool
    dir: Path
    exe: Path
    n_inputs: int
    cache: Path
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def flash_bytes(self) -> int:
        """`flash_bytes` of this program's sections."""
        return flash_bytes(self.sections)

    @property
    def static_sram_bytes(self) -> int:
        """`static_sram_bytes` of this program's sections."""
        return static_sram_bytes(self.sections)


def flash_bytes(sections: dict[str, int]) -> int:
    """Flash a program occupies, from its section sizes (`arm-none-eabi-size -A`): code, constants
    and .data's initial values (not the test inputs, which a device would get from its camera)."""
    return sum(v for k, v in sections.items() if k in (".text", ".ARM.exidx", ".data"))


def static_sram_bytes(sections: dict[str, int]) -> int:
    """SRAM of .data and .bss (the arena, kernel scratch, the harness's few variables)."""
    return sections.get(".data", 0) + sections.get(".bss", 0)


@dataclass
class Run:
    """What one execution printed: outputs per input, instruction counts, the stack high-water mark."""

    outputs: list[list[np.ndarray]]
    instructions: list[int] | None
    op_instructions: list[int] | None
    stack_bytes: int | None


@dataclass
class Report:
    """The `deploy --json` object."""

    model: str
    board: str
    emulator: str
    kernels: str
    mode: str
    flash_bytes: int | None
    sram_bytes: int | None
    stack_bytes: int | None
    arena_bytes: int
    scratch_bytes: int
    instructions: int | None
    macs: int
    model_macs: int
    instructions_per_mac: float | None
    outputs_match: bool
    n_inputs: int
    layers: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outputs: list[list[np.ndarray]] = field(default_factory=list, repr=False)  # per input, per output

    def to_dict(self) -> dict:
        """JSON-ready dict (without the output arrays)."""
        d = asdict(self)
        del d["outputs"]
        return d

    def text(self) -> str:
        """A few lines for the terminal."""
        lines = [f"{self.model} on {self.board} ({self.emulator}, {self.kernels} kernels, {self.mode})"]
        lines.append(f"  Flash {_kb(self.flash_bytes)}, SRAM {_kb(self.sram_bytes)} (arena {self.arena_bytes}, "
                     f"scratch {self.scratch_bytes}, stack {_kb(self.stack_bytes, False)})")
        if self.instructions_per_mac is not None:
            lines.append(f"  {self.instructions:,d} instructions for {self.macs:,d} MACs: "
                         f"{self.instructions_per_mac:.2f} instructions per MAC")
        elif self.instructions is not None:
            lines.append(f"  {self.instructions:,d} instructions executed")
        lines.append(f"  outputs identical to int8ref on {self.n_inputs} input(s): {'yes' if self.outputs_match else 'NO'}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _kb(n: int | None, kb: bool = True) -> str:
    """A byte figure for the text report; 'unknown' where the emulator did not measure it."""
    if n is None:
        return "unknown"
    return f"{n} B ({n / 1024:.1f} kB)" if kb else str(n)


# ------------------------------------------------------------------------------------ build
def _inputs_source(p: Project, xs: np.ndarray, out: Path) -> str:
    """inputs.c: the input samples as bytes in Flash (section .inputs), assembled from inputs.bin
    (.incbin is much faster to build than a C initializer of the same bytes)."""
    raw = np.ascontiguousarray(xs).view(np.uint8).reshape(len(xs), -1)
    if raw.shape[1] != p.input_bytes:
        raise UserError(f"inputs have {raw.shape[1]} bytes each, the model takes {p.input_bytes}")
    (out / "inputs.bin").write_bytes(raw.tobytes())
    digest = hashlib.sha1(raw.tobytes()).hexdigest()
    return (f'/* {len(raw)} input(s) from inputs.bin, sha1 {digest} */\n#include <stdint.h>\n\n'
            f"const uint32_t mcu_num_inputs = {len(raw)};\n"
            '__asm__(".section .inputs, \\"a\\"\\n.balign 8\\n.global mcu_inputs\\nmcu_inputs:\\n'
            '.incbin \\"inputs.bin\\"\\n.previous");\n')


def check_budget(p: Project, board: Board, input_bytes: int = 0) -> None:
    """Refuse, before linking, a model whose arena and scratch or constants exceed the board."""
    sram = p.arena_bytes + p.scratch_bytes + boards.MIN_STACK
    if sram > board.sram_bytes:
        raise UserError(f"'{_model_name(p)}' does not fit the {board.name}: it needs {sram} B ({sram / 1024:.1f} kB) of SRAM "
                        f"({p.arena_bytes} B activation arena + {p.scratch_bytes} B kernel scratch + "
                        f"{boards.MIN_STACK} B stack) but the board has {board.sram_bytes // 1024} kB; "
                        "run the first stage patch by patch (--patch-grid N --split-op I; `mcunet-lite patch MODEL "
                        f"--auto-split --sram-budget {board.sram_bytes // 1024 - 8}` finds a split) or choose a smaller model")
    flash = p.const_bytes + input_bytes
    if flash > board.flash_bytes:
        raise UserError(f"'{_model_name(p)}' does not fit the {board.name}: its weights and constants need {p.const_bytes} B "
                        f"({p.const_bytes / 1024:.1f} kB) + {input_bytes} B of test inputs in Flash, over the board's "
                        f"{board.flash_bytes // 1024} kB; choose a smaller model (fewer channels) or fewer test inputs")


def _model_name(p: Project) -> str:
    return p.graph.meta.get("model", p.graph.name)


def _linker_error(p: Project, board: Board, stderr: str) -> UserError | None:
    """The budget error in the words of `check_budget`, from ld's region overflow message."""
    m = re.search(r"region `(RAM|FLASH)' overflowed by (\d+) bytes", stderr)
    if not m:
        return None
    region, over = m.group(1), int(m.group(2))
    if region == "RAM":
        return UserError(f"'{_model_name(p)}' does not fit the {board.name}: the linked program needs {over} B more SRAM "
                         f"than the board's {board.sram_bytes // 1024} kB ({p.arena_bytes} B activation arena + "
                         f"{p.scratch_bytes} B kernel scratch + {boards.MIN_STACK} B stack + the program's variables); "
                         "run the first stage patch by patch (--patch-grid N --split-op I) or choose a smaller model")
    return UserError(f"'{_model_name(p)}' does not fit the {board.name}: the linked program needs {over} B more Flash than "
                     f"the board's {board.flash_bytes // 1024} kB (weights and constants {p.const_bytes} B + code + test "
                     "inputs); choose a smaller model (fewer channels) or fewer test inputs")


def _headers(src: Path, dirs: list[Path], seen: set[Path] | None = None) -> set[Path]:
    """The project headers `src` includes, directly or through other headers."""
    seen = set() if seen is None else seen
    for name in re.findall(r'^#include "([^"]+)"', src.read_text(), re.M):
        for d in dirs:
            if (d / name).exists() and (d / name) not in seen:
                seen.add(d / name)
                _headers(d / name, dirs, seen)
                break
    return seen


def _compile(cmd: list[str], src: Path, obj: Path, cache: Path, dirs: list[Path]) -> Path:
    """Compile `src` with `cmd`, reusing an object from `cache` with the same flags and sources."""
    key = hashlib.sha1(" ".join(cmd).encode())
    for f in sorted(_headers(src, dirs)):
        key.update(f.read_bytes())
    key.update(src.read_bytes())
    cached = cache / f"{key.hexdigest()}.o"
    if not cached.exists():
        r = subprocess.run([*cmd, "-c", src.name, "-o", str(cached.resolve()) + ".tmp"], capture_output=True, text=True,
                           cwd=src.parent)
        if r.returncode:
            raise RuntimeError(f"compiling {src.name} failed:\n{r.stderr[-3000:]}")
        Path(str(cached) + ".tmp").replace(cached)
    shutil.copyfile(cached, obj)
    return obj


def build(p: Project, target: str = "qemu", board: str | Board = "stm32f746", inputs: np.ndarray | None = None,
          out: str | Path = "mcunet-deploy", dsp: bool = True, sanitize: bool = False,
          cache: str | Path | None = None) -> Build:
    """Write the project with the harness and `inputs` into `out` and compile it for `target`:
    'host' (the PC's gcc; `sanitize` adds AddressSanitizer and UBSan), 'qemu' or 'renode' (the
    board's arm-none-eabi build). `dsp` selects the DSP kernels (emulated in C on the host)."""
    if target not in EMULATORS:
        raise UserError(f"unknown emulator '{target}'; choose one of {', '.join(EMULATORS)}")
    b = board if isinstance(board, Board) else boards.get(board)
    if target == "renode":
        b = boards.RENODE[b.name] if b.name in boards.RENODE else None
        if b is None:
            raise UserError(f"Renode files are generated for {', '.join(boards.RENODE)} only")
    arm = target != "host"
    if arm and (why := toolchain_missing()):
        raise UserError(why)
    xs = _random_inputs(p, 1) if inputs is None else np.asarray(inputs)
    out = Path(out)
    p.write(out)
    cache = Path(cache) if cache else out / ".objs"
    cache.mkdir(parents=True, exist_ok=True)
    (out / "boards").mkdir(exist_ok=True)
    for f in (*HARNESS, "boards/board.c", "boards/board_host.c"):
        (out / f).write_text((codegen.CSRC / f).read_text())
    (out / "inputs.c").write_text(_inputs_source(p, xs, out))
    sources = [*(f for f in p.files if f.endswith(".c")), "main.c", "inputs.c",
               "boards/board.c" if arm else "boards/board_host.c"]
    flags = ["-O2", "-std=c99", "-Wall", "-Wextra", "-I.", "-Iboards"]  # relative: cache keys hold no folder
    if arm:
        check_budget(p, b, xs.nbytes)
        cc = [ARM_GCC, *b.cflags, *flags, "-ffunction-sections", "-fdata-sections", *b.defines]
    else:
        cc = ["gcc", *flags, "-g", *(SANITIZE if sanitize else ())]
    cc.append(f"-DMCU_DSP={int(dsp)}")
    objs_dir = out / "obj"
    objs_dir.mkdir(exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        objs = list(pool.map(lambda s: _compile(cc, out / s, objs_dir / (Path(s).stem + ".o"), cache,
                                                [out, out / "boards"]), sources))
    exe = out / ("fw.elf" if arm else "model_host")
    if arm:
        (out / "linker.ld").write_text(b.linker_script())
        link = [ARM_GCC, *b.cflags, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
                "-Wl,--gc-sections", "-T", str(out / "linker.ld")]
    else:
        link = ["gcc", *(SANITIZE if sanitize else ())]
    r = subprocess.run([*link, *map(str, objs), "-o", str(exe)], capture_output=True, text=True)
    if r.returncode:
        raise (_linker_error(p, b, r.stderr) if arm else None) or RuntimeError(f"linking failed:\n{r.stderr[-3000:]}")
    sections = _sections(exe) if arm else {}
    return Build(p, target, b if arm else None, dsp, out, exe, len(xs), cache, sections)


def _sections(elf: Path) -> dict[str, int]:
    """Section sizes of an ARM ELF (`arm-none-eabi-size -A`)."""
    r = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True)
    sizes = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def _random_inputs(p: Project, n: int, seed: int = 0) -> np.ndarray:
    """`n` random inputs of the model's input dtype and shape (int8: uniform; float32: in [-1, 1])."""
    _, dtype, shape = p.input
    rng = np.random.default_rng(seed)
    if dtype == "int8":
        return rng.integers(-128, 128, (n, *shape[1:])).astype(np.int8)
    return rng.uniform(-1, 1, (n, *shape[1:])).astype(np.float32)


# -------------------------------------------------------------------------------------- run
def _plugin(cache: Path) -> Path:
    """The QEMU instruction-count plugin, built once with the PC's gcc."""
    src = codegen.CSRC / "boards" / "icount_plugin.c"
    so = cache / f"icount-{hashlib.sha1(src.read_bytes()).hexdigest()[:12]}.so"
    if not so.exists():
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", str(src), "-o", str(so)],
                       check=True, capture_output=True)
    return so


def _symbol(elf: Path, name: str) -> int:
    r = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise RuntimeError(f"symbol {name} not found in {elf}")


def run(bld: Build, timeout: float = 120) -> Run:
    """Execute `bld` (natively or under QEMU) and parse the harness's output."""
    if bld.target == "renode":
        raise UserError(f"Renode runs through its Robot test: renode-test {bld.dir / 'model.robot'}")
    cmd, marks_file = [str(bld.exe)], None
    if bld.target == "qemu":
        cmd = [QEMU, "-M", bld.board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "null",
               "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(bld.exe)]
        if bld.board.ticks == "mark":
            marks_file = bld.dir / "icount.txt"
            marks_file.unlink(missing_ok=True)
            mark = _symbol(bld.exe, "board_ticks")
            cmd[1:1] = ["-plugin", f"{_plugin(bld.cache)},mark={hex(mark)},out={marks_file}"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{bld.exe.name} did not finish within {timeout} s") from None
    text = r.stdout + r.stderr  # QEMU writes semihosting output to stderr
    if r.returncode or "done" not in (line.strip() for line in text.splitlines()):
        why = "a HardFault" if r.returncode == 3 else f"exit code {r.returncode}"
        raise RuntimeError(f"{bld.exe.name} failed ({why}):\n{text[-3000:]}")
    return _parse(bld, text, marks_file)


def _parse(bld: Build, text: str, marks_file: Path | None) -> Run:
    p = bld.project
    outs: dict[tuple[int, int], list[str]] = {}
    ticks: dict = {"run": {}}
    ops = [0] * len(p.marks)
    stack = None
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "out":
            outs.setdefault((int(f[1]), int(f[2])), []).append(f[3])
        elif f[:2] == ["ticks", "calib"]:
            ticks["calib"] = int(f[3]) - int(f[2])
        elif f[:2] == ["ticks", "run"]:
            ticks["run"][int(f[2])] = (int(f[4]) - int(f[3])) % 2 ** 32
        elif f[0] == "mark_overhead":
            ticks["mark"] = int(f[1])
        elif f[0] == "op":
            ops[int(f[1])] = int(f[2])
        elif f[0] == "stack":
            stack = int(f[1])
    outputs = []
    for n in range(bld.n_inputs):
        row = []
        for k, (_, dtype, shape) in enumerate(p.outputs):
            raw = bytes.fromhex("".join(outs.get((n, k), [])))
            row.append(np.frombuffer(raw, np.dtype(dtype)).reshape(shape) if raw else None)
        outputs.append(row)
    if bld.target == "host":
        return Run(outputs, None, None, None)
    if marks_file is not None:
        ticks, ops = _replay(p, bld.n_inputs, [int(v) for v in marks_file.read_text().split()])
    calls = np.bincount(p.mark_order, minlength=len(p.marks))
    instructions = [ticks["run"][n] - ticks["calib"] for n in range(bld.n_inputs)]
    op_instr = [int(t - c * ticks["mark"]) for t, c in zip(ops, calls)]
    return Run(outputs, instructions, op_instr, stack)


def _replay(p: Project, n_inputs: int, reads: list[int]) -> tuple[dict, list[int]]:
    """The harness's arithmetic on the counts a plugin recorded at each board_ticks() call."""
    expected = 2 + 2 * n_inputs + 3 + len(p.mark_order)
    if len(reads) != expected:
        raise RuntimeError(f"the instruction-count plugin recorded {len(reads)} marks, expected {expected}")
    ticks = {"calib": reads[1] - reads[0], "run": {n: reads[3 + 2 * n] - reads[2 + 2 * n] for n in range(n_inputs)}}
    base = 2 + 2 * n_inputs
    ticks["mark"] = reads[base + 2] - reads[base + 1]
    ops = [0] * len(p.marks)
    prev = reads[base + 2]
    for i, t in zip(p.mark_order, reads[base + 3:]):
        ops[i] += t - prev
        prev = t
    return ticks, ops


# ------------------------------------------------------------------------------------ renode
RESC = """:name: {model} on the STM32F746 (generated by mcunet_lite.deploy)
using sysbus
mach create "stm32f746"
machine LoadPlatformDescription @platforms/cpus/stm32f746.repl
sysbus LoadELF @{elf}
sysbus.cpu VectorTableOffset 0x08000000
"""

ROBOT = """*** Settings ***
Suite Setup       Setup
Suite Teardown    Teardown
Test Teardown     Test Teardown
Resource          ${{RENODEKEYWORDS}}

*** Test Cases ***
{model} Runs Bit-Exact On The STM32F746
    Execute Script            ${{CURDIR}}/model.resc
    Create Terminal Tester    sysbus.usart1    timeout={timeout}
    Start Emulation
{waits}
    Wait For Line On Uart     done
    ${{n}}=    Execute Command    sysbus.cpu ExecutedInstructions
    Log To Console    executed instructions: ${{n}}
"""


def renode_files(bld: Build, expected: list[list[np.ndarray]], timeout: int = 120) -> tuple[Path, Path]:
    """Write `model.resc` (load the ELF on Renode's STM32F746) and `model.robot` (a Robot Framework
    test that waits for every expected output line on USART1, then logs `cpu ExecutedInstructions`)."""
    model = re.sub(r"[^A-Za-z0-9 _-]", "_", _model_name(bld.project))
    resc = bld.dir / "model.resc"
    resc.write_text(RESC.format(model=model, elf=bld.exe.resolve()))
    waits = []
    for n, row in enumerate(expected):
        for k, y in enumerate(row):
            data = np.ascontiguousarray(y).view(np.uint8).reshape(-1).tobytes().hex()
            waits += [f"    Wait For Line On Uart     out {n} {k} {data[i:i + 128]}" for i in range(0, len(data), 128)]
    robot = bld.dir / "model.robot"
    robot.write_text(ROBOT.format(model=model, timeout=timeout, waits="\n".join(waits)))
    return resc, robot


def run_renode(robot: Path, timeout: float = 600) -> tuple[bool, int | None]:
    """Run a generated Robot test with `renode-test` (where installed): (outputs match, executed
    instructions or None). renode-test does not echo UART lines; its exit code is the verdict (zero:
    every expected line was waited for), a failed `Wait For Line On Uart` is reported as
    'Terminal tester failed!', and the test's `Log To Console` prints the count (hex in Renode 1.14)."""
    if shutil.which(RENODE_TEST) is None:
        raise UserError(f"{RENODE_TEST} is not on PATH (Renode is not installed); the generated test is {robot}")
    r = subprocess.run([RENODE_TEST, str(robot)], capture_output=True, text=True, timeout=timeout)
    text = r.stdout + r.stderr
    if r.returncode and "Terminal tester failed" not in text:
        raise RuntimeError(f"renode-test failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return r.returncode == 0, renode_instructions(text)


def renode_instructions(text: str) -> int | None:
    """The count our Robot test logs ('executed instructions: 0x00000000027AA611' or decimal), if any."""
    m = re.search(r"executed instructions:\s*(0x[0-9A-Fa-f]+|\d+)", text)
    return int(m.group(1), 0) if m else None


# ------------------------------------------------------------------------------------ models
def load_int8(model: str, width: float | None = None, resolution: int | None = None,
              num_classes: int | None = None, config: str | None = None, seed: int = 0,
              size_limit: float = LIMIT_MIB) -> tuple[Graph, list[str]]:
    """An int8 graph to deploy and notes about it: a .tflite file as it is (validated, at most
    `size_limit` MiB of file and of activations), or a zoo model with random weights (seed `seed`)
    quantized on random calibration images, which is not a trained model."""
    if model.endswith(".tflite"):
        from . import tflite_io
        return tflite_io.read(model, size_limit), []
    import torch

    from . import quant, zoo
    cfg = zoo.get(model, width, resolution, num_classes, config)
    torch.manual_seed(seed)
    module = cfg.module()
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (8, cfg.resolution, cfg.resolution, 3)).astype(np.float32)
    _, q = quant.from_module(module, cfg.resolution, images, model)
    q.meta["model"] = f"{model}-w{cfg.width}-r{cfg.resolution}" if hasattr(cfg, "width") else model
    return q, [f"zoo model '{model}' with random weights (seed {seed}), quantized on 8 random calibration "
               "images: it shows deployment, not accuracy"]


# ------------------------------------------------------------------------------------ deploy
def layer_kind(g: Graph, name: str, first_conv: str | None) -> str:
    """The benchmark's layer types: first conv, depthwise, narrow / wide pointwise (fewer / at least
    32 input channels), other conv, fully connected, other."""
    op = next(o for o in g.ops if o.name == name)
    if name == first_conv:
        return "first conv"
    label = op_label(g, op)
    if label == "pointwise":
        return "wide pointwise" if g.shape(op.inputs[0])[-1] >= 32 else "narrow pointwise"
    return {"depthwise": "depthwise", "conv2d": "conv", "linear": "fully connected"}.get(label, "other")


def deploy(g: Graph, board: str = "stm32f746", emulator: str = "qemu", inputs: np.ndarray | None = None,
           patch_plan=None, out: str | Path = "mcunet-deploy", dsp: bool = True, sanitize: bool = False,
           cache: str | Path | None = None, n_random: int = 2, seed: int = 0, timeout: float = 120,
           notes: list[str] | None = None, overrides: dict[str, str] | None = None) -> Report:
    """Emit `g` (layer by layer, or patch-based with `patch_plan`), build it for `board` and
    `emulator`, run it on `inputs` (default: `n_random` random inputs) and compare every output with
    `int8ref`. `notes` are passed on to the report; `overrides` replaces kernel functions
    (`codegen.override_kernels`)."""
    p = codegen.emit(g, patch_plan or schedule.plan(g), overrides=overrides)
    xs = _random_inputs(p, n_random, seed) if inputs is None else np.asarray(inputs)
    expected = [int8ref.run_all(g, x[None]) for x in xs]
    bld = build(p, emulator, board, xs, out, dsp, sanitize, cache)
    if emulator == "renode":
        _, robot = renode_files(bld, expected, int(timeout))
        match, instr = run_renode(robot, timeout)
        run_ = Run([], None, None, None)
        notes = [*(notes or []), "Renode counts the whole run (start-up, every input, UART output): no per-MAC "
                 "or per-layer figure; those come from QEMU"]
    else:
        run_ = run(bld, timeout)
        match = all(y is not None and y.shape == e.shape and y.tobytes() == np.ascontiguousarray(e).tobytes()
                    for row, erow in zip(run_.outputs, expected) for y, e in zip(row, erow))
        instr = run_.instructions[0] if run_.instructions else None
    per_mac = instr / p.macs if instr is not None and p.macs and emulator != "renode" else None
    first = next((op.name for op in g.ops if op.kind == "conv2d" and not g.is_depthwise(op)), None)
    layers = []
    for i, name in enumerate(p.marks):
        row = {"name": name, "kind": layer_kind(g, name, first), "macs": p.op_macs.get(name, 0)}
        if run_.op_instructions:
            row["instructions"] = run_.op_instructions[i]
        layers.append(row)
    model_macs = sum(op_macs(g, op) for op in g.ops)
    return Report(_model_name(p), bld.board.name if bld.board else boards.get(board).name, emulator,
                  "dsp" if dsp else "portable", "patch" if patch_plan else "layer",
                  bld.flash_bytes if bld.sections else None,
                  bld.static_sram_bytes + run_.stack_bytes if run_.stack_bytes is not None else None,
                  run_.stack_bytes, p.arena_bytes, p.scratch_bytes, instr, p.macs, model_macs,
                  per_mac, bool(match), len(xs), layers,
                  [*(notes or []), *p.notes], run_.outputs)

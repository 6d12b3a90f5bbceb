"""Memory scheduler on the real models, side by side with TFLite Micro's own arena planner.

For each model: our best arena, the lower bound (largest total of tensors live at one op, in-place
pairs counted once), the greedy (TFLite-Micro-style) and naive arenas, the checker's verdict, and
TFLite Micro's planned arena head (`print_allocations`, activations only), run in a subprocess
because TFLite Micro prints from C, and TinyEngine's arena as its own code generator plans it
(measured for issue 19; `TINYENGINE`). The MCUNet models' explicit PADs are folded into their
convs on import and their float input is quantized in place (fuse.py, liveness.inplace_kind),
which is how the arena meets TinyEngine's. Then planning time for MobileNetV2-sized graphs.
Run: python benchmarks/schedule_table.py
"""
import re
import subprocess
import sys
import time
from pathlib import Path

from mcunet_lite import schedule, tflite_io, zoo

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
# TinyEngine's code generator on the same files (issue 19's table), bytes of activation arena
TINYENGINE = {"mlperf-tiny-vww-96-int8.tflite": 55_296, "mlperf-tiny-resnet8-cifar10-int8.tflite": 49_152,
              "mcunet-vww1-80-int8.tflite": 89_600, "mcunet-person-det-int8.tflite": 245_760}


def tflm_head(path: Path) -> str:
    """TFLite Micro's 'Arena allocation head' for `path` (its planned activation arena)."""
    code = ("from tflite_micro.python.tflite_micro import runtime\n"
            f"runtime.Interpreter.from_file({str(path)!r}).print_allocations()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    out = r.stdout + r.stderr
    m = re.search(r"Arena allocation head (\d+) bytes", out)
    return m.group(1) if m else "n/a"


def verdict(p) -> str:
    try:
        schedule.check(p)
        return "ok"
    except schedule.OverlapError as e:
        return f"OVERLAP: {e}"


def main() -> None:
    rows = [(f.name, tflite_io.read(f), tflm_head(f)) for f in sorted(MODELS.glob("*.tflite"))] \
        if MODELS.exists() else []
    rows.append(("mbv2 w0.35 r144 (zoo)", zoo.mobilenet_v2(0.35, 144).graph(), "n/a"))
    print(f"{'model':40s} {'best':>8s} {'bound':>8s} {'gap':>5s} {'greedy':>8s} {'naive':>9s} {'no-inplace':>10s} "
          f"{'checker':>7s} {'TFLM head':>9s} {'TinyEngine':>10s}")
    for name, g, head in rows:
        best, greedy, naive = (schedule.plan(g, a) for a in ("best", "greedy", "naive"))
        plain = schedule.plan(g, "best", inplace=False)
        gap = best.arena_bytes - best.lower_bound_bytes
        print(f"{name:40s} {best.arena_bytes:8d} {best.lower_bound_bytes:8d} {gap:5d} {greedy.arena_bytes:8d} "
              f"{naive.arena_bytes:9d} {plain.arena_bytes:10d} {verdict(best):>7s} {head:>9s} "
              f"{TINYENGINE.get(name, 'n/a'):>10}")
    g = zoo.mobilenet_v2(1.0, 224).graph()
    for allocator in ("greedy", "best"):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 2:
            schedule.plan(g, allocator)
            n += 1
        print(f"planning MobileNetV2 (1.0, 224, {len(g.ops)} ops) with '{allocator}': "
              f"{1000 * (time.perf_counter() - t0) / n:.1f} ms per plan")


if __name__ == "__main__":
    main()

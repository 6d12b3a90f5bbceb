"""The `mcunet-lite` command: one subcommand per stage of the pipeline.

Each subcommand is a `cmd_*` function registered in `build_parser`; user mistakes raise
`UserError` and print as one line with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import profile as prof
from . import zoo
from .errors import UserError
from .ir import Graph


def load_graph(model: str, width: float | None = None, resolution: int | None = None,
               config: str | None = None, num_classes: int | None = None) -> Graph:
    """MODEL argument -> Graph: a zoo name (with width / resolution / config) or a .tflite path."""
    if model.endswith(".tflite"):
        raise UserError(f"'{model}': reading .tflite files is not available in this version; "
                        f"use a zoo model: {', '.join(zoo.MODELS)}")
    return zoo.get(model, width, resolution, num_classes, config).graph()


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The MODEL argument and the zoo options every model-taking subcommand shares."""
    p.add_argument("model", help=f"zoo model ({', '.join(zoo.MODELS)}) or a .tflite file")
    p.add_argument("--width", type=float, help="width multiplier (zoo models)")
    p.add_argument("--resolution", type=int, help="input resolution in pixels (zoo models)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (zoo models)")
    p.add_argument("--config", help="JSON MBConv config for the 'mcunet' model (the format the NAS writes)")


def cmd_profile(a: argparse.Namespace) -> None:
    """Print MACs, params, Flash and per-op SRAM of a model, as a table or JSON."""
    p = prof.profile(load_graph(a.model, a.width, a.resolution, a.config, a.num_classes), a.rule)
    print(json.dumps(p.to_dict()) if a.json else prof.format_table(p))


def cmd_schedule(a: argparse.Namespace) -> None:
    """Plan the activation arena of a model and check the plan; table or JSON."""
    from . import schedule
    plan = schedule.plan(load_graph(a.model, a.width, a.resolution, a.config, a.num_classes), a.allocator,
                         inplace=not a.no_inplace)
    schedule.check(plan)
    if a.json:
        print(json.dumps(plan.to_dict()))
        return
    print(f"{'tensor':36s} {'offset':>9s} {'bytes':>9s} {'ops':>9s}")
    for t in plan.tensors.values():
        print(f"{t.name:36s} {t.offset:9d} {t.size:9d} {t.first_op:4d}..{t.last_op:<4d}")
    print(f"arena {plan.arena_bytes} bytes ({plan.arena_bytes / 1024:.1f} kB), lower bound {plan.lower_bound_bytes}, "
          f"allocator {plan.allocator}, in-place {'on' if plan.inplace else 'off'} ({len(plan.pairs)} pairs); "
          f"kernel scratch {plan.extra_buffers_bytes} bytes; Flash {plan.flash_bytes} bytes; checker: no overlap")


def cmd_demo(a: argparse.Namespace) -> None:
    """Run the kit end to end on offline defaults and write a report folder."""
    from . import demo
    out = demo.run(Path(a.out))
    print(f"report written to {out}/report.md")


def cmd_kit(a: argparse.Namespace) -> None:
    """Build the labs (execute solutions, generate student notebooks) or check a release."""
    from . import kit
    labs = a.lab or None
    if a.check:
        problems = kit.check(labs)
        for problem in problems:
            print(f"kit check: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(1)
        print(f"kit check: {len(labs or kit.lab_ids())} lab(s) up to date, no leaks into labs/")
        return
    for path in kit.build(labs, force=a.force, timeout=a.timeout):
        print(f"wrote {path.relative_to(kit.ROOT)}")


def cmd_grade(a: argparse.Namespace) -> None:
    """Grade a notebook with the package's checks; never modifies the file."""
    from . import kit
    report = kit.grade(a.notebook, timeout=a.timeout)
    print(json.dumps(report.to_dict()) if a.json else report.text())


def cmd_lab(a: argparse.Namespace) -> None:
    """Copy the student notebooks into a work folder (never overwriting) and open JupyterLab there."""
    import shutil
    import subprocess
    from . import kit
    work = Path(a.dir)
    work.mkdir(parents=True, exist_ok=True)
    for nb in sorted(kit.LABS.glob("*.ipynb")):
        if not (work / nb.name).exists():
            shutil.copy2(nb, work / nb.name)
            print(f"copied {nb.name} -> {work}/")
    if not a.copy_only:
        subprocess.run([sys.executable, "-m", "jupyterlab", "--notebook-dir", str(work)], check=False)


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their options."""
    ap = argparse.ArgumentParser(prog="mcunet-lite", description="Tiny deep learning on microcontrollers, "
                                 "rebuilt from MCUNet (V1 and V2).")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="MACs, params, Flash and peak SRAM of a model")
    add_model_args(p)
    p.add_argument("--rule", choices=prof.RULES, default="tinyengine", help="SRAM counting rule")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("schedule", help="plan the activation arena (lifetimes, in-place ops, allocator)")
    add_model_args(p)
    p.add_argument("--allocator", choices=["naive", "greedy", "best"], default="best")
    p.add_argument("--no-inplace", action="store_true", help="no in-place depthwise / add / reshape")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("kit", help="instructor: build labs from their sources, or check a release")
    p.add_argument("action", choices=["build"], help="build: execute solutions/ and generate labs/")
    p.add_argument("--check", action="store_true", help="only check: fail on stale files or leaks into labs/")
    p.add_argument("--lab", action="append", help="only this lab (NN_name); repeatable")
    p.add_argument("--force", action="store_true", help="overwrite edited student notebooks in labs/")
    p.add_argument("--timeout", type=int, default=600, help="per-cell time limit in seconds when executing")
    p.set_defaults(func=cmd_kit)

    p = sub.add_parser("grade", help="grade a lab notebook (yours or a student's)")
    p.add_argument("notebook", help="path to the .ipynb to grade (it is never modified)")
    p.add_argument("--json", action="store_true", help="print {lab, score, max_score, exercises}")
    p.add_argument("--timeout", type=int, default=120, help="per-cell time limit in seconds")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("lab", help="open JupyterLab on your own copy of the labs")
    p.add_argument("--dir", default="my-labs", help="your work folder (default: %(default)s)")
    p.add_argument("--copy-only", action="store_true", help="only copy the notebooks")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("demo", help="run the whole pipeline on offline defaults; writes a report")
    p.add_argument("--out", default="mcunet-lite-demo", help="report folder (default: %(default)s)")
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"mcunet-lite: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `mcunet-lite` command: one subcommand per stage of the pipeline.

Each subcommand is a `commands.cmd_*` function registered in `build_parser`; user mistakes raise
`UserError` and print as one line with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import commands
from . import profile as prof
from . import zoo
from .errors import UserError
from .validate import LIMIT_MIB


def _mib(text: str) -> float:
    """A positive, finite number of MiB (argparse type)."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of MiB, got {text}")
    return value


def add_size_limit_arg(p: argparse.ArgumentParser) -> None:
    """--size-limit: the cap on an untrusted model file, its activations and an input batch."""
    p.add_argument("--size-limit", type=_mib, default=LIMIT_MIB, metavar="MIB",
                   help=".tflite files and the activations of a run larger than this are refused (default: %(default)s)")


def add_replace_arg(p: argparse.ArgumentParser, flag: str = "--out", resumable: bool = False) -> None:
    """--force: the command may replace its existing output file (without it, it refuses: safeio.refuse_existing)."""
    p.add_argument("--force", action="store_true", help=f"replace {flag} if it exists"
                   + (" (--resume continues it instead)" if resumable else ""))


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """--device for the training subcommands (see `train.pick_device`)."""
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (a GPU when torch sees one); "
                   "torchrun runs stay on the CPU (default: %(default)s)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The MODEL argument and the zoo options every model-taking subcommand shares."""
    p.add_argument("model", help=f"zoo model ({', '.join(zoo.MODELS)}) or a .tflite file")
    p.add_argument("--width", type=float, help="width multiplier (zoo models)")
    p.add_argument("--resolution", type=int, help="input resolution in pixels (zoo models)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (zoo models)")
    p.add_argument("--config", help="JSON MBConv config for the 'mcunet' model (the format the NAS writes)")
    add_size_limit_arg(p)


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their options."""
    ap = argparse.ArgumentParser(prog="mcunet-lite", description="Tiny deep learning on microcontrollers, "
                                 "rebuilt from MCUNet (V1 and V2).")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("profile", help="MACs, params, Flash and peak SRAM of a model")
    add_model_args(p)
    p.add_argument("--rule", choices=prof.RULES, default="tinyengine", help="SRAM counting rule")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_profile)

    p = sub.add_parser("schedule", help="plan the activation arena (lifetimes, in-place ops, allocator)")
    add_model_args(p)
    p.add_argument("--allocator", choices=["naive", "greedy", "best"], default="best")
    p.add_argument("--no-inplace", action="store_true", help="no in-place depthwise / add / reshape")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_schedule)

    p = sub.add_parser("patch", help="MCUNetV2 patch-based inference plan: peak SRAM and MAC overhead")
    add_model_args(p)
    p.add_argument("--grid", type=int, help="N: an N x N grid of patches over the stage output")
    p.add_argument("--split-block", type=int, help="patch stage = stem + first K blocks (zoo models)")
    p.add_argument("--split-op", type=int, help="patch stage = ops 0..I in execution order (any model)")
    p.add_argument("--auto-split", action="store_true", help="pick the split and grid with the least MAC overhead")
    p.add_argument("--sram-budget", type=float, help="SRAM budget in kB for --auto-split")
    p.add_argument("--trimmed", action="store_true", help="trim border patches instead of fixed-size patches")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_patch)

    nas = sub.add_parser("nas", help="TinyNAS: search-space optimisation and one-shot search")
    nas_sub = nas.add_subparsers(dest="nas_command", required=True)
    p = nas_sub.add_parser("space", help="stage 1: choose width and resolution for SRAM / Flash budgets")
    p.add_argument("--sram", type=float, default=320, help="SRAM budget in kB (default: %(default)s)")
    p.add_argument("--flash", type=float, default=1024, help="Flash budget in kB (default: %(default)s)")
    p.add_argument("--patch", action="store_true", help="count SRAM with MCUNetV2 patch-based inference")
    p.add_argument("--samples", type=int, default=1000, help="subnets sampled per space (default: %(default)s)")
    p.add_argument("--widths", type=float, nargs="+", help="width multipliers to try")
    p.add_argument("--resolutions", type=int, nargs="+", help="resolutions to try")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_nas_space)

    p = nas_sub.add_parser("train-supernet", help="stage 2a: train the elastic supernet of one space")
    p.add_argument("--width", type=float, default=0.4)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--largest-epochs", type=int, default=0,
                   help="first epochs (of --epochs) that train only the largest subnet, as OFA starts")
    p.add_argument("--n-train", type=int, default=3000, help="synthetic training images")
    p.add_argument("--n-val", type=int, default=500, help="synthetic validation images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="supernet.pt")
    p.add_argument("--resume", action="store_true", help="continue an interrupted supernet run with the same "
                   "--out (its training state is kept in OUT.resume after every epoch)")
    add_replace_arg(p, resumable=True)
    add_device_arg(p)
    p.set_defaults(func=commands.cmd_nas_train)

    p = nas_sub.add_parser("scratch", help="train subnets from scratch: the reference a supernet's ranking and "
                           "a search's winner are judged by")
    p.add_argument("--width", type=float, required=True, help="the supernet space's width")
    p.add_argument("--resolution", type=int, required=True, help="the supernet space's resolution")
    p.add_argument("--supernet", default="supernet", help="the supernet the winner is searched in (file or asset)")
    p.add_argument("--sram", type=float, required=True, help="SRAM budget of the winner and MobileNetV2, kB")
    p.add_argument("--flash", type=float, required=True, help="Flash budget of the winner and MobileNetV2, kB")
    p.add_argument("--spanning", type=int, default=8, help="subnets spanning the space, by MACs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the winner and MobileNetV2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-train", type=int, default=16000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--parents", type=int, default=4)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--n-search-val", type=int, default=500, help="validation images (seed 0) of the search's fitness")
    p.add_argument("--seed", type=int, default=0, help="seed of the spanning subnets' sample and of the search")
    p.add_argument("--out", default="scratch.pt")
    p.add_argument("--resume", action="store_true", help="continue with the runs --out already holds")
    add_replace_arg(p, resumable=True)
    p.set_defaults(func=commands.cmd_nas_scratch)

    p = nas_sub.add_parser("search", help="stage 2b: evolutionary search under SRAM / Flash / MAC limits")
    p.add_argument("--sram", type=float, default=320, help="SRAM budget in kB")
    p.add_argument("--flash", type=float, default=1024, help="Flash budget in kB")
    p.add_argument("--macs", type=float, help="MAC limit in millions (default: none)")
    p.add_argument("--patch", action="store_true", help="joint search with patch-based inference (MCUNetV2)")
    p.add_argument("--supernet", help="a trained supernet file, or 'supernet' for the shipped one (the default "
                   "once trained: `mcunet-lite assets list`)")
    p.add_argument("--train-supernet", action="store_true", help="choose the space for these budgets (stage 1) and "
                   "train its supernet here instead of searching the shipped one")
    p.add_argument("--width", type=float, help="space width when training a supernet here")
    p.add_argument("--resolution", type=int, help="space resolution when training a supernet here")
    p.add_argument("--space-samples", type=int, default=100, help="stage-1 samples per space")
    p.add_argument("--epochs", type=int, default=3, help="supernet epochs when training one here")
    p.add_argument("--largest-epochs", type=int, default=0,
                   help="first supernet epochs (of --epochs) that train only the largest subnet, as OFA starts")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=500)
    p.add_argument("--population", type=int, default=100)
    p.add_argument("--parents", type=int, default=20)
    p.add_argument("--mutations", type=int, default=50)
    p.add_argument("--crossovers", type=int, default=50)
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_nas_search)

    p = sub.add_parser("kit", help="instructor: build labs from their sources, check a release, build the book")
    p.add_argument("action", choices=["build", "book"], help="build: execute solutions/ and generate labs/ and the "
                   "book's chapters; book: build the HTML book (the student book: no solutions)")
    p.add_argument("--instructor", action="store_true", help="book: the instructor's book, with solutions and "
                   "hidden tests")
    p.add_argument("--out", default="mcunet-lite-book", help="book: a new or empty folder (default: %(default)s)")
    p.add_argument("--check", action="store_true", help="only check: fail on stale files or leaks into labs/")
    p.add_argument("--lab", action="append", help="only this lab (NN_name); repeatable")
    p.add_argument("--force", action="store_true", help="overwrite edited student notebooks in labs/")
    p.add_argument("--timeout", type=int, default=600, help="per-cell time limit in seconds when executing")
    p.set_defaults(func=commands.cmd_kit)

    p = sub.add_parser(
        "grade", help="grade a lab notebook (yours or a student's)", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grading EXECUTES the notebook's code. It runs in a separate process, in a fresh temporary\n"
        "folder and a process group of its own, under a memory cap and per-cell, per-exercise and total time\n"
        "limits that hold even when the code ignores signals; its output is capped at 1 MiB. The cases are drawn\n"
        "from a seed chosen now (printed; --seed or $MCUNET_LITE_GRADE_SEED repeats them) and the expected values\n"
        "are computed in the grader's process; only the student's return values come back, as plain data, and\n"
        "are compared there. A function that calls the library function computing its answer (its twin), however\n"
        "wrapped, fails that case. Nothing printed is read as a score, and the notebook file is never modified.\n"
        "It is not a container: the code can read what your user can read. Grade untrusted work as a user\n"
        "with no access to anything private (or in a container).")
    p.add_argument("notebook", help="path to the .ipynb to grade (it is never modified)")
    p.add_argument("--json", action="store_true", help="print {lab, score, max_score, seed, exercises, notebook_errors}")
    p.add_argument("--timeout", type=float, default=120, help="time limit of each cell and of each exercise's cases, "
                   "in seconds (default 120)")
    p.add_argument("--total-timeout", type=float, default=1800, help="time limit of the whole run (default 1800 s)")
    p.add_argument("--memory", type=float, default=4096, help="memory cap of the notebook's process in MiB "
                   "(default 4096)")
    p.add_argument("--seed", type=int, help="the cases' seed (default: $MCUNET_LITE_GRADE_SEED, else a fresh one)")
    p.set_defaults(func=commands.cmd_grade)

    p = sub.add_parser("lab", help="open JupyterLab on your own copy of the labs")
    p.add_argument("--dir", default="my-labs", help="your work folder (default: %(default)s)")
    p.add_argument("--copy-only", action="store_true", help="only copy the notebooks")
    p.add_argument("--port", type=int, help="JupyterLab's port (default: the first free one from 8888)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; open the printed URL yourself")
    p.set_defaults(func=commands.cmd_lab)

    p = sub.add_parser("quantize", help="post-training int8 quantization of a zoo model -> .tflite")
    add_model_args(p)
    p.add_argument("--checkpoint", help="weights from `mcunet-lite train --out` (default: random init)")
    p.add_argument("--calib", default="synthetic",
                   help="calibration images: 'synthetic', a VWW folder or a .npy of NHWC images (default: %(default)s)")
    p.add_argument("--calib-n", type=int, default=64, help="number of calibration images (default: %(default)s)")
    p.add_argument("--percentile", type=float, help="clip activation ranges at this percentile (e.g. 99.99) "
                   "instead of min/max")
    p.add_argument("--float-io", action="store_true", help="float32 input/output through QUANTIZE/DEQUANTIZE")
    p.add_argument("--out", required=True, help="output .tflite file")
    add_replace_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_quantize)

    p = sub.add_parser("run", help="run a .tflite model with the int8 reference executor")
    p.add_argument("model", help="a .tflite file (int8)")
    p.add_argument("--input", required=True, help=".npy input in the model's own dtype and shape")
    p.add_argument("--output", required=True, help=".npy output (.npz for several outputs)")
    add_replace_arg(p, "--output")
    add_size_limit_arg(p)
    p.set_defaults(func=commands.cmd_run)

    data_p = sub.add_parser("data", help="Visual Wake Words data: synthetic sets, dataset info")
    data_sub = data_p.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("synth", help="write a synthetic person / no-person set in a real VWW layout")
    p.add_argument("--n", type=int, required=True, help="number of scenes (pyvww: train split)")
    p.add_argument("--n-val", type=int, help="pyvww validation scenes (default: n / 5)")
    p.add_argument("--resolution", type=int, default=96, help="image size in pixels (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=["mlperf", "pyvww", "vww01"], default="mlperf",
                   help="layout to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="0 (easy) .. 1 (hard) (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files mcunet-lite did not write")
    p.set_defaults(func=commands.cmd_data_synth)
    p = data_sub.add_parser("info", help="layout, label rule, counts per class and image size of a VWW folder")
    p.add_argument("path", help="a pyvww, vw_coco2014_96 or vww01 folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_data_info)

    p = sub.add_parser("train", help="train a zoo model on person / no-person (works under torchrun)")
    p.add_argument("--model", default="mbv2", help=f"zoo model ({', '.join(zoo.MODELS)}) (default: %(default)s)")
    p.add_argument("--width", type=float, help="width multiplier (default: the model's)")
    p.add_argument("--resolution", type=int, default=64, help="input resolution (default: %(default)s)")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a VWW folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=5, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="checkpoint file, written after every epoch")
    p.add_argument("--redistribute", type=int, metavar="K", help="train the receptive-field-redistributed version "
                   "of the MBConv model for a patch stage of K blocks (MCUNetV2 section 3.2)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its --out checkpoint "
                   "(same settings); without it the run starts over")
    add_replace_arg(p, resumable=True)
    p.add_argument("--n-train", type=int, default=4000, help="synthetic training scenes (default: %(default)s)")
    p.add_argument("--n-val", type=int, default=1000, help="synthetic validation scenes (default: %(default)s)")
    p.add_argument("--difficulty", type=float, default=0.5, help="synthetic difficulty 0..1 (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="no progress bars; print the final record as JSON")
    add_device_arg(p)
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("deploy", help="emit C, build and run it on an emulated STM32 (or the PC), compare with int8ref")
    add_model_args(p)
    p.add_argument("--board", choices=["stm32f746", "stm32f405"], default="stm32f746",
                   help="target budget and CPU (default: %(default)s)")
    p.add_argument("--emulator", choices=["qemu", "renode", "host"], default="qemu",
                   help="qemu (Cortex-M, counts instructions), renode (writes .resc/.robot; runs them if renode-test "
                        "is installed) or host (the PC's gcc) (default: %(default)s)")
    p.add_argument("--patch-grid", type=int, help="N: run ops 0..I patch by patch on an N x N grid (MCUNetV2)")
    p.add_argument("--split-op", type=int, help="I: the last op of the patch stage")
    p.add_argument("--input", help=".npy of inputs (N, H, W, C) in the model's input dtype (default: 2 random)")
    p.add_argument("--output", help="save the device's outputs to this .npy (.npz for several outputs)")
    p.add_argument("--out", default="mcunet-deploy", help="project and build folder: new, empty or an earlier deploy's "
                   "(default: %(default)s)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files mcunet-lite did "
                   "not write, and replace --output if it exists")
    p.add_argument("--portable", action="store_true", help="portable C kernels instead of the Cortex-M DSP ones")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_deploy)

    det = sub.add_parser("detect", help="tiny person / face detector: train, evaluate (AP@0.5), predict on a photo")
    det_sub = det.add_subparsers(dest="detect_command", required=True)
    data_help = ("'synthetic', 'synthetic-crowd' (many small figures), a WIDER Face folder, a COCO-style folder "
                 "or an instances JSON (with --images)")
    p = det_sub.add_parser("train", help="train on synthetic person / face boxes (or real data); report AP")
    p.add_argument("--backbone", default="mbv2", help="zoo MBConv model: mbv2 or mcunet (default: %(default)s)")
    p.add_argument("--mbconv", help="an MBConv JSON config (e.g. from `nas search`) as the backbone")
    p.add_argument("--width", type=float, default=0.35, help="width multiplier (default: %(default)s)")
    p.add_argument("--resolution", type=int, default=128, help="input resolution (default: %(default)s)")
    p.add_argument("--data", default="synthetic", help=f"training data: {data_help} (default: %(default)s)")
    p.add_argument("--val-data", help="validation data (default: the 'val' split of --data)")
    p.add_argument("--images", help="image folder of a COCO instances JSON")
    p.add_argument("--epochs", type=int, default=10, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate (default: %(default)s)")
    p.add_argument("--n-train", type=int, default=4000, help="synthetic training scenes (default: %(default)s)")
    p.add_argument("--n-val", type=int, default=500, help="synthetic validation scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="synthetic difficulty 0..1 (default: %(default)s)")
    p.add_argument("--out", help="checkpoint file (weights, config with anchors, validation AP)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same --out "
                   "(its training state is kept in OUT.resume after every epoch)")
    add_replace_arg(p, resumable=True)
    p.add_argument("--json", action="store_true", help="no progress bars; print the final record as JSON")
    add_device_arg(p)
    p.set_defaults(func=commands.cmd_detect_train)
    p = det_sub.add_parser("eval", help="AP@0.5 overall and on small objects, float or int8")
    p.add_argument("checkpoint", help="a file from `detect train --out`, or a shipped detector: "
                   "detector-128, detector-256 (`mcunet-lite assets list`)")
    p.add_argument("--data", default="synthetic", help=f"{data_help} (default: %(default)s)")
    p.add_argument("--images", help="image folder of a COCO instances JSON")
    p.add_argument("--split", default="val", choices=["train", "val"], help="(default: %(default)s)")
    p.add_argument("--n", type=int, default=500, help="synthetic scenes (default: %(default)s)")
    p.add_argument("--seed", type=int, help="synthetic stream seed (default: the checkpoint's)")
    p.add_argument("--difficulty", type=float, help="synthetic difficulty (default: the checkpoint's)")
    p.add_argument("--resolution", type=int, help="evaluate at another input resolution (default: the checkpoint's)")
    p.add_argument("--int8", action="store_true", help="quantize and run with the int8 reference kernels")
    p.add_argument("--calib-n", type=int, default=64, help="synthetic calibration images for --int8 (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_detect_eval)
    p = det_sub.add_parser("synth", help="write synthetic person / face boxes as images + COCO-style JSON")
    p.add_argument("--n", type=int, required=True, help="number of scenes")
    p.add_argument("--resolution", type=int, default=128, help="image size in pixels (default: %(default)s)")
    p.add_argument("--split", default="val", choices=["train", "val"], help="(default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder (images/ and annotations/instances_SPLIT.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="0 (easy) .. 1 (hard) (default: %(default)s)")
    p.set_defaults(func=commands.cmd_detect_synth)
    p = det_sub.add_parser("predict", help="draw detections on a photo and write a PNG")
    p.add_argument("checkpoint", help="a file from `detect train --out`, or a shipped detector: "
                   "detector-128, detector-256 (`mcunet-lite assets list`)")
    p.add_argument("image", help="an image file, or a photo shipped with a package: astronaut, grace_hopper")
    p.add_argument("--out", default="detections.png", help="PNG to write (default: %(default)s)")
    add_replace_arg(p)
    p.add_argument("--score", type=float, default=0.3, help="score threshold (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_detect_predict)

    p = sub.add_parser("assets", help="trained course models: list, verify against the manifest, retrain")
    assets_sub = p.add_subparsers(dest="assets_command", required=True)
    q = assets_sub.add_parser("list", help="the assets, how each was made and the metrics it was measured at")
    q.add_argument("--json", action="store_true", help="print one JSON list")
    q = assets_sub.add_parser("verify", help="re-measure each asset's headline metric on fresh validation scenes")
    q.add_argument("names", nargs="*", help="assets to verify (default: every trained one)")
    q.add_argument("--n", type=int, help="validation scenes (default: as many as the manifest used)")
    q.add_argument("--retrain", metavar="NAME", help="reproduce asset NAME with its recorded command, then compare")
    q.add_argument("--work", default="mcunet-lite-assets", help="where --retrain trains (default: %(default)s)")
    q.add_argument("--json", action="store_true", help="print one JSON list")
    q = assets_sub.add_parser("publish", help="maintainers: ship a checkpoint made by an asset's recipe")
    q.add_argument("name")
    q.add_argument("checkpoint")
    q.add_argument("--seed", type=int, help="ship CHECKPOINT as a repeat run of the published asset: its recipe "
                   "trained with this seed instead (default: the asset itself)")
    p.set_defaults(func=commands.cmd_assets)

    p = sub.add_parser("demo", help="run the whole pipeline on offline defaults; writes a report")
    p.add_argument("--out", default="mcunet-lite-demo", help="report folder (default: %(default)s)")
    p.add_argument("--mcu-images", type=int, default=300, help="validation images the emulated MCU classifies "
                   "(default: %(default)s)")
    p.set_defaults(func=commands.cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
    except UserError as e:
        print(f"mcunet-lite: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mcunet-lite ... | head`: the reader left; stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())

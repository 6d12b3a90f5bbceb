"""Detection under an SRAM budget: layer-by-layer at the largest resolution that fits vs patch-based
inference at the larger resolution that then fits (MCUNetV2 section 5.3, its WIDER Face / VOC
result), side by side over seeds: peak SRAM, MACs, AP@0.5 overall and on small objects.

The detector is the kit's YOLO-style MBConv detector (`mcunet_lite.detect`), trained on the
synthetic person / face boxes at each resolution with the same data stream, epochs and seed, and
evaluated on the same validation scenes. Peak SRAM is the scheduled arena (layer by layer) or the
patch plan's peak (`patch.auto_plan`: the split and grid with the fewest MACs that fit). With
--int8 the detector is also quantized and evaluated through the int8 reference kernels, patch by
patch where the plan says so.
Run: python benchmarks/detect_resolution.py [--budget 256] [--seeds 0 1 2] [--epochs 10] [--out DIR] [--json]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mcunet_lite import data, detdata, detect, patch, schedule
from mcunet_lite.errors import UserError
from mcunet_lite.profile import op_macs

KB = 1024


def pc(v: float | None) -> str:
    """An AP in %, or n/a where no box counted."""
    return "n/a" if v is None else f"{100 * v:.1f}"


def memory(resolution: int, budget: int, backbone: str, width: float) -> dict:
    """Layer-by-layer arena and the best fitting patch plan (None if none fits) at `resolution`."""
    cfg = detect.config(backbone, width, resolution)
    g = detect.graph(detect.module(cfg), cfg)
    arena = schedule.plan(g).arena_bytes
    try:
        p = patch.auto_plan(g, budget)
    except UserError:
        p = None
    return {"resolution": resolution, "layerwise_bytes": arena, "macs": sum(op_macs(g, op) for op in g.ops),
            "patch": p}


def largest_fitting(budget: int, backbone: str, width: float, step: int, cap: int) -> tuple[dict, dict, int]:
    """(largest layer-by-layer fit, largest patch-based fit up to `cap`, largest patch-based fit
    found): resolutions grow in `step` until patch-based inference no longer fits."""
    lbl = pb = None
    top = 0
    r = step
    while True:
        m = memory(r, budget, backbone, width)
        if m["layerwise_bytes"] <= budget:
            lbl = m
        if m["patch"] is None:
            break
        top = r
        if r <= cap:
            pb = m
        r += step
    if lbl is None or pb is None:
        raise SystemExit(f"nothing fits {budget // KB} kB at {step}-pixel steps")
    return lbl, pb, top


def int8_ap(model, cfg, val: detdata.BoxSet, plan, calib: detdata.BoxSet) -> dict:
    """AP of the detector quantized (calibrated on `calib`'s training images), run patch by patch
    with `plan`'s split and grid (or layer by layer without one)."""
    q = detect.quantized(model, cfg, data.to_tensor(calib.pixels).permute(0, 2, 3, 1).numpy())
    qplan = patch.plan(q, plan.split_op, plan.grid) if plan is not None else None
    return detect.evaluate(model, cfg, val, run=detect.int8_runner(q, qplan))


def run_one(a: argparse.Namespace, row: dict, seed: int, out: Path) -> dict:
    """Train (or reuse the checkpoint in `out` made with the same settings) and evaluate one detector."""
    r = row["resolution"]
    ck = out / f"det-r{r}-s{seed}.pt"
    settings = {"epochs": a.epochs, "n_train": a.n_train, "n_val": a.n_val, "seed": seed, "data": a.data}
    meta = detect.load(ck)[2] if ck.exists() else {}
    if {k: meta.get(k) for k in settings} != settings:
        meta = detect.train(r, a.backbone, a.width, a.epochs, a.batch_size, n_train=a.n_train, n_val=a.n_val,
                            seed=seed, data=a.data, out=ck, progress=False, device=a.device)
    run = {"seed": seed, "ap": meta["val"]["map"], "ap_small": meta["val"]["map_small"],
           "per_class": meta["val"]["classes"], "train_seconds": meta["train_seconds"]}
    if a.int8:
        model, cfg, _ = detect.load(ck)
        val, calib = (detdata.load(a.data, split, r, n=n, seed=seed, progress=False)
                      for split, n in (("val", a.n_val), ("train", 64)))
        q = int8_ap(model, cfg, val, row["plan"], calib)
        run.update(int8_ap=q["map"], int8_ap_small=q["map_small"])
    if not a.json:
        print(f"  {row['mode']} {r}px seed {seed}: AP {pc(run['ap'])}, small {pc(run['ap_small'])}"
              + (f", int8 AP {pc(run['int8_ap'])}" if a.int8 else "")
              + f" ({run['train_seconds']:.0f} s training)", flush=True)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=256, help="SRAM budget in kB (default: %(default)s)")
    ap.add_argument("--backbone", default="mbv2")
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--step", type=int, default=32, help="resolution step in pixels (default: %(default)s)")
    ap.add_argument("--max-resolution", type=int, default=256,
                    help="train patch-based at most at this resolution, to bound CPU time (default: %(default)s)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", default="synthetic-crowd", choices=["synthetic-crowd", "synthetic"],
                    help="crowds of small figures, as WIDER Face, or the VWW scenes (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--int8", action="store_true", help="also AP of the int8 detector (reference kernels)")
    ap.add_argument("--out", help="keep checkpoints here; a rerun reuses those made with the same settings")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", default="cpu", help="where the detectors train: cpu, cuda or auto")
    a = ap.parse_args()
    budget = int(a.budget * KB)
    t0 = time.perf_counter()
    lbl, pb, top = largest_fitting(budget, a.backbone, a.width, a.step, a.max_resolution)
    if not a.json:
        print(f"{a.budget:g} kB: layer by layer fits up to {lbl['resolution']} px; patch-based up to {top} px "
              f"(training at {pb['resolution']} px, --max-resolution {a.max_resolution}); "
              f"search {time.perf_counter() - t0:.0f} s")
    rows = []
    for mode, m in (("layer-by-layer", lbl), ("patch-based", pb)):
        p = m["patch"] if mode == "patch-based" else None
        rows.append({"mode": mode, "resolution": m["resolution"],
                     "peak_sram_bytes": p.peak_sram_bytes if p else m["layerwise_bytes"],
                     "layerwise_bytes": m["layerwise_bytes"], "macs": p.total_macs if p else m["macs"],
                     "split_op": p.split_op if p else None, "grid": p.grid if p else None, "plan": p, "runs": []})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        for seed in a.seeds:
            for row in rows:
                row["runs"].append(run_one(a, row, seed, out))
    for row in rows:
        del row["plan"]
    if a.json:
        print(json.dumps({"budget_bytes": budget, "largest_patch_resolution": top, "epochs": a.epochs,
                          "n_train": a.n_train, "n_val": a.n_val, "data": a.data, "rows": rows}))
        return
    keys = ["ap", "ap_small"] + (["int8_ap", "int8_ap_small"] if a.int8 else [])
    print(f"\n{'inference':15s} {'res':>4s} {'peak SRAM':>10s} {'LbL at res':>14s} {'MACs':>8s} "
          + " ".join(f"{k:>13s}" for k in keys))
    for row in rows:
        stats = [100 * np.array([np.nan if run[k] is None else run[k] for run in row["runs"]], np.float64)
                 for k in keys]
        print(f"{row['mode']:15s} {row['resolution']:4d} {row['peak_sram_bytes'] / KB:7.0f} kB "
              f"{row['layerwise_bytes'] / KB:11.0f} kB {row['macs'] / 1e6:7.1f}M "
              + " ".join(f"{s.mean():6.1f} ± {s.std():4.1f}" for s in stats))
    print(f"(AP@0.5 in %, mean ± std over seeds {a.seeds}; {a.epochs} epochs on {a.n_train} {a.data} scenes, "
          f"{a.n_val} validation scenes; small = box < 0.33% of the image)")


if __name__ == "__main__":
    main()

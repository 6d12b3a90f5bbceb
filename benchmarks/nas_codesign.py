"""The co-design result on the synthetic VWW (MCUNet section 4, table 2; MCUNetV2 section 4.3).

Under one SRAM / Flash budget, three networks are trained from scratch with the same recipe
(images, epochs, learning rate) and scored on the same held-out validation images, over seeds:
1. MobileNetV2 scaled (width, resolution) to the most MACs that fit the budget layer by layer;
2. TinyNAS: stage 1 picks the (width, resolution) space, its supernet is trained once, evolution
   (fitness: supernet accuracy after BatchNorm recalibration, on validation images the final
   scores do not use) picks a subnet under the budget;
3. the same with patch-based inference counted (MCUNetV2's joint search): a larger space fits;
and, as a control, a random subnet of the space stage 1 chose (one per seed; the row shows mean
costs): the gap between it and TinyNAS is what the supernet and the evolution add.
The architecture is what differs: the winners are trained from scratch like the baseline, so the
supernet's extra compute does not leak into the comparison.

Every unit of work (a search, a training run) is cached as JSON under
`$MCUNET_LITE_CACHE/nas_codesign/`, keyed by its settings: an interrupted run resumes, and runs of
different parts in parallel processes (`--only`) meet in one table.
Run: python benchmarks/nas_codesign.py [--seeds 0 1 2] [--sram 96] [--flash 512] [--only mbv2 random layer patch]
"""
import argparse
import dataclasses
import hashlib
import json
import random
import statistics
import time
from typing import Callable

import torch
from torch.utils.data import TensorDataset

from mcunet_lite import cache, nas, scenes, search_space, supernet, train, zoo
from mcunet_lite import evolution as evo
from mcunet_lite.patch import plan as patch_plan
from mcunet_lite.patch import split_after_block

WIDTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
RESOLUTIONS = (48, 64, 80, 96, 112, 128)
NAMES = {"mbv2": "MobileNetV2 scaled to fit", "random": "random subnet of TinyNAS space",
         "layer": "TinyNAS (layer by layer)", "patch": "TinyNAS + patch (MCUNetV2)"}


def cached(kind: str, settings: dict, compute: Callable[[], dict]) -> dict:
    """`compute()`'s result, from the cache when these settings ran before."""
    key = hashlib.sha256(json.dumps({**settings, "kind": kind, "data": scenes.VERSION}, sort_keys=True).encode())
    path = cache.cache_dir() / "nas_codesign" / f"{kind}-{key.hexdigest()[:16]}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def cost(cfg: zoo.MBConvConfig) -> dict:
    """SRAM (layer by layer), Flash and MACs of a zoo config, as the search counts them."""
    return dataclasses.asdict(search_space.cost(cfg))


def search(limits: evo.Limits, patch_based: bool, args) -> dict:
    """Stage 1, supernet training and evolution (seed 0): the winner's config and costs."""
    t0 = time.perf_counter()
    choice = search_space.optimise(limits.sram, limits.flash, WIDTHS, RESOLUTIONS, n=args.space_samples,
                                   patch_based=patch_based)
    w, r = choice.best.width, choice.best.resolution
    d = nas.synthetic_data(r, args.n_supernet, args.n_val + args.n_search_val)
    d.val_x, d.val_y = d.val_x[args.n_val:], d.val_y[args.n_val:]  # the final scores use the first n_val
    torch.manual_seed(0)
    net = supernet.Supernet(w, r)
    history = supernet.train(net, d.train, args.supernet_epochs, largest_epochs=args.largest_epochs, progress=False,
                             device=args.device)
    t1 = time.perf_counter()
    result = nas.search(net, d, limits, patch_based, population=args.population, parents=args.parents,
                        mutations=args.population // 2, crossovers=args.population // 2,
                        generations=args.generations)
    best = result.best
    return {"config": best.cfg.to_dict(), "sram": best.cost.sram, "flash": best.cost.flash, "macs": best.cost.macs,
            "patch": list(best.patch) if best.patch else None, "supernet_accuracy": best.accuracy,
            "space": [w, r], "space_fit_fraction": choice.best.fit_fraction, "supernet_loss": history[-1]["loss"],
            "best_per_generation": result.history, "evaluated": result.evaluated,
            "supernet_seconds": t1 - t0, "search_seconds": time.perf_counter() - t1}


def train_eval(cfg: zoo.MBConvConfig, seed: int, args) -> dict:
    """Train `cfg` from scratch with the shared recipe; validation accuracy and seconds."""
    d = nas.synthetic_data(cfg.resolution, args.n_train, args.n_val)
    torch.manual_seed(seed)
    model = cfg.module()
    t0 = time.perf_counter()
    train.fit(model, d.train, epochs=args.epochs, lr=args.lr, seed=seed, progress=False, device=args.device)
    acc = train.evaluate(model, TensorDataset(d.val_x, d.val_y))["accuracy"]
    return {"accuracy": acc, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", choices=list(NAMES), default=list(NAMES), help="networks to run")
    ap.add_argument("--sram", type=float, default=96, help="kB")
    ap.add_argument("--flash", type=float, default=512, help="kB")
    ap.add_argument("--epochs", type=int, default=8, help="training epochs of every compared network")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=1000, help="validation images of the final scores")
    ap.add_argument("--n-search-val", type=int, default=500, help="other validation images, the search's fitness")
    ap.add_argument("--n-supernet", type=int, default=3000, help="supernet training images")
    ap.add_argument("--supernet-epochs", type=int, default=3)
    ap.add_argument("--largest-epochs", type=int, default=0, help="first supernet epochs that train only the largest")
    ap.add_argument("--space-samples", type=int, default=200, help="subnets sampled per space in stage 1")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--parents", type=int, default=5)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="where the networks train: cpu, cuda or auto")
    args = ap.parse_args()
    limits = evo.Limits(int(args.sram * 1024), int(args.flash * 1024))
    recipe = {k: getattr(args, k) for k in ("epochs", "lr", "n_train", "n_val")}
    search_settings = {"sram": limits.sram, "flash": limits.flash, "widths": WIDTHS, "resolutions": RESOLUTIONS,
                       **{k: getattr(args, k) for k in ("n_val", "n_search_val", "n_supernet", "supernet_epochs",
                                                        "largest_epochs", "space_samples", "population", "parents",
                                                        "generations")}}
    nets = {}
    for part in args.only:
        if part == "mbv2":
            cfg = nas.scaled_mbv2(limits, WIDTHS, RESOLUTIONS)
            nets[part] = ([cfg] * len(args.seeds), cost(cfg))
        elif part == "random":
            s = cached("search", {**search_settings, "patch": False}, lambda: search(limits, False, args))
            picks = [nas.random_fitting(*s["space"], limits, seed) for seed in args.seeds]
            nets[part] = (picks, {k: statistics.mean(cost(c)[k] for c in picks)
                                  for k in ("sram", "flash", "macs")} | {"patch": None})
        else:
            s = cached("search", {**search_settings, "patch": part == "patch"},
                       lambda: search(limits, part == "patch", args))
            print(f"{NAMES[part]}: space w{s['space'][0]} r{s['space'][1]} ({s['space_fit_fraction']:.0%} of its "
                  f"subnets fit), supernet {s['supernet_seconds']:.0f} s, search {s['search_seconds']:.0f} s over "
                  f"{s['evaluated']} subnets, best supernet accuracy per generation "
                  f"{' '.join(f'{a:.3f}' for a in s['best_per_generation'])}", flush=True)
            nets[part] = ([zoo.MBConvConfig.from_dict(s["config"])] * len(args.seeds), s)
    accs = {part: [] for part in nets}
    for i, seed in enumerate(args.seeds):
        for part, (cfgs, _) in nets.items():
            cfg = cfgs[i]
            r = cached("train", {**recipe, "config": cfg.to_dict(), "seed": seed}, lambda: train_eval(cfg, seed, args))
            accs[part].append(r["accuracy"])
            print(f"  {NAMES[part]} seed {seed}: {r['accuracy']:.3f} ({r['seconds']:.0f} s)", flush=True)
    print(f"\nbudget {args.sram:g} kB SRAM, {args.flash:g} kB Flash; synthetic VWW v{scenes.VERSION}; every network "
          f"trained from scratch: {args.n_train} images, {args.epochs} epochs, lr {args.lr:g}; accuracy on "
          f"{args.n_val} validation images, seeds {' '.join(map(str, args.seeds))}")
    print(f"{'network':30s} {'width':>5s} {'res':>4s} {'SRAM':>9s} {'Flash':>9s} {'MACs':>7s} {'patch':>7s} "
          f"{'run MACs':>8s}  accuracy")
    for part, (cfgs, c) in nets.items():
        a, cfg = accs[part], cfgs[0]
        spread = statistics.pstdev(a) if len(a) > 1 else 0.0
        patch, run_macs = "-", c["macs"]
        if c["patch"]:  # the patch stage recomputes its halos: the MACs the MCU runs
            g = cfg.graph()
            patch = f"{c['patch'][0]}/{c['patch'][1]}x{c['patch'][1]}"
            run_macs = patch_plan(g, split_after_block(g, c["patch"][0]), c["patch"][1]).total_macs
        print(f"{NAMES[part]:30s} {cfg.width:5g} {cfg.resolution:4d} {c['sram'] / 1024:6.1f} kB {c['flash'] / 1024:6.1f} kB "
              f"{c['macs'] / 1e6:6.1f}M {patch:>7s} {run_macs / 1e6:7.1f}M  {statistics.mean(a):.3f} +- {spread:.3f} "
              f"({', '.join(f'{x:.3f}' for x in a)})")


if __name__ == "__main__":
    main()

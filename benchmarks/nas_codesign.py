"""The co-design result on the synthetic VWW (MCUNet section 4; MCUNetV2 section 4.3).

Under one SRAM / Flash budget, three networks are trained with the same number of epochs and
evaluated on the same validation set, over several seeds:
1. MobileNetV2 scaled (width, resolution) to the most MACs that fit the budget layer by layer;
2. TinyNAS: stage 1 picks the space, the supernet is trained, evolution picks a subnet, which is
   extracted and fine-tuned;
3. TinyNAS with patch-based inference counted (MCUNetV2's joint search): a larger resolution fits.
Run: python benchmarks/nas_codesign.py [--seeds 3] [--sram 96] [--flash 512] [--epochs 6]
"""
import argparse
import statistics
import time

import torch
from torch.utils.data import TensorDataset

from mcunet_lite import evolution as evo
from mcunet_lite import nas, search_space, supernet, train, zoo
from mcunet_lite.profile import profile
from mcunet_lite.schedule import lower_bound

WIDTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
RESOLUTIONS = (48, 64, 80, 96, 112, 128)


def cost(cfg: zoo.MBConvConfig) -> dict:
    """SRAM (scheduler lower bound), Flash and MACs of a zoo config."""
    g = cfg.graph()
    p = profile(g)
    return {"width": cfg.width, "resolution": cfg.resolution, "sram": lower_bound(g), "flash": p.flash_bytes,
            "macs": p.macs}


def scaled_mbv2(limits: evo.Limits) -> zoo.MBConvConfig:
    """The MobileNetV2 (width, resolution) with the most MACs within the budget."""
    fitting = [cfg for cfg in (zoo.mobilenet_v2(w, r, num_classes=2) for w in WIDTHS for r in RESOLUTIONS)
               if (c := cost(cfg))["sram"] <= limits.sram and c["flash"] <= limits.flash]
    return max(fitting, key=lambda cfg: cost(cfg)["macs"])


def train_eval(model: torch.nn.Module, epochs: int, seed: int, d: nas.NASData, device: str) -> float:
    """Train on the synthetic set, return validation accuracy."""
    train.fit(model, d.train, epochs=epochs, seed=seed, progress=False, device=device)
    return train.evaluate(model, TensorDataset(d.val_x, d.val_y))["accuracy"]


def tinynas(limits: evo.Limits, patch_based: bool, seed: int, args) -> tuple[float, dict]:
    choice = search_space.optimise(limits.sram, limits.flash, WIDTHS, RESOLUTIONS, n=args.space_samples,
                                   patch_based=patch_based, seed=seed)
    w, r = choice.best.width, choice.best.resolution
    d = nas.synthetic_data(r, args.n_train, args.n_val, seed=0)
    torch.manual_seed(seed)
    net = supernet.Supernet(w, r)
    supernet.train(net, d.train, args.supernet_epochs, seed=seed, progress=False, device=args.device)
    result = nas.search(net, d, limits, patch_based, seed, population=args.population, parents=args.parents,
                        mutations=args.population // 2, crossovers=args.population // 2, generations=args.generations)
    best = result.best
    model = supernet.extract(net, best.cfg)
    acc = train_eval(model, args.epochs, seed, d, args.device)
    return acc, {"width": w, "resolution": r, "sram": best.cost.sram, "flash": best.cost.flash,
                 "macs": best.cost.macs, "patch": best.patch}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sram", type=float, default=96, help="kB")
    ap.add_argument("--flash", type=float, default=512, help="kB")
    ap.add_argument("--epochs", type=int, default=6, help="epochs of final training / fine-tuning")
    ap.add_argument("--supernet-epochs", type=int, default=4)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--space-samples", type=int, default=50)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--parents", type=int, default=5)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="where the networks train: cpu, cuda or auto")
    args = ap.parse_args()
    limits = evo.Limits(int(args.sram * 1024), int(args.flash * 1024))
    base = scaled_mbv2(limits)
    rows = {"MobileNetV2 scaled to fit": [], "TinyNAS (layer by layer)": [], "TinyNAS + patch (MCUNetV2)": []}
    info = {}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        d = nas.synthetic_data(base.resolution, args.n_train, args.n_val, seed=0)
        torch.manual_seed(seed)
        total_epochs = args.epochs + args.supernet_epochs
        rows["MobileNetV2 scaled to fit"].append(train_eval(base.module(), total_epochs, seed, d, args.device))
        info["MobileNetV2 scaled to fit"] = cost(base)
        for name, patch_based in (("TinyNAS (layer by layer)", False), ("TinyNAS + patch (MCUNetV2)", True)):
            acc, i = tinynas(limits, patch_based, seed, args)
            rows[name].append(acc)
            info[f"{name} seed {seed}"] = i
        print(f"seed {seed} done in {time.perf_counter() - t0:.0f} s: " +
              ", ".join(f"{name} {accs[-1]:.3f}" for name, accs in rows.items()), flush=True)
    print(f"\nbudget: {args.sram:g} kB SRAM, {args.flash:g} kB Flash; synthetic VWW, {args.n_train} train / "
          f"{args.n_val} val images; {args.epochs + args.supernet_epochs} epochs for the baseline, "
          f"{args.supernet_epochs} supernet + {args.epochs} fine-tune epochs for TinyNAS")
    for name, accs in rows.items():
        spread = statistics.pstdev(accs) if len(accs) > 1 else 0.0
        print(f"{name:30s} accuracy {statistics.mean(accs):.3f} +- {spread:.3f}  ({', '.join(f'{a:.3f}' for a in accs)})")
    for name, i in info.items():
        print(f"  {name}: width {i['width']} res {i['resolution']} SRAM {i['sram'] / 1024:.1f} kB "
              f"Flash {i['flash'] / 1024:.1f} kB MACs {i['macs'] / 1e6:.1f}M" + (f" patch {i['patch']}" if i.get('patch') else ""))


if __name__ == "__main__":
    main()

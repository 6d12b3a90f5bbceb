"""Receptive-field redistribution costs no accuracy (MCUNetV2 section 3.2, Table 3 in spirit).

Trains MobileNetV2 and its redistributed version (`redistribute.redistribute`: kernel 3 and one
block per stage in the patch stage, the removed blocks appended after it) with the same short
training on the synthetic VWW, over several seeds, and prints side by side: validation accuracy,
receptive field, input patch, patch-stage MAC overhead, MACs and patch-based peak SRAM.

Run: python benchmarks/redistribution_accuracy.py [--width 0.35] [--resolution 128] [--split-block 4]
     [--grid 4] [--seeds 3] [--n-train 3000] [--epochs 6]   (about 25 minutes on 2 quiet cores)
"""
import argparse
import statistics
import time

import torch

from mcunet_lite import data, redistribute, train, zoo


def accuracy(cfg: zoo.MBConvConfig, seed: int, a) -> float:
    """Validation accuracy of `cfg` after the benchmark's short training on seed `seed`'s data."""
    tr = data.synthetic(a.n_train, cfg.resolution, "train", seed, progress=False)
    va = data.synthetic(a.n_val, cfg.resolution, "val", seed, progress=False)
    torch.manual_seed(seed)
    return train.fit(cfg.module(), tr, va, a.epochs, seed=seed, progress=False, device=a.device)[-1]["val_accuracy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--split-block", type=int, default=4)
    ap.add_argument("--grid", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--device", default="cpu", help="where the networks train: cpu, cuda or auto")
    a = ap.parse_args()
    base = zoo.mobilenet_v2(a.width, a.resolution, num_classes=2)
    cmp = redistribute.compare(base, a.split_block, a.grid)
    print(f"MobileNetV2 w{a.width} r{a.resolution}, split after block {a.split_block}, {a.grid}x{a.grid} patches")
    print(f"{'':28s} {'MBV2':>12s} {'MBV2-RD':>12s}")
    for name, before, after in cmp.rows():
        print(f"{name:28s} {before:>12s} {after:>12s}")
    accs: dict[str, list[float]] = {"MBV2": [], "MBV2-RD": []}
    t0 = time.perf_counter()
    for seed in range(a.seeds):
        for name, cfg in (("MBV2", base), ("MBV2-RD", cmp.config)):
            accs[name].append(accuracy(cfg, seed, a))
            print(f"  seed {seed} {name:8s} val accuracy {100 * accs[name][-1]:.1f}%", flush=True)
    print(f"synthetic VWW, {a.n_train} train / {a.n_val} val images, {a.epochs} epochs, {a.seeds} seeds "
          f"({time.perf_counter() - t0:.0f} s):")
    for name, v in accs.items():
        print(f"  {name:8s} mean {100 * statistics.mean(v):.1f}%  ({100 * min(v):.1f}..{100 * max(v):.1f})")
    diffs = [r - b for b, r in zip(accs["MBV2"], accs["MBV2-RD"])]
    print(f"  RD - MBV2: mean {100 * statistics.mean(diffs):+.1f} points ({100 * min(diffs):+.1f}..{100 * max(diffs):+.1f})")


if __name__ == "__main__":
    main()

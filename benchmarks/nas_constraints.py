"""Constraint evaluations per second per core: the inner loop of TinyNAS stage 1 (MCUNet section 3.1).

One evaluation builds a sampled subnet's Graph and computes its peak SRAM (the scheduler's lower
bound), Flash and MACs (`search_space.cost`); a patch-based one also tries MCUNetV2's (split block,
grid) choices and keeps the smallest peak. Both run on the subnets of the same spaces, side by
side. Run on one core: OMP_NUM_THREADS=1 python benchmarks/nas_constraints.py
"""
import argparse
import random
import time

from mcunet_lite import search_space as ss

# the spaces stage 1 picks at 320 kB / 1 MB (layer by layer, patch-based) and at 96 kB / 512 kB
SPACES = [(0.5, 192), (0.8, 224), (0.5, 96), (0.6, 128)]


def rate(width: float, resolution: int, patch_based: bool, n: int, repeats: int) -> float:
    """Evaluations per second on `n` sampled subnets, the best of `repeats` passes (least noise)."""
    cfgs = [ss.sample(random.Random(f"bench/{i}"), width, resolution) for i in range(n)]
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for cfg in cfgs:
            ss.cost(cfg, patch_based)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"constraint evaluations per second, one core ({a.samples} subnets per space, best of {a.repeats})")
    print(f"{'width':>5s} {'res':>4s} {'layer by layer':>15s} {'patch-based':>12s} {'ratio':>6s}")
    for width, res in SPACES:
        lbl = rate(width, res, False, a.samples, a.repeats)
        pb = rate(width, res, True, a.samples, a.repeats)
        print(f"{width:5.1f} {res:4d} {lbl:15.0f} {pb:12.0f} {lbl / pb:6.1f}")


if __name__ == "__main__":
    main()

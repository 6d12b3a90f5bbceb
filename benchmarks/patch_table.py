"""Layer-by-layer vs patch-based peak SRAM of off-the-shelf tiny models (MCUNetV2 table 1 style).

For each model: the layer-by-layer arena (TinyEngine-style scheduler), and the patch-based plan
with the lowest peak over every valid split and grids 2..4 (fixed-size patches), its reduction
ratio and MAC overhead; then MobileNetV2 with and without receptive-field redistribution.
Run: python benchmarks/patch_table.py
"""
import time
from pathlib import Path

from mcunet_lite import patch, redistribute, tflite_io, zoo

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


def best_plan(g):
    """The patch plan with the lowest peak (ties: fewest MACs) over splits and grids 2..4."""
    best = None
    for split in patch.candidate_splits(g):
        _, h, w, _ = g.shape(g.ops[split].output)
        for n in (n for n in (2, 3, 4) if n <= min(h, w)):
            p = patch.plan(g, split, n)
            if best is None or (p.peak_sram_bytes, p.total_macs) < (best.peak_sram_bytes, best.total_macs):
                best = p
    return best


def main() -> None:
    graphs = [("MobileNetV2 w0.35 r144", zoo.mobilenet_v2(0.35, 144).graph()),
              ("MobileNetV1 w0.25 r96 (zoo)", zoo.get("mbv1").graph()),
              ("MCUNet-style zoo model w0.5 r96", zoo.get("mcunet").graph())]
    if MODELS.exists():
        graphs += [(f.name, tflite_io.read(f)) for f in sorted(MODELS.glob("*.tflite"))]
    else:
        print(f"({MODELS} not found: the real .tflite models are skipped)")
    print(f"{'model':40s} {'layer-by-layer':>15s} {'patch-based':>12s} {'reduction':>9s} {'split':>22s} "
          f"{'grid':>4s} {'MAC overhead':>12s} {'plan s':>6s}")
    for name, g in graphs:
        t0 = time.perf_counter()
        p = best_plan(g)
        dt = time.perf_counter() - t0
        split = f"{p.split_op} ({g.ops[p.split_op].name[-14:]})"
        print(f"{name:40s} {p.layerwise_peak_sram_bytes / 1024:12.1f} kB {p.peak_sram_bytes / 1024:9.1f} kB "
              f"{p.layerwise_peak_sram_bytes / p.peak_sram_bytes:8.1f}x {split:>22s} {p.grid:4d} "
              f"{100 * (p.total_macs / p.layerwise_total_macs - 1):+11.1f}% {dt:6.1f}")
    print("\nMobileNetV2 w1.0 r224, split after 4 blocks, 4x4 patches: before / after redistribution")
    c = redistribute.compare(zoo.mobilenet_v2(1.0, 224), 4, 4)
    for row in c.rows():
        print(f"  {row[0]:28s} {row[1]:>10s} {row[2]:>10s}")


if __name__ == "__main__":
    main()

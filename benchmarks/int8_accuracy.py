"""Float vs int8 top-1 on the synthetic VWW validation set, for a briefly trained MobileNetV2-w0.35.

Trains MobileNetV2-w0.35 on the offline synthetic person / no-person set, quantizes it post-training
(min/max and percentile calibration on training images), and evaluates float (torch graph) and int8
(int8ref, bit-exact with TFLite Micro) on the same validation images. Also checks the exported
.tflite against TFLite Micro on a few validation images.
Run: python benchmarks/int8_accuracy.py [--resolution 128] [--epochs 6] [--train 3000] [--val 1000]
     [--checkpoint mbv2.pt]   (about 5 minutes on 2 quiet cores; with --checkpoint an existing
     checkpoint is evaluated without training). 128 px, not 64: depthwise networks learn the
     synthetic set slowly at 64 px (see benchmarks/data_bench.py).
"""
import argparse
import time
from pathlib import Path

import numpy as np

from mcunet_lite import data, int8ref, quant, tflite_io, train, zoo


def nhwc(ds, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images normalised as training normalises them, NHWC float, and labels."""
    images, labels = ds.arrays(n)
    return data.to_tensor(images).permute(0, 2, 3, 1).numpy(), labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--calib", type=int, default=256, help="calibration images (from the training set)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", help="reuse this checkpoint if it exists, else train and save it here")
    a = ap.parse_args()

    reuse = a.checkpoint and Path(a.checkpoint).exists()
    if reuse:
        net, meta, history = train.load_checkpoint(a.checkpoint)
        a.resolution = meta["resolution"]
        print(f"loaded {a.checkpoint}: {meta}")
    train_ds = data.synthetic(a.train, a.resolution, "train", a.seed)
    val_ds = data.synthetic(a.val, a.resolution, "val", a.seed)
    if not reuse:
        train.seed_everything(a.seed)
        net = zoo.mobilenet_v2(0.35, a.resolution, 2).module()
        meta = {"model": "mbv2", "width": 0.35, "resolution": a.resolution, "num_classes": 2, "data": "synthetic"}
        t0 = time.perf_counter()
        history = train.fit(net, train_ds, val_ds, epochs=a.epochs, lr=a.lr, seed=a.seed, checkpoint=a.checkpoint,
                            meta=meta)
        print(f"trained MobileNetV2-w0.35 at {a.resolution} px: {a.epochs} epochs on {len(train_ds)} synthetic "
              f"images in {time.perf_counter() - t0:.0f} s")
    print(f"torch val accuracy after training: {history[-1]['val_accuracy']:.4f}")

    calib, _ = nhwc(train_ds, a.calib)
    val, labels = nhwc(val_ds)
    print(f"{'calibration':22s} {'float top-1':>12s} {'int8 top-1':>11s} {'diff (pts)':>11s} {'agreement':>10s}")
    for name, p in (("min/max", None), ("percentile 99.99", 99.99), ("percentile 99.9", 99.9)):
        g, q = quant.from_module(net, a.resolution, calib, "mbv2", p)
        r = quant.float_vs_int8(g, q, val, labels)
        print(f"{name:22s} {r['float_accuracy']:12.4f} {r['int8_accuracy']:11.4f} "
              f"{100 * (r['int8_accuracy'] - r['float_accuracy']):+11.2f} {r['top1_agreement']:10.4f}")

    from tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(tflite_io.to_bytes(q))
    diff = 0
    for x in val[:20]:
        xi = quant.quantize_input(q, x[None])
        it.set_input(xi, 0)
        it.invoke()
        diff += int(np.sum(it.get_output(0) != int8ref.run(q, xi)))
    print(f"exported .tflite (last row) vs int8ref on 20 validation images: {diff} mismatching elements")


if __name__ == "__main__":
    main()

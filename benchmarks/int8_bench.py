"""int8ref vs TFLite Micro: mismatching elements over every tensor, and time per inference.

For each of the four real models in ../shared/models (where present) and for a MobileNetV2-w0.35
(96 px) that mcunet-lite quantizes and exports itself, runs N random inputs through both executors
and compares every intermediate tensor (TFLite Micro keeps them with kPreserveAllTensors).
Run: python benchmarks/int8_bench.py [N]
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tflite_micro import runtime

from mcunet_lite import int8ref, quant, tflite_io, zoo

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"


def our_model() -> tuple[str, bytes]:
    """MobileNetV2-w0.35, 96 px, random weights with BatchNorm statistics from one batch, quantized."""
    torch.manual_seed(0)
    net = zoo.mobilenet_v2(0.35, 96, 2).module().train()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = None
    images = np.random.default_rng(0).uniform(-1, 1, (64, 96, 96, 3)).astype(np.float32)
    with torch.no_grad():
        net(torch.from_numpy(images[:32]).permute(0, 3, 1, 2))
    _, q = quant.from_module(net, 96, images, "mbv2")
    return "mbv2-w0.35-r96 (ours, exported)", tflite_io.to_bytes(q)


def compare(name: str, buf: bytes, n: int) -> None:
    g = tflite_io.from_bytes(buf, name)
    it = runtime.Interpreter.from_bytes(buf, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    index, rng, x_t = g.meta["tflite_tensors"], np.random.default_rng(0), g.tensors[g.inputs[0]]
    elements = mismatched = 0
    t_ref = t_tflm = 0.0
    for _ in range(n):
        x = rng.integers(-128, 128, x_t.shape).astype(np.int8) if x_t.dtype == "int8" else \
            rng.uniform(-3, 3, x_t.shape).astype(np.float32)
        t0 = time.perf_counter()
        env = int8ref.tensors(g, x)
        t1 = time.perf_counter()
        it.set_input(x, 0)
        it.invoke()
        t2 = time.perf_counter()
        t_ref, t_tflm = t_ref + t1 - t0, t_tflm + t2 - t1
        for op in g.ops:
            ref = it.GetTensor(index[op.output], 0)["tensor_data"]
            elements += ref.size
            mismatched += int(np.sum(env[op.output] != ref))
    print(f"{name:42s} {len(g.ops):4d} {n:7d} {elements:12,d} {mismatched:11d} {1e3 * t_ref / n:10.1f} "
          f"{1e3 * t_tflm / n:10.1f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"{'model':42s} {'ops':>4s} {'inputs':>7s} {'elements':>12s} {'mismatches':>11s} {'int8ref ms':>10s} "
          f"{'TFLM ms':>10s}")
    models = sorted(MODELS.glob("*.tflite")) if MODELS.is_dir() else []
    if not models:
        print(f"(no real models at {MODELS})")
    for path in models:
        compare(path.stem, path.read_bytes(), n)
    compare(*our_model(), n)


if __name__ == "__main__":
    main()

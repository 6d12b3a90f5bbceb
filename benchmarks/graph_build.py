"""How many MobileNetV2-sized Graphs per second the direct path builds and profiles.

The NAS (TinyNAS stage 1) evaluates about a thousand subnets per (width, resolution) space, so the
direct path must build and profile thousands per second. Run: python benchmarks/graph_build.py
"""
import time

from mcunet_lite import profile, zoo
from mcunet_lite.from_torch import from_torch


def rate(fn, seconds: float = 2.0) -> float:
    """Calls per second of `fn` over about `seconds`."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    cfg = zoo.mobilenet_v2(1.0, 224)
    build = rate(cfg.graph)
    both = rate(lambda: profile.op_sram(cfg.graph(), "tinyengine"))
    full = rate(lambda: profile.profile(cfg.graph(), "tinyengine"))
    fx = rate(lambda: from_torch(cfg.module(), 224), 4.0)
    print(f"MobileNetV2 (1.0, 224), {len(cfg.graph().ops)} ops, one core:")
    print(f"  direct build                      {build:8.0f} graphs/s")
    print(f"  direct build + peak SRAM          {both:8.0f} graphs/s")
    print(f"  direct build + full profile       {full:8.0f} graphs/s")
    print(f"  torch module + fx import (slow)   {fx:8.1f} graphs/s   ({full / fx:.0f}x slower than direct)")


if __name__ == "__main__":
    main()

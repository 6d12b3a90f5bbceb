"""TinyNAS end to end (MCUNet section 3.1): choose the space, train its supernet once, evolve
subnets under the memory limits, and report the winner. CPU-sized by default on the synthetic
VWW stand-in; every knob is an argument.
"""
from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import data
from . import evolution as evo
from . import search_space as ss
from . import supernet as sn
from .errors import UserError
from .safeio import write_atomic
from .zoo import MBConvConfig, mobilenet_v2

MBV2_WIDTHS = tuple(round(0.1 + 0.05 * i, 2) for i in range(19))   # 0.1 .. 1.0
MBV2_RESOLUTIONS = tuple(range(48, 225, 8))


@dataclass
class NASData:
    """Training set, BatchNorm-calibration images and a validation set, as tensors."""

    train: object
    calib: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def synthetic_data(resolution: int, n_train: int = 3000, n_val: int = 500, n_calib: int = 256, seed: int = 0,
                   progress: bool = False) -> NASData:
    """The synthetic VWW at `resolution`: train, calibration (from train) and validation."""
    train = data.synthetic(n_train, resolution, "train", seed, progress=progress)
    val = data.synthetic(n_val, resolution, "val", seed, progress=progress)
    vx, vy = val.arrays()
    return NASData(train, data.to_tensor(train.arrays(n_calib)[0]), data.to_tensor(vx), torch.as_tensor(vy))


def save_supernet(net: sn.Supernet, path: str | Path, history: list[dict] | None = None) -> None:
    """Weights, the space they belong to and the training history (per-epoch loss and seconds)."""
    ck = {"width": net.space.width, "resolution": net.space.resolution, "num_classes": net.space.num_classes,
          "state": net.state_dict(), "history": history or []}
    write_atomic(path, lambda tmp: torch.save(ck, tmp))


def load_supernet(path: str | Path) -> sn.Supernet:
    """A supernet saved by `save_supernet`; errors name the file."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        net = sn.Supernet(d["width"], d["resolution"], d["num_classes"])
        net.load_state_dict(d["state"])
    except (OSError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot load supernet '{path}': {e}; train one with `mcunet-lite nas train-supernet`") from None
    return net


def fitness(net: sn.Supernet, d: NASData):
    """The evolution's fitness: supernet accuracy of a candidate after BN recalibration."""
    return lambda c: sn.accuracy(net, c.cfg, d.calib, d.val_x, d.val_y)


def search(net: sn.Supernet, d: NASData, limits: evo.Limits, joint_patch: bool = False, seed: int = 0,
           **evolution) -> evo.SearchResult:
    """Evolve subnets of `net` under `limits` (keyword arguments go to `evolution.search`)."""
    s = net.space
    return evo.search(s.width, s.resolution, limits, fitness(net, d), joint_patch=joint_patch,
                      num_classes=s.num_classes, seed=seed, **evolution)


def report(result: evo.SearchResult, limits: evo.Limits) -> dict:
    """JSON-ready summary of the winner."""
    c = result.best
    return {"config": c.cfg.to_dict(), "patch": list(c.patch) if c.patch else None, "sram_bytes": c.cost.sram,
            "flash_bytes": c.cost.flash, "macs": c.cost.macs, "supernet_accuracy": c.accuracy,
            "limits": {"sram_bytes": limits.sram, "flash_bytes": limits.flash, "macs": limits.macs},
            "evaluated": result.evaluated, "best_per_generation": result.history}


# ------------------------------------------------------------------------------ from-scratch references
def spanning(width: float, resolution: int, n: int, samples: int = 1000, seed: int = 0) -> list[MBConvConfig]:
    """`n` distinct subnets of the space with MACs evenly spaced from the cheapest to the costliest of
    `samples` random ones (each the sample nearest its target): the set on which a supernet's
    ranking is checked against from-scratch training (OFA section 4; MCUNet section 3.1 relies
    on that ranking)."""
    rng = random.Random(seed)
    pool = [(ss.cost(c).macs, c) for c in (ss.sample(rng, width, resolution) for _ in range(samples))]
    lo, hi = min(m for m, _ in pool), max(m for m, _ in pool)
    picks = []
    for i in range(n):
        target = lo + (hi - lo) * i / max(n - 1, 1)
        picks.append(min(pool, key=lambda t: abs(t[0] - target)))
        pool.remove(picks[-1])
    return [c for _, c in picks]


def scaled_mbv2(limits: evo.Limits, widths=MBV2_WIDTHS, resolutions=MBV2_RESOLUTIONS) -> MBConvConfig:
    """MobileNetV2 scaled (width multiplier, input resolution) to the most MACs that fit `limits`
    layer by layer: the hand-designed baseline MCUNet compares TinyNAS with (section 4, table 2)."""
    best = None
    for w in widths:
        for r in resolutions:
            cfg = mobilenet_v2(w, r, num_classes=2)
            c = ss.cost(cfg)
            if c.sram <= limits.sram and c.flash <= limits.flash and (best is None or c.macs > best[0]):
                best = (c.macs, cfg)
    if best is None:
        raise UserError(f"no MobileNetV2 width x resolution fits {limits.sram // 1024} kB SRAM and "
                        f"{limits.flash // 1024} kB Flash; raise the budgets")
    return best[1]


def random_fitting(width: float, resolution: int, limits: evo.Limits, seed: int) -> MBConvConfig:
    """A random subnet of the space within `limits` (drawn with `random.Random(seed)` until one fits):
    the control that shows what the supernet and the evolution add to stage 1's choice of space."""
    rng = random.Random(seed)
    return evo.first_fitting(lambda: evo.Candidate(ss.sample(rng, width, resolution)), limits, width, resolution).cfg


@dataclass(frozen=True)
class Recipe:
    """The one from-scratch training recipe every compared network gets (same images, epochs, rate)."""

    epochs: int = 3
    n_train: int = 16000
    batch_size: int = 32
    lr: float = 3e-3


def train_from_scratch(cfg: MBConvConfig, recipe: Recipe, seed: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train `cfg` from random weights on synthetic training images of its resolution (seed 0's
    stream for every run: only initialisation and order vary with `seed`); (model, record)."""
    from . import train
    ds = data.synthetic(recipe.n_train, cfg.resolution, "train", 0, progress=False)
    torch.manual_seed(seed)
    model = cfg.module()
    t0 = time.perf_counter()
    history = train.fit(model, ds, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=seed,
                        progress=False)
    return model.eval(), {"seconds": time.perf_counter() - t0, "train_loss": history[-1]["train_loss"]}


def scratch_plan(width: float, resolution: int, limits: evo.Limits, n_spanning: int, seeds: list[int],
                 winner: Callable[[], MBConvConfig], seed: int = 0) -> list[tuple[str, Callable[[], MBConvConfig], int]]:
    """The runs of a from-scratch reference, in order: `n_spanning` subnets spanning the space (seed
    0 each), then over `seeds` MobileNetV2 scaled to `limits`, one random subnet within `limits` per
    seed (`random_fitting` with that seed) and the searched `winner` (called only when its turn
    comes, last: it needs the trained supernet). Each run is (role, config, seed); `seed` draws
    the spanning subnets' sample."""
    span = spanning(width, resolution, n_spanning, seed=seed)
    runs = [(f"spanning-{i}", (lambda c=c: c), 0) for i, c in enumerate(span)]
    mbv2 = functools.cache(lambda: scaled_mbv2(limits))  # one scan of the width x resolution grid for all seeds
    runs += [("mbv2", mbv2, s) for s in seeds]
    runs += [("random", lambda s=s: random_fitting(width, resolution, limits, s), s) for s in seeds]
    return runs + [("winner", winner, s) for s in seeds]


def save_scratch(path: str | Path, info: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """A from-scratch reference file: what it compares (`info`) and each finished run (role, config,
    seed, weights, seconds)."""
    write_atomic(path, lambda tmp: torch.save({"info": info, "runs": runs}, tmp))


def load_scratch(path: str | Path) -> tuple[dict[str, Any], list[tuple[str, MBConvConfig, int, torch.nn.Module]]]:
    """(info, [(role, config, seed, model in eval mode)]) of a file written by `save_scratch`."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        out = []
        for r in d["runs"]:
            cfg = MBConvConfig.from_dict(r["config"])
            m = cfg.module()
            m.load_state_dict({k: v.float() for k, v in r["model"].items()})
            out.append((r["role"], cfg, r["seed"], m.eval()))
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot load from-scratch reference '{path}': {e}; make one with "
                        "`mcunet-lite nas scratch`") from None
    return d["info"], out

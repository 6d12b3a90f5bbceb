"""TinyNAS end to end (MCUNet section 3.1): choose the space, train its supernet once, evolve
subnets under the memory limits, and report the winner. CPU-sized by default on the synthetic
VWW stand-in; every knob is an argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import data
from . import evolution as evo
from . import supernet as sn
from .errors import UserError
from .safeio import write_atomic


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

"""Training: `fit` / `evaluate` with progress bars, fixed seeds and checkpoints, for 1 or N processes.

The same code runs in one process (a laptop, a notebook) and under `torchrun` (PyTorch DDP over
the gloo backend, CPU): `torchrun --nproc_per_node 2 -m mcunet_lite.cli train ...`. Under torchrun
every process trains on its own shard of each epoch and DDP averages the gradients, so the
replicas stay identical; rank 0 shows the progress bar and writes the checkpoint. `--batch-size`
is the global batch, split across processes, so one process and N processes train alike.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import zoo
from .errors import UserError
from .safeio import write_atomic


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a run repeats exactly on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str = "cpu") -> torch.device:
    """Where training runs: 'cpu', 'cuda' / 'cuda:N', or 'auto' (a CUDA GPU when torch sees one).

    The labs stay on the CPU so their figures repeat on any laptop; a GPU only shortens the
    benchmarks' longer trainings. Multi-process (torchrun) training stays on the CPU (gloo)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}': torch sees no CUDA GPU here; use --device cpu (or auto)")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("multi-process training runs on the CPU (gloo); drop --device for torchrun")
    return dev


def device_of(model) -> torch.device:
    """The device a model's weights live on."""
    return next(model.parameters()).device


def distributed() -> tuple[int, int]:
    """(rank, world size); under torchrun (WORLD_SIZE > 1) joins the gloo process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def _all_sum(values: list[float]) -> list[float]:
    """Sum a few numbers over all processes (identity in one process)."""
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def shard_loader(ds, batch_size: int, rank: int, world: int, seed: int, shuffle: bool):
    """DataLoader over this process's shard; `set_epoch` on its sampler reshuffles each epoch."""
    from torch.utils.data import DataLoader, DistributedSampler
    sampler = DistributedSampler(ds, world, rank, shuffle=shuffle, seed=seed)
    return DataLoader(ds, batch_size=max(1, batch_size // world), sampler=sampler)


@torch.no_grad()
def evaluate(model, ds, batch_size: int = 256) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy of `model` on `ds` (sharded over processes, summed)."""
    from torch.utils.data import DataLoader, Subset
    rank, world = distributed()
    was_training = model.training
    model.eval()
    correct = loss = 0.0
    dev = device_of(model)
    for x, y in DataLoader(Subset(ds, range(rank, len(ds), world)), batch_size=batch_size):
        x, y = x.to(dev), y.to(dev)
        out = model(x.contiguous(memory_format=torch.channels_last))
        loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
    correct, loss, n = _all_sum([correct, loss, float(len(range(rank, len(ds), world)))])
    model.train(was_training)
    return {"accuracy": correct / max(n, 1), "loss": loss / max(n, 1), "n": int(n)}


def cosine_schedule(opt: torch.optim.Optimizer, steps: int, warmup: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate: `warmup` steps of linear warm-up, times a cosine decay to zero over `steps`.
    Any number of steps works, even one (unlike OneCycleLR, which needs a few)."""
    steps, warmup = max(steps, 1), max(warmup, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def run_epochs(model, loader, opt, sched, epochs: int, step: Callable[[Any, int], dict[str, float]],
               summarise: Callable[[int, dict[str, float], float], dict], run: dict[str, Any], generators: list,
               checkpoint: str | Path | None = None, resume: bool = False, meta: dict[str, Any] | None = None,
               progress: bool = True, rank: int = 0, desc: str = "epoch") -> list[dict]:
    """The training loop every trainer shares (`fit`, `detect.fit`, `supernet.train`); what varies
    is one step and the epoch's record.

    `step(batch, epoch)` computes the loss and calls `backward()` (zeroed before, stepped after by this
    loop), returning sums over the batch that include "n", the samples it counted; the bar shows
    each sum / n. `summarise(epoch, sums, seconds)` makes the epoch's record. With `checkpoint`,
    rank 0 saves the weights, `meta`, the history and the `training_state` (optimizer, schedule
    and `generators`, the random streams of data order and augmentation) after every epoch; with
    `resume` too, a run interrupted after epoch k continues at epoch k + 1 and ends with the same
    weights as an uninterrupted run (`restore` refuses a checkpoint of another `run`)."""
    history: list[dict] = []
    if resume and checkpoint is not None and Path(checkpoint).exists():
        history = restore(checkpoint, model, opt, sched, generators, run)
    for epoch in range(len(history), epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        model.train()
        t0, sums = time.perf_counter(), {}
        bar = tqdm(loader, desc=f"{desc} {epoch + 1}/{epochs}", disable=not progress or rank != 0, leave=False)
        for batch in bar:
            opt.zero_grad(set_to_none=True)
            for k, v in step(batch, epoch).items():
                sums[k] = sums.get(k, 0.0) + v
            opt.step()
            sched.step()
            bar.set_postfix({k: f"{v / sums['n']:.3f}" for k, v in sums.items() if k != "n"})
        rec = summarise(epoch, sums, time.perf_counter() - t0)
        history.append(rec)
        if progress and rank == 0:
            shown = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in rec.items()
                              if isinstance(v, float) and k != "seconds")
            tqdm.write(f"{desc} {epoch + 1}/{epochs}: {shown} ({rec['seconds']:.1f} s)", file=sys.stderr)
        if checkpoint is not None and rank == 0:
            save_checkpoint(checkpoint, model, meta or {}, history, training_state(run, opt, sched, generators))
    return history


def fit(model, train_ds, val_ds=None, epochs: int = 5, batch_size: int = 32, lr: float = 3e-3,
        weight_decay: float = 1e-4, seed: int = 0, checkpoint: str | Path | None = None,
        meta: dict[str, Any] | None = None, progress: bool = True, device: str = "cpu",
        resume: bool = False) -> list[dict[str, float]]:
    """Train classifier `model` in place on `device` (it returns to the CPU at the end) with AdamW,
    a cosine schedule, random horizontal flips and cross-entropy (`run_epochs`: checkpoints after
    every epoch, exact resume).

    Returns one record per epoch (train loss and accuracy, validation accuracy, seconds, samples
    seen by all processes). Channels-last memory layout is used because it trains the depthwise
    convolutions of MobileNets about 1.7x faster on CPU.
    """
    if epochs < 1 or batch_size < 1:
        raise UserError(f"epochs and batch size must be >= 1, got {epochs} and {batch_size}")
    dev = pick_device(device)
    rank, world = distributed()
    seed_everything(seed)
    model = model.to(dev, memory_format=torch.channels_last)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    loader = shard_loader(train_ds, batch_size, rank, world, seed, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = cosine_schedule(opt, epochs * len(loader))
    flips = torch.Generator().manual_seed(seed * 1000 + rank)

    def step(batch, epoch: int) -> dict[str, float]:
        x, y = batch
        flip = (torch.rand(len(x), generator=flips) < 0.5).to(dev)
        x, y = x.to(dev), y.to(dev)
        x = torch.where(flip[:, None, None, None], x.flip(3), x).contiguous(memory_format=torch.channels_last)
        out = net(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return {"loss": loss.item() * len(y), "accuracy": (out.argmax(1) == y).sum().item(), "n": len(y)}

    def summarise(epoch: int, sums: dict[str, float], seconds: float) -> dict:
        tot_loss, correct, n = _all_sum([sums["loss"], sums["accuracy"], sums["n"]])
        if world > 1:  # BatchNorm statistics: rank 0's everywhere, so evaluation and checkpoints agree
            for b in model.buffers():
                dist.broadcast(b, 0)
        rec = {"epoch": epoch + 1, "train_loss": tot_loss / n, "train_accuracy": correct / n, "samples": int(n),
               "seconds": seconds, "world_size": world}
        if val_ds is not None:
            rec["val_accuracy"] = evaluate(model, val_ds)["accuracy"]
        return rec

    history = run_epochs(model, loader, opt, sched, epochs, step, summarise,
                         {"epochs": epochs, "seed": seed, "world": world}, [flips], checkpoint, resume, meta,
                         progress, rank)
    model.cpu()  # back where export, quantization and the int8 tools read the weights
    return history


def save_checkpoint(path: str | Path, model, meta: dict[str, Any], history: list[dict],
                    state: dict[str, Any] | None = None) -> None:
    """Write weights, metadata (how to rebuild the model), history and, for resuming, the training
    state; atomic, so never half-written."""
    write_atomic(path, lambda tmp: torch.save({"model": model.state_dict(), "meta": meta, "history": history,
                                               "state": state}, tmp))


def resume_path(out: str | Path) -> Path:
    """Where a run that writes its result to `out` only at the end keeps its per-epoch training state."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def training_state(run: dict[str, Any], opt, sched, generators: list) -> dict[str, Any]:
    """What a resumed run needs besides the weights: the run's settings (`run`), the optimizer and
    schedule state, and the state of the random generators (torch.Generator or random.Random) that
    drive augmentation, data order or subnet sampling."""
    return {**run, "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
            "generators": [g.get_state() if isinstance(g, torch.Generator) else g.getstate() for g in generators]}


def restore(path: str | Path, model, opt, sched, generators: list, run: dict[str, Any]) -> list[dict]:
    """Load a checkpoint's weights and `training_state` into a run about to start; returns its history.

    Refuses a checkpoint of a different run (epochs, seed, ...), whose schedule or data order would
    differ, and one without training state (written before resuming existed)."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    state = ck.get("state")
    if state is None:
        raise UserError(f"checkpoint '{path}' holds no training state; it cannot be resumed (delete it to restart)")
    theirs = {k: state.get(k) for k in run}
    if theirs != run:
        raise UserError(f"checkpoint '{path}' is of another run ({theirs}, this one {run}); "
                        "resume with the same settings or delete it to restart")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["schedule"])
    for g, st in zip(generators, state["generators"]):
        g.set_state(st) if isinstance(g, torch.Generator) else g.setstate(st)
    return ck["history"]


def load_checkpoint(path: str | Path):
    """Rebuild the zoo model a checkpoint was trained from (its MBConv config where the checkpoint
    holds one, as a redistributed network's does) and load its weights: (model, meta, history)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        meta = ck["meta"]
        cfg = zoo.MBConvConfig.from_dict(meta["config"]) if "config" in meta else \
            zoo.get(meta["model"], meta["width"], meta["resolution"], meta["num_classes"])
        model = cfg.module()
        model.load_state_dict(ck["model"])
    except (OSError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot load checkpoint '{path}': {e}; expected a file written by "
                        "`mcunet-lite train --out`") from None
    return model.to(memory_format=torch.channels_last).eval(), meta, ck["history"]


def train(model: str, data: str = "synthetic", resolution: int = 64, width: float | None = None,
          epochs: int = 5, batch_size: int = 32, lr: float = 3e-3, seed: int = 0, out: str | Path | None = None,
          n_train: int = 4000, n_val: int = 1000, difficulty: float = 0.5, progress: bool = True,
          device: str = "cpu", resume: bool = False, redistribute: int | None = None) -> dict[str, Any]:
    """Build a zoo model for person / no-person and fit it on `data` ('synthetic' or a VWW folder).

    The entry point of `mcunet-lite train`, in one process or under torchrun. Rank 0 generates
    (or reads) the data first so the others find it in the cache. With `resume`, continues the
    checkpoint `out` of an interrupted run (see `fit`). With `redistribute` K, trains the MBConv
    model's receptive-field-redistributed version for a patch stage of K blocks (MCUNetV2 section
    3.2; `redistribute.redistribute`). Returns the final record.
    """
    from . import data as vww
    rank, world = distributed()
    cfg = zoo.get(model, width, resolution, num_classes=2)
    if redistribute is not None:
        from .redistribute import redistribute as rd
        if not isinstance(cfg, zoo.MBConvConfig):
            raise UserError(f"--redistribute needs an MBConv model (mbv2, mcunet), not '{model}'")
        cfg = rd(cfg, redistribute)[0]
    if rank != 0:
        dist.barrier()
    if data == "synthetic":
        train_ds = vww.synthetic(n_train, resolution, "train", seed, difficulty, progress=progress and rank == 0)
        val_ds = vww.synthetic(n_val, resolution, "val", seed, difficulty, progress=progress and rank == 0)
    else:
        train_ds, val_ds = vww.load(data, "train", resolution), vww.load(data, "val", resolution)
    if world > 1 and rank == 0:
        dist.barrier()
    torch.manual_seed(seed)
    net = cfg.module()
    meta = {"model": model, "width": cfg.width, "resolution": resolution, "num_classes": 2, "data": data,
            "format": train_ds.format, "rule": train_ds.rule, "seed": seed}
    if redistribute is not None:
        meta.update(redistribute=redistribute, config=cfg.to_dict())
    history = fit(net, train_ds, val_ds, epochs, batch_size, lr, seed=seed, checkpoint=out, meta=meta,
                  progress=progress, device=device, resume=resume)
    return {**meta, **history[-1], "n_train": len(train_ds), "n_val": len(val_ds)}

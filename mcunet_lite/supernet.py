"""TinyNAS stage 2, the weight-sharing supernet (MCUNet section 3.1, after Once-for-All).

One network holds every subnet of a (width, resolution) search space: the largest kernels,
expansions and depths. A subnet uses
- elastic kernel: the centre of the 7x7 depthwise weight, passed through a learned transform
  (7 -> 5 -> 3), so the small kernels are not forced to equal the big kernel's centre;
- elastic expansion: the first `expand * in` channels of the expansion and projection convs;
- elastic depth: the first `depth` blocks of each stage.
Training follows the sandwich rule: every step trains the largest, the smallest and random
subnets. A subnet's BatchNorm statistics are recomputed before it is evaluated, and `extract`
copies its weights into a plain zoo model for fine-tuning, quantization and deployment.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import search_space as ss
from .errors import UserError
from .train import cosine_schedule, device_of, distributed, pick_device, run_epochs, seed_everything, shard_loader
from .zoo import Block, MBConvConfig, Stage


class ElasticBN(nn.BatchNorm2d):
    """BatchNorm over the first `c` channels of its maximum (momentum None: exact averages, as
    BatchNorm recalibration needs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, factor = x.shape[1], 0.0
        if self.training:
            self.num_batches_tracked += 1
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                            self.training, factor, self.eps)


class ElasticPointwise(nn.Module):
    """1x1 conv + BN whose input and output channels are sliced to what the subnet uses."""

    def __init__(self, cin: int, cout: int, act: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 1, 1))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn, self.act = ElasticBN(cout), act

    def forward(self, x: torch.Tensor, cout: int) -> torch.Tensor:
        y = self.bn(F.conv2d(x, self.weight[:cout, :x.shape[1]]))
        return F.relu6(y) if self.act else y


class ElasticDepthwise(nn.Module):
    """Depthwise conv + BN + ReLU6 with kernel 3, 5 or 7 from one 7x7 weight."""

    def __init__(self, channels: int, stride: int, kernels: Iterable[int] = ss.KERNELS) -> None:
        super().__init__()
        self.kernels = sorted(kernels, reverse=True)
        k = self.kernels[0]
        self.weight = nn.Parameter(torch.empty(channels, 1, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.transforms = nn.ParameterDict({str(s): nn.Parameter(torch.eye(s * s)) for s in self.kernels[1:]})
        self.stride, self.bn = stride, ElasticBN(channels)

    def kernel_weight(self, kernel: int, channels: int) -> torch.Tensor:
        """The (channels, 1, kernel, kernel) weight a subnet uses: centre crops, each transformed."""
        w = self.weight[:channels]
        for s in self.kernels[1:]:
            if s < kernel:
                break
            cut = (w.shape[-1] - s) // 2
            w = w[:, :, cut:cut + s, cut:cut + s].reshape(channels, s * s) @ self.transforms[str(s)]
            w = w.reshape(channels, 1, s, s)
        return w

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        c = x.shape[1]
        y = F.conv2d(x, self.kernel_weight(kernel, c), stride=self.stride, padding=kernel // 2, groups=c)
        return F.relu6(self.bn(y))


class ElasticBlock(nn.Module):
    """Inverted-residual block with elastic kernel and expansion."""

    def __init__(self, cin: int, cout: int, stride: int, max_expand: int) -> None:
        super().__init__()
        self.expand = ElasticPointwise(cin, cin * max_expand, act=True) if max_expand > 1 else None
        self.depthwise = ElasticDepthwise(cin * max_expand, stride)
        self.project = ElasticPointwise(cin * max_expand, cout, act=False)
        self.residual, self.cout = stride == 1 and cin == cout, cout

    def forward(self, x: torch.Tensor, block: Block) -> torch.Tensor:
        y = self.expand(x, x.shape[1] * block.expand) if self.expand is not None else x
        y = self.project(self.depthwise(y, block.kernel), self.cout)
        return x + y if self.residual else y


def largest(width: float, resolution: int, num_classes: int = 2) -> MBConvConfig:
    """The biggest subnet: every stage at its deepest, kernel 7, expansion 6."""
    return _uniform(width, resolution, num_classes, max(ss.DEPTHS), max(ss.KERNELS), max(ss.EXPANDS))


def smallest(width: float, resolution: int, num_classes: int = 2) -> MBConvConfig:
    """The smallest subnet: every stage at its shallowest, kernel 3, expansion 3."""
    return _uniform(width, resolution, num_classes, min(ss.DEPTHS), min(ss.KERNELS), min(ss.EXPANDS))


def _uniform(width: float, resolution: int, num_classes: int, depth: int, kernel: int, expand: int) -> MBConvConfig:
    stages = [Stage(16, 1, 1, [Block(3, 1)])]
    for base, stride, searchable in ss.LAYOUT:
        d = depth if searchable else 1
        stages.append(Stage(base, d, stride, [Block(kernel, expand) for _ in range(d)]))
    return MBConvConfig(stages, stem=32, head=None, num_classes=num_classes, width=width, resolution=resolution)


class Supernet(nn.Module):
    """Every subnet of the (width, resolution) space; `set_active(cfg)` picks the one `forward` runs."""

    def __init__(self, width: float, resolution: int, num_classes: int = 2) -> None:
        super().__init__()
        self.space = largest(width, resolution, num_classes)
        stem, widths, _ = self.space.channels()
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), ElasticBN(stem), nn.ReLU6())
        self.stages = nn.ModuleList()
        cin = stem
        for stage, cout in zip(self.space.stages, widths):
            blocks = nn.ModuleList()
            for j, b in enumerate(stage.blocks):
                blocks.append(ElasticBlock(cin, cout, stage.stride if j == 0 else 1, b.expand))
                cin = cout
            self.stages.append(blocks)
        self.classifier = nn.Linear(cin, num_classes)
        self.active = self.space

    def set_active(self, cfg: MBConvConfig) -> None:
        """Run subnet `cfg` from now on (it must belong to this supernet's space)."""
        if (cfg.width, cfg.resolution, cfg.num_classes) != (self.space.width, self.space.resolution,
                                                              self.space.num_classes):
            raise UserError(f"subnet at width {cfg.width}, resolution {cfg.resolution} is not in this supernet's "
                            f"space (width {self.space.width}, resolution {self.space.resolution})")
        self.active = cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage, blocks in zip(self.active.stages, self.stages):
            for b, module in zip(stage.blocks, blocks):
                x = module(x, b)
        return self.classifier(x.mean((2, 3)))


def extract(net: Supernet, cfg: MBConvConfig) -> nn.Module:
    """A plain zoo model of subnet `cfg` holding the supernet's (sliced, transformed) weights."""
    net.set_active(cfg)
    m = cfg.module()

    def copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d) -> None:
        c = dst.num_features
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).data.copy_(getattr(src, name).data[:c])

    with torch.no_grad():
        m.stem.conv.weight.copy_(net.stem[0].weight)
        copy_bn(m.stem.bn, net.stem[1])
        blocks = iter(m.blocks)
        for stage, elastic in zip(cfg.stages, net.stages):
            for b, src in zip(stage.blocks, elastic):
                dst = next(blocks)
                cin = dst.depthwise.conv.in_channels // b.expand
                mid = cin * b.expand
                if dst.expand is not None:
                    dst.expand.conv.weight.copy_(src.expand.weight[:mid, :cin])
                    copy_bn(dst.expand.bn, src.expand.bn)
                dst.depthwise.conv.weight.copy_(src.depthwise.kernel_weight(b.kernel, mid))
                copy_bn(dst.depthwise.bn, src.depthwise.bn)
                dst.project.conv.weight.copy_(src.project.weight[:, :mid])
                copy_bn(dst.project.bn, src.project.bn)
        m.classifier.load_state_dict(net.classifier.state_dict())
    return m


@torch.no_grad()
def recalibrate_bn(net: nn.Module, images: torch.Tensor, batch_size: int = 100) -> None:
    """Recompute every BatchNorm's running statistics for the active subnet from `images`: shared
    statistics are wrong for any one subnet (OFA section 3.2). Each layer's statistics and batch
    count are reset, then `images` run through in batches of `batch_size`, in training mode with
    momentum None, so that the statistics are the exact average over the batches; momenta and the
    training mode are restored afterwards."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    was = net.training
    net.train()
    dev = device_of(net)
    for i in range(0, len(images), batch_size):
        net(images[i:i + batch_size].to(dev))
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    net.train(was)


def sandwich(rng: random.Random, space: MBConvConfig, n_random: int = 2) -> list[MBConvConfig]:
    """The subnets one step trains: the largest, the smallest and `n_random` random ones."""
    w, r, c = space.width, space.resolution, space.num_classes
    return [largest(w, r, c), smallest(w, r, c)] + [ss.sample(rng, w, r, c) for _ in range(n_random)]


def train(net: Supernet, train_ds, epochs: int = 3, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
          n_random: int = 2, largest_epochs: int = 0, progress: bool = True, device: str = "cpu",
          checkpoint: str | Path | None = None, resume: bool = False) -> list[dict]:
    """Sandwich-rule training (gradients of all sampled subnets summed per step), on `device`
    (`train.pick_device`), after `largest_epochs` epochs (counted in `epochs`) that train only
    the largest subnet, as Once-for-All's progressive shrinking starts from the full network (OFA
    section 3.2): the shared weights learn the task with one subnet per step before every
    subnet must share them. Runs unchanged under torchrun: gradients are averaged across
    processes (DDP) once per step. With `checkpoint`, rank 0 saves the weights and training state
    after every epoch; with `resume` too, an interrupted run continues from there exactly."""
    dev = pick_device(device)
    rank, world = distributed()
    seed_everything(seed)
    net.to(dev)
    model = nn.parallel.DistributedDataParallel(net, find_unused_parameters=True) if world > 1 else net
    loader = shard_loader(train_ds, batch_size, rank, world, seed, shuffle=True)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-5)
    steps = epochs * len(loader)
    sched = cosine_schedule(opt, steps, warmup=steps // 10)
    rng = random.Random(seed)

    def step(batch, epoch: int) -> dict[str, float]:
        x, y = (v.to(dev) for v in batch)
        subnets = [net.space] if epoch < largest_epochs else sandwich(rng, net.space, n_random)
        total = 0.0
        for i, cfg in enumerate(subnets):
            net.set_active(cfg)
            if world > 1 and i < len(subnets) - 1:
                with model.no_sync():
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
            else:
                loss = F.cross_entropy(model(x), y)
                loss.backward()
            total += loss.item() * len(y)
        return {"loss": total, "n": len(y) * len(subnets)}

    def summarise(epoch: int, sums: dict[str, float], seconds: float) -> dict:
        return {"epoch": epoch + 1, "loss": sums.get("loss", 0.0) / max(sums.get("n", 0), 1), "seconds": seconds}

    run = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "n_random": n_random,
           "largest_epochs": largest_epochs, "world": world}
    history = run_epochs(net, loader, opt, sched, epochs, step, summarise, run, [rng], checkpoint, resume,
                         progress=progress, rank=rank, desc="supernet epoch")
    net.set_active(net.space)  # stays on `device`: the search's recalibrations run there too
    return history


@torch.no_grad()
def accuracy(net: Supernet, cfg: MBConvConfig, calib: torch.Tensor | None, val_x: torch.Tensor,
             val_y: torch.Tensor) -> float:
    """Top-1 accuracy of subnet `cfg` after BatchNorm recalibration on `calib` images (None: with the
    statistics `net` holds now, e.g. the ones training left, shared by every subnet)."""
    net.set_active(cfg)
    if calib is not None:
        recalibrate_bn(net, calib)
    net.eval()
    dev = device_of(net)
    correct = sum((net(val_x[i:i + 256].to(dev)).argmax(1).cpu() == val_y[i:i + 256]).sum().item()
                  for i in range(0, len(val_x), 256))
    return correct / len(val_x)

"""Model zoo: each architecture as a plain config that builds a torch module and, directly, a Graph.

The direct `graph()` path builds shapes only (no weights, no torch) so the NAS can build and
profile thousands of candidates per second (MCUNet section 3.1); `module()` builds the trainable
torch model, and `from_torch(config.module(), ...)` must give the same Graph (a test checks).

- `MBConvConfig`: MobileNetV2 and the MCUNet / ProxylessNAS MBConv space: a stem, stages of
  inverted-residual blocks (per stage: width, depth, stride; per block: kernel, expansion), an
  optional 1x1 head conv and a classifier. MobileNetV2 is one point of that space.
- `MobileNetV1Config`: depthwise-separable stack, the MLPerf Tiny VWW reference (width 0.25, 96).
- `ResNetConfig`: ResNet-18 (basic blocks), the "large weights" point of the memory comparison.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .ir import Graph


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% down (MobileNetV2)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _check(width: float, resolution: int, downsample: int, model: str) -> None:
    if not width > 0:
        raise UserError(f"width must be > 0, got {width}")
    if resolution <= 0:
        raise UserError(f"resolution must be > 0, got {resolution}")
    if resolution < downsample:
        raise UserError(f"resolution {resolution} is too small for {model}: it downsamples by "
                        f"{downsample}; use a resolution >= {downsample}")


def _torch():
    import torch.nn as nn  # imported here so that graph-only users (the NAS) never load torch
    return nn


def _start(cfg) -> tuple[Graph, str]:
    """An empty Graph named after `cfg` and its NHWC image input."""
    g = Graph(cfg.model, meta={"model": cfg.model, "width": cfg.width, "resolution": cfg.resolution})
    return g, g.add_input("input", (1, cfg.resolution, cfg.resolution, 3))


def _classify(g: Graph, x: str, num_classes: int, name: str) -> Graph:
    """Global average pool and the linear classifier every zoo model ends with."""
    x = g.add_op("mean", "mean", [x], {"axes": (1, 2), "keepdims": False})
    g.outputs.append(g.linear(x, num_classes, name=name))
    return g


def conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = "relu6"):
    """conv (no bias) + BatchNorm + activation, the unit every builder stacks; BN folds on import."""
    nn = _torch()

    class ConvBNAct(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(cout)
            self.act = {"relu": nn.ReLU, "relu6": nn.ReLU6, None: nn.Identity}[act]()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    return ConvBNAct()


# --------------------------------------------------------------------------------- MBConv nets
@dataclass
class Block:
    """One inverted-residual block: depthwise kernel size and expansion ratio."""

    kernel: int = 3
    expand: int = 6


@dataclass
class Stage:
    """`depth` blocks of `width` base channels; the first block has `stride`."""

    width: int
    depth: int
    stride: int
    blocks: list[Block]


@dataclass
class MBConvConfig:
    """MCUNet / ProxylessNAS-style MBConv network; channels are base widths scaled by `width`."""

    stages: list[Stage]
    stem: int = 32
    head: int | None = 1280
    num_classes: int = 1000
    width: float = 1.0
    resolution: int = 224
    model: str = "mcunet"

    def __post_init__(self) -> None:
        for i, s in enumerate(self.stages):
            if s.depth != len(s.blocks) or s.depth < 1:
                raise UserError(f"stage {i}: depth {s.depth} but {len(s.blocks)} blocks are given;"
                                " give one {kernel, expand} per block")
            for b in s.blocks:
                if b.kernel % 2 == 0 or b.kernel < 1 or b.expand < 1:
                    raise UserError(f"stage {i}: block {asdict(b)} needs an odd kernel and expand >= 1")
        _check(self.width, self.resolution, 2 * _prod(s.stride for s in self.stages), self.model)

    def channels(self) -> tuple[int, list[int], int | None]:
        """Scaled (stem, per-stage, head) channels, as MobileNetV2 scales them."""
        head = make_divisible(self.head * max(1.0, self.width)) if self.head else None
        return (make_divisible(self.stem * self.width),
                [make_divisible(s.width * self.width) for s in self.stages], head)

    def layers(self):
        """Yield (index, in_ch, out_ch, kernel, expand, stride) for every block in order."""
        stem, widths, _ = self.channels()
        cin, i = stem, 0
        for s, cout in zip(self.stages, widths):
            for j, b in enumerate(s.blocks):
                yield i, cin, cout, b.kernel, b.expand, s.stride if j == 0 else 1
                cin, i = cout, i + 1

    def graph(self) -> Graph:
        """Build the Graph directly (shapes only), with the names `from_torch` gives."""
        stem, widths, head = self.channels()
        g, x = _start(self)
        x = g.conv2d(x, stem, 3, 2, act="relu6", name="stem.conv")
        for i, cin, cout, k, e, s in self.layers():
            p, y = f"blocks.{i}", x
            if e != 1:
                y = g.conv2d(y, cin * e, 1, act="relu6", name=f"{p}.expand.conv")
            y = g.conv2d(y, cin * e, k, s, groups=cin * e, act="relu6", name=f"{p}.depthwise.conv")
            y = g.conv2d(y, cout, 1, name=f"{p}.project.conv")
            x = g.add_op("add", f"{p}.add", [x, y], {"act": None}) if s == 1 and cin == cout else y
        if head:
            x = g.conv2d(x, head, 1, act="relu6", name="head.conv")
        return _classify(g, x, self.num_classes, "classifier")

    def module(self):
        """Build the torch model (BatchNorm after every conv, ReLU6 as in MobileNetV2)."""
        nn = _torch()
        cfg = self
        stem, widths, head = self.channels()

        class MBBlock(nn.Module):
            def __init__(self, cin: int, cout: int, k: int, e: int, s: int) -> None:
                super().__init__()
                mid = cin * e
                self.expand = conv_bn_act(cin, mid, 1) if e != 1 else None
                self.depthwise = conv_bn_act(mid, mid, k, s, groups=mid)
                self.project = conv_bn_act(mid, cout, 1, act=None)
                self.residual = s == 1 and cin == cout

            def forward(self, x):
                y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
                return x + y if self.residual else y

        class MBConvNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.stem = conv_bn_act(3, stem, 3, 2)
                self.blocks = nn.ModuleList(MBBlock(*args) for _, *args in cfg.layers())
                last = widths[-1]
                self.head = conv_bn_act(last, head, 1) if head else None
                self.classifier = nn.Linear(head or last, cfg.num_classes)

            def forward(self, x):
                x = self.stem(x)
                for block in self.blocks:
                    x = block(x)
                if self.head is not None:
                    x = self.head(x)
                return self.classifier(x.mean((2, 3)))

        return MBConvNet()

    def to_dict(self) -> dict[str, Any]:
        """The plain config (JSON-ready), the format the NAS samples."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MBConvConfig":
        """Inverse of `to_dict`; errors name the missing or malformed key."""
        try:
            stages = [Stage(s["width"], s["depth"], s["stride"], [Block(**b) for b in s["blocks"]])
                      for s in d["stages"]]
            rest = {k: v for k, v in d.items() if k != "stages"}
            return cls(stages=stages, **rest)
        except (KeyError, TypeError) as e:
            raise UserError(f"malformed MBConv config: {e}; expected keys stages[{{width, depth, stride,"
                            " blocks[{kernel, expand}]}], stem, head, num_classes, width, resolution") from None


def _prod(xs) -> int:
    p = 1
    for x in xs:
        p *= x
    return p


# (expansion, base width, depth, stride) of MobileNetV2 (Sandler et al. 2018, table 2)
MBV2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]


def mobilenet_v2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> MBConvConfig:
    """MobileNetV2 as an MBConv config (all kernels 3)."""
    stages = [Stage(c, n, s, [Block(3, t) for _ in range(n)]) for t, c, n, s in MBV2_STAGES]
    return MBConvConfig(stages, 32, 1280, num_classes, width, resolution, "mbv2")


def mcunet_example(width: float = 0.5, resolution: int = 96, num_classes: int = 2) -> MBConvConfig:
    """An example point of the MCUNet search space (mixed kernels 3/5/7 and expansions 3/4/6).

    Not a published MCUNet model: a hand-picked config in the format the NAS samples, used when no
    `--config` file is given.
    """
    plan = [(16, 1, 1, [(3, 1)]), (24, 2, 2, [(7, 3), (3, 3)]), (40, 3, 2, [(7, 6), (3, 3), (5, 3)]),
            (80, 3, 2, [(5, 6), (5, 3), (5, 3)]), (96, 2, 1, [(5, 6), (5, 4)]),
            (192, 3, 2, [(7, 6), (7, 6), (3, 4)]), (320, 1, 1, [(7, 6)])]
    stages = [Stage(w, d, s, [Block(k, e) for k, e in blocks]) for w, d, s, blocks in plan]
    return MBConvConfig(stages, 32, 1280, num_classes, width, resolution, "mcunet")


# ----------------------------------------------------------------------------------- MobileNetV1
MBV1_LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + \
    [(1024, 2), (1024, 1)]


@dataclass
class MobileNetV1Config:
    """MobileNetV1 (Howard et al. 2017); defaults are the MLPerf Tiny VWW reference (0.25, 96x96)."""

    width: float = 0.25
    resolution: int = 96
    num_classes: int = 2
    model: str = "mbv1"

    def __post_init__(self) -> None:
        _check(self.width, self.resolution, 32, self.model)

    def layers(self):
        """Yield (index, in_ch, out_ch, stride) for every depthwise-separable block."""
        cin = make_divisible(32 * self.width)
        for i, (c, s) in enumerate(MBV1_LAYERS):
            cout = make_divisible(c * self.width)
            yield i, cin, cout, s
            cin = cout

    def graph(self) -> Graph:
        """Build the Graph directly (shapes only)."""
        g, x = _start(self)
        x = g.conv2d(x, make_divisible(32 * self.width), 3, 2, act="relu", name="stem.conv")
        for i, cin, cout, s in self.layers():
            x = g.conv2d(x, cin, 3, s, groups=cin, act="relu", name=f"blocks.{i}.depthwise.conv")
            x = g.conv2d(x, cout, 1, act="relu", name=f"blocks.{i}.pointwise.conv")
        return _classify(g, x, self.num_classes, "classifier")

    def module(self):
        """Build the torch model."""
        nn = _torch()
        cfg = self

        class DWSeparable(nn.Module):
            def __init__(self, cin: int, cout: int, s: int) -> None:
                super().__init__()
                self.depthwise = conv_bn_act(cin, cin, 3, s, groups=cin, act="relu")
                self.pointwise = conv_bn_act(cin, cout, 1, act="relu")

            def forward(self, x):
                return self.pointwise(self.depthwise(x))

        class MobileNetV1(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.stem = conv_bn_act(3, make_divisible(32 * cfg.width), 3, 2, act="relu")
                self.blocks = nn.Sequential(*(DWSeparable(*a) for _, *a in cfg.layers()))
                self.classifier = nn.Linear(make_divisible(1024 * cfg.width), cfg.num_classes)

            def forward(self, x):
                return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))

        return MobileNetV1()


# -------------------------------------------------------------------------------------- ResNet
@dataclass
class ResNetConfig:
    """ResNet with basic blocks (He et al. 2016); `depths` (2, 2, 2, 2) is ResNet-18."""

    depths: tuple[int, ...] = (2, 2, 2, 2)
    width: float = 1.0
    resolution: int = 224
    num_classes: int = 1000
    model: str = "resnet18"

    def __post_init__(self) -> None:
        _check(self.width, self.resolution, 2 ** (len(self.depths) + 1), self.model)

    def layers(self):
        """Yield (name, in_ch, out_ch, stride) for every basic block, torchvision naming."""
        cin = make_divisible(64 * self.width)
        for i, n in enumerate(self.depths):
            cout = make_divisible(64 * 2 ** i * self.width)
            for j in range(n):
                yield f"layer{i + 1}.{j}", cin, cout, 2 if i > 0 and j == 0 else 1
                cin = cout

    def graph(self) -> Graph:
        """Build the Graph directly (shapes only), in torchvision's execution order."""
        g, x = _start(self)
        x = g.conv2d(x, make_divisible(64 * self.width), 7, 2, act="relu", name="conv1")
        x = g.pool("maxpool", x, 3, 2, 1, name="maxpool")
        for p, cin, cout, s in self.layers():
            y = g.conv2d(x, cout, 3, s, act="relu", name=f"{p}.conv1")
            y = g.conv2d(y, cout, 3, name=f"{p}.conv2")
            if s != 1 or cin != cout:
                x = g.conv2d(x, cout, 1, s, name=f"{p}.downsample.0", pads=(0, 0, 0, 0))
            x = g.add_op("add", f"{p}.add", [y, x], {"act": "relu"})
        return _classify(g, x, self.num_classes, "fc")

    def module(self):
        """Build the torch model (torchvision's BasicBlock layout)."""
        nn = _torch()
        cfg = self

        class BasicBlock(nn.Module):
            def __init__(self, cin: int, cout: int, s: int) -> None:
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, s, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.relu = nn.ReLU()
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), nn.BatchNorm2d(cout)) \
                    if s != 1 or cin != cout else None

            def forward(self, x):
                y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
                identity = self.downsample(x) if self.downsample is not None else x
                return self.relu(y + identity)

        class ResNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                c0 = make_divisible(64 * cfg.width)
                self.conv1 = nn.Conv2d(3, c0, 7, 2, 3, bias=False)
                self.bn1 = nn.BatchNorm2d(c0)
                self.relu = nn.ReLU()
                self.maxpool = nn.MaxPool2d(3, 2, 1)
                blocks: dict[str, list] = {}
                for p, cin, cout, s in cfg.layers():
                    blocks.setdefault(p.split(".")[0], []).append(BasicBlock(cin, cout, s))
                for name, bs in blocks.items():
                    setattr(self, name, nn.Sequential(*bs))
                self.stages = list(blocks)
                self.fc = nn.Linear(cout, cfg.num_classes)

            def forward(self, x):
                x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
                for name in self.stages:
                    x = getattr(self, name)(x)
                return self.fc(x.mean((2, 3)))

        return ResNet()


# ------------------------------------------------------------------------------------ registry
Config = MBConvConfig | MobileNetV1Config | ResNetConfig

MODELS: dict[str, Any] = {
    "mbv2": mobilenet_v2,
    "mbv1": MobileNetV1Config,
    "resnet18": ResNetConfig,
    "mcunet": mcunet_example,
}


def get(name: str, width: float | None = None, resolution: int | None = None,
        num_classes: int | None = None, config: str | Path | None = None) -> Config:
    """Look up a zoo model by name; unset arguments keep the model's defaults.

    `config` is a JSON file of an `MBConvConfig` (the `mcunet` family, as the NAS writes them).
    """
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; valid models: {', '.join(MODELS)} (or a .tflite path)")
    if config is not None:
        if name != "mcunet":
            raise UserError(f"--config describes an MBConv network; use it with 'mcunet', not '{name}'")
        try:
            d = json.loads(Path(config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"cannot read config '{config}': {e}") from None
        overrides = {"width": width, "resolution": resolution, "num_classes": num_classes}
        return MBConvConfig.from_dict({**d, **{k: v for k, v in overrides.items() if v is not None}})
    kwargs = {"width": width, "resolution": resolution, "num_classes": num_classes}
    return MODELS[name](**{k: v for k, v in kwargs.items() if v is not None})

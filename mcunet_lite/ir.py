"""The graph representation every stage of the kit reads and writes.

A `Graph` is a list of `Op`s in execution order over named `Tensor`s. Activations are NHWC (the
layout of TFLite and TinyEngine), convolution weights OHWI (out, kh, kw, in/groups) and linear
weights (out, in). Activation functions (ReLU, ReLU6) are fused into the op that produces them, as
TFLite and TinyEngine fuse them (MCUNet section 3.2). Shapes are inferred once, here, by one rule
per op kind; no other module computes shapes its own way.

Graphs come from three places: the model zoo's direct builders (shapes only, no weights, fast
enough for the NAS to build thousands per second), `from_torch` (torch.fx import, with weights)
and, later, `.tflite` files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import UserError

Shape = tuple[int, ...]
ACTIVATIONS = (None, "relu", "relu6")


class GraphError(UserError):
    """An op whose inputs do not fit it (wrong channel count, kernel larger than its input...)."""


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per `axis` channel."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None


@dataclass
class Tensor:
    """A named value: an activation (data is None) or a constant such as a weight (data set).

    `const` marks weights and biases, which live in Flash; their `data` may still be None in a
    shape-only graph built for search.
    """

    name: str
    shape: Shape
    dtype: str = "float32"
    const: bool = False
    data: np.ndarray | None = None
    quant: Quant | None = None

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclass
class Op:
    """One operator: `inputs` are tensor names (activations first, then weight and bias)."""

    kind: str
    name: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def act(self) -> str | None:
        """The fused activation, if any."""
        return self.attrs.get("act")


def _out_size(size: int, k: int, stride: int, before: int, after: int) -> int:
    return (size + before + after - k) // stride + 1


def _window_shape(op: Op, x: Shape, kh: int, kw: int, out_c: int) -> Shape:
    """Output shape of a sliding-window op (conv or pool) over NHWC `x`."""
    sh, sw = op.attrs["stride"]
    pt, pb, pl, pr = op.attrs["pads"]
    if x[1] + pt + pb < kh or x[2] + pl + pr < kw:
        raise GraphError(f"{op.kind} '{op.name}': input {x[1]}x{x[2]} (padded by {op.attrs['pads']})"
                         f" is smaller than its {kh}x{kw} window; use a larger input resolution")
    return (x[0], _out_size(x[1], kh, sh, pt, pb), _out_size(x[2], kw, sw, pl, pr), out_c)


def _conv_shape(op: Op, shapes: list[Shape]) -> Shape:
    x, w = shapes[0], shapes[1]
    groups = op.attrs["groups"]
    if len(x) != 4:
        raise GraphError(f"conv2d '{op.name}': expects an NHWC input, got shape {x}")
    if x[3] != w[3] * groups or w[0] % groups:
        raise GraphError(f"conv2d '{op.name}': input has {x[3]} channels but the weight {w} with "
                         f"groups={groups} expects {w[3] * groups}")
    if len(shapes) > 2 and shapes[2] != (w[0],):
        raise GraphError(f"conv2d '{op.name}': bias shape {shapes[2]} does not match {w[0]} outputs")
    return _window_shape(op, x, w[1], w[2], w[0])


def _pool_shape(op: Op, shapes: list[Shape]) -> Shape:
    x = shapes[0]
    if len(x) != 4:
        raise GraphError(f"{op.kind} '{op.name}': expects an NHWC input, got shape {x}")
    return _window_shape(op, x, *op.attrs["kernel"], x[3])


def _linear_shape(op: Op, shapes: list[Shape]) -> Shape:
    x, w = shapes[0], shapes[1]
    if len(x) != 2 or x[1] != w[1]:
        raise GraphError(f"linear '{op.name}': input {x} does not match weight {w} (expects (N, {w[1]}));"
                         " flatten the feature map first")
    return (x[0], w[0])


def _add_shape(op: Op, shapes: list[Shape]) -> Shape:
    if shapes[0] != shapes[1]:
        raise GraphError(f"add '{op.name}': operand shapes differ: {shapes[0]} vs {shapes[1]}")
    return shapes[0]


def _mean_shape(op: Op, shapes: list[Shape]) -> Shape:
    axes, x = op.attrs["axes"], shapes[0]
    if op.attrs["keepdims"]:
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _pad_shape(op: Op, shapes: list[Shape]) -> Shape:
    x, paddings = shapes[0], op.attrs["paddings"]
    if len(paddings) != len(x):
        raise GraphError(f"pad '{op.name}': {len(paddings)} (before, after) pairs for a rank-{len(x)} input")
    return tuple(d + a + b for d, (a, b) in zip(x, paddings))


def _reshape_shape(op: Op, shapes: list[Shape]) -> Shape:
    x, target = shapes[0], list(op.attrs["shape"])
    n = int(np.prod(x))
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = n // known if known else 0
    if int(np.prod(target)) != n:
        raise GraphError(f"reshape '{op.name}': cannot reshape {x} ({n} elements) to {op.attrs['shape']}")
    return tuple(target)


def _same_shape(op: Op, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _transpose_shape(op: Op, shapes: list[Shape]) -> Shape:
    x, perm = shapes[0], tuple(op.attrs["perm"])
    if sorted(perm) != list(range(len(x))):
        raise GraphError(f"transpose '{op.name}': {perm} is not a permutation of the {len(x)} axes of {x}")
    return tuple(x[p] for p in perm)


def _resize_shape(op: Op, shapes: list[Shape]) -> Shape:
    x = shapes[0]
    if len(x) != 4:
        raise GraphError(f"resize_nearest '{op.name}': expects an NHWC input, got shape {x}")
    return (x[0], *op.attrs["size"], x[3])


SHAPE_RULES: dict[str, Callable[[Op, list[Shape]], Shape]] = {
    "conv2d": _conv_shape,
    "linear": _linear_shape,
    "add": _add_shape,
    "avgpool": _pool_shape,
    "maxpool": _pool_shape,
    "mean": _mean_shape,
    "pad": _pad_shape,
    "reshape": _reshape_shape,
    "softmax": _same_shape,
    "quantize": _same_shape,  # float -> int8 (int8 graphs only)
    "dequantize": _same_shape,  # int8 -> float
    "transpose": _transpose_shape,
    "resize_nearest": _resize_shape,
}


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TFLite SAME padding (before, after): the extra row goes after (DESIGN.md section 4)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


@dataclass
class Graph:
    """Ops in execution order over named tensors; `meta` records how the graph was made."""

    name: str = "graph"
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------
    def add_input(self, name: str, shape: Shape, dtype: str = "float32") -> str:
        """Declare a graph input; returns its tensor name."""
        if any(d <= 0 for d in shape):
            raise GraphError(f"input '{name}': every dimension must be positive, got {shape}")
        self.tensors[name] = Tensor(name, tuple(shape), dtype)
        self.inputs.append(name)
        return name

    def add_const(self, name: str, shape: Shape, data: np.ndarray | None = None, dtype: str = "float32") -> str:
        """Add a constant (weight or bias), with or without its values."""
        if data is not None and tuple(data.shape) != tuple(shape):
            raise GraphError(f"constant '{name}': data shape {data.shape} differs from {shape}")
        self.tensors[name] = Tensor(name, tuple(shape), dtype, const=True, data=data)
        return name

    def add_op(self, kind: str, name: str, inputs: list[str], attrs: dict[str, Any] | None = None) -> str:
        """Append an op, infer its output shape, and return the output tensor's name (= op name)."""
        if kind not in SHAPE_RULES:
            raise GraphError(f"op '{name}': unknown kind '{kind}' (known: {', '.join(SHAPE_RULES)})")
        if name in self.tensors:
            raise GraphError(f"op '{name}': a tensor of that name already exists")
        missing = [t for t in inputs if t not in self.tensors]
        if missing:
            raise GraphError(f"op '{name}': unknown input tensor(s) {missing}")
        op = Op(kind, name, list(inputs), name, dict(attrs or {}))
        if op.act not in ACTIVATIONS:
            raise GraphError(f"op '{name}': unsupported activation '{op.act}' (supported: relu, relu6)")
        shape = SHAPE_RULES[kind](op, [self.tensors[t].shape for t in inputs])
        self.tensors[name] = Tensor(name, shape, self.tensors[inputs[0]].dtype)
        self.ops.append(op)
        return name

    def conv2d(self, x: str, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
               act: str | None = None, name: str = "", pads: tuple[int, int, int, int] | None = None,
               weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> str:
        """Convolution with bias; `groups == in_channels` makes it depthwise. Default padding k//2."""
        name = name or f"conv{len(self.ops)}"
        in_c = self.tensors[x].shape[-1]
        if groups <= 0 or in_c % groups:
            raise GraphError(f"conv2d '{name}': groups={groups} does not divide {in_c} input channels")
        p = kernel // 2
        w = self.add_const(f"{name}.weight", (out_channels, kernel, kernel, in_c // groups), weight)
        b = self.add_const(f"{name}.bias", (out_channels,), bias)
        return self.add_op("conv2d", name, [x, w, b], {
            "stride": (stride, stride), "pads": pads or (p, p, p, p), "groups": groups, "act": act})

    def linear(self, x: str, out_features: int, act: str | None = None, name: str = "",
               weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> str:
        """Fully connected layer: (N, in) -> (N, out)."""
        name = name or f"linear{len(self.ops)}"
        w = self.add_const(f"{name}.weight", (out_features, self.tensors[x].shape[-1]), weight)
        b = self.add_const(f"{name}.bias", (out_features,), bias)
        return self.add_op("linear", name, [x, w, b], {"act": act})

    def pool(self, kind: str, x: str, kernel: int, stride: int, pad: int = 0, name: str = "") -> str:
        """Average or max pooling (`kind` is 'avgpool' or 'maxpool') with symmetric padding."""
        return self.add_op(kind, name or f"{kind}{len(self.ops)}", [x], {
            "kernel": (kernel, kernel), "stride": (stride, stride), "pads": (pad,) * 4})

    # -- queries ------------------------------------------------------------------------------
    def activations(self, op: Op) -> list[str]:
        """The non-constant inputs of `op`."""
        return [t for t in op.inputs if not self.tensors[t].const]

    def consts(self, op: Op) -> list[Tensor]:
        """The constant inputs (weights, bias) of `op`."""
        return [self.tensors[t] for t in op.inputs if self.tensors[t].const]

    def is_depthwise(self, op: Op) -> bool:
        """A conv whose every group is one input channel (MobileNet's depthwise conv)."""
        return op.kind == "conv2d" and op.attrs["groups"] > 1 and \
            op.attrs["groups"] == self.tensors[op.inputs[0]].shape[-1]

    def shape(self, name: str) -> Shape:
        """Shape of tensor `name`."""
        return self.tensors[name].shape

    def summary(self) -> str:
        """One line per op: name, kind, input and output shapes."""
        rows = [f"{op.name:32s} {op.kind:8s} {str(self.shape(op.inputs[0])):20s} -> {self.shape(op.output)}"
                for op in self.ops]
        return "\n".join(rows)

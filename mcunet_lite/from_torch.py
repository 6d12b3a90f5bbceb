"""Import a PyTorch model into a Graph through torch.fx.

Standard layers only: Conv2d, BatchNorm2d (folded into the conv before it, as deployment does),
ReLU / ReLU6 (fused into the op before them, as TFLite and TinyEngine fuse them), Linear, max and
average pooling, global mean, flatten / view / reshape, residual `+`, zero padding, softmax,
nearest upsampling by an integer factor, Dropout / Identity (skipped). Torch's NCHW becomes the
Graph's NHWC; weights are copied in OHWI. Anything else stops the import with an error that names
the layer and its module path.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .errors import UserError
from .ir import Graph

NCHW_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class _Importer:
    """Walks an fx graph node by node; `env` maps fx nodes to tensor names or Python values."""

    def __init__(self, gm, shape: tuple[int, ...], name: str) -> None:
        self.gm, self.modules = gm, dict(gm.named_modules())
        self.g = Graph(name, meta={"model": name, "resolution": shape[2], "width": None})
        self.nchw_in = shape
        self.env: dict[Any, Any] = {}
        self.producer_node: dict[str, Any] = {}

    # -- helpers --------------------------------------------------------------------------------
    def where(self, node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        return next(reversed(stack)) if stack else ""

    def fresh(self, node, base: str) -> str:
        path = self.where(node)
        name = f"{path}.{base}" if path else base
        i = 1
        while name in self.g.tensors:
            name, i = f"{path + '.' if path else ''}{base}_{i}", i + 1
        return name

    def fail(self, node, what: str) -> UserError:
        path = node.target if node.op == "call_module" else self.where(node) or "<top level>"
        return UserError(f"unsupported {what} at module path '{path}' (node '{node.name}'); supported: "
                         "Conv2d, BatchNorm2d, ReLU, ReLU6, Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), "
                         "mean, flatten/view/reshape, +, ZeroPad2d/F.pad, Softmax, Dropout, Identity, "
                         "Upsample(integer scale_factor, nearest)")

    def emit(self, node, kind: str, inputs: list[str], attrs: dict, name: str | None = None) -> str:
        out = self.g.add_op(kind, name or self.fresh(node, kind), inputs, attrs)
        self.producer_node[out] = node
        return out

    def const(self, name: str, data: np.ndarray) -> str:
        return self.g.add_const(name, data.shape, data)

    # -- layers ---------------------------------------------------------------------------------
    def conv(self, node, m) -> str:
        if _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
            raise self.fail(node, f"Conv2d option (dilation={m.dilation}, padding_mode={m.padding_mode})")
        if isinstance(m.padding, str):
            if m.padding == "same" and _pair(m.stride) != (1, 1):
                raise self.fail(node, "Conv2d padding='same' with stride > 1")
            kh, kw = _pair(m.kernel_size)
            ph, pw = ((kh - 1) // 2, (kw - 1) // 2) if m.padding == "same" else (0, 0)
            pads = (ph, kh - 1 - ph, pw, kw - 1 - pw) if m.padding == "same" else (0, 0, 0, 0)
        else:
            ph, pw = _pair(m.padding)
            pads = (ph, ph, pw, pw)
        w = _np(m.weight).transpose(0, 2, 3, 1)
        b = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], np.float32)
        name = node.target
        ins = [self.env[node.args[0]], self.const(f"{name}.weight", w), self.const(f"{name}.bias", b)]
        return self.emit(node, "conv2d", ins, {"stride": _pair(m.stride), "pads": pads, "groups": m.groups,
                                                "act": None}, name)

    def batchnorm(self, node, m) -> str:
        src = self.env[node.args[0]]
        op = self.g.ops[-1] if self.g.ops else None
        if op is None or op.output != src or op.kind != "conv2d" or op.act or len(node.args[0].users) != 1:
            raise self.fail(node, "BatchNorm2d that does not directly follow a Conv2d")
        scale = _np(m.weight if m.affine else m.running_var * 0 + 1) / np.sqrt(_np(m.running_var) + m.eps)
        shift = (_np(m.bias) if m.affine else 0) - _np(m.running_mean) * scale
        w, b = (self.g.tensors[t] for t in op.inputs[1:3])
        w.data = w.data * scale[:, None, None, None]
        b.data = b.data * scale + shift
        return src

    def activation(self, node, act: str) -> str:
        src = self.env[node.args[0]]
        op = self.g.ops[-1] if self.g.ops else None
        if op is None or op.output != src or op.kind not in ("conv2d", "linear", "add") or op.act \
                or len(node.args[0].users) != 1:
            raise self.fail(node, f"standalone {act} (it must directly follow a conv, linear or add whose"
                                  " output nothing else uses)")
        op.attrs["act"] = act
        return src

    def linear(self, node, m) -> str:
        b = _np(m.bias) if m.bias is not None else np.zeros(m.out_features, np.float32)
        name = node.target
        ins = [self.env[node.args[0]], self.const(f"{name}.weight", _np(m.weight)), self.const(f"{name}.bias", b)]
        return self.emit(node, "linear", ins, {"act": None}, name)

    def pool(self, node, kind: str, k, s, p, extra: dict) -> str:
        (ph, pw), name = _pair(p), node.target if node.op == "call_module" else None
        attrs = {"kernel": _pair(k), "stride": _pair(s or k), "pads": (ph, ph, pw, pw), **extra}
        return self.emit(node, kind, [self.env[node.args[0]]], attrs, name)

    def mean(self, node, x: str, dims, keepdim: bool) -> str:
        dims = [dims] if isinstance(dims, int) else list(dims)
        axes = tuple(sorted(NCHW_TO_NHWC[d % 4] for d in dims))
        if axes != (1, 2):
            raise self.fail(node, f"mean over dims {dims} (only the spatial mean over (2, 3) is supported)")
        return self.emit(node, "mean", [x], {"axes": axes, "keepdims": keepdim})

    def flatten(self, node, x: str, target: list[int]) -> str:
        n, h, w, c = self.g.shape(x) if len(self.g.shape(x)) == 4 else (0, 1, 1, 0)
        if h * w != 1:
            raise self.fail(node, f"flatten of a {c}x{h}x{w} feature map (NCHW and NHWC orders differ; pool to 1x1 first)")
        return self.emit(node, "reshape", [x], {"shape": tuple(target)}, self.fresh(node, "reshape"))

    def pad(self, node, x: str, p, value) -> str:
        if value not in (0, 0.0, None) or len(p) != 4:
            raise self.fail(node, f"padding {p} with value {value} (only zero padding of H and W)")
        left, right, top, bottom = p
        return self.emit(node, "pad", [x], {"paddings": ((0, 0), (top, bottom), (left, right), (0, 0))})

    # -- dispatch -------------------------------------------------------------------------------
    def call_module(self, node) -> Any:
        import torch.nn as nn
        m = self.modules[node.target]
        if isinstance(m, nn.Conv2d):
            return self.conv(node, m)
        if isinstance(m, nn.BatchNorm2d):
            return self.batchnorm(node, m)
        if isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0, 6)):
            return self.activation(node, "relu6")
        if isinstance(m, nn.ReLU):
            return self.activation(node, "relu")
        if isinstance(m, nn.Linear):
            return self.linear(node, m)
        if isinstance(m, nn.MaxPool2d) and not m.ceil_mode and _pair(m.dilation) == (1, 1):
            return self.pool(node, "maxpool", m.kernel_size, m.stride, m.padding, {})
        if isinstance(m, nn.AvgPool2d) and not m.ceil_mode:
            return self.pool(node, "avgpool", m.kernel_size, m.stride, m.padding,
                             {"count_include_pad": m.count_include_pad})
        if isinstance(m, nn.AdaptiveAvgPool2d) and _pair(m.output_size) == (1, 1):
            return self.mean(node, self.env[node.args[0]], (2, 3), True)
        if isinstance(m, nn.Flatten) and m.start_dim == 1:
            return self.flatten(node, self.env[node.args[0]], [self.g.shape(self.env[node.args[0]])[0], -1])
        if isinstance(m, nn.ZeroPad2d):
            return self.pad(node, self.env[node.args[0]], m.padding, 0)
        if isinstance(m, nn.Softmax) and m.dim in (-1, 1):
            return self.emit(node, "softmax", [self.env[node.args[0]]], {}, node.target)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return self.env[node.args[0]]
        if isinstance(m, nn.Upsample) and m.mode == "nearest" and m.size is None \
                and float(m.scale_factor).is_integer():  # torch's floor(i / s) = TFLite's, align_corners off
            _, h, w, _ = self.g.shape(self.env[node.args[0]])
            s = int(m.scale_factor)
            return self.emit(node, "resize_nearest", [self.env[node.args[0]]], {
                "size": (h * s, w * s), "align_corners": False, "half_pixel_centers": False}, node.target)
        raise self.fail(node, f"layer {type(m).__name__}")

    def call_function(self, node, fn, args: list, kwargs: dict) -> Any:
        import torch
        import torch.nn.functional as F
        if fn in (operator.add, operator.iadd, torch.add) and all(isinstance(a, str) for a in args[:2]):
            return self.emit(node, "add", args[:2], {"act": None})
        if fn in (F.relu, torch.relu):
            return self.activation(node, "relu")
        if fn is F.relu6 or (fn is F.hardtanh and tuple(args[1:3]) == (0.0, 6.0)):
            return self.activation(node, "relu6")
        if fn is torch.flatten and args[1:2] == [1] and kwargs.get("end_dim", -1) == -1:
            return self.flatten(node, args[0], [self.g.shape(args[0])[0], -1])
        if fn is F.adaptive_avg_pool2d and _pair(args[1]) == (1, 1):
            return self.mean(node, args[0], (2, 3), True)
        if fn is torch.mean:
            return self.mean(node, args[0], args[1] if len(args) > 1 else kwargs["dim"], kwargs.get("keepdim", False))
        if fn is F.pad:
            return self.pad(node, args[0], args[1], kwargs.get("value", args[3] if len(args) > 3 else 0))
        if fn is operator.getitem and isinstance(args[0], tuple):
            return args[0][args[1]]
        if fn in (F.dropout, torch.nn.functional.dropout):
            return args[0]
        raise self.fail(node, f"function {getattr(fn, '__name__', fn)}")

    def call_method(self, node, method: str, args: list, kwargs: dict) -> Any:
        x = args[0]
        if method == "size":
            n, h, w, c = self.g.shape(x)
            nchw = (n, c, h, w)
            return nchw[args[1]] if len(args) > 1 else nchw
        if method == "mean":
            return self.mean(node, x, args[1] if len(args) > 1 else kwargs["dim"], kwargs.get("keepdim", False))
        if method in ("view", "reshape"):
            shape = list(args[1]) if len(args) == 2 and isinstance(args[1], (tuple, list)) else list(args[1:])
            if len(shape) == 2:
                return self.flatten(node, x, shape)
        if method == "flatten" and (args[1:2] == [1] or kwargs.get("start_dim") == 1):
            return self.flatten(node, x, [self.g.shape(x)[0], -1])
        if method == "relu":
            return self.activation(node, "relu")
        raise self.fail(node, f"tensor method .{method}()")

    def run(self) -> Graph:
        n, c, h, w = self.nchw_in
        for node in self.gm.graph.nodes:
            args = [self.env.get(a, a) if _is_node(a) else a for a in node.args]
            kwargs = {k: self.env.get(v, v) if _is_node(v) else v for k, v in node.kwargs.items()}
            if node.op == "placeholder":
                if self.g.inputs:
                    raise self.fail(node, "second model input")
                self.env[node] = self.g.add_input("input", (n, h, w, c))
            elif node.op == "call_module":
                self.env[node] = self.call_module(node)
            elif node.op == "call_function":
                self.env[node] = self.call_function(node, node.target, args, kwargs)
            elif node.op == "call_method":
                self.env[node] = self.call_method(node, node.target, args, kwargs)
            elif node.op == "output":
                outs = node.args[0] if isinstance(node.args[0], (tuple, list)) else [node.args[0]]
                self.g.outputs.extend(self.env[o] for o in outs)  # a tuple of outputs: each one's tensor
            else:
                raise self.fail(node, f"fx node kind {node.op} ({node.target})")
        return self.g


def _is_node(a) -> bool:
    import torch.fx
    return isinstance(a, torch.fx.Node)


def from_torch(module, resolution: int | None = None, input_shape: tuple[int, int, int, int] | None = None,
               name: str | None = None) -> Graph:
    """Trace `module` with torch.fx and build its Graph (BatchNorm folded, activations fused).

    Give either `resolution` (input 1x3xRxR) or an NCHW `input_shape`.
    """
    import torch.fx
    shape = input_shape or (1, 3, resolution, resolution)
    if shape[2] is None:
        raise UserError("from_torch needs resolution= or input_shape=")
    try:
        gm = torch.fx.symbolic_trace(module.eval())
    except Exception as e:  # torch.fx raises several types for untraceable code
        raise UserError(f"torch.fx cannot trace {type(module).__name__}: {e}") from None
    return _Importer(gm, tuple(shape), name or type(module).__name__).run()

"""Compute and memory profile of a Graph: MACs, parameters, Flash, per-op SRAM and its peak.

Lifetimes and the in-place rule it counts with live in `liveness`.

Memory is counted for int8 deployment: one byte per activation element, int8 weights and int32
biases in Flash. The SRAM an op needs is every activation live while it runs: its inputs, its
output and the tensors held across it for later ops (a residual input waiting for its ADD). That
is the analytic rule of MCUNetV2 section 4 (`naive`). The `tinyengine` rule adds TinyEngine's
in-place depthwise convolution (MCUNet section 3.2): when the depthwise input dies at that op the
output overwrites it, so the op costs max(in, out) instead of in + out; and a residual input is
held until its ADD but not added again at the projection conv, which writes the sum into it; and
a QUANTIZE of a dying float input writes its int8 bytes over the floats (TinyEngine takes int8
input, so a float model input costs no int8 copy beside it either).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import UserError
from .ir import Graph, Op
from .liveness import activation_bytes, fused_residuals, inplace_input, inplace_kind, lifetimes

RULES = ("naive", "tinyengine")

# SRAM and Flash bytes of the microcontrollers the MCUNet papers target
MCU_BUDGETS: dict[str, tuple[int, int]] = {
    "STM32F412": (256 * 1024, 1024 * 1024),
    "STM32F746": (320 * 1024, 1024 * 1024),
    "STM32H743": (512 * 1024, 2048 * 1024),
}


@dataclass
class LayerProfile:
    """One op's figures; `sram_bytes` is everything live while it runs."""

    name: str
    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    params: int
    flash_bytes: int
    sram_bytes: int


@dataclass
class Profile:
    """Whole-model figures under one counting `rule`, with the per-op `layers`."""

    model: str
    resolution: int | None
    width: float | None
    rule: str
    macs: int
    params: int
    flash_bytes: int
    peak_sram_bytes: int
    peak_layer: str
    layers: list[LayerProfile]

    def to_dict(self) -> dict:
        """JSON-ready dict (shapes as lists)."""
        return asdict(self)

    def blocks(self) -> dict[str, int]:
        """Peak SRAM per block (ops grouped by `block_of`), in execution order."""
        peaks: dict[str, int] = {}
        for layer in self.layers:
            b = block_of(layer.name)
            peaks[b] = max(peaks.get(b, 0), layer.sram_bytes)
        return peaks


def block_of(op_name: str) -> str:
    """The block an op belongs to: its name up to the first numeric part ('blocks.3.add' ->
    'blocks.3', 'layer1.0.conv1' -> 'layer1.0'), or its first part ('stem.conv' -> 'stem')."""
    parts = op_name.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[:i + 1])
    return parts[0]


def op_label(g: Graph, op: Op) -> str:
    """Human label of an op kind: convs are told apart as depthwise / pointwise."""
    if op.kind != "conv2d":
        return op.kind
    if g.is_depthwise(op):
        return "depthwise"
    return "pointwise" if g.shape(op.inputs[1])[1:3] == (1, 1) else "conv2d"


def op_macs(g: Graph, op: Op) -> int:
    """Multiply-accumulates of conv2d (out elements x kh x kw x in/groups) and linear (out x in)."""
    if op.kind == "conv2d":
        _, kh, kw, cin_g = g.shape(op.inputs[1])
        return g.tensors[op.output].size * kh * kw * cin_g
    if op.kind == "linear":
        return g.tensors[op.output].size * g.shape(op.inputs[1])[1]
    return 0


def op_weights(g: Graph, op: Op) -> tuple[int, int]:
    """(parameters, Flash bytes): int8 weights (1 byte), int32 bias (4 bytes, input 2 of conv/linear)."""
    params = flash = 0
    for i, name in enumerate(op.inputs):
        t = g.tensors[name]
        if t.const:
            params += t.size
            flash += t.size * (4 if i == 2 and op.kind in ("conv2d", "linear") else 1)
    return params, flash


def op_sram(g: Graph, rule: str = "tinyengine") -> list[int]:
    """Bytes live during each op under `rule`: one sweep over the execution order."""
    if rule not in RULES:
        raise UserError(f"unknown counting rule '{rule}'; valid rules: {', '.join(RULES)}")
    life, nbytes = lifetimes(g), activation_bytes(g)
    saved = [0] * len(g.ops)
    if rule == "tinyengine":
        for i, r, y in fused_residuals(g, nbytes, life):
            saved[i - 1] += nbytes[y]                           # the conv writes into r
            saved[i] += nbytes[y] + nbytes[g.ops[i].output]     # y and the sum both live in r
    dies: dict[int, list[str]] = {}
    for t, (_, last) in life.items():
        dies.setdefault(last, []).append(t)
    live = sum(nbytes[t] for t in g.inputs)
    out = []
    for i, op in enumerate(g.ops):
        o = nbytes[op.output]
        cost = live + o
        if rule == "tinyengine" and inplace_kind(g, op) in ("depthwise", "quantize") \
                and inplace_input(g, i, life, nbytes):
            cost -= o  # the output overwrites its dying input
        out.append(cost - saved[i])
        live += o - sum(nbytes[t] for t in dies.get(i, ()))
    return out


def profile(g: Graph, rule: str = "tinyengine") -> Profile:
    """Profile `g`: per-op MACs, params, Flash, SRAM, and the totals and peak."""
    sram = op_sram(g, rule)
    layers = []
    for op, s in zip(g.ops, sram):
        params, flash = op_weights(g, op)
        layers.append(LayerProfile(op.name, op_label(g, op), g.shape(op.inputs[0]), g.shape(op.output),
                                   op_macs(g, op), params, flash, s))
    peak = max(layers, key=lambda layer: layer.sram_bytes)
    return Profile(g.meta.get("model", g.name), g.meta.get("resolution"), g.meta.get("width"), rule,
                   sum(layer.macs for layer in layers), sum(layer.params for layer in layers),
                   sum(layer.flash_bytes for layer in layers), peak.sram_bytes, peak.name, layers)


def format_table(p: Profile) -> str:
    """The per-layer table and summary the CLI prints."""
    head = f"{'layer':30s} {'op':10s} {'input':>16s} {'output':>16s} {'MACs':>12s} {'params':>9s} {'SRAM kB':>9s}"
    rows = [head, "-" * len(head)]
    for layer in p.layers:
        mark = "  <- peak" if layer.name == p.peak_layer else ""
        rows.append(f"{layer.name:30s} {layer.op:10s} {'x'.join(map(str, layer.in_shape[1:])):>16s} "
                    f"{'x'.join(map(str, layer.out_shape[1:])):>16s} {layer.macs:12,d} {layer.params:9,d} "
                    f"{layer.sram_bytes / 1024:9.1f}{mark}")
    rows += ["-" * len(head),
             f"{p.model}  width {p.width}  resolution {p.resolution}  rule {p.rule}",
             f"MACs {p.macs / 1e6:.1f}M   params {p.params / 1e6:.3f}M   Flash {p.flash_bytes / 1024:.1f} kB   "
             f"peak SRAM {p.peak_sram_bytes / 1024:.1f} kB ({p.peak_sram_bytes} bytes) at {p.peak_layer}"]
    return "\n".join(rows)

"""One validation pass over a model read from a file: the contract the rest of the kit assumes.

A .tflite file comes from anywhere (DESIGN.md section 9). `check_file` checks the flatbuffer's
structure before the reader walks it: one subgraph with one input and at least one output,
tensor / buffer / opcode indices in range, supported ops and types, shapes of positive dimensions,
option tables present where an op's geometry depends on them and with sane values, and operators
in an order that computes every activation before it is read (so no cycles). `check_graph` checks
the Graph the reader built against the int8 contract of DESIGN.md section 4 (types per tensor
role, finite positive scales, zero points in range, one weight scale per output channel, the
int8 softmax's fixed output scale) and the size cap. Every violation is one `UserError` line
naming the op or tensor, the rule and the value; "truncated or corrupt" stays for bytes that are
not a flatbuffer at all.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .ir import Graph, Op

LIMIT_MIB = 64  # default cap on a model file and on its activations (SRAM / Flash scale, with headroom)
DTYPES = {0: "float32", 2: "int32", 9: "int8"}  # TensorType codes the kit reads
MAX_RANK = 4
SAME, VALID = 0, 1  # Padding
ACTS = {0: None, 1: "relu", 3: "relu6"}  # ActivationFunctionType: NONE, RELU, RELU6


@dataclass(frozen=True)
class OpRule:
    """What an op's inputs are, one letter per position (a: activation computed earlier, c: constant,
    o: optional constant, index -1 when absent), and its option table (`required` where the
    defaults of a missing table are not a valid op)."""

    inputs: str
    options: str | None = None
    required: bool = False


OPS = {
    "CONV_2D": OpRule("aco", "Conv2DOptions", True),
    "DEPTHWISE_CONV_2D": OpRule("aco", "DepthwiseConv2DOptions", True),
    "FULLY_CONNECTED": OpRule("aco", "FullyConnectedOptions"),
    "ADD": OpRule("aa", "AddOptions"),
    "AVERAGE_POOL_2D": OpRule("a", "Pool2DOptions", True),
    "MAX_POOL_2D": OpRule("a", "Pool2DOptions", True),
    "MEAN": OpRule("ac", "ReducerOptions"),
    "PAD": OpRule("ac"),
    "RESHAPE": OpRule("ao"),
    "SOFTMAX": OpRule("a", "SoftmaxOptions", True),
    "TRANSPOSE": OpRule("ac"),
    "RESIZE_NEAREST_NEIGHBOR": OpRule("ac", "ResizeNearestNeighborOptions"),
    "QUANTIZE": OpRule("a"),
    "DEQUANTIZE": OpRule("a"),
}
SUPPORTED_TYPES = "int8 activations and weights, int32 biases, float32 only before QUANTIZE and after DEQUANTIZE"


def _tflite():
    import tflite  # the schema package; imported on use like tflite_io does
    return tflite


def printable(text: str | bytes, limit: int | None = None) -> str:
    """`text` as printable ASCII: other characters as backslash escapes (a name from a file never
    moves the terminal's cursor or breaks a one-line message); cut to `limit` characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="backslashreplace")
    out = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)
    return out if limit is None or len(out) <= limit else out[:limit] + "..."


def read_options(op, cls: str):
    """Option table `cls` of raw operator `op`; a missing table reads as the schema's defaults."""
    import flatbuffers
    tfl = _tflite()
    o = getattr(tfl, cls)()
    table = op.BuiltinOptions()
    if table is None:
        bld = flatbuffers.Builder(16)
        getattr(tfl, f"{cls}Start")(bld)
        bld.Finish(getattr(tfl, f"{cls}End")(bld))
        data = bytes(bld.Output())
        o.Init(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
    else:
        o.Init(table.Bytes, table.Pos)
    return o


def type_name(code: int) -> str:
    """TensorType code -> its schema name (INT16, UINT8, ...)."""
    return next((k for k, v in vars(_tflite().TensorType).items() if v == code), f"type code {code}")


# ------------------------------------------------------------------------------ the flatbuffer
class _FileCheck:
    """The structural checks of `check_file`; `fail` formats one line about the file."""

    def __init__(self, model, buf: bytes, where: str) -> None:
        self.model, self.buf, self.where = model, buf, where
        self.sg = model.Subgraphs(0)
        self.n_tensors, self.n_buffers = self.sg.TensorsLength(), model.BuffersLength()

    def fail(self, msg: str) -> UserError:
        return UserError(f"'{printable(self.where, 200)}': {msg}")

    def tensor_label(self, i: int) -> str:
        name = self.sg.Tensors(i).Name()
        return f"tensor {i}" + (f" '{printable(name, 80)}'" if name else "")

    def index(self, i: int, what: str) -> int:
        """A tensor index read from `what`, in range."""
        if not 0 <= i < self.n_tensors:
            raise self.fail(f"{what} refers to tensor {i}; the model has tensors 0..{self.n_tensors - 1}")
        return i

    def tensor(self, i: int) -> None:
        """Buffer index, type and shape of tensor `i`."""
        t = self.sg.Tensors(i)
        if not 0 <= t.Buffer() < self.n_buffers:
            raise self.fail(f"{self.tensor_label(i)} uses buffer {t.Buffer()}; the model has buffers "
                            f"0..{self.n_buffers - 1}")
        if t.Type() not in DTYPES:
            raise self.fail(f"{self.tensor_label(i)} is {type_name(t.Type())}: unsupported type; supported: "
                            f"{SUPPORTED_TYPES}")
        shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
        if len(shape) > MAX_RANK:
            raise self.fail(f"{self.tensor_label(i)} has rank {len(shape)}: unsupported; supported ranks 0..{MAX_RANK}")
        if any(d < 1 for d in shape):
            raise self.fail(f"{self.tensor_label(i)} has shape {shape}: every dimension must be at least 1")

    def is_const(self, i: int) -> bool:
        b = self.model.Buffers(self.sg.Tensors(i).Buffer())
        return b.DataLength() > 0 or b.Size() > 0

    def opname(self, k: int, op) -> str:
        """The op's TFLite name; unsupported ops stop here."""
        n_codes = self.model.OperatorCodesLength()
        if not 0 <= op.OpcodeIndex() < n_codes:
            raise self.fail(f"op {k} uses operator code {op.OpcodeIndex()}; the model has codes 0..{n_codes - 1}")
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = _tflite().utils.BUILTIN_OPCODE2NAME.get(code, f"custom op code {code}")
        if code == _tflite().BuiltinOperator.CUSTOM:
            name = f"custom op '{printable(oc.CustomCode() or b'', 60)}'"
        if name not in OPS:
            raise self.fail(f"op {k} is {name}: unsupported op; supported: {', '.join(OPS)}")
        return name

    def operator(self, k: int, op, name: str, made: set[int]) -> None:
        """Inputs (roles, order), output and options of op `k`; adds its output to `made`."""
        rule, where = OPS[name], f"op {k} ({name})"
        ins, outs = _ints(op, "Inputs"), _ints(op, "Outputs")
        need, most = len(rule.inputs.rstrip("o")), len(rule.inputs)
        if not need <= len(ins) <= most or len(outs) != 1:
            raise self.fail(f"{where} has {len(ins)} inputs and {len(outs)} outputs; it takes "
                            f"{need}{'' if need == most else f' to {most}'} inputs and 1 output")
        for pos, (i, role) in enumerate(zip(ins, rule.inputs)):
            if i == -1 and role == "o":
                continue
            self.tensor(self.index(i, f"{where} input {pos}"))
            if role == "a" and self.is_const(i):
                raise self.fail(f"{where} input {pos} ({self.tensor_label(i)}) is a constant: unsupported; "
                                "this input must be an activation")
            if role == "a" and i not in made:
                raise self.fail(f"{where} reads {self.tensor_label(i)} before any op computes it "
                                "(operators must come in execution order, without cycles)")
            if role in "co" and not self.is_const(i):
                raise self.fail(f"{where} input {pos} ({self.tensor_label(i)}) must be a constant, but it has no data")
        out = self.index(outs[0], f"{where} output")
        self.tensor(out)
        if out in made or self.is_const(out):
            what = "a constant" if self.is_const(out) else "already computed"
            raise self.fail(f"{where} writes {self.tensor_label(out)}, which is {what}; each activation has one writer")
        made.add(out)
        self.options(where, op, rule)

    def options(self, where: str, op, rule: OpRule) -> None:
        """The op's option table: its type, presence where required, and the geometry it sets."""
        if rule.options is None:
            return
        expected = getattr(_tflite().BuiltinOptions, rule.options)
        if op.BuiltinOptions() is None or op.BuiltinOptionsType() == 0:
            if rule.required:
                raise self.fail(f"{where} has no {rule.options}; the op needs them (strides, padding, ...)")
            return
        if op.BuiltinOptionsType() != expected:
            got = next((k for k, v in vars(_tflite().BuiltinOptions).items() if v == op.BuiltinOptionsType()),
                       str(op.BuiltinOptionsType()))
            raise self.fail(f"{where} carries {got}; the op's options are {rule.options}")
        o = read_options(op, rule.options)
        if hasattr(o, "StrideH") and (o.StrideH() < 1 or o.StrideW() < 1):
            raise self.fail(f"{where} has stride {o.StrideH()}x{o.StrideW()}: strides must be at least 1")
        if hasattr(o, "Padding") and o.Padding() not in (SAME, VALID):
            raise self.fail(f"{where} has padding code {o.Padding()}: unsupported; supported: 0 (SAME), 1 (VALID)")
        if hasattr(o, "FilterHeight") and (o.FilterHeight() < 1 or o.FilterWidth() < 1):
            raise self.fail(f"{where} has a {o.FilterHeight()}x{o.FilterWidth()} window: windows must be at least 1x1")
        if hasattr(o, "DilationHFactor") and (o.DilationHFactor(), o.DilationWFactor()) != (1, 1):
            raise self.fail(f"{where} has dilation {o.DilationHFactor()}x{o.DilationWFactor()}: unsupported; "
                            "supported: 1x1")
        if hasattr(o, "FusedActivationFunction") and o.FusedActivationFunction() not in ACTS:
            raise self.fail(f"{where} has fused activation code {o.FusedActivationFunction()}: unsupported; "
                            "supported: 0 (NONE), 1 (RELU), 3 (RELU6)")
        if hasattr(o, "Beta") and not (math.isfinite(o.Beta()) and o.Beta() > 0):
            raise self.fail(f"{where} has beta {o.Beta()}: beta must be finite and positive")

    def run(self) -> list[str]:
        sg = self.sg
        for i in range(self.n_tensors):
            self.name_complete(i)
        ins = [self.index(i, "the model's input list") for i in _ints(sg, "Inputs")]
        outs = [self.index(i, "the model's output list") for i in _ints(sg, "Outputs")]
        if len(ins) != 1:
            raise self.fail(f"the model has {len(ins)} inputs: unsupported; supported: exactly 1 input")
        if not outs:
            raise self.fail("the model has no outputs: nothing it computes would be read")
        if sg.OperatorsLength() == 0:
            raise self.fail("the model has no operators: nothing to run")
        names = [self.opname(k, sg.Operators(k)) for k in range(sg.OperatorsLength())]  # "unsupported" first
        self.tensor(ins[0])
        if self.is_const(ins[0]):
            raise self.fail(f"the model's input ({self.tensor_label(ins[0])}) is a constant")
        made = set(ins)
        for k, name in enumerate(names):
            self.operator(k, sg.Operators(k), name, made)
        missing = [i for i in outs if i not in made]
        if missing:
            raise self.fail(f"output {self.tensor_label(missing[0])} is computed by no operator")
        return names

    def name_complete(self, i: int) -> None:
        """Tensor `i`'s name lies inside the file (a truncated file shows here first)."""
        if not _string_complete(self.sg.Tensors(i)._tab, 10, len(self.buf)):  # 10: the vtable slot of Tensor.name
            raise self.fail(f"the file ends inside tensor {i}'s name; it is truncated")


def _ints(table, field: str) -> list[int]:
    """An int vector field of a flatbuffer table as a list (empty when absent)."""
    return [int(v) for v in getattr(table, f"{field}AsNumpy")()] if getattr(table, f"{field}Length")() else []


def _string_complete(table, slot: int, size: int) -> bool:
    """Whether the string in field `slot` of a flatbuffer table, with its terminating NUL, lies inside
    the file. Numeric vectors past the end fail to read, but strings are sliced silently short."""
    import flatbuffers
    o = table.Offset(slot)
    if not o:
        return True
    pos = table.Pos + o
    start = pos + flatbuffers.encode.Get(flatbuffers.packer.uoffset, table.Bytes, pos)
    return start + 4 + flatbuffers.encode.Get(flatbuffers.packer.uoffset, table.Bytes, start) < size


def check_file(model, buf: bytes, where: str) -> list[str]:
    """Structural checks of a parsed flatbuffer (see the module docstring); returns each operator's
    TFLite name. Raises a one-line `UserError` at the first violation."""
    if model.SubgraphsLength() != 1:
        raise UserError(f"'{printable(where, 200)}': {model.SubgraphsLength()} subgraphs: unsupported; supported: "
                        "exactly 1 subgraph")
    return _FileCheck(model, buf, where).run()


# ------------------------------------------------------------------------------------- the graph
def _fail(where: str, what: str, msg: str) -> UserError:
    return UserError(f"'{printable(where, 200)}': {what} {msg}")


def _check_quant(g: Graph, name: str, where: str, per_channel: int | None = None) -> None:
    """Tensor `name` is quantized with finite positive scales and zero points its type can hold;
    `per_channel`: the number of output channels a per-channel scale vector must match (else one
    scale and zero point per tensor)."""
    t = g.tensors[name]
    what = f"tensor '{name}' ({t.dtype})"
    if t.quant is None:
        raise _fail(where, what, "has no quantization parameters; int8 tensors need a scale and a zero point")
    scale, zp = np.ravel(t.quant.scale), np.ravel(t.quant.zero_point)
    allowed = (1,) if per_channel is None else (1, per_channel)
    if len(scale) not in allowed:
        raise _fail(where, what, f"has {len(scale)} scales; it needs " +
                    ("one (per tensor)" if per_channel is None else f"one or one per output channel ({per_channel})"))
    if len(zp) != len(scale):
        raise _fail(where, what, f"has {len(scale)} scales but {len(zp)} zero points; they must pair up")
    bad = scale[~(np.isfinite(scale) & (scale > 0))]
    if bad.size:
        raise _fail(where, what, f"has scale {bad[0]}: scales must be finite and positive")
    lo, hi = (0, 0) if t.const else (-128, 127)  # weights are symmetric (DESIGN.md section 4)
    bad_zp = zp[(zp < lo) | (zp > hi)]
    if bad_zp.size:
        raise _fail(where, what, f"has zero point {bad_zp[0]}: zero points must lie in [{lo}, {hi}]")


def _check_dtype(g: Graph, name: str, dtype: str, role: str, where: str) -> None:
    got = g.tensors[name].dtype
    if got != dtype:
        raise _fail(where, f"{role} '{name}'", f"is {got}: unsupported; the {role} must be {dtype} ({SUPPORTED_TYPES})")


def _check_op(g: Graph, op: Op, where: str) -> None:
    """Types per tensor role and quantization of one op."""
    acts = g.activations(op)
    in_type = "float32" if op.kind == "quantize" else "int8"
    out_type = "float32" if op.kind == "dequantize" else "int8"
    for x in acts:
        _check_dtype(g, x, in_type, f"input of {op.kind}", where)
    _check_dtype(g, op.output, out_type, f"output of {op.kind}", where)
    for t in [*(a for a in acts if in_type == "int8"), *([op.output] if out_type == "int8" else [])]:
        _check_quant(g, t, where)
    if op.kind == "softmax":
        scale, zp = (np.ravel(v)[0] for v in (g.tensors[op.output].quant.scale, g.tensors[op.output].quant.zero_point))
        if abs(scale * 256 - 1) > 1e-3 or zp != -128:
            raise _fail(where, f"output of softmax '{op.output}'", f"has scale {scale} and zero point {zp}; an int8 "
                        "softmax outputs scale 1/256, zero point -128")
    if op.kind in ("conv2d", "linear"):
        w, b = op.inputs[1], op.inputs[2]
        oc = g.shape(w)[0]
        _check_dtype(g, w, "int8", f"weight of {op.kind}", where)
        _check_dtype(g, b, "int32", f"bias of {op.kind}", where)
        _check_quant(g, w, where, per_channel=oc)  # the bias's own scale is never read: S_in * S_w is used
        if g.shape(b) != (oc,):
            raise _fail(where, f"bias '{b}'", f"has shape {g.shape(b)}; the op has {oc} output channels")


def run_bytes(g: Graph) -> int:
    """Bytes the int8 executor holds for one input: every activation, plus the float64 copies the
    costliest conv or linear op makes (its input, its im2col windows, its accumulators)."""
    item = {"float32": 4, "int32": 4}
    total = sum(t.size * item.get(t.dtype, 1) for t in g.tensors.values() if not t.const)
    peak = 0
    for op in g.ops:
        if op.kind in ("conv2d", "linear"):
            w, out = g.shape(op.inputs[1]), g.tensors[op.output].size
            cols = out // w[0] * math.prod(w[1:]) if op.attrs.get("groups", 1) == 1 else 0
            peak = max(peak, 8 * (g.tensors[op.inputs[0]].size + cols + 2 * out))
    return total + peak


def check_graph(g: Graph, where: str, limit_mib: float = LIMIT_MIB) -> None:
    """The int8 contract of DESIGN.md section 4 on a Graph read from `where`, and the size cap."""
    total = run_bytes(g)
    if total > limit_mib * 2 ** 20:
        raise UserError(f"'{printable(where, 200)}': running it takes {total / 2 ** 20:.1f} MiB per input (activations "
                        f"and the executor's working copies), over the {limit_mib:g} MiB limit; pass --size-limit MIB "
                        "to lift it if you mean it")
    for op in g.ops:
        _check_op(g, op, where)

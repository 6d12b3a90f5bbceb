"""Hostile inputs (issue 17): models edited from real ones so that each breaks one rule of the kit's
contract, hostile names in the generated C, and the path and overwrite cases of the CLI.

Models are unpacked into plain dicts (`unpack`), edited, and packed again (`pack`) in the test;
most cases run through `cli.main` in-process, a few through real subprocesses. Every refusal must
be exit code 2 with one line naming the problem, no traceback, within time and memory limits.
"""
from __future__ import annotations

import copy
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcunet_lite import cli, cwrite, int8ref, tflite_io
from mcunet_lite.ir import Graph, Quant
from mcunet_lite.validate import OPS

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
RESNET, MCUNET, VWW, DET = (MODELS / f"{m}.tflite" for m in (
    "mlperf-tiny-resnet8-cifar10-int8", "mcunet-vww1-80-int8", "mlperf-tiny-vww-96-int8", "mcunet-person-det-int8"))
pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"no real models at {MODELS} (../shared/models is absent)")


# ------------------------------------------------------------------------ models as plain dicts
def _tfl():
    import tflite
    return tflite


def _fields(cls: str) -> list[str]:
    """The fields of flatbuffer table `cls`, from the schema package's builder functions."""
    return [n[len(cls) + 3:] for n in dir(_tfl()) if n.startswith(f"{cls}Add")]


def _option_name(code: int) -> str:
    return next(k for k, v in vars(_tfl().BuiltinOptions).items() if v == code)


def _read_options(op) -> dict | None:
    if op.BuiltinOptions() is None:
        return None
    cls = _option_name(op.BuiltinOptionsType())
    o = getattr(_tfl(), cls)()
    o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    return {f: (getattr(o, f"{f}AsNumpy")().tolist() if hasattr(o, f"{f}AsNumpy") else getattr(o, f)())
            for f in _fields(cls)}


def unpack(buf: bytes) -> dict:
    """A .tflite flatbuffer (one subgraph) as nested dicts and lists of plain values."""
    m = _tfl().Model.GetRootAs(buf, 0)
    sg = m.Subgraphs(0)
    ints = lambda n, f: getattr(n, f"{f}AsNumpy")().tolist() if getattr(n, f"{f}Length")() else []  # noqa: E731

    def quant(t):
        q = t.Quantization()
        if q is None or not q.ScaleLength():
            return None
        return {"scale": ints(q, "Scale"), "zero_point": ints(q, "ZeroPoint"), "dim": q.QuantizedDimension()}

    return {
        "codes": [{"BuiltinCode": c.BuiltinCode(), "DeprecatedBuiltinCode": c.DeprecatedBuiltinCode(),
                   "Version": c.Version()} for c in (m.OperatorCodes(i) for i in range(m.OperatorCodesLength()))],
        "buffers": [m.Buffers(i).DataAsNumpy().tobytes() if m.Buffers(i).DataLength() else b""
                    for i in range(m.BuffersLength())],
        "tensors": [{"shape": ints(t, "Shape"), "type": t.Type(), "buffer": t.Buffer(), "name": t.Name(),
                     "quant": quant(t)} for t in (sg.Tensors(i) for i in range(sg.TensorsLength()))],
        "inputs": ints(sg, "Inputs"), "outputs": ints(sg, "Outputs"), "subgraphs": 1,
        "ops": [{"code": op.OpcodeIndex(), "inputs": ints(op, "Inputs"), "outputs": ints(op, "Outputs"),
                 "options_type": op.BuiltinOptionsType(), "options": _read_options(op)}
                for op in (sg.Operators(k) for k in range(sg.OperatorsLength()))],
    }


def _table(bld, cls: str, fields: dict) -> int:
    getattr(_tfl(), f"{cls}Start")(bld)
    for f, v in fields.items():
        getattr(_tfl(), f"{cls}Add{f}")(bld, v)
    return getattr(_tfl(), f"{cls}End")(bld)


def _vector(bld, items: list[int]) -> int:
    bld.StartVector(4, len(items), 4)
    for item in reversed(items):
        bld.PrependUOffsetTRelative(item)
    return bld.EndVector()


def _subgraph(bld, d: dict) -> int:
    np_vec = lambda v, dt: bld.CreateNumpyVector(np.asarray(v, dt))  # noqa: E731
    tensors = []
    for t in d["tensors"]:
        f = {"Shape": np_vec(t["shape"], np.int32), "Type": t["type"], "Buffer": t["buffer"]}
        if t["name"] is not None:
            f["Name"] = bld.CreateString(t["name"])
        if t["quant"] is not None:
            q = t["quant"]
            f["Quantization"] = _table(bld, "QuantizationParameters", {
                "Scale": np_vec(q["scale"], np.float32), "ZeroPoint": np_vec(q["zero_point"], np.int64),
                "QuantizedDimension": q["dim"]})
        tensors.append(_table(bld, "Tensor", f))
    ops = []
    for op in d["ops"]:
        f = {"OpcodeIndex": op["code"], "Inputs": np_vec(op["inputs"], np.int32),
             "Outputs": np_vec(op["outputs"], np.int32)}
        if op["options"] is not None:
            cls = _option_name(op["options_type"])
            values = {k: np_vec(v, np.int32) if isinstance(v, list) else v for k, v in op["options"].items()}
            f.update(BuiltinOptionsType=op["options_type"], BuiltinOptions=_table(bld, cls, values))
        ops.append(_table(bld, "Operator", f))
    t_vec, o_vec = _vector(bld, tensors), _vector(bld, ops)
    return _table(bld, "SubGraph", {"Tensors": t_vec, "Operators": o_vec, "Inputs": np_vec(d["inputs"], np.int32),
                                    "Outputs": np_vec(d["outputs"], np.int32)})


def pack(d: dict) -> bytes:
    """The inverse of `unpack`: a .tflite flatbuffer (`subgraphs` copies of the one subgraph)."""
    import flatbuffers
    bld = flatbuffers.Builder(1 << 16)
    buffers = []
    for data in d["buffers"]:
        buffers.append(_table(bld, "Buffer", {"Data": bld.CreateByteVector(data)} if data else {}))
    codes = [_table(bld, "OperatorCode", c) for c in d["codes"]]
    sgs = [_subgraph(bld, d) for _ in range(d["subgraphs"])]
    fields = {"Version": 3, "OperatorCodes": _vector(bld, codes), "Subgraphs": _vector(bld, sgs),
              "Buffers": _vector(bld, buffers)}
    bld.Finish(_table(bld, "Model", fields), file_identifier=b"TFL3")
    return bytes(bld.Output())


BASES: dict[Path, dict] = {}


def base(path: Path) -> dict:
    """A fresh copy of a real model as a dict (unpacked once per session)."""
    if path not in BASES:
        BASES[path] = unpack(path.read_bytes())
    return copy.deepcopy(BASES[path])


# ------------------------------------------------------------------------------- edit helpers
def op_of(d: dict, name: str, nth: int = 0) -> dict:
    """The `nth` operator whose TFLite op is `name`."""
    code = getattr(_tfl().BuiltinOperator, name)
    idx = [i for i, c in enumerate(d["codes"]) if max(c["BuiltinCode"], c["DeprecatedBuiltinCode"]) == code]
    return [op for op in d["ops"] if op["code"] in idx][nth]


def tensor(d: dict, op_name: str, pos: int | str, nth: int = 0) -> dict:
    """Input `pos` (or "out") of the `nth` `op_name` op, as its tensor dict."""
    op = op_of(d, op_name, nth)
    return d["tensors"][op["outputs"][0] if pos == "out" else op["inputs"][pos]]


def opts(d: dict, op_name: str, nth: int = 0, **fields) -> None:
    op_of(d, op_name, nth)["options"].update(fields)


def qset(t: dict, **fields) -> None:
    t["quant"].update(fields)


def retype(d: dict, t: dict, code: int) -> None:
    """Give tensor `t` another type; a constant's data is resized to match, so only the type is wrong."""
    item = {0: 4, 2: 4, 3: 1, 4: 8, 7: 2, 9: 1}[code]
    t["type"] = code
    if d["buffers"][t["buffer"]]:
        d["buffers"][t["buffer"]] = bytes(int(np.prod(t["shape"])) * item)


def add_code(d: dict, name: str) -> int:
    d["codes"].append({"BuiltinCode": getattr(_tfl().BuiltinOperator, name),
                       "DeprecatedBuiltinCode": min(getattr(_tfl().BuiltinOperator, name), 127), "Version": 1})
    return len(d["codes"]) - 1


def new_tensor(d: dict, like: dict, **fields) -> int:
    d["tensors"].append({**copy.deepcopy(like), **fields})
    return len(d["tensors"]) - 1


def conv_options_as_pool(d: dict) -> None:
    op = op_of(d, "CONV_2D")
    op["options_type"] = _tfl().BuiltinOptions.Pool2DOptions
    op["options"] = {"Padding": 0, "StrideW": 1, "StrideH": 1, "FilterWidth": 1, "FilterHeight": 1,
                     "FusedActivationFunction": 0}


def svdf_int16(d: dict) -> None:
    """The first conv becomes an SVDF (a valid op TFLite Micro runs) reading an int16 tensor."""
    op = op_of(d, "CONV_2D")
    op["code"], op["options"], op["options_type"] = add_code(d, "SVDF"), None, 0
    d["tensors"][op["inputs"][0]]["type"] = 7


def swap_first_ops(d: dict) -> None:
    d["ops"][0], d["ops"][1] = d["ops"][1], d["ops"][0]


def cycle(d: dict) -> None:
    """Op 0 reads op 1's output and op 1 reads op 0's: a loop in the graph."""
    d["ops"][0]["inputs"][0] = d["ops"][1]["outputs"][0]


def second_writer(d: dict) -> None:
    d["ops"][1]["outputs"] = list(d["ops"][0]["outputs"])


def two_inputs(d: dict) -> None:
    d["inputs"].append(new_tensor(d, d["tensors"][d["inputs"][0]], name=b"second_input"))


def add_reads_constant(d: dict) -> None:
    op_of(d, "ADD")["inputs"][1] = op_of(d, "CONV_2D")["inputs"][1]


def huge_activation() -> bytes:
    """A consistent model whose input alone is 1e9 int8 values (the writer makes it in a few bytes)."""
    g = Graph("huge")
    x = g.add_input("x", (1, 31623, 31623, 1), "int8")
    g.tensors[x].quant = Quant(np.array([0.1], np.float32), np.array([0]))
    y = g.add_op("maxpool", "y", [x], {"kernel": (1, 1), "stride": (1, 1), "pads": (0, 0, 0, 0)})
    g.tensors[y].quant = g.tensors[x].quant
    g.outputs = [y]
    return tflite_io.to_bytes(g)


def softmax_scale(d: dict) -> None:
    qset(tensor(d, "SOFTMAX", "out"), scale=[0.5])


def rank5(d: dict) -> None:
    t = d["tensors"][d["ops"][0]["outputs"][0]]
    t["shape"] = [1, *t["shape"]]


def mean_axes(values: list[int], type_code: int = 2):
    """Edit MEAN's axes constant to `values` (stored as `type_code`)."""
    def edit(d: dict) -> None:
        t = tensor(d, "MEAN", 1)
        dt = {2: np.int32, 9: np.int8}[type_code]
        t["shape"], t["type"] = [len(values)], type_code
        d["buffers"][t["buffer"]] = np.asarray(values, dt).tobytes()
    return edit


def paddings(values: list[int]):
    def edit(d: dict) -> None:
        t = tensor(d, "PAD", 1)
        t["shape"] = [len(values) // 2, 2]
        d["buffers"][t["buffer"]] = np.asarray(values, np.int32).tobytes()
    return edit


def per_channel(n_drop: int = 1, dim: int | None = None):
    """The first conv's weight scales: `n_drop` fewer than its channels, or along axis `dim`."""
    def edit(d: dict) -> None:
        q = tensor(d, "CONV_2D", 1)["quant"]
        if dim is not None:
            q["dim"] = dim
        else:
            q["scale"], q["zero_point"] = q["scale"][n_drop:], q["zero_point"][n_drop:]
    return edit


def short_bias(op_name: str):
    """The op's bias loses its last channel (shape and data agree; the op's channels do not)."""
    def edit(d: dict) -> None:
        b = tensor(d, op_name, 2)
        b["shape"][0] -= 1
        d["buffers"][b["buffer"]] = d["buffers"][b["buffer"]][:-4]
    return edit


# (id, base model, edit, expected message) -- each breaks one rule; the message must name it
R, M, V, D = RESNET, MCUNET, VWW, DET
CASES = [
    ("bias-float32", R, lambda d: retype(d, tensor(d, "CONV_2D", 2), 0), r"bias of conv2d .* is float32: unsupported"),
    ("activation-int32", R, lambda d: retype(d, tensor(d, "CONV_2D", "out"), 2), r"conv2d .* is int32: unsupported"),
    ("input-int32", R, lambda d: retype(d, d["tensors"][d["inputs"][0]], 2), r"input of conv2d .* is int32"),
    ("weight-int32", R, lambda d: retype(d, tensor(d, "CONV_2D", 1), 2), r"needs int8 weights .* got int32"),
    ("weight-float32", R, lambda d: retype(d, tensor(d, "CONV_2D", 1), 0), r"needs int8 weights .* got float32"),
    ("tensor-int16", R, lambda d: retype(d, tensor(d, "CONV_2D", "out"), 7), r"is INT16: unsupported type; supported"),
    ("tensor-uint8", R, lambda d: retype(d, tensor(d, "CONV_2D", 1), 3), r"is UINT8: unsupported type"),
    ("tensor-int64", R, lambda d: retype(d, tensor(d, "CONV_2D", 2), 4), r"is INT64: unsupported type"),
    ("scale-nan", R, lambda d: qset(tensor(d, "CONV_2D", "out"), scale=[float("nan")]), r"scale nan: scales must"),
    ("scale-inf", R, lambda d: qset(tensor(d, "CONV_2D", "out"), scale=[float("inf")]), r"scale inf: scales must be"),
    ("scale-zero", R, lambda d: qset(tensor(d, "ADD", "out"), scale=[0.0]), r"scale 0.0: scales must be"),
    ("scale-negative", R, lambda d: qset(d["tensors"][d["inputs"][0]], scale=[-0.5]), r"scale -0.5: scales must be"),
    ("weight-scale-nan", R, lambda d: tensor(d, "CONV_2D", 1)["quant"]["scale"].__setitem__(3, float("nan")),
     r"weight.* scale nan"),
    ("zero-point-200", R, lambda d: qset(tensor(d, "CONV_2D", "out"), zero_point=[200]), r"zero point 200: .*127\]"),
    ("zero-point--129", R, lambda d: qset(d["tensors"][d["inputs"][0]], zero_point=[-129]), r"zero point -129"),
    ("weight-zero-point", R, lambda d: tensor(d, "CONV_2D", 1)["quant"]["zero_point"].__setitem__(0, 1),
     r"zero point 1: zero points must lie in \[0, 0\]"),
    ("activation-unquantized", R, lambda d: tensor(d, "ADD", "out").update(quant=None), r"no quantization parameters"),
    ("weight-unquantized", R, lambda d: tensor(d, "CONV_2D", 1).update(quant=None), r"int8 weights .* no quantization"),
    ("per-channel-short", R, per_channel(1), r"15 weight scales along axis 0; .* 16 of them"),
    ("per-channel-axis", R, per_channel(dim=3), r"weight scales along axis 3; per-channel scales run along .*\(axis 0"),
    ("zero-point-count", R, lambda d: qset(tensor(d, "CONV_2D", "out"), zero_point=[0, 0]), r"1 scales but 2 zero points"),
    ("activation-per-channel", R, lambda d: qset(tensor(d, "CONV_2D", "out"), scale=[0.1, 0.2], zero_point=[0, 0]),
     r"has 2 scales; it needs one \(per tensor\)"),
    ("softmax-output-scale", R, softmax_scale, r"softmax .* scale 0.5 .* outputs scale 1/256"),
    ("conv-no-options", R, lambda d: op_of(d, "CONV_2D").update(options=None, options_type=0), r"has no Conv2DOptions"),
    ("conv-stride-0", R, lambda d: opts(d, "CONV_2D", StrideW=0), r"stride 1x0: strides must be at least 1"),
    ("conv-padding-7", R, lambda d: opts(d, "CONV_2D", Padding=7), r"padding code 7: unsupported; supported: 0 \(SAME\)"),
    ("conv-dilation-2", R, lambda d: opts(d, "CONV_2D", DilationHFactor=2), r"dilation 2x1: unsupported"),
    ("conv-activation-code", R, lambda d: opts(d, "CONV_2D", FusedActivationFunction=2),
     r"fused activation code 2: unsupported"),
    ("conv-options-type", R, conv_options_as_pool, r"carries Pool2DOptions; the op's options are Conv2DOptions"),
    ("pool-window-0", R, lambda d: opts(d, "AVERAGE_POOL_2D", FilterWidth=0), r"0 window: windows must be at least 1x1"),
    ("pool-stride-0", R, lambda d: opts(d, "AVERAGE_POOL_2D", StrideH=0), r"stride 0x\d+: strides must be"),
    ("pool-padding-7", R, lambda d: opts(d, "AVERAGE_POOL_2D", Padding=7), r"AVERAGE_POOL_2D\) has padding code 7"),
    ("pool-no-options", R, lambda d: op_of(d, "AVERAGE_POOL_2D").update(options=None, options_type=0),
     r"has no Pool2DOptions"),
    ("softmax-beta-0", R, lambda d: opts(d, "SOFTMAX", Beta=0.0), r"beta 0.0: beta must be finite and positive"),
    ("softmax-beta-nan", R, lambda d: opts(d, "SOFTMAX", Beta=float("nan")), r"beta nan: beta must be finite"),
    ("fc-shuffled-weights", R, lambda d: opts(d, "FULLY_CONNECTED", WeightsFormat=1), r"uses shuffled weights"),
    ("add-activation-code", R, lambda d: opts(d, "ADD", FusedActivationFunction=5), r"fused activation code 5"),
    ("input-index-range", R, lambda d: d["ops"][0]["inputs"].__setitem__(0, 9999), r"op 0 \(CONV_2D\) input 0 refers to "
     r"tensor 9999; the model has tensors 0\.\.\d+"),
    ("input-index-negative", R, lambda d: d["ops"][0]["inputs"].__setitem__(1, -5), r"input 1 refers to tensor -5"),
    ("output-index-range", R, lambda d: d["ops"][2]["outputs"].__setitem__(0, 10 ** 6), r"output refers to tensor 1000000"),
    ("graph-output-range", R, lambda d: d["outputs"].__setitem__(0, 4321), r"output list refers to tensor 4321"),
    ("graph-input-range", R, lambda d: d["inputs"].__setitem__(0, -1), r"input list refers to tensor -1"),
    ("buffer-index-range", R, lambda d: tensor(d, "CONV_2D", 1).update(buffer=7777), r"uses buffer 7777; the model has "
     r"buffers 0\.\.\d+"),
    ("opcode-index-range", R, lambda d: d["ops"][3].update(code=99), r"op 3 uses operator code 99; the model has codes"),
    ("no-outputs", R, lambda d: d.update(outputs=[]), r"has no outputs"),
    ("no-inputs", R, lambda d: d.update(inputs=[]), r"has 0 inputs: unsupported; supported: exactly 1 input"),
    ("two-inputs", R, two_inputs, r"has 2 inputs: unsupported"),
    ("two-subgraphs", R, lambda d: d.update(subgraphs=2), r"2 subgraphs: unsupported; supported: exactly 1 subgraph"),
    ("no-operators", R, lambda d: d.update(ops=[]), r"has no operators: nothing to run"),
    ("ops-out-of-order", R, swap_first_ops, r"reads tensor .* before any op computes it \(operators must come in "
     r"execution order, without cycles\)"),
    ("cycle", R, cycle, r"op 0 \(CONV_2D\) reads tensor .* before any op computes it"),
    ("writes-constant", R, lambda d: d["ops"][0]["outputs"].__setitem__(0, d["ops"][0]["inputs"][1]),
     r"writes tensor .* which is a constant; each activation has one writer"),
    ("two-writers", R, second_writer, r"which is already computed; each activation has one writer"),
    ("writes-input", R, lambda d: d["ops"][0]["outputs"].__setitem__(0, d["inputs"][0]), r"which is already computed"),
    ("two-outputs", R, lambda d: d["ops"][0]["outputs"].append(d["ops"][1]["outputs"][0]),
     r"has 3 inputs and 2 outputs; it takes 2 to 3 inputs and 1 output"),
    ("conv-one-input", R, lambda d: d["ops"][0].update(inputs=d["ops"][0]["inputs"][:1]), r"has 1 inputs and 1 outputs"),
    ("add-constant-input", R, add_reads_constant, r"ADD\) input 1 .* is a constant: unsupported"),
    ("weight-not-constant", R, lambda d: op_of(d, "CONV_2D", 1)["inputs"].__setitem__(1, d["inputs"][0]),
     r"input 1 .* must be a constant, but it has no data"),
    ("output-is-constant", R, lambda d: d["outputs"].__setitem__(0, d["ops"][0]["inputs"][1]), r"is computed by no operator"),
    ("input-is-constant", R, lambda d: d["inputs"].__setitem__(0, d["ops"][0]["inputs"][1]), r"model's input .* is a constant"),
    ("weight-dim-negative", R, lambda d: tensor(d, "CONV_2D", 1)["shape"].__setitem__(0, -3), r"has shape \[-3, .*every "
     r"dimension must be at least 1"),
    ("activation-dim-zero", R, lambda d: tensor(d, "CONV_2D", "out")["shape"].__setitem__(1, 0), r"every dimension must be"),
    ("rank-5", R, rank5, r"has rank 5: unsupported; supported ranks 0\.\.4"),
    ("output-shape-mismatch", R, lambda d: tensor(d, "CONV_2D", "out")["shape"].__setitem__(3, 99),
     r"output shape in the file is .*99\), but its inputs give"),
    ("conv-bias-shape", R, short_bias("CONV_2D"),
     r"op 0 \(CONV_2D\) does not fit its inputs: .*bias shape \(15,\) does not match 16 outputs"),
    ("fc-bias-shape", R, short_bias("FULLY_CONNECTED"), r"bias '.*' has shape \(9,\); the op has 10 output channels"),
    ("weight-rank-3", R, lambda d: tensor(d, "CONV_2D", 1)["shape"].pop(), r"has weight .* of shape .*; it must be \(out, kh"),
    ("reshape-elements", R, lambda d: tensor(d, "RESHAPE", "out")["shape"].__setitem__(1, 65),
     r"\(RESHAPE\) does not fit its inputs: reshape .* cannot reshape .* to \(1, 65\)"),
    ("depthwise-weight-dim0", V, lambda d: tensor(d, "DEPTHWISE_CONV_2D", 1)["shape"].__setitem__(0, 2),
     r"DEPTHWISE_CONV_2D\) has weight .* it must be \(1, kh, kw, channels\)"),
    ("unsupported-svdf-int16", R, svdf_int16, r"op 0 is SVDF: unsupported op; supported: CONV_2D"),
    ("unsupported-custom", R, lambda d: d["ops"][0].update(code=add_code(d, "CUSTOM")), r"custom op '': unsupported op"),
    ("unsupported-logistic", R, lambda d: d["ops"][0].update(code=add_code(d, "LOGISTIC")), r"is LOGISTIC: unsupported"),
    ("mean-axis-7", M, mean_axes([7]), r"reduces over axes \[7\]; a rank-4 input has axes -4\.\.3"),
    ("mean-axis-negative", M, mean_axes([-9]), r"reduces over axes \[-9\]"),
    ("mean-no-axes", M, mean_axes([]), r"tensor \d+ 'mean.*' has shape \[0\]: every dimension must be at least 1"),
    ("mean-axes-int8", M, mean_axes([1, 2], 9), r"reads its axes from .* which is int8; they must be int32"),
    ("pad-negative", M, paddings([0, 0, -1, 1, 0, 1, 0, 0]), r"has paddings \[0, 0, -1, .* none negative"),
    ("pad-count", M, paddings([0, 0, 1, 1]), r"a rank-4 input needs 4 \(before, after\) pairs"),
    ("transpose-perm", M, lambda d: d["buffers"].__setitem__(tensor(d, "TRANSPOSE", 1)["buffer"],
                                                             np.array([0, 0, 1, 2], np.int32).tobytes()),
     r"\(TRANSPOSE\) does not fit its inputs: .*\(0, 0, 1, 2\) is not a permutation"),
    ("quantize-int8-to-int8", M, lambda d: retype(d, d["tensors"][d["inputs"][0]], 9) or
     d["tensors"][d["inputs"][0]].update(quant={"scale": [0.1], "zero_point": [0], "dim": 0}),
     r"QUANTIZE\) converts int8 to int8; only float32 to int8"),
    ("dequantize-to-int8", M, lambda d: retype(d, tensor(d, "DEQUANTIZE", "out"), 9),
     r"DEQUANTIZE\) converts int8 to int8"),
    ("float-op", R, lambda d: retype(d, tensor(d, "ADD", "out"), 0), r"is a float model \(op \d+, ADD, computes in "
     r"float32\); .*quantize it first"),
    ("quantize-to-float", M, lambda d: retype(d, tensor(d, "QUANTIZE", "out"), 0), r"QUANTIZE\) converts float32 to "
     r"float32; only float32 to int8"),
    ("resize-size", D, lambda d: d["buffers"].__setitem__(tensor(d, "RESIZE_NEAREST_NEIGHBOR", 1)["buffer"],
                                                          np.array([0, 20], np.int32).tobytes()),
     r"resizes to \[0, 20\]; the size must be \(height, width\), each at least 1"),
]
FAST = [c for c in CASES if c[1] != D]  # the detector is larger: its one case runs in the full list too


def write_case(tmp: Path, case) -> Path:
    name, path, edit, _ = case
    d = base(path)
    edit(d)
    out = tmp / f"{name}.tflite"
    out.write_bytes(pack(d))
    return out


def main_err(capsys, *args: str) -> tuple[int, str]:
    """Exit code and stderr of `cli.main(args)` in this process."""
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, pattern: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("mcunet-lite: error: "), err
    assert re.search(pattern, err), (pattern, err)
    assert "truncated or corrupt" not in err and "_tab" not in err and "unpack_from" not in err, err


# --------------------------------------------------------------------------------- the models
def test_round_trip_of_the_dict_form_is_a_valid_model(tmp_path):
    """The edit machinery itself changes nothing: a packed unedited model reads and runs as the original."""
    for path in (RESNET, MCUNET):
        (tmp_path / "same.tflite").write_bytes(pack(base(path)))
        a, b = tflite_io.read(path), tflite_io.read(tmp_path / "same.tflite")
        x = np.random.default_rng(0).integers(-128, 128, (1, *a.tensors[a.inputs[0]].shape[1:]))
        x = x.astype(a.tensors[a.inputs[0]].dtype)
        assert all(np.array_equal(p, q) for p, q in zip(int8ref.run_all(a, x), int8ref.run_all(b, x)))


def test_every_case_breaks_a_distinct_rule():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)
    assert set(OPS) == set(tflite_io.READERS)


def test_hostile_models_are_refused_at_import(tmp_path, capsys):
    """Every edited model: `profile` exits 2 with one line naming the rule, fast, with little memory."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    for case in CASES:
        code, err = main_err(capsys, "profile", write_case(tmp_path, case))
        assert_refused(code, err, case[3])
    assert time.perf_counter() - t0 < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 500 * 1024  # kB: under 500 MB more


@pytest.mark.parametrize("command", [["schedule"], ["run", "--input", "X", "--output", "Y"],
                                     ["deploy", "--emulator", "host", "--out", "D"]])
def test_every_command_refuses_them(tmp_path, capsys, command):
    """schedule, run and deploy refuse a sample of the cases the same way, before doing any work."""
    np.save(tmp_path / "x.npy", np.zeros((1, 32, 32, 3), np.int8))
    args = [str(tmp_path / "x.npy") if a == "X" else str(tmp_path / "y.npy") if a == "Y" else
            str(tmp_path / "d") if a == "D" else a for a in command]
    for case in FAST[::6]:
        code, err = main_err(capsys, command[0], write_case(tmp_path, case), *args[1:])
        assert_refused(code, err, case[3])
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "d").exists()


def test_huge_consistent_model_is_refused_unless_the_limit_is_lifted(tmp_path, capsys):
    (tmp_path / "huge.tflite").write_bytes(huge_activation())
    for cmd in ("profile", "schedule"):
        assert_refused(*main_err(capsys, cmd, tmp_path / "huge.tflite"),
                       r"running it takes 1907.\d MiB per input .*, over the 64 MiB limit; pass --size-limit")
    assert main_err(capsys, "profile", tmp_path / "huge.tflite", "--size-limit", "4096")[0] == 0
    assert_refused(*main_err(capsys, "profile", RESNET, "--size-limit", "0.01"),
                   r"model '.*' is 0.\d MiB, over the 0.01 MiB limit")
    for bad in ("nan", "-1", "inf"):
        with pytest.raises(SystemExit) as e:
            cli.main(["profile", str(RESNET), "--size-limit", bad])
        assert e.value.code == 2 and "must be a positive number of MiB" in capsys.readouterr().err


def test_valid_models_still_read(tmp_path, capsys):
    """What TFLite Micro runs, the kit still runs: a tensor without a name, a conv without a bias,
    an ADD without options (defaults), and every real model."""
    d = base(RESNET)
    d["tensors"][d["ops"][0]["outputs"][0]]["name"] = None
    op_of(d, "CONV_2D", 1)["inputs"][2] = -1
    op_of(d, "ADD").update(options=None, options_type=0)
    (tmp_path / "ok.tflite").write_bytes(pack(d))
    g = tflite_io.read(tmp_path / "ok.tflite")
    assert g.ops[0].output == "tensor_" + str(d["ops"][0]["outputs"][0])
    for path in (RESNET, MCUNET, VWW, DET, tmp_path / "ok.tflite"):
        assert main_err(capsys, "profile", path)[0] == 0


def test_not_flatbuffers_keep_the_corrupt_message(tmp_path, capsys):
    buf = RESNET.read_bytes()
    (tmp_path / "cut.tflite").write_bytes(buf[:len(buf) // 3])
    (tmp_path / "junk.tflite").write_bytes(buf[:8] + bytes(range(256)) * 8)
    (tmp_path / "text.tflite").write_text("hello")
    for name, pattern in (("cut", "truncated"), ("junk", "truncated or corrupt"), ("text", "not a .tflite file")):
        code, err = main_err(capsys, "profile", tmp_path / f"{name}.tflite")
        assert code == 2 and pattern in err and err.count("\n") == 1, err


def test_a_few_cases_through_real_processes(tmp_path):
    """The console entry point (a separate interpreter): exit code 2, one line, no traceback."""
    for case in (CASES[0], CASES[8], CASES[24]):
        r = subprocess.run([sys.executable, "-m", "mcunet_lite.cli", "run", str(write_case(tmp_path, case)),
                            "--input", "x.npy", "--output", "y.npy"], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path)
        assert_refused(r.returncode, r.stderr, case[3])
    r = subprocess.run(f"{sys.executable} -m mcunet_lite.cli profile {RESNET} --json | head -c 10", shell=True,
                       capture_output=True, text=True, timeout=120)
    assert r.stdout == '{"model": ' and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------- injection
HOSTILE = ['a*/ int x = system("touch PWNED"); /*', 'b\n#include "/etc/passwd"\n', 'c"quote\\back\\', "d??/\nx",
           "e#define main evil", "f\\", "g\u00e9\u2028\x00z"]


def hostile_model(tmp_path: Path) -> Path:
    """RESNET with every tensor renamed to one of HOSTILE (the file name holds such characters too)."""
    d = base(RESNET)
    for i, t in enumerate(d["tensors"]):
        t["name"] = HOSTILE[i % len(HOSTILE)].encode("utf-8", "surrogatepass") + str(i).encode()
    path = tmp_path / 'm*x"y\\??=\n#z\\.tflite'  # no '/' in a file name: '*', '\\', a trigraph, a line break
    path.write_bytes(pack(d))
    return path


def test_hostile_names_are_data_in_the_generated_c(tmp_path):
    """The C built from a model whose names hold comment ends, newlines, quotes, backslashes,
    trigraphs and '#' compiles (warnings as errors, trigraphs on), runs bit-exact with int8ref, and
    holds no name from the model: op comments keep a safe alphabet, the file name is an escaped literal."""
    from mcunet_lite import deploy
    path = hostile_model(tmp_path)
    g = tflite_io.read(path)
    assert all(re.fullmatch(r"[ -~]+", n) for n in g.tensors)  # printable ASCII from the import on
    r = deploy.deploy(g, "stm32f746", "host", out=tmp_path / "dep", cache=tmp_path / "objs")
    assert r.outputs_match
    literal = cwrite.c_string(str(g.meta["model"]))
    assert f"#define MODEL_NAME {literal}" in (tmp_path / "dep" / "model.h").read_text()
    text = "\n".join(f.read_text() for f in sorted((tmp_path / "dep").glob("*.[ch]"))).replace(literal, "")
    for name in [*HOSTILE, *g.tensors, str(g.meta["model"])]:
        if not re.fullmatch(r"[\w.]+", name):  # the kit's own suffixed names (".weight") are plain words
            assert name not in text, name
    generated = "\n".join((tmp_path / "dep" / f).read_text() for f in ("model.c", "model.h")).replace(literal, "")
    for bad in ("*/ int", "??", "\\\n", "#include \"/etc", "PWNED\")", "main evil"):
        assert bad not in generated, bad
    comments = re.findall(r"^ *(/\* op .*)$", (tmp_path / "dep" / "model.c").read_text(), re.M)
    assert comments and all(re.fullmatch(r"/\* op r?\d+ '[A-Za-z0-9_.,:;/+=()\[\]<>-]*': [^*?\\]*\*/", c)
                            for c in comments)
    cc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-trigraphs", "-fsyntax-only", "-I",
                         str(tmp_path / "dep"), str(tmp_path / "dep" / "model.c")], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


# ---------------------------------------------------------------------------- paths and files
def test_outputs_never_replace_inputs_and_are_written_where_printed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).integers(-128, 128, (2, 32, 32, 3)).astype(np.int8)
    np.save("x.npy", x)
    Path("precious.txt").write_text("keep")
    expected = int8ref.run_all(tflite_io.read(RESNET), x)
    for output, pattern in (("x.npy", r"output 'x.npy' is the input 'x.npy'"),
                            (str(RESNET), r"must end in \.npy or \.npz"),
                            ("precious.txt", r"output 'precious.txt' must end in \.npy or \.npz"),
                            ("missing/y.npy", r"cannot write 'missing/y.npy': folder 'missing' does not exist"),
                            (".", r"must end in")):
        assert_refused(*main_err(capsys, "run", RESNET, "--input", "x.npy", "--output", output), pattern)
    assert np.array_equal(np.load("x.npy"), x) and Path("precious.txt").read_text() == "keep"
    code, _ = main_err(capsys, "run", RESNET, "--input", "x.npy", "--output", "y.npz")
    assert code == 0 and not Path("y.npz.npy").exists()
    with np.load("y.npz") as z:  # .npz always writes an npz, even for one output
        assert list(z) == ["output_0"] and np.array_equal(z["output_0"], expected[0])
    Path("ln.npy").symlink_to("x.npy")
    assert_refused(*main_err(capsys, "run", RESNET, "--input", "x.npy", "--output", "ln.npy"), "is the input")


@pytest.mark.parametrize("command", [
    ["quantize", "mbv1", "--width", "0.25", "--resolution", "32", "--calib-n", "8", "--out", "{f}.tflite"],
    ["run", str(RESNET), "--input", "x.npy", "--output", "{f}.npy"],
    ["train", "--epochs", "1", "--out", "{f}.pt"],
    ["detect", "train", "--epochs", "1", "--out", "{f}.pt"],
    ["detect", "predict", "detector-128", "grace_hopper", "--out", "{f}.png"],
    ["nas", "train-supernet", "--width", "0.35", "--resolution", "48", "--out", "{f}.pt"],
    ["nas", "scratch", "--width", "0.35", "--resolution", "48", "--sram", "64", "--flash", "256", "--out", "{f}.pt"],
])
def test_outputs_never_replace_a_users_file(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.zeros((1, 32, 32, 3), np.int8))
    args = [c.format(f="precious") for c in command]
    out = Path(args[args.index("--out" if "--out" in args else "--output") + 1])
    out.write_text("last week's work")
    assert_refused(*main_err(capsys, *args), rf"'{out}' already exists; choose another output path, or pass --force")
    assert out.read_text() == "last week's work"
    if command[0] in ("run", "quantize"):   # quick enough to run: --force replaces it
        code, err = main_err(capsys, *args, "--force")
        assert code == 0, err
        assert out.read_bytes() != b"last week's work"


def test_npy_inputs_are_checked_before_they_are_loaded(tmp_path, capsys):
    np.save(tmp_path / "zero.npy", np.zeros((0, 32, 32, 3), np.int8))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "empty.npy").write_bytes(b"")
    with open(tmp_path / "tib.npy", "wb") as f:  # a header claiming 1 TiB over a few bytes of data
        np.lib.format.write_array_header_1_0(f, {"descr": "|i1", "fortran_order": False, "shape": (2 ** 40,)})
    with open(tmp_path / "short.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|i1", "fortran_order": False, "shape": (2, 32, 32, 3)})
    cases = [("zero", r"shape \(0, 32, 32, 3\); it needs a batch of at least 1"), ("obj", r"holds object values"),
             ("empty", r"cannot read input"), ("tib", r"claims 1048576.0 MiB, over the 64 MiB limit"),
             ("short", r"is truncated: its header claims 6144 bytes")]
    for name, pattern in cases:
        for cmd in (["run", RESNET, "--input", tmp_path / f"{name}.npy", "--output", tmp_path / "y.npy"],
                    ["deploy", RESNET, "--emulator", "host", "--input", tmp_path / f"{name}.npy", "--out", tmp_path / "d"]):
            assert_refused(*main_err(capsys, *cmd), pattern)
    np.save(tmp_path / "many.npy", np.zeros((600, 32, 32, 3), np.int8))
    assert_refused(*main_err(capsys, "run", RESNET, "--input", tmp_path / "many.npy", "--output", tmp_path / "y.npy"),
                   r"running 600 samples takes .* MiB, over the 64 MiB limit")


def test_models_that_are_not_regular_files_are_not_read(tmp_path, capsys):
    """/dev/zero, a FIFO (opening it would block) and a folder: refused before anything is read."""
    import os
    os.mkfifo(tmp_path / "fifo.tflite")
    (tmp_path / "dir.tflite").mkdir()
    t0 = time.perf_counter()
    for model in ("/dev/zero", tmp_path / "fifo.tflite", tmp_path / "dir.tflite"):
        assert_refused(*main_err(capsys, "run", model, "--input", "x.npy", "--output", "y.npy"),
                       r"model '.*' is not a regular file")
    assert time.perf_counter() - t0 < 5


def test_deploy_out_is_new_empty_or_its_own(tmp_path, capsys):
    (tmp_path / "file.c").write_text("int mine;")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.c").write_text("my own work")
    assert_refused(*main_err(capsys, "deploy", RESNET, "--emulator", "host", "--out", tmp_path / "file.c"),
                   r"output folder '.*file.c' is a file")
    assert_refused(*main_err(capsys, "deploy", RESNET, "--emulator", "host", "--out", tmp_path / "mine"),
                   r"'.*mine' already holds files mcunet-lite did not write there \(e.g. 'model.c'\); .* --force")
    assert (tmp_path / "mine" / "model.c").read_text() == "my own work"
    out = tmp_path / "new" / "deploy"
    for _ in range(2):  # created fresh, then recognised as the kit's own
        code, err = main_err(capsys, "deploy", RESNET, "--emulator", "host", "--out", out)
        assert code == 0, err
    import shutil
    shutil.copytree(out / ".objs", tmp_path / "mine" / ".objs")  # the compiled objects: a quicker build
    code, err = main_err(capsys, "deploy", RESNET, "--emulator", "host", "--out", tmp_path / "mine", "--force")
    assert code == 0, err


def test_data_synth_never_mixes_or_replaces_sets(tmp_path, capsys):
    from mcunet_lite import data
    out = tmp_path / "set"
    assert main_err(capsys, "data", "synth", "--n", "12", "--resolution", "32", "--format", "vww01", "--out", out)[0] == 0
    assert main_err(capsys, "data", "synth", "--n", "6", "--resolution", "16", "--format", "vww01", "--out", out)[0] == 0
    pixels, labels, names = data._read_vww01(out)  # the second set replaced the kit's first one: one resolution
    assert pixels.shape[1:] == (16, 16, 3) and len(list(out.glob("*.bin"))) == len(names)
    user = tmp_path / "user"
    user.mkdir()
    (user / "y_labels.csv").write_text("mine.bin,2,1\n")
    assert_refused(*main_err(capsys, "data", "synth", "--n", "4", "--format", "vww01", "--out", user),
                   r"already holds files mcunet-lite did not write there \(e.g. 'y_labels.csv'\)")
    assert (user / "y_labels.csv").read_text() == "mine.bin,2,1\n"
    for args, pattern in ((["--difficulty", "nan"], r"difficulty must be a number in \[0, 1\], got nan"),
                          (["--difficulty", "7"], r"got 7.0"),
                          (["--resolution", "100000"], r"a resolution in \[8, 2048\], got n=4, resolution=100000")):
        assert_refused(*main_err(capsys, "data", "synth", "--n", "4", "--out", tmp_path / "x", *args), pattern)


def test_data_info_on_hostile_files(tmp_path, capsys):
    from PIL import Image
    root = tmp_path / "mlperf"
    for cls in ("person", "non_person"):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / cls / "a.png")
    last = root / "non_person" / "z.png"  # `data info` reads the first and the last image's header
    last.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    assert_refused(*main_err(capsys, "data", "info", root), r"cannot read image '.*z.png'")
    Image.new("1", (1, 1)).save(last)
    raw = bytearray(last.read_bytes())  # the IHDR now claims 100000 x 100000 pixels: a decompression bomb
    raw[16:24] = (100000).to_bytes(4, "big") * 2
    last.write_bytes(bytes(raw))
    assert_refused(*main_err(capsys, "data", "info", root), r"cannot read image '.*z.png'|is 100000x100000")
    last.write_bytes(b"")
    last.chmod(0)
    assert_refused(*main_err(capsys, "data", "info", root), r"cannot read image '.*z.png'")
    pyvww = tmp_path / "pyvww"
    (pyvww / "annotations").mkdir(parents=True)
    js = pyvww / "annotations" / "instances_train.json"
    js.write_text("[" * 100000 + "]" * 100000)
    assert_refused(*main_err(capsys, "data", "info", pyvww), r"malformed pyvww file .*RecursionError")
    js.write_text(json.dumps({"images": [{"id": 0, "file_name": "a.png", "height": 0, "width": 5}],
                              "annotations": [{"image_id": 0, "category_id": 1, "area": 3}],
                              "categories": [{"id": 0, "name": "not-person"}, {"id": 1, "name": "person"}]}))
    assert_refused(*main_err(capsys, "data", "info", pyvww), r"image 0 is 5x0; sizes must be positive integers")


def test_lab_dir_and_kit_build_over_files_that_are_not_theirs(tmp_path, capsys):
    from mcunet_lite.kit import build as kit
    from mcunet_lite.errors import UserError
    (tmp_path / "file").write_text("x")
    assert_refused(*main_err(capsys, "lab", "--dir", tmp_path / "file", "--copy-only"), r"--dir '.*file' is a file")
    (tmp_path / "nb.ipynb").write_text("this is not JSON")
    with pytest.raises(UserError, match=r"is not a notebook the kit generated \(NotJSONError\); refusing to overwrite"):
        kit._protect(tmp_path / "nb.ipynb", force=False)

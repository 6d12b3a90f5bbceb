"""Read int8 `.tflite` flatbuffers into a Graph, and write int8 Graphs as `.tflite` files.

The reader turns each TFLite operator into one Graph op: CONV_2D and DEPTHWISE_CONV_2D become
`conv2d` (a depthwise weight (1, kh, kw, C*m) is stored OHWI as (C*m, kh, kw, 1) with groups = C),
SAME / VALID padding becomes explicit (top, bottom, left, right) pads with TFLite's rule (the extra
row goes after, DESIGN.md section 4), and the constant inputs of PAD, MEAN, RESHAPE, TRANSPOSE and
RESIZE become op attributes. The writer is the inverse: it writes SAME or VALID when the explicit
pads equal one of them and otherwise puts a PAD op before a VALID convolution.

Both sides use the PyPI `tflite` package (the generated schema accessors and builders) over
`flatbuffers`. A file is untrusted data: `validate` checks its structure before the reader walks it
and the Graph against the int8 contract after; anything the kit cannot run exactly stops the import
with a one-line `UserError`. Tensor names are kept as printable ASCII (other characters escaped).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import fuse, validate
from .errors import UserError
from .ir import Graph, GraphError, Op, Quant, Tensor, same_pads
from .validate import ACTS, DTYPES, SAME, VALID, printable

TYPE_CODES = {v: k for k, v in DTYPES.items()}  # numpy dtype -> TensorType code
ACT_CODES = {v: k for k, v in ACTS.items()}


def _tflite():
    import tflite  # imported on use: the rest of the kit does not need the schema package
    return tflite


# ------------------------------------------------------------------------------------ reading
class _Reader:
    """Walks one subgraph; `names` maps TFLite tensor indices to Graph tensor names. While an
    operator is read, `op`, `k` and `opname` describe it (for its options and error messages)."""

    def __init__(self, buf: bytes, name: str, model, opnames: list[str]) -> None:
        """`model`: the parsed flatbuffer, already through `validate.check_file` (which named its ops)."""
        self.buf, self.tfl, self.where, self.model, self.opnames = buf, _tflite(), name, model, opnames
        self.sg = self.model.Subgraphs(0)
        stem = printable(Path(name).stem)
        self.g = Graph(stem, meta={"model": stem, "width": None, "source": printable(name)})
        self.names: dict[int, str] = {}
        self.op, self.k, self.opname = None, -1, ""

    def error(self, msg: str) -> UserError:
        """A one-line error about the operator being read."""
        return UserError(f"'{printable(self.where, 200)}': op {self.k} ({self.opname}) {msg}")

    # -- tensors ----------------------------------------------------------------------------
    def info(self, i: int) -> tuple[str, tuple[int, ...], str, Quant | None]:
        """(name, shape, dtype, quant) of TFLite tensor `i`."""
        t = self.sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength():
            scale = q.ScaleAsNumpy().astype(np.float32)
            zp = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(len(scale), np.int64)
            quant = Quant(scale, zp, q.QuantizedDimension() if len(scale) > 1 else None)
        return printable(t.Name() or f"tensor_{i}"), shape, DTYPES[t.Type()], quant

    def data(self, i: int) -> np.ndarray:
        """Constant data of tensor `i` from its buffer (inside or after the flatbuffer)."""
        name, shape, dtype, _ = self.info(i)
        b = self.model.Buffers(self.sg.Tensors(i).Buffer())
        raw = self.buf[b.Offset():b.Offset() + b.Size()] if b.Offset() > 1 else \
            (b.DataAsNumpy().tobytes() if b.DataLength() else b"")
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if len(raw) != n:
            raise UserError(f"'{printable(self.where, 200)}': constant '{name}' holds {len(raw)} bytes, its shape "
                            f"{shape} needs {n}; the file is truncated or corrupt")
        return np.frombuffer(raw, dtype).reshape(shape).copy()

    def ints(self, i: int, what: str) -> list[int]:
        """A small int32 constant (`what`: axes, paddings, sizes) as a Python list."""
        name, _, dtype, _ = self.info(i)
        if dtype != "int32":
            raise self.error(f"reads its {what} from '{name}', which is {dtype}; they must be int32")
        return self.data(i).reshape(-1).tolist()

    def unique(self, name: str) -> str:
        """`name`, suffixed where a tensor of that name exists (TFLite names need not be unique)."""
        name = name.split(";")[0]  # converters join every fused op's name with ';'
        base, k = name or "t", 1
        while not name or name in self.g.tensors:
            name, k = f"{base}_{k}", k + 1
        return name

    def const(self, suffix: str, op_name: str, data: np.ndarray, dtype: str, quant: Quant | None) -> str:
        """Add a constant named `<op>.<suffix>`; returns its name."""
        name = self.g.add_const(self.unique(f"{op_name}.{suffix}"), data.shape, data, dtype)
        self.g.tensors[name].quant = quant
        return name

    def options(self, cls: str):
        """The current operator's builtin options, read as table class `cls` (defaults if absent)."""
        return validate.read_options(self.op, cls)

    # -- graph ------------------------------------------------------------------------------
    def run(self) -> Graph:
        for i in (int(i) for i in self.sg.InputsAsNumpy()):
            name, shape, dtype, quant = self.info(i)
            self.names[i] = self.g.add_input(self.unique(name), shape, dtype)
            self.g.tensors[self.names[i]].quant = quant
        if self.g.inputs:
            self.g.meta["resolution"] = self.g.tensors[self.g.inputs[0]].shape[1]
        for k in range(self.sg.OperatorsLength()):
            self.operator(k)
        self.g.outputs = [self.names[int(i)] for i in self.sg.OutputsAsNumpy()]
        self.g.meta["tflite_tensors"] = {name: i for i, name in self.names.items()}
        return self.g

    def operator(self, k: int) -> None:
        """Read operator `k` into one Graph op; check its output shape against the file's."""
        self.op, self.k, self.opname = self.sg.Operators(k), k, self.opnames[k]
        ins = [int(i) for i in self.op.InputsAsNumpy()]
        outs = [int(i) for i in self.op.OutputsAsNumpy()]
        out_name, out_shape, out_dtype, out_quant = self.info(outs[0])
        if "float32" in (self.info(ins[0])[2], out_dtype) and self.opname not in ("QUANTIZE", "DEQUANTIZE"):
            raise UserError(f"'{printable(self.where, 200)}' is a float model (op {k}, {self.opname}, computes in "
                            "float32); mcunet-lite reads int8 models: quantize it first (mcunet-lite quantize)")
        name = self.unique(out_name)
        kind, inputs, attrs = READERS[self.opname](self, ins, name)
        try:
            self.g.add_op(kind, name, inputs, attrs)
        except GraphError as e:  # the shapes in the file do not fit the op
            raise self.error(f"does not fit its inputs: {e}") from None
        t = self.g.tensors[name]
        if t.shape != out_shape:
            raise self.error(f"output shape in the file is {out_shape}, but its inputs give {t.shape}; "
                             "the file is inconsistent")
        t.dtype, t.quant = out_dtype, out_quant
        self.names[outs[0]] = name


def _pads(r: _Reader, x: str, padding: int, kernel: tuple[int, int], stride: tuple[int, int]) -> tuple:
    """TFLite SAME / VALID -> explicit (top, bottom, left, right)."""
    if padding == VALID:
        return (0, 0, 0, 0)
    _, h, w, _ = r.g.shape(x)
    return (*same_pads(h, kernel[0], stride[0]), *same_pads(w, kernel[1], stride[1]))


def _weights_and_bias(r: _Reader, ins: list[int], name: str, depthwise: bool = False) -> tuple[str, str]:
    """The symmetric int8 weight (depthwise converted to OHWI) and the int32 bias (zeros with scale
    S_in * S_w where the op has none)."""
    wname_in, wshape, dtype, wq = r.info(ins[1])
    rank, out_axis = (4, 3) if depthwise else (4, 0) if r.opname == "CONV_2D" else (2, 0)
    if len(wshape) != rank or (depthwise and wshape[0] != 1):
        raise r.error(f"has weight '{wname_in}' of shape {wshape}; it must be " +
                      ("(1, kh, kw, channels)" if depthwise else "(out, kh, kw, in)" if rank == 4 else "(out, in)"))
    if dtype != "int8" or wq is None:
        raise r.error(f"needs int8 weights with a scale per tensor or per output channel; got {dtype} with "
                      f"{'no quantization' if wq is None else 'a scale'}")
    if wq.axis is not None and (wq.axis != out_axis or len(wq.scale) != wshape[out_axis]):
        raise r.error(f"has {len(wq.scale)} weight scales along axis {wq.axis}; per-channel scales run along "
                      f"the output channels (axis {out_axis}, {wshape[out_axis]} of them)")
    w = r.data(ins[1])
    if depthwise:  # (1, kh, kw, C*m) -> OHWI (C*m, kh, kw, 1)
        w = np.ascontiguousarray(w.transpose(3, 1, 2, 0))
        wq = Quant(wq.scale, wq.zero_point, 0 if wq.axis is not None else None)
    wname = r.const("weight", name, w, "int8", wq)
    if len(ins) > 2 and ins[2] >= 0:
        _, _, bdtype, bq = r.info(ins[2])
        return wname, r.const("bias", name, r.data(ins[2]), bdtype, bq)  # its type is checked by `validate`
    xq = r.g.tensors[r.names[ins[0]]].quant  # None fails `validate`; the bias scale is only documentation
    bq = xq and Quant((np.float32(xq.scale[0]) * wq.scale).astype(np.float32), np.zeros_like(wq.zero_point), wq.axis)
    return wname, r.const("bias", name, np.zeros(w.shape[0], np.int32), "int32", bq)


def _read_conv(r: _Reader, ins: list[int], name: str):
    depthwise = r.opname == "DEPTHWISE_CONV_2D"
    o = r.options("DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
    x = r.names[ins[0]]
    w, b = _weights_and_bias(r, ins, name, depthwise)
    kernel, stride = r.g.shape(w)[1:3], (o.StrideH(), o.StrideW())
    return "conv2d", [x, w, b], {"stride": stride, "pads": _pads(r, x, o.Padding(), kernel, stride),
                                 "groups": r.g.shape(x)[3] if depthwise else 1,
                                 "act": ACTS[o.FusedActivationFunction()]}


def _read_fc(r: _Reader, ins: list[int], name: str):
    """FULLY_CONNECTED with TFLM's semantics on any input rank: the input is read as rows of the
    weight's depth (`FlatSizeSkipDim`), so a RESHAPE to (rows, depth) goes before the `linear`; with
    keep_num_dims the output keeps the input's leading dims, through a RESHAPE after it. Both
    reshapes run in place (no bytes move)."""
    o = r.options("FullyConnectedOptions")
    if o.WeightsFormat() != 0:
        raise r.error("uses shuffled weights; not supported")
    x, (w, b) = r.names[ins[0]], _weights_and_bias(r, ins, name)
    size, depth, act = r.g.tensors[x].size, r.g.shape(w)[1], ACTS[o.FusedActivationFunction()]
    if size % depth:
        raise r.error(f"reads {size} input values as rows of {depth} (its weight's depth); they do not divide")
    if r.g.shape(x) != (size // depth, depth):
        x = _in_place_reshape(r, x, f"{name}.flatten", (size // depth, depth))
    out_shape = r.info(int(r.op.OutputsAsNumpy()[0]))[1]
    if len(out_shape) == 2:
        return "linear", [x, w, b], {"act": act}
    y = r.g.add_op("linear", r.unique(f"{name}.rows"), [x, w, b], {"act": act})
    r.g.tensors[y].dtype, r.g.tensors[y].quant = r.info(int(r.op.OutputsAsNumpy()[0]))[2:]
    return "reshape", [y], {"shape": out_shape}


def _in_place_reshape(r: _Reader, x: str, name: str, shape: tuple[int, ...]) -> str:
    """A RESHAPE of `x` to `shape` added to the graph (same type and quantization); its name."""
    y = r.g.add_op("reshape", r.unique(name), [x], {"shape": shape})
    r.g.tensors[y].dtype, r.g.tensors[y].quant = r.g.tensors[x].dtype, r.g.tensors[x].quant
    return y


def _read_pool(r: _Reader, ins: list[int], name: str):
    o = r.options("Pool2DOptions")
    x, kernel, stride = r.names[ins[0]], (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
    kind = "avgpool" if r.opname == "AVERAGE_POOL_2D" else "maxpool"
    return kind, [x], {"kernel": kernel, "stride": stride, "pads": _pads(r, x, o.Padding(), kernel, stride),
                       "act": ACTS[o.FusedActivationFunction()]}


def _read_add(r: _Reader, ins: list[int], name: str):
    return "add", [r.names[i] for i in ins], {"act": ACTS[r.options("AddOptions").FusedActivationFunction()]}


def _read_mean(r: _Reader, ins: list[int], name: str):
    rank = len(r.g.shape(r.names[ins[0]]))
    raw = r.ints(ins[1], "axes")
    if not raw or any(not -rank <= a < rank for a in raw):
        raise r.error(f"reduces over axes {raw}; a rank-{rank} input has axes {-rank}..{rank - 1} (at least one)")
    axes = tuple(sorted({a % rank for a in raw}))
    return "mean", [r.names[ins[0]]], {"axes": axes, "keepdims": bool(r.options("ReducerOptions").KeepDims())}


def _read_pad(r: _Reader, ins: list[int], name: str):
    p, rank = r.ints(ins[1], "paddings"), len(r.g.shape(r.names[ins[0]]))
    if len(p) != 2 * rank or min(p) < 0:
        raise r.error(f"has paddings {p}; a rank-{rank} input needs {rank} (before, after) pairs, none negative")
    return "pad", [r.names[ins[0]]], {"paddings": tuple((p[i], p[i + 1]) for i in range(0, len(p), 2))}


def _read_reshape(r: _Reader, ins: list[int], name: str):
    return "reshape", [r.names[ins[0]]], {"shape": r.info(int(r.op.OutputsAsNumpy()[0]))[1]}


def _read_softmax(r: _Reader, ins: list[int], name: str):
    return "softmax", [r.names[ins[0]]], {"beta": float(r.options("SoftmaxOptions").Beta())}


def _read_transpose(r: _Reader, ins: list[int], name: str):
    return "transpose", [r.names[ins[0]]], {"perm": tuple(r.ints(ins[1], "permutation"))}


def _read_resize(r: _Reader, ins: list[int], name: str):
    o = r.options("ResizeNearestNeighborOptions")
    size = r.ints(ins[1], "size")
    if len(size) != 2 or min(size) < 1:
        raise r.error(f"resizes to {size}; the size must be (height, width), each at least 1")
    return "resize_nearest", [r.names[ins[0]]], {"size": tuple(size), "align_corners": bool(o.AlignCorners()),
                                                 "half_pixel_centers": bool(o.HalfPixelCenters())}


def _read_convert(r: _Reader, ins: list[int], name: str):
    """QUANTIZE (float32 -> int8) or DEQUANTIZE (int8 -> float32)."""
    want = ("float32", "int8") if r.opname == "QUANTIZE" else ("int8", "float32")
    got = (r.info(ins[0])[2], r.info(int(r.op.OutputsAsNumpy()[0]))[2])
    if got != want:
        raise r.error(f"converts {got[0]} to {got[1]}; only {want[0]} to {want[1]} is supported")
    return r.opname.lower(), [r.names[ins[0]]], {}


READERS: dict[str, Callable[[_Reader, list[int], str], tuple[str, list[str], dict[str, Any]]]] = {
    "CONV_2D": _read_conv,
    "DEPTHWISE_CONV_2D": _read_conv,
    "FULLY_CONNECTED": _read_fc,
    "ADD": _read_add,
    "AVERAGE_POOL_2D": _read_pool,
    "MAX_POOL_2D": _read_pool,
    "MEAN": _read_mean,
    "PAD": _read_pad,
    "RESHAPE": _read_reshape,
    "SOFTMAX": _read_softmax,
    "TRANSPOSE": _read_transpose,
    "RESIZE_NEAREST_NEIGHBOR": _read_resize,
    "QUANTIZE": _read_convert,
    "DEQUANTIZE": _read_convert,
}


def from_bytes(buf: bytes, name: str = "model.tflite", limit_mib: float = validate.LIMIT_MIB) -> Graph:
    """Parse an int8 .tflite flatbuffer into a Graph (weights, scales and zero points included),
    validated against the kit's contract; activations over `limit_mib` MiB per input are refused.
    PADs feeding a conv and an input layout TRANSPOSE are folded away (`fuse.fold`)."""
    tfl = _tflite()
    where = printable(name, 200)
    if len(buf) < 8 or not tfl.Model.ModelBufferHasIdentifier(buf, 0):
        raise UserError(f"'{where}' is not a .tflite file (no TFL3 flatbuffer identifier)")
    try:
        model = tfl.Model.GetRootAs(buf, 0)
        g = _Reader(buf, name, model, validate.check_file(model, buf, name)).run()
        validate.check_graph(g, name, limit_mib)
        return fuse.fold(g)
    except UserError:
        raise
    except Exception as e:  # bytes that are no flatbuffer fail anywhere inside the generated accessors
        raise UserError(f"'{where}': cannot parse the flatbuffer ({type(e).__name__}: {printable(str(e), 200)}); "
                        "the file is truncated or corrupt") from None


def read(path: str | Path, limit_mib: float = validate.LIMIT_MIB) -> Graph:
    """Read a .tflite file into a Graph; files over `limit_mib` MiB (or not regular files) are refused
    before they are read."""
    from .safeio import read_bounded
    return from_bytes(read_bounded(path, limit_mib, "model"), str(path), limit_mib)


# ------------------------------------------------------------------------------------ writing
# (TFLite op, option table) per Graph op kind that maps one to one
SIMPLE_OPS = {"linear": ("FULLY_CONNECTED", "FullyConnectedOptions"), "add": ("ADD", "AddOptions"),
              "mean": ("MEAN", "ReducerOptions"), "softmax": ("SOFTMAX", "SoftmaxOptions"),
              "pad": ("PAD", "PadOptions"), "reshape": ("RESHAPE", None),
              "transpose": ("TRANSPOSE", "TransposeOptions"),
              "resize_nearest": ("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions"),
              "quantize": ("QUANTIZE", "QuantizeOptions"), "dequantize": ("DEQUANTIZE", "DequantizeOptions")}


class _Writer:
    """Collects tensors and operators as plain specs, then serialises them bottom-up (flatbuffers
    tables must be built before the tables that point at them). An operator spec is (TFLite op,
    input and output tensor indices, option table name, option fields)."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.tensors: list[Tensor] = []
        self.index: dict[str, int] = {}
        self.ops: list[tuple[str, list[int], list[int], str | None, dict[str, Any]]] = []

    def tensor(self, t: Tensor) -> int:
        """Index of tensor `t` in the file, adding it on first use."""
        if t.name not in self.index:
            if t.dtype not in TYPE_CODES:
                raise UserError(f"tensor '{t.name}' has dtype {t.dtype}; .tflite export supports "
                                f"{', '.join(TYPE_CODES)}")
            self.index[t.name] = len(self.tensors)
            self.tensors.append(t)
        return self.index[t.name]

    def ref(self, name: str) -> int:
        return self.tensor(self.g.tensors[name])

    def ints(self, name: str, values) -> int:
        """A new int32 constant (axes, paddings, shapes)."""
        data = np.asarray(values, np.int32)
        return self.tensor(Tensor(name, data.shape, "int32", True, data))

    def padding(self, op: Op, kernel: tuple[int, int]) -> int | None:
        """SAME or VALID if the explicit pads equal it, else None."""
        pads = tuple(op.attrs["pads"])
        if pads == (0, 0, 0, 0):
            return VALID
        _, h, w, _ = self.g.shape(op.inputs[0])
        (sh, sw) = op.attrs["stride"]
        return SAME if pads == (*same_pads(h, kernel[0], sh), *same_pads(w, kernel[1], sw)) else None

    # -- ops ------------------------------------------------------------------------------
    def conv(self, op: Op) -> None:
        """CONV_2D or DEPTHWISE_CONV_2D, behind a PAD op where the pads are neither SAME nor VALID."""
        x, w, b = (self.g.tensors[n] for n in op.inputs)
        o, kh, kw, _ = w.shape
        depthwise = self.g.is_depthwise(op)
        if op.attrs["groups"] != 1 and not depthwise:
            raise UserError(f"conv '{op.name}': grouped convolution (groups={op.attrs['groups']}) has no TFLite op")
        padding, xi = self.padding(op, (kh, kw)), self.ref(x.name)
        if padding is None:
            pt, pb, pl, pr = op.attrs["pads"]
            n, h, wd, c = x.shape
            padded = Tensor(f"{op.name}.pad", (n, h + pt + pb, wd + pl + pr, c), x.dtype, quant=x.quant)
            paddings = self.ints(f"{op.name}.paddings", [[0, 0], [pt, pb], [pl, pr], [0, 0]])
            self.ops.append(("PAD", [xi, paddings], [self.tensor(padded)], "PadOptions", {}))
            padding, xi = VALID, self.index[padded.name]
        sh, sw = op.attrs["stride"]
        fields = {"Padding": padding, "StrideW": sw, "StrideH": sh, "FusedActivationFunction": ACT_CODES[op.act],
                  "DilationWFactor": 1, "DilationHFactor": 1}
        if depthwise:  # OHWI (C*m, kh, kw, 1) -> TFLite (1, kh, kw, C*m), channels on axis 3
            wq = w.quant and Quant(w.quant.scale, w.quant.zero_point, 3 if w.quant.axis is not None else None)
            wi = self.tensor(Tensor(w.name, (1, kh, kw, o), w.dtype, True, w.data.transpose(3, 1, 2, 0), wq))
            self.ops.append(("DEPTHWISE_CONV_2D", [xi, wi, self.ref(b.name)], [self.ref(op.output)],
                             "DepthwiseConv2DOptions", {**fields, "DepthMultiplier": o // x.shape[3]}))
        else:
            self.ops.append(("CONV_2D", [xi, self.ref(w.name), self.ref(b.name)], [self.ref(op.output)],
                             "Conv2DOptions", fields))

    def pool(self, op: Op) -> None:
        """AVERAGE_POOL_2D / MAX_POOL_2D; TFLite pools pad only SAME or VALID."""
        kh, kw = op.attrs["kernel"]
        padding = self.padding(op, (kh, kw))
        if padding is None:
            raise UserError(f"pool '{op.name}': pads {op.attrs['pads']} on a {self.g.shape(op.inputs[0])[1:3]} input "
                            "are neither SAME nor VALID, and TFLite pools cannot pad explicitly")
        sh, sw = op.attrs["stride"]
        self.ops.append(("AVERAGE_POOL_2D" if op.kind == "avgpool" else "MAX_POOL_2D", [self.ref(op.inputs[0])],
                         [self.ref(op.output)], "Pool2DOptions",
                         {"Padding": padding, "StrideW": sw, "StrideH": sh, "FilterWidth": kw, "FilterHeight": kh,
                          "FusedActivationFunction": ACT_CODES[op.act]}))

    def simple(self, op: Op) -> None:
        """Ops that map one to one; their attribute constants become int32 input tensors."""
        if op.kind not in SIMPLE_OPS:
            raise UserError(f"op '{op.name}': kind '{op.kind}' has no .tflite export")
        code, table = SIMPLE_OPS[op.kind]
        a, ins = op.attrs, [self.ref(n) for n in op.inputs]
        fields: dict[str, Any] = {}
        if op.kind in ("linear", "add"):
            fields = {"FusedActivationFunction": ACT_CODES[op.act]}
        elif op.kind == "mean":
            ins, fields = ins + [self.ints(f"{op.name}.axes", list(a["axes"]))], {"KeepDims": bool(a["keepdims"])}
        elif op.kind == "softmax":
            fields = {"Beta": float(a.get("beta", 1.0))}
        elif op.kind == "pad":
            ins = ins + [self.ints(f"{op.name}.paddings", [list(p) for p in a["paddings"]])]
        elif op.kind == "reshape":
            ins = ins + [self.ints(f"{op.name}.shape", list(self.g.shape(op.output)))]
        elif op.kind == "transpose":
            ins = ins + [self.ints(f"{op.name}.perm", list(a["perm"]))]
        elif op.kind == "resize_nearest":
            ins = ins + [self.ints(f"{op.name}.size", list(a["size"]))]
            fields = {"AlignCorners": bool(a["align_corners"]), "HalfPixelCenters": bool(a["half_pixel_centers"])}
        self.ops.append((code, ins, [self.ref(op.output)], table, fields))

    # -- serialisation --------------------------------------------------------------------
    def build(self) -> bytes:
        import flatbuffers
        tfl = _tflite()
        for op in self.g.ops:
            if op.kind == "conv2d":
                self.conv(op)
            elif op.kind in ("avgpool", "maxpool"):
                self.pool(op)
            else:
                self.simple(op)
        bld = flatbuffers.Builder(1024)
        buffers, tensors = [_buffer(bld, None)], []
        for t in self.tensors:
            if t.const and t.data is None:
                raise UserError(f"constant '{t.name}' has no values; export a graph with weights")
            if t.const:
                buffers.append(_buffer(bld, np.ascontiguousarray(t.data, t.dtype).tobytes()))
            tensors.append(_tensor(bld, t, len(buffers) - 1 if t.const else 0))
        codes = list(dict.fromkeys(code for code, *_ in self.ops))
        operators = [_operator(bld, codes.index(code), ins, outs, table, fields)
                     for code, ins, outs, table, fields in self.ops]
        opcodes = [_opcode(bld, c) for c in codes]
        sg_name = bld.CreateString(self.g.name)
        t_vec, o_vec = _offsets(bld, tensors), _offsets(bld, operators)
        in_vec = bld.CreateNumpyVector(np.array([self.ref(n) for n in self.g.inputs], np.int32))
        out_vec = bld.CreateNumpyVector(np.array([self.ref(n) for n in self.g.outputs], np.int32))
        sg = _table(bld, "SubGraph", {"Tensors": t_vec, "Inputs": in_vec, "Outputs": out_vec, "Operators": o_vec,
                                      "Name": sg_name})
        desc = bld.CreateString("mcunet-lite")
        code_vec, sg_vec, buf_vec = _offsets(bld, opcodes), _offsets(bld, [sg]), _offsets(bld, buffers)
        model = _table(bld, "Model", {"Version": 3, "OperatorCodes": code_vec, "Subgraphs": sg_vec,
                                      "Description": desc, "Buffers": buf_vec})
        bld.Finish(model, file_identifier=b"TFL3")
        return bytes(bld.Output())


def _table(bld, cls: str, fields: dict[str, Any]) -> int:
    """Build flatbuffer table `cls` from already-built field values, with the schema's builders."""
    tfl = _tflite()
    getattr(tfl, f"{cls}Start")(bld)
    for field, value in fields.items():
        getattr(tfl, f"{cls}Add{field}")(bld, value)
    return getattr(tfl, f"{cls}End")(bld)


def _offsets(bld, items: list[int]) -> int:
    bld.StartVector(4, len(items), 4)
    for item in reversed(items):
        bld.PrependUOffsetTRelative(item)
    return bld.EndVector()


def _buffer(bld, data: bytes | None) -> int:
    """A Buffer table; constant data is 16-byte aligned as TFLite converters align it."""
    if not data:
        return _table(bld, "Buffer", {})
    bld.StartVector(1, len(data), 16)
    bld.head -= len(data)
    bld.Bytes[bld.head:bld.head + len(data)] = data
    return _table(bld, "Buffer", {"Data": bld.EndVector()})


def _tensor(bld, t: Tensor, buf_idx: int) -> int:
    fields = {"Shape": bld.CreateNumpyVector(np.array(t.shape, np.int32)), "Type": TYPE_CODES[t.dtype],
              "Buffer": buf_idx, "Name": bld.CreateString(t.name)}
    if t.quant is not None:
        fields["Quantization"] = _table(bld, "QuantizationParameters", {
            "Scale": bld.CreateNumpyVector(np.ravel(t.quant.scale).astype(np.float32)),
            "ZeroPoint": bld.CreateNumpyVector(np.ravel(t.quant.zero_point).astype(np.int64)),
            "QuantizedDimension": t.quant.axis or 0})
    return _table(bld, "Tensor", fields)


def _operator(bld, code_idx: int, ins: list[int], outs: list[int], table: str | None, fields: dict) -> int:
    op = {"OpcodeIndex": code_idx, "Inputs": bld.CreateNumpyVector(np.array(ins, np.int32)),
          "Outputs": bld.CreateNumpyVector(np.array(outs, np.int32))}
    if table is not None:
        options = _table(bld, table, fields)
        op.update(BuiltinOptionsType=getattr(_tflite().BuiltinOptions, table), BuiltinOptions=options)
    return _table(bld, "Operator", op)


# op versions as TFLite's converter writes them for int8
VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "AVERAGE_POOL_2D": 2,
            "MAX_POOL_2D": 2, "MEAN": 2, "PAD": 2, "RESHAPE": 1, "SOFTMAX": 2, "QUANTIZE": 1, "DEQUANTIZE": 2,
            "TRANSPOSE": 2, "RESIZE_NEAREST_NEIGHBOR": 2}


def _opcode(bld, name: str) -> int:
    code = getattr(_tflite().BuiltinOperator, name)
    return _table(bld, "OperatorCode", {"DeprecatedBuiltinCode": min(code, 127), "BuiltinCode": code,
                                        "Version": VERSIONS[name]})


def to_bytes(g: Graph) -> bytes:
    """Serialise a Graph (int8, or float for tests) as a .tflite flatbuffer."""
    return _Writer(g).build()


def write(g: Graph, path: str | Path) -> Path:
    """Write `g` as a .tflite file that TFLite Micro runs; returns the path."""
    path = Path(path)
    path.write_bytes(to_bytes(g))
    return path

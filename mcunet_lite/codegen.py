"""TinyEngine's code generator: an int8 Graph and its memory plan -> a self-contained C project.

MCUNet (section 3.2) replaces an interpreter with generated code: every op becomes one call of a
specialised kernel with its constants baked in, weights are `const` arrays that stay in Flash, and
all activations live in one static arena at the offsets the memory scheduler chose, with the
planned in-place ops (depthwise channel by channel, ADD into a dying operand, a residual ADD fused
into the conv before it). Given a MCUNetV2 patch plan (section 3.1), the first stage runs in a loop
over patches, each op on its patch's region with per-patch padding, writing tiles of the stage
output; the rest runs layer by layer. Nothing is allocated at run time.

`emit` returns a `Project` (model.c, model.h and the kernel sources); `deploy` builds and runs it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import int8ref, schedule
from .cwrite import Consts, c_comment, c_float, c_string
from .errors import UserError
from .ir import Graph, Op
from .kernel_params import (add_params, conv_constants, dsp_kernel, dsp_weights, mean_params, softmax_params,
                            tensor_qparams)
from .liveness import activation_bytes
from .patch import PatchPlan, Region, clipped

CSRC = Path(__file__).resolve().parent / "csrc"
KERNEL_FILES = ("kernels.h", "kernels.c", "kernels_dsp.c", "dsp.h")
CTYPES = {"int8": "int8_t", "float32": "float"}
ITEM = {"int8": 1, "float32": 4}


@dataclass
class Project:
    """An emitted C project and the facts a runner needs about it."""

    name: str
    files: dict[str, str]
    graph: Graph
    arena_bytes: int
    scratch_bytes: int
    const_bytes: int
    input: tuple[str, str, tuple[int, ...]]
    outputs: list[tuple[str, str, tuple[int, ...]]]
    marks: list[str]
    mark_order: list[int]
    op_macs: dict[str, int]
    patch: PatchPlan | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """MACs the emitted code computes (a patch stage recomputes its halos)."""
        return sum(self.op_macs.values())

    @property
    def input_bytes(self) -> int:
        """Bytes of one input sample."""
        return int(np.prod(self.input[2])) * ITEM[self.input[1]]

    def write(self, out: str | Path) -> Path:
        """Write every file into folder `out`; returns it."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            if not (out / name).exists() or (out / name).read_text() != text:
                (out / name).write_text(text)
        return out


# ------------------------------------------------------------------------------- geometry
@dataclass
class _Call:
    """Where one op call reads and writes: pointer expressions and (per call) geometry values."""

    x: list[str]
    y: str
    geom: tuple | None = None   # mcu_geom_t values (window ops)
    rows: tuple | None = None   # mcu_rows_t values (elementwise ops)
    res: str = "0"


def _hw(shape) -> tuple[int, int, int]:
    return (shape[1], shape[2], shape[3]) if len(shape) == 4 else (1, 1, shape[-1])


def _layer_geom(g: Graph, op: Op) -> tuple:
    """mcu_geom_t of a whole-tensor call: dense rows, the op's own padding."""
    h, w, _ = _hw(g.shape(op.inputs[0]))
    oh, ow, _ = _hw(g.shape(op.output))
    pads = op.attrs.get("pads", (0, 0, 0, 0))
    if op.kind == "pad":
        p = op.attrs["paddings"]
        pads = (p[1][0], p[1][1], p[2][0], p[2][1])
    return (h, w, w, oh, ow, ow, ow, *pads)


class _Emitter:
    """Builds model.c: its constants (`c`) and the statements of `model_invoke` (`body`). One method
    per op kind returns the C call running that op; `k` names the op's constants, `tables` holds
    one geometry per patch inside a patch loop (None: one call over whole tensors)."""

    def __init__(self, g: Graph) -> None:
        self.g, self.c, self.body = g, Consts(), []
        self.scratch = 0
        self.marks: list[str] = []
        self.macs: dict[str, int] = {}
        self.portable: list[str] = []  # convs without a DSP kernel
        self.planes: list[tuple[int, str, str]] = []  # (plane bytes, direct call, plane call) per token

    def plane_or_direct(self, plane: int, direct: str, planar: str) -> str:
        """A token for a depthwise call that is not in place: `resolve_planes` makes it `planar`
        (the in-place kernel, out of place: a padded plane per channel, about a sixth of the
        instructions of the direct kernel on a stride-2 patch) where one plane fits the scratch the
        model needs anyway, else `direct`; the memory figures do not change."""
        self.planes.append((plane, direct, planar))
        return f"@PLANE{len(self.planes) - 1}@"

    def resolve_planes(self) -> None:
        """Replace every `plane_or_direct` token, now that the scratch size is known ('@' is outside
        `c_comment`'s alphabet, so no model string in the body forms a token)."""
        calls = {f"@PLANE{i}@": planar if plane <= self.scratch else direct
                 for i, (plane, direct, planar) in enumerate(self.planes)}
        self.body = [re.sub(r"@PLANE\d+@", lambda m: calls[m.group(0)], line) for line in self.body]

    def mark(self, op: Op, indent: str) -> None:
        """A profiling mark after `op` (the harness counts instructions between marks)."""
        self.body.append(f"{indent}MARK({len(self.marks)});")
        self.marks.append(op.name)

    def conv(self, op: Op, k: str, call: _Call, tables: list | None, fuse: tuple | None, inplace: bool) -> str:
        """CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: weights, folded biases, multipliers (and, where
        a DSP kernel runs it, its weight order and records); the scratch the call needs."""
        g = self.g
        w = g.tensors[op.inputs[1]]
        cc = conv_constants(g, op)
        if op.kind == "linear":
            c, oc, kh, kw, sh, sw, groups = w.shape[1], w.shape[0], 1, 1, 1, 1, 1
        else:
            (oc, kh, kw, _), (sh, sw), groups = w.shape, op.attrs["stride"], op.attrs["groups"]
            c = g.shape(op.inputs[0])[-1]
        geoms = tables or [call.geom]
        portable = [("int8_t", f"W{k}", w.data), ("int32_t", f"B{k}", cc["bias"]), ("int32_t", f"M{k}", cc["m0"]),
                    ("int8_t", f"S{k}", cc["shift"])]
        if dsp_kernel(op, cc["fast"], c, oc, groups, (kh, kw), (sh, sw), inplace, geoms):
            e = -cc["shift"].astype(np.int64)
            records = np.stack([2 * cc["bias"], cc["m0"], (1 << (e - 1)) + cc["z_out"] * (1 << e), e], axis=1)
            weights = dsp_weights(w.data.reshape(oc, -1)) if groups == 1 else w.data
            self.c.either([("int8_t", f"W{k}", weights), ("int32_t", f"Q{k}", records)], portable)
        else:
            for ctype, name, values in portable:
                self.c.array(ctype, name, values)
            self.c.lines.append(f"#define Q{k} 0")
            self.portable.append(op.name)
        fuse_ptr = self.c.struct("mcu_add_t", f"F{k}", fuse) if fuse else "0"
        params = self.c.struct("mcu_conv_t", f"P{k}", (c, oc, kh, kw, sh, sw, groups, cc["z_in"], cc["z_out"], cc["lo"],
                                                      cc["hi"], f"W{k}", f"B{k}", f"M{k}", f"S{k}", f"Q{k}", fuse_ptr))
        self.macs[op.name] = sum(gm[3] * gm[4] for gm in geoms) * oc * kh * kw * (c // groups)
        for gm in geoms:
            self.scratch = max(self.scratch, schedule.conv_scratch_bytes(g, op, inplace, gm[0], gm[1], gm[7:11]))
        # FULLY_CONNECTED and a depthwise conv that is not in place have no scratch
        scratch = "S" if op.kind == "conv2d" and (inplace or not g.is_depthwise(op)) else "0"
        geom = self._geom(k, call, tables)
        planar = f"mcu_depthwise_inplace({params}, {geom}, {call.x[0]}, {call.y}, S);"
        if inplace:
            return planar
        direct = f"mcu_conv2d({params}, {geom}, {call.x[0]}, {call.y}, {call.res}, {scratch});"
        if g.is_depthwise(op) and groups == oc and kh <= 8 and kw <= 8:
            plane = max((gm[0] + gm[7] + gm[8]) * (gm[1] + gm[9] + gm[10]) for gm in geoms)
            return self.plane_or_direct(plane, direct, planar)
        return direct

    def _geom(self, k: str, call: _Call, tables: list | None) -> str:
        if tables:
            return self.c.table("mcu_geom_t", f"G{k}", tables)
        return self.c.struct("mcu_geom_t", f"G{k}", call.geom)

    def _rows(self, k: str, call: _Call, tables: list | None) -> str:
        if tables:
            return self.c.table("mcu_rows_t", f"R{k}", tables)
        return self.c.struct("mcu_rows_t", f"R{k}", call.rows)

    def pool(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """AVERAGE_POOL_2D / MAX_POOL_2D."""
        lo, hi = int8ref.activation_range(op.act, self.g.tensors[op.output].quant)
        p = self.c.struct("mcu_pool_t", f"P{k}", (self.g.shape(op.inputs[0])[-1], *op.attrs["kernel"],
                                                  *op.attrs["stride"], lo, hi))
        fn = "mcu_avgpool" if op.kind == "avgpool" else "mcu_maxpool"
        return f"{fn}({p}, {self._geom(k, call, tables)}, {call.x[0]}, {call.y});"

    def pad(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """PAD of H and W (the geometry's pads) and C, with the output zero point."""
        paddings = op.attrs["paddings"]
        if len(paddings) != 4 or any(paddings[0]):
            raise UserError(f"pad '{op.name}': only NHWC pads of H, W and C can be emitted, got {paddings}")
        c = self.g.shape(op.inputs[0])[-1]
        p = self.c.struct("mcu_pad_t", f"P{k}", (c, *paddings[3], tensor_qparams(self.g, op.output)[1]))
        return f"mcu_pad({p}, {self._geom(k, call, tables)}, {call.x[0]}, {call.y});"

    def add(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """ADD (in place where planned: the output starts at or before an operand)."""
        a, b = self.g.activations(op)
        p = self.c.struct("mcu_add_t", f"P{k}", add_params(self.g, a, b, op.output, op.act))
        return f"mcu_add({p}, {self._rows(k, call, tables)}, {call.x[0]}, {call.x[1]}, {call.y});"

    def quantize(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """QUANTIZE float32 -> int8."""
        s, z = tensor_qparams(self.g, op.output)
        return f"mcu_quantize({c_float(s)}, {z}, {self._rows(k, call, tables)}, {call.x[0]}, {call.y});"

    def dequantize(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """DEQUANTIZE int8 -> float32."""
        s, z = tensor_qparams(self.g, op.inputs[0])
        return f"mcu_dequantize({c_float(s)}, {z}, {self._rows(k, call, tables)}, {call.x[0]}, {call.y});"

    def mean(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """MEAN over any axes of a tensor of rank <= 4."""
        shape = self.g.shape(op.inputs[0])
        pad, axes = 4 - len(shape), {a % len(shape) for a in op.attrs["axes"]}
        m0, shift, _ = mean_params(self.g, op)
        p = self.c.struct("mcu_mean_t", f"P{k}", ((1,) * pad + tuple(shape), tuple(int(a - pad in axes) for a in range(4)),
                                                  tensor_qparams(self.g, op.inputs[0])[1], tensor_qparams(self.g, op.output)[1], m0, shift))
        return f"mcu_mean({p}, {call.x[0]}, {call.y});"

    def softmax(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """SOFTMAX over the last axis."""
        shape = self.g.shape(op.inputs[0])
        p = self.c.struct("mcu_softmax_t", f"P{k}", (int(np.prod(shape[:-1])), shape[-1], *softmax_params(self.g, op)))
        return f"mcu_softmax({p}, {call.x[0]}, {call.y});"

    def transpose(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """TRANSPOSE of a tensor of rank <= 4."""
        shape, perm = self.g.shape(op.inputs[0]), op.attrs["perm"]
        pad = 4 - len(shape)
        perm4 = tuple(range(pad)) + tuple(a + pad for a in perm)
        p = self.c.struct("mcu_transpose_t", f"P{k}", ((1,) * pad + tuple(shape), perm4,
                                                       ITEM[self.g.tensors[op.output].dtype]))
        return f"mcu_transpose({p}, {call.x[0]}, {call.y});"

    def resize_nearest(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """RESIZE_NEAREST_NEIGHBOR with source rows and columns computed here (float32, as int8ref)."""
        _, h, w, c = self.g.shape(op.inputs[0])
        oh, ow = op.attrs["size"]
        flags = (op.attrs["align_corners"], op.attrs["half_pixel_centers"])
        rows = self.c.array("int16_t", f"RY{k}", int8ref.nearest_index(oh, h, *flags))
        cols = self.c.array("int16_t", f"RX{k}", int8ref.nearest_index(ow, w, *flags))
        p = self.c.struct("mcu_resize_t", f"P{k}", (c, w, oh, ow, rows, cols))
        return f"mcu_resize_nearest({p}, {call.x[0]}, {call.y});"

    def reshape(self, op: Op, k: str, call: _Call, tables: list | None) -> str:
        """RESHAPE: nothing in place, else the bytes moved."""
        if call.x[0] == call.y:
            return "/* reshape in place: the same bytes */"
        return f"memmove({call.y}, {call.x[0]}, {activation_bytes(self.g)[op.output]});"

    def op(self, op: Op, k: str, call: _Call, fuse: tuple | None = None, inplace: bool = False,
           tables: list | None = None) -> str:
        """The C statement running `op` on `call`'s buffers."""
        if op.kind in ("conv2d", "linear"):
            return self.conv(op, k, call, tables, fuse, inplace)
        emit = {"avgpool": self.pool, "maxpool": self.pool, "pad": self.pad, "add": self.add, "quantize": self.quantize,
                "dequantize": self.dequantize, "mean": self.mean, "softmax": self.softmax, "transpose": self.transpose,
                "resize_nearest": self.resize_nearest, "reshape": self.reshape}.get(op.kind)
        if emit is None:
            raise UserError(f"codegen: no C kernel for op kind '{op.kind}' ('{op.name}')")
        return emit(op, k, call, tables)


# ------------------------------------------------------------------------------- layer by layer
def _ptr(g: Graph, t: str, offset: int | str) -> str:
    return f"({CTYPES[g.tensors[t].dtype]} *)(A + {offset})"


def _layer_body(em: _Emitter, plan: schedule.Plan, base: int, indent: str, prefix: str) -> None:
    """Emit every op of `plan` layer by layer, tensors at `base` + their planned offsets."""
    g = plan.graph
    inplace = {y: x for x, y in plan.pairs}
    fused_conv = {y: (r, z) for r, y, z in plan.fused}
    fused_add = {z for _, _, z in plan.fused}
    for i, op in enumerate(g.ops):
        k = f"{prefix}{i}"
        if op.output in fused_add:
            em.body.append(f"{indent}/* op {k} '{c_comment(op.name)}': ADD fused into the conv before it */")
            em.mark(op, indent)
            continue
        ptr = {t: _ptr(g, t, base + plan.tensors[t].offset) for t in (*g.activations(op), op.output)}
        call = _Call([ptr[t] for t in g.activations(op)], ptr[op.output], _layer_geom(g, op))
        fuse = None
        if op.output in fused_conv:
            r, z = fused_conv[op.output]
            call.y = call.res = _ptr(g, z, base + plan.tensors[z].offset)
            fuse = add_params(g, r, op.output, z, g.ops[i + 1].act)  # ADD is symmetric in its operands
        if op.kind in ("add", "quantize", "dequantize"):
            n = g.tensors[op.output].size
            call.rows = (1, n, n, n, n)
        em.body.append(f"{indent}/* op {k} '{c_comment(op.name)}': {op.kind} {list(g.shape(op.inputs[0]))} -> "
                       f"{list(g.shape(op.output))} */")
        dw_inplace = inplace.get(op.output) == op.inputs[0] and g.is_depthwise(op)
        em.body.append(indent + em.op(op, k, call, fuse, dw_inplace))
        em.mark(op, indent)


# -------------------------------------------------------------------------------- patch stage
def _offset(stored: Region, have: Region, channels: int, item: int) -> int:
    """Byte offset of region `have` inside a stored region (rows of stored width)."""
    return ((have[0] - stored[0]) * (stored[3] - stored[2]) + have[2] - stored[2]) * channels * item


def _patch_calls(pp: PatchPlan) -> dict[str, list]:
    """Per stage op, per patch: (input byte offsets, output byte offset, geometry or rows, residual
    offset), from the plan's steps; each op's output is stored at the region it computes."""
    g, out, sp = pp.graph, pp.stage_output, pp.stage_plan
    fused_y = {y: z for _, y, z in sp.fused}
    fused_r = {y: r for r, y, _ in sp.fused}
    calls: dict[str, list] = {op.name: [] for op in sp.graph.ops}
    calls["__input__"] = []
    _, _, W, C = g.shape(out)
    x0 = g.inputs[0]
    for regions, steps in zip(pp.regions, pp.steps):
        stored = {x0: clipped(regions[x0], g.shape(x0))}
        calls["__input__"].append(stored[x0])
        for s in steps:
            op, acts, made = s.op, g.activations(s.op), s.made
            xoff = [_offset(stored[t], h, g.shape(t)[-1], ITEM[g.tensors[t].dtype]) for t, h in zip(acts, s.haves)]
            target = fused_y.get(op.output, op.output)
            yitem = ITEM[g.tensors[target].dtype]
            if target == out:
                yoff, ypitch = ((made[0] * W + made[2]) * C * yitem), W
            else:
                yoff, ypitch = 0, made[3] - made[2]
            stored[op.output] = stored[target] = made
            have = s.haves[0]
            h, w = have[1] - have[0], have[3] - have[2]
            oh, ow = made[1] - made[0], made[3] - made[2]
            xpitch = stored[acts[0]][3] - stored[acts[0]][2]
            rpitch, roff = ow, 0
            if op.output in fused_y:
                r = fused_r[op.output]
                rhave = clipped(s.out, g.shape(r))
                roff, rpitch = _offset(stored[r], rhave, g.shape(r)[-1], 1), stored[r][3] - stored[r][2]
            geom = (h, w, xpitch, oh, ow, ypitch, rpitch, *s.pads)
            c_out = g.shape(target)[-1]
            rows = None
            if op.kind in ("add", "quantize", "dequantize"):
                pitches = [(stored[t][3] - stored[t][2]) * g.shape(t)[-1] for t in acts]
                rows = (oh, ow * c_out, pitches[0], pitches[-1], ypitch * c_out)
            calls[op.name].append((xoff, yoff, geom, rows, roff))
    return calls


def _patch_body(em: _Emitter, pp: PatchPlan, base: int) -> None:
    """The patch loop: copy the input patch, run the stage ops on their regions, write the tile."""
    g, sp = pp.graph, pp.stage_plan
    calls = _patch_calls(pp)
    x0 = g.inputs[0]
    _, _, W, C = g.shape(x0)
    item = ITEM[g.tensors[x0].dtype]
    inp = calls["__input__"]
    src = em.c.table("int32_t", "XIN", [(r[0] * W + r[2]) * C * item for r in inp])
    rows = em.c.table("mcu_rows_t", "RIN", [(r[1] - r[0], (r[3] - r[2]) * C * item, W * C * item, 0,
                                             (r[3] - r[2]) * C * item) for r in inp])
    inplace = {y: x for x, y in sp.pairs}
    fused_conv = {y: (r, z) for r, y, z in sp.fused}
    fused_add = {z for _, _, z in sp.fused}
    em.body.append(f"  for (int p = 0; p < {len(pp.tiles)}; p++) {{")
    em.body.append(f"    mcu_copy_rows({rows}, (const char *)input + {src}, A + {base + sp.tensors[x0].offset});")
    for i, op in enumerate(sp.graph.ops):
        k = f"{i}"
        if op.output in fused_add:
            em.body.append(f"    /* op {k} '{c_comment(op.name)}': ADD fused into the conv before it */")
            em.mark(op, "    ")
            continue
        per = calls[op.name]
        if not per:
            continue  # not needed for the stage output (patch.execute skips it too)
        target = fused_conv.get(op.output, (None, op.output))[1]
        acts = g.activations(op)
        xs = []
        for j, t in enumerate(acts):
            offs = [c[0][j] for c in per]
            xs.append(_ptr(g, t, f"{base + sp.tensors[t].offset} + " + em.c.table("int32_t", f"X{k}_{j}", offs)))
        if target == pp.stage_output:
            y = _ptr(g, target, em.c.table("int32_t", f"Y{k}", [c[1] for c in per]))
        else:
            y = _ptr(g, target, base + sp.tensors[target].offset)
        call = _Call(xs, y)
        fuse = None
        if op.output in fused_conv:
            r, z = fused_conv[op.output]
            call.res = _ptr(g, r, f"{base + sp.tensors[r].offset} + " +
                            em.c.table("int32_t", f"XR{k}", [c[4] for c in per]))
            fuse = add_params(g, r, op.output, z, sp.graph.ops[i + 1].act)
        dw_inplace = inplace.get(op.output) == op.inputs[0] and g.is_depthwise(op) and target != pp.stage_output
        tables = [c[3] for c in per] if op.kind in ("add", "quantize", "dequantize") else [c[2] for c in per]
        em.body.append(f"    /* op {k} '{c_comment(op.name)}': {op.kind}, per patch */")
        em.body.append("    " + em.op(op, k, call, fuse, dw_inplace, tables))
        em.mark(op, "    ")
    em.body.append("  }")


# ---------------------------------------------------------------------------------- project
HEADER = """/* {name}: generated by mcunet_lite.codegen from '{model}'. */
#ifndef MODEL_H
#define MODEL_H
#include <stdint.h>

#define MODEL_NAME {model_literal}
#define MODEL_ARENA_BYTES {arena}
#define MODEL_SCRATCH_BYTES {scratch}
#define MODEL_INPUT_BYTES {input_bytes}
#define MODEL_NUM_OUTPUTS {n_out}
#define MODEL_NUM_MARKS {n_marks}

typedef void (*model_mark_fn)(int mark);
extern const uint32_t model_output_bytes[MODEL_NUM_OUTPUTS];

/* Where the input goes before model_invoke (its place in the arena), or 0 when the model reads its
 * input patch by patch from wherever it is (patch-based inference). */
void *model_input_slot(void);
/* Run the model; `input` is read only by patch-based models; `mark` (or 0) is called after each op. */
void model_invoke(const void *input, model_mark_fn mark);
const void *model_output(int i);
#endif
"""

SOURCE = """/* {name}: generated by mcunet_lite.codegen from '{model}' ({mode}). Do not edit.
 * Arena {arena} bytes at the memory planner's offsets; kernel scratch {scratch} bytes; weights and
 * parameters are const (Flash). */
#include <string.h>

#include "kernels.h"
#include "model.h"

static int8_t A[{arena}] __attribute__((aligned(8)));
static int8_t S[{scratch_alloc}] __attribute__((aligned(8)));

#define MARK(i) if (mark) mark(i)

{consts}

const uint32_t model_output_bytes[MODEL_NUM_OUTPUTS] = {{{out_bytes}}};
static int8_t *const outputs[MODEL_NUM_OUTPUTS] = {{{out_ptrs}}};

void *model_input_slot(void) {{ return {input_slot}; }}

const void *model_output(int i) {{ return outputs[i]; }}

void model_invoke(const void *input, model_mark_fn mark) {{
  (void)input;
{body}
}}
"""


def emit(g: Graph, plan: schedule.Plan | PatchPlan, name: str = "model",
         overrides: dict[str, str] | None = None) -> Project:
    """C project running int8 graph `g` by `plan`, made once by the caller and only read here: a
    memory plan (`schedule.plan`: layer by layer at its offsets, checked first) or a patch plan
    (`patch.plan`: its stage per patch, the rest layer by layer, at the plans it holds).
    `overrides` replaces kernel functions by other definitions (`override_kernels`)."""
    _check_graph(g)
    em = _Emitter(g)
    nbytes = activation_bytes(g)
    patch_plan = plan if isinstance(plan, PatchPlan) else None
    if patch_plan is None:
        schedule.check(plan)
        _layer_body(em, plan, 0, "  ", "")
        arena, out_plan, graph = plan.arena_bytes, plan, plan.graph
        input_slot = f"A + {plan.tensors[g.inputs[0]].offset}"
        order = list(range(len(em.marks)))
        mode = "layer by layer"
    else:
        if patch_plan.graph is not g:
            raise UserError("the patch plan was made for another graph; plan it with patch.plan(g, ...)")
        sp, rp = patch_plan.stage_plan, patch_plan.rest_plan
        s_out = nbytes[patch_plan.stage_output]
        _patch_body(em, patch_plan, s_out)
        order = list(range(len(em.marks))) * len(patch_plan.tiles)
        dest = rp.tensors[patch_plan.stage_output].offset
        em.body.append(f"  memmove(A + {dest}, A, {s_out});  /* the stage output to its place in the rest's arena */")
        _layer_body(em, rp, 0, "  ", "r")
        arena = max(s_out + sp.arena_bytes, rp.arena_bytes)
        out_plan, graph, input_slot = rp, g, "0"
        order += list(range(len(order) // len(patch_plan.tiles), len(em.marks)))
        mode = f"patch-based: ops 0..{patch_plan.split_op} in {patch_plan.grid}x{patch_plan.grid} patches"
    em.resolve_planes()
    outs = [(o, g.tensors[o].dtype, g.shape(o)) for o in g.outputs]
    x = g.tensors[g.inputs[0]]
    model = str(g.meta.get("model", g.name))
    values = dict(name=c_comment(name), model=c_comment(model), model_literal=c_string(model), arena=arena, scratch=em.scratch,
                  scratch_alloc=max(em.scratch, 1), mode=mode, input_bytes=nbytes[x.name], n_out=len(outs),
                  n_marks=len(em.marks), consts="\n".join(em.c.lines), body="\n".join(em.body),
                  input_slot=input_slot, out_bytes=", ".join(str(nbytes[o]) for o, _, _ in outs),
                  out_ptrs=", ".join(f"A + {out_plan.tensors[o].offset}" for o, _, _ in outs))
    files = {"model.h": HEADER.format(**values), "model.c": SOURCE.format(**values)}
    files.update({f: (CSRC / f).read_text() for f in KERNEL_FILES})
    files.update(override_kernels(files, overrides or {}))
    notes = [f"kernel function {f} replaced by user_{f}.c" for f in overrides or {}]
    notes += [f"{len(em.portable)} conv layer(s) run the portable kernel even in DSP builds (no provably exact "
              f"32-bit requantization or no DSP kernel for the shape): {', '.join(em.portable[:4])}"
              f"{' ...' if len(em.portable) > 4 else ''}"] if em.portable else []
    return Project(name, files, graph, arena, em.scratch, em.c.bytes, (x.name, x.dtype, x.shape), outs, em.marks,
                   order, em.macs, patch_plan, notes)


def override_kernels(files: dict[str, str], sources: dict[str, str]) -> dict[str, str]:
    """Kernel files with some exported functions replaced (function name -> C source defining it).

    The function's definition is cut from kernels.c or kernels_dsp.c and its new source becomes a
    file of its own, `user_<name>.c`, which includes kernels.h: a changed signature does not
    compile, and its helpers cannot clash with the kernels' static ones. A lab swaps in a student's
    requantization this way and checks the whole model against int8ref, on the PC and the board.
    """
    changed: dict[str, str] = {}
    for fn, source in sources.items():
        if not re.fullmatch(r"\w+", fn) or not re.search(rf"^\w[^;{{}}()]*\b{fn}\(", files["kernels.h"], re.M):
            raise UserError(f"cannot replace '{fn}': kernels.h exports no such function (the mcu_* functions it "
                            "declares can be replaced)")
        for name in ("kernels.c", "kernels_dsp.c"):
            text = changed.get(name, files[name])
            m = re.search(rf"^\w[^;{{}}()]*\b{fn}\([^;{{}}]*\)\s*{{", text, re.M)
            if m:
                end = text.index("\n}\n", m.end()) + 3
                changed[name] = f"{text[:m.start()]}/* {fn}: replaced by user_{fn}.c */\n{text[end:]}"
                break
        else:
            raise UserError(f"cannot replace '{fn}': no definition of it in kernels.c or kernels_dsp.c")
        changed[f"user_{fn}.c"] = f"/* {fn}, replacing the kit's definition. */\n#include \"kernels.h\"\n\n{source}\n"
    return changed


def _check_graph(g: Graph) -> None:
    """Refuse graphs the emitter cannot run: float activations inside, batch > 1, missing weights."""
    for t in g.tensors.values():
        if t.const and t.data is None:
            raise UserError(f"graph '{g.name}' has no weights (e.g. '{t.name}'): quantize it first")
        if not t.const and t.dtype not in CTYPES:
            raise UserError(f"tensor '{t.name}' is {t.dtype}; the C emitter handles int8 activations "
                            "(and float32 around QUANTIZE / DEQUANTIZE)")
        if not t.const and t.shape and t.shape[0] != 1:
            raise UserError(f"tensor '{t.name}' has batch {t.shape[0]}; the C emitter runs batch 1")
    for op in g.ops:
        if op.kind in ("conv2d", "linear", "add", "mean", "softmax") and any(
                g.tensors[t].quant is None for t in (*g.activations(op), op.output)):
            raise UserError(f"op '{op.name}' is not quantized; quantize the graph first (quant.quantize)")

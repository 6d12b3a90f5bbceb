"""Release gates of Lab 06: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("06_deploy", "memory_map"): {
        "counts the test frames (.inputs) as Flash":
            ('sections.get(".ARM.exidx", 0) + data\n',
             'sections.get(".ARM.exidx", 0) + data + sections.get(".inputs", 0)\n'),
        "forgets .data's initial values in Flash": ('sections.get(".ARM.exidx", 0) + data\n',
                                                    'sections.get(".ARM.exidx", 0)\n'),
        "the reserved .stack section instead of the measured stack": ("+ stack_bytes", '+ sections.get(".stack", 0)'),
        "every section, debug notes included": """
def memory_map(sections, stack_bytes):
    return sum(sections.values()), sections.get(".data", 0) + sections.get(".bss", 0) + stack_bytes
""",
        "hard-coded visible example": """
def memory_map(sections, stack_bytes):
    return (517976, 132612) if stack_bytes == 652 else (1000, 600)
""",
    },
    ("06_deploy", "scratch_bytes"): {
        "a plane for every depthwise conv, in place or not": ("elif (op.inputs[0], op.output) in pairs:", "else:"),
        "the plane without its padding": ("(h + pt + pb) * (w + pl + pr)", "h * w"),
        "im2col of one byte per value": ("2 * kh * kw * cin * 2", "2 * kh * kw * cin"),
        "adds the im2col needs instead of taking the largest":
            ("need = max(need, 2 * kh * kw * cin * 2)", "need += 2 * kh * kw * cin * 2"),
        "hard-coded visible example": """
def scratch_bytes(graph, pairs):
    return 144 if pairs else 32
""",
    },
    ("06_deploy", "depthwise_c"): {
        "RoundingDivideByPOT truncates (a wrong rounding)":
            ("v = (v >> right) + ((v & mask) > threshold) + zp;", "v = (v >> right) + zp;"),
        "SRDHM's nudge 2^30 for negative products too": ("(ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))", "(1LL << 30)"),
        "padding reads 0, not the input zero point": ("memset(scratch, p->zp_in,", "memset(scratch, 0,"),
        "the plane one column too narrow (right padding forgotten: off by one at the border)":
            ("const int pw = g->w + g->pl + g->pr,", "const int pw = g->w + g->pl,"),
        "the plane's interior not shifted by the left padding": ("+ (int32_t)(iy + g->pt) * pw + g->pl;",
                                                                  "+ (int32_t)(iy + g->pt) * pw;"),
        "output rows ow apart instead of y_pitch (a patch writing into the stage output)":
            ("int8_t *out = y + (int32_t)oy * g->y_pitch * C + c;\n        for (int ox = 0; ox < g->ow; ox++, r0",
             "int8_t *out = y + (int32_t)oy * g->ow * C + c;\n        for (int ox = 0; ox < g->ow; ox++, r0"),
        "the activation clamp forgotten (ReLU6 outputs above 6)":
            ("return (int8_t)(v < lo ? lo : v > hi ? hi : v);", "return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);"),
        "does not compile (an argument missing)": ("fill(p, g, x, c, scratch, pw);", "fill(p, g, x, c, scratch);"),
        "no plane: reads the input while writing over it (in-place overlap)": '''
def depthwise_c():
    return """
void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, int8_t *scratch) {
    (void)scratch;
    for (int c = 0; c < p->c; c++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                int32_t acc = p->bias[c];
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        int iy = oy * p->sh - g->pt + ky, ix = ox * p->sw - g->pl + kx;
                        int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                        acc += p->weight[(c * p->kh + ky) * p->kw + kx]
                               * (inside ? x[(iy * g->x_pitch + ix) * p->c + c] : p->zp_in);
                    }
                int32_t v = (int32_t)mcu_mbqm(acc, p->m0[c], p->shift[c]) + p->zp_out;
                y[(oy * g->y_pitch + ox) * p->c + c] = (int8_t)(v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v);
            }
}
"""
''',
        "exact but slow: one tap loop for every size, mcu_mbqm per output (over the budget)": '''
def depthwise_c():
    return """
#include <string.h>
void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, int8_t *scratch) {
    int pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
    memset(scratch, p->zp_in, (size_t)pw * ph);
    for (int c = 0; c < p->c; c++) {
        for (int iy = 0; iy < g->h; iy++)
            for (int ix = 0; ix < g->w; ix++)
                scratch[(iy + g->pt) * pw + g->pl + ix] = x[(iy * g->x_pitch + ix) * p->c + c];
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                int32_t acc = p->bias[c];
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++)
                        acc += p->weight[(c * p->kh + ky) * p->kw + kx] * scratch[(oy * p->sh + ky) * pw + ox * p->sw + kx];
                int32_t v = (int32_t)mcu_mbqm(acc, p->m0[c], p->shift[c]) + p->zp_out;
                y[(oy * g->y_pitch + ox) * p->c + c] = (int8_t)(v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v);
            }
    }
}
"""
''',
        "the kit's portable kernel pasted (kernels.c, renamed)": r'''
def depthwise_c():
    import pathlib, re, mcunet_lite
    src = (pathlib.Path(mcunet_lite.__file__).parent / "csrc" / "kernels.c").read_text()
    helpers = "".join(re.search(r"^static \w+ " + f + r"\(.*?\n}\n", src, re.S | re.M).group(0) for f in ("clamp", "requant"))
    start = src.index("/* Channel c of an h x w region")
    body = src[start:src.index("void mcu_conv2d(", start)]
    return "#include <string.h>\n" + helpers + body.replace("mcu_depthwise_inplace_ref", "mcu_depthwise_inplace")
''',
    },
}

WRAPPERS = {
    ("06_deploy", "memory_map"): "def memory_map(sections, stack_bytes): return lab06.memory_map_reference(sections, stack_bytes)",
    ("06_deploy", "scratch_bytes"): """
def scratch_bytes(graph, pairs):
    return max((schedule.kernel_scratch_bytes(graph, i, pairs) for i in range(len(graph.ops))), default=0)
""",
    ("06_deploy", "depthwise_c"): '''
def depthwise_c():
    return """void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
                                  int8_t *scratch) { mcu_depthwise_inplace_ref(p, g, x, y, scratch); }"""
''',
}

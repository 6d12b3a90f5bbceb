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
    ("06_deploy", "mbqm_c"): {
        "left shift of a negative x (undefined behaviour)": ("x * ((int64_t)1 << left)", "(x << left)"),
        "the high multiply in 32 bits (overflows)": ("int64_t ab = a * b;", "int64_t ab = (int32_t)a * (int32_t)b;"),
        "nudge 2^30 for negative products too": ("(ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))", "(1LL << 30)"),
        "RoundingDivideByPOT truncates": ("(v >> exponent) + ((v & mask) > threshold)", "(v >> exponent)"),
        "one rounding of x * M0 * 2^(shift - 31) in double": """
def mbqm_c():
    return r'''
#include <math.h>
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift) {
    return (int64_t)llround((double)x * (double)m0 * ldexp(1.0, shift - 31));
}
'''
""",
        "does not compile": ("    return divide_pot(", "    return divide_pot(("),
        "hard-coded visible example": """
def mbqm_c():
    return r'''
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift) {
    if (shift == 0) return x > 0 ? 4 : -3;
    if (shift == -1) return 2;
    return x > 0 ? 125 : -63;
}
'''
""",
    },
}

WRAPPERS = {
    ("06_deploy", "memory_map"): "def memory_map(sections, stack_bytes): return lab06.memory_map_reference(sections, stack_bytes)",
    ("06_deploy", "scratch_bytes"): """
def scratch_bytes(graph, pairs):
    return max((schedule.kernel_scratch_bytes(graph, i, pairs) for i in range(len(graph.ops))), default=0)
""",
    ("06_deploy", "mbqm_c"): """
def mbqm_c():
    import pathlib, mcunet_lite
    src = (pathlib.Path(mcunet_lite.__file__).parent / "csrc" / "kernels.c").read_text()
    return "#define MCU_INT32_MIN INT32_MIN\\n#define MCU_INT32_MAX INT32_MAX\\n" + \\
        src[src.index("int64_t mcu_srdhm"):src.index("/* One element of ADD")]
""",
}

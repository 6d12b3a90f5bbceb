"""Writing C from data: literals that cannot break out of where they are put, and model.c's constants.

A model file is untrusted input (DESIGN.md section 9): strings from it (tensor, op and model names)
reach the generated C only through `c_comment` and `c_string`, numbers only as integers or exact
hexadecimal floats. `Consts` collects the `const` arrays and structs that stay in Flash and counts
their bytes.
"""
from __future__ import annotations

import re

import numpy as np

# Strings from a model (tensor and file names) are data: they reach the C only through these two.
COMMENT_SAFE = re.compile(r"[^A-Za-z0-9_.,:;/+=()\[\]<>-]")


def c_comment(text: str) -> str:
    """`text` for the inside of a C comment: characters outside the alphabet of ordinary tensor names
    become '_'. It has no '*', '?', backslash, space or line break, so no `*/`, trigraph or line splice
    can form and no sentence of C survives."""
    return COMMENT_SAFE.sub("_", text)


def c_string(text: str) -> str:
    """`text` as a C string literal: printable ASCII other than '"', backslash and '?' as is, every
    other byte of its UTF-8 as a three-digit octal escape (which never swallows the next character)."""
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\?' else f"\\{b:03o}"
                         for b in text.encode("utf-8")) + '"'


def c_values(a) -> str:
    """Integers as the body of a C array initialiser, 24 per line."""
    flat = [str(int(v)) for v in np.asarray(a).reshape(-1)]
    return ",\n".join(", ".join(flat[i:i + 24]) for i in range(0, len(flat), 24))


def c_struct(values) -> str:
    """A (nested) tuple as a C aggregate initialiser."""
    return "{" + ", ".join(c_struct(v) if isinstance(v, (tuple, list)) else str(v) for v in values) + "}"


def c_float(v) -> str:
    """A float32 as an exact C hexadecimal literal."""
    return float(np.float32(v)).hex() + "f"


class Consts:
    """The constant declarations of model.c, and the bytes of its constant arrays (Flash)."""

    SIZES = {"int8_t": 1, "int16_t": 2, "int32_t": 4}

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bytes = 0

    def declare(self, ctype: str, name: str, values) -> tuple[str, int]:
        """A const array declaration and its bytes."""
        values = np.asarray(values).reshape(-1)
        return (f"static const {ctype} {name}[{max(values.size, 1)}] __attribute__((aligned(4))) = "
                f"{{\n{c_values(values) or 0}}};"), values.size * self.SIZES[ctype]

    def array(self, ctype: str, name: str, values) -> str:
        """Declare a const array; returns its name."""
        line, size = self.declare(ctype, name, values)
        self.lines.append(line)
        self.bytes += size
        return name

    def either(self, dsp: list[tuple[str, str, object]], portable: list[tuple[str, str, object]]) -> None:
        """Arrays (ctype, name, values) for DSP builds and others for portable builds; a name declared
        in only one branch is a null pointer in the other."""
        branches = []
        for mine, other in ((dsp, portable), (portable, dsp)):
            decls = [self.declare(*a) for a in mine]
            missing = {n for _, n, _ in other} - {n for _, n, _ in mine}
            branches.append(([d for d, _ in decls] + [f"#define {n} 0" for n in sorted(missing)],
                             sum(b for _, b in decls)))
        self.bytes += max(b for _, b in branches)
        self.lines.append("\n".join(["#if MCU_DSP", *branches[0][0], "#else", *branches[1][0], "#endif"]))

    def struct(self, ctype: str, name: str, values) -> str:
        """A const struct; returns its address."""
        self.lines.append(f"static const {ctype} {name} = {c_struct(values)};")
        return f"&{name}"

    def table(self, ctype: str, name: str, rows: list) -> str:
        """A per-patch table of structs (or int32 offsets); returns the expression for patch `p`."""
        body = ",\n".join(c_struct(r) if isinstance(r, (tuple, list)) else str(r) for r in rows)
        self.lines.append(f"static const {ctype} {name}[{len(rows)}] = {{\n{body}}};")
        return f"{name}[p]" if ctype == "int32_t" else f"&{name}[p]"

"""Random inputs several labs' checks draw from: graphs with the structures a planner must get right."""
from __future__ import annotations

import random
from typing import Iterable

import numpy as np

from .. import zoo
from ..ir import Graph

def np_rng(rng: random.Random) -> np.random.Generator:
    """A numpy generator seeded from the exercise's own random stream (same cases every run)."""
    return np.random.default_rng(rng.randrange(1 << 32))


def random_mbconv(rng: random.Random) -> zoo.MBConvConfig:
    """A small random MBConv net; stage 0 keeps the stem width with expansion 1, so its second
    block is a residual whose depthwise input is still needed by the ADD (no in-place there)."""
    stages = [zoo.Stage(16, 2, 1, [zoo.Block(3, 1), zoo.Block(3, 1)])]
    for width in sorted(rng.sample([24, 32, 40, 48, 64], 3)):
        depth = rng.randint(1, 3)
        stages.append(zoo.Stage(width, depth, rng.choice([1, 2]),
                                [zoo.Block(rng.choice([3, 5, 7]), rng.choice([3, 4, 6])) for _ in range(depth)]))
    return zoo.MBConvConfig(stages, stem=16, head=None, num_classes=2, width=1.0,
                            resolution=rng.choice([32, 40, 48, 64]))


def random_dag(rng: random.Random) -> Graph:
    """Random DAG of pointwise / depthwise convs (some with channel multiplier 2) and ADDs, ending
    in a RESHAPE, with two outputs: tensors read by several ops, long after they are made, never."""
    g = Graph("random-dag")
    hw = rng.choice([4, 6, 8])
    made = [g.add_input("input", (1, hw, hw, rng.randint(2, 6)))]
    for i in range(rng.randint(5, 14)):
        x, kind = rng.choice(made), rng.choice(["pw", "dw", "dw2", "mult2", "add", "add"])
        c = g.shape(x)[-1]
        if kind == "pw":
            y = g.conv2d(x, rng.randint(2, 8), 1, name=f"op{i}")
        elif kind in ("dw", "dw2", "mult2"):
            y = g.conv2d(x, 2 * c if kind == "mult2" else c, 3, 1 if kind == "dw" else 2, groups=c, name=f"op{i}")
        else:
            y = g.add_op("add", f"op{i}", [x, rng.choice([t for t in made if g.shape(t) == g.shape(x)])],
                         {"act": None})
        made.append(y)
    g.outputs += [g.add_op("reshape", "flat", [made[-1]], {"shape": (1, -1)}), rng.choice(made[1:-1])]
    return g


def add_keeps_operand(rng: random.Random) -> Graph:
    """a, b = conv(x); s = add(a, b); t = conv(a); add(s, t): `a` outlives the first ADD, so
    that ADD may only write over `b`."""
    g = Graph("add-keeps-a")
    hw, c = rng.choice([4, 6, 8]), rng.choice([4, 8])
    x = g.add_input("input", (1, hw, hw, 3))
    a, b = g.conv2d(x, c, 1, name="a"), g.conv2d(x, c, 1, name="b")
    s = g.add_op("add", "s", [a, b], {"act": None})
    g.outputs.append(g.add_op("add", "out", [s, g.conv2d(a, c, 1, name="t")], {"act": None}))
    return g


def schedule_graphs(rng: random.Random) -> Iterable[tuple[str, Graph]]:
    """Graphs the scheduling checks run on: random DAGs and MBConv nets, zoo models, special cases."""
    for i in range(4):
        g = random_dag(rng)
        yield f"<random graph #{i}: {len(g.ops)} ops>", g
    for i in range(2):
        cfg = random_mbconv(rng)
        yield f"<random MBConv graph #{i} at {cfg.resolution}px>", cfg.graph()
    for name in ("resnet18", "mbv1"):
        yield f"<{name} at 64px>", zoo.get(name, resolution=64).graph()
    yield "<a, b = conv(x); s = add(a, b); t = conv(a); add(s, t)>", add_keeps_operand(rng)

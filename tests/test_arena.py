"""In-place rules proved on the int8 executor: graphs run inside one arena at the planned offsets."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mcunet_lite import arena, int8ref, quant, tflite_io, zoo
from mcunet_lite import schedule as S
from mcunet_lite.from_torch import from_torch
from mcunet_lite.ir import Graph

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
REAL = sorted(MODELS.glob("*.tflite")) if MODELS.exists() else []
needs_models = pytest.mark.skipif(not REAL, reason=f"real models not found at {MODELS} (../shared/models)")


def _input(g: Graph, seed: int) -> np.ndarray:
    t, rng = g.tensors[g.inputs[0]], np.random.default_rng(seed)
    if t.dtype == "int8":
        return rng.integers(-128, 128, t.shape).astype(np.int8)
    return rng.random(t.shape, dtype=np.float32)


def _int8(g: Graph) -> Graph:
    """Random weights, quantized on random images."""
    rng = np.random.default_rng(0)
    for t in g.tensors.values():
        if t.const and t.data is None:
            t.data = rng.normal(0, 0.3, t.shape).astype(np.float32)
    return quant.quantize(g, rng.random((4, *g.shape(g.inputs[0])[1:]), dtype=np.float32))


def _same(outs, g, x) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(outs, int8ref.run_all(g, x)))


@needs_models
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
@pytest.mark.parametrize("allocator", ["best", "greedy"])
def test_real_models_run_in_their_planned_arena(path, allocator):
    g = tflite_io.read(path)
    p = S.plan(g, allocator)
    S.check(p)
    assert p.pairs  # in-place ops were planned
    x = _input(g, 1)
    assert _same(arena.run(p, x), g, x)


def test_quantized_zoo_model_runs_in_its_arena():
    cfg = zoo.mobilenet_v2(0.35, 48, num_classes=2)
    g = _int8(from_torch(cfg.module().eval(), 48))
    p = S.plan(g)
    assert p.fused and any(g.is_depthwise(g.ops[i]) for i, op in enumerate(g.ops) if (op.inputs[0], op.output) in p.pairs)
    x = _input(g, 2)
    assert _same(arena.run(p, x), g, x)


def _residual_graph() -> Graph:
    """a = conv(x); b = depthwise(a); s = add(a, b): a is still needed after the depthwise."""
    g = Graph("res")
    a = g.conv2d(g.add_input("input", (1, 6, 6, 3)), 4, 1, name="a")
    b = g.conv2d(a, 4, 3, groups=4, name="b")
    g.outputs.append(g.add_op("add", "s", [a, b], {"act": None}))
    return _int8(g)


def test_an_unsafe_in_place_depthwise_is_caught():
    g = _residual_graph()
    good = S.plan(g)
    assert ("a", "b") not in good.pairs
    x = _input(g, 3)
    assert _same(arena.run(good, x), g, x)
    # force the depthwise to overwrite a, which the add still needs
    t = dict(good.tensors)
    t["b"] = dataclasses.replace(t["b"], offset=t["a"].offset)
    bad = dataclasses.replace(good, tensors=t, pairs=good.pairs + [("a", "b")])
    with pytest.raises(S.OverlapError):
        S.check(bad)
    with pytest.raises(arena.CorruptionError, match="'a' was overwritten before op 2"):
        arena.run(bad, x)


def test_an_overlapping_plan_corrupts_and_is_reported():
    cfg = zoo.mobilenet_v2(0.35, 48, num_classes=2)
    g = _int8(from_torch(cfg.module().eval(), 48))
    p = S.plan(g)
    # an op whose output is moved onto a tensor held across it (a residual waiting for its ADD)
    i, victim = next((i, t) for i in range(len(g.ops)) for t in p.tensors.values() if t.first_op < i < t.last_op)
    t = dict(p.tensors)
    t[g.ops[i].output] = dataclasses.replace(t[g.ops[i].output], offset=victim.offset)
    bad = dataclasses.replace(p, tensors=t)
    with pytest.raises(S.OverlapError):
        S.check(bad)
    with pytest.raises(arena.CorruptionError, match=f"'{victim.name}' was overwritten"):
        arena.run(bad, _input(g, 4))

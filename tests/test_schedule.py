"""Memory scheduler: figures on the zoo, property tests on random graphs, a checker that can fail."""
import dataclasses

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from graphs import random_graphs
from mcunet_lite import profile as prof
from mcunet_lite import liveness
from mcunet_lite import schedule as S
from mcunet_lite import zoo
from mcunet_lite.errors import UserError
from mcunet_lite.ir import Graph


@pytest.mark.parametrize("width,res", [(1.0, 224), (0.35, 144)])
def test_mbv2_best_reaches_lower_bound_equal_to_tinyengine_profile(width, res):
    g = zoo.mobilenet_v2(width, res).graph()
    p = S.plan(g, "best")
    S.check(p)
    assert p.arena_bytes == p.lower_bound_bytes == prof.profile(g, "tinyengine").peak_sram_bytes
    no = S.plan(g, "best", inplace=False)
    assert no.lower_bound_bytes == prof.profile(g, "naive").peak_sram_bytes > p.lower_bound_bytes


def test_inplace_rules_on_mbv2():
    g = zoo.mobilenet_v2(0.35, 96).graph()
    pairs = dict((y, x) for x, y in liveness.inplace_pairs(g))
    dw = [op for op in g.ops if g.is_depthwise(op)]
    assert all(op.output in pairs for op in dw[1:])  # every expanded block's depthwise runs in place
    assert "blocks.0.depthwise.conv" in pairs
    adds = [op for op in g.ops if op.kind == "add"]
    assert adds and all(pairs[op.output] == op.inputs[0] for op in adds)  # into the dying residual


def test_no_inplace_when_the_input_is_still_needed():
    g = Graph()
    a = g.conv2d(g.add_input("input", (1, 8, 8, 4)), 8, 1, name="a")
    b = g.conv2d(a, 8, 3, groups=8, name="b")
    g.outputs.append(g.add_op("add", "c", [a, b], {"act": None}))
    assert ("a", "b") not in liveness.inplace_pairs(g)      # a is needed by the add
    assert ("a", "c") in liveness.inplace_pairs(g)          # the add may write over a, which dies there


def test_memory_aware_order_for_branches():
    """Two branches, each with a big intermediate: interleaved they hold both at once; the
    memory-aware order finishes one branch before starting the other."""
    g = Graph()
    x = g.add_input("input", (1, 16, 16, 8))
    p1, p2 = g.conv2d(x, 64, 1, name="p1"), g.conv2d(x, 64, 1, name="p2")
    q1, q2 = g.conv2d(p1, 4, 1, name="q1"), g.conv2d(p2, 4, 1, name="q2")
    g.outputs.append(g.add_op("add", "sum", [q1, q2], {"act": None}))
    p = S.plan(g)
    S.check(p)
    names = [op.name for op in p.graph.ops]
    assert p.order_changed and abs(names.index("p1") - names.index("q1")) == 1
    assert p.lower_bound_bytes < S.plan(g, reorder=False).lower_bound_bytes


def test_checker_catches_overlap():
    g = zoo.mobilenet_v2(0.35, 96).graph()
    p = S.plan(g)
    S.check(p)
    # move a tensor onto another one that is live at the same time
    a = p.tensors["blocks.1.expand.conv"]
    b = p.tensors["blocks.1.project.conv"]
    bad = dataclasses.replace(p, tensors={**p.tensors, b.name: dataclasses.replace(b, offset=a.offset)})
    with pytest.raises(S.OverlapError, match="live together and share bytes"):
        S.check(bad)
    # a declared pair that is not a real in-place step does not excuse an overlap
    fake = dataclasses.replace(bad, pairs=bad.pairs + [(a.name, b.name)])
    with pytest.raises(S.OverlapError):
        S.check(fake)
    outside = dataclasses.replace(p, arena_bytes=p.arena_bytes - 1)
    with pytest.raises(S.OverlapError, match="outside"):
        S.check(outside)


def test_bad_allocator_name():
    with pytest.raises(UserError, match="valid allocators: naive, greedy, best"):
        S.plan(zoo.mobilenet_v2(0.35, 96).graph(), "optimal")


@settings(max_examples=150, deadline=None)
@given(random_graphs(), st.booleans(), st.booleans())
def test_random_graphs_plans_are_valid(g, inplace, reorder):
    plans = {a: S.plan(g, a, inplace, reorder) for a in S.ALLOCATORS}
    for p in plans.values():
        S.check(p)
        assert p.arena_bytes >= p.lower_bound_bytes == max(p.live_bytes())
    assert plans["best"].arena_bytes <= plans["greedy"].arena_bytes <= plans["naive"].arena_bytes
    # in place never costs more, and the bound is at most the tinyengine rule's peak
    assert S.plan(g, "best", True, False).lower_bound_bytes <= S.plan(g, "best", False, False).lower_bound_bytes
    assert S.plan(g, "best", True, False).lower_bound_bytes <= prof.profile(g, "tinyengine").peak_sram_bytes

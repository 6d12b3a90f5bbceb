"""Patch-based inference: the MCUNetV2 figures, exact equivalence with layer-by-layer, clear errors."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from graphs import random_graphs
from mcunet_lite import floatref, liveness, zoo
from mcunet_lite import patch as P
from mcunet_lite.errors import UserError
from mcunet_lite.from_torch import from_torch
from mcunet_lite.ir import Graph


def test_mbv2_224_matches_mcunetv2_figures():
    g = zoo.mobilenet_v2(1.0, 224).graph()
    p = P.plan(g, P.split_after_block(g, 4), 4)
    assert p.input_patch == (75, 75) and p.graph.shape(p.stage_output) == (1, 28, 28, 32)
    assert abs(p.peak_sram_bytes - 172 * 1024) <= 1024
    assert p.layerwise_peak_sram_bytes == 1404928
    overhead = p.patch_stage_macs / p.layerwise_patch_stage_macs - 1
    assert abs(overhead - 0.42) <= 0.02
    assert p.trimmed_patch_stage_macs < p.patch_stage_macs  # trimming border patches saves some
    assert p.total_macs - p.layerwise_total_macs == p.patch_stage_macs - p.layerwise_patch_stage_macs


def _weighted(name: str, res: int):
    m = zoo.get(name, resolution=res).module().eval()
    gen = torch.Generator().manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_var.copy_(torch.rand(mod.num_features, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.rand(mod.num_features, generator=gen) - 0.5)
    return from_torch(m, res)


@pytest.mark.parametrize("name,res", [("mbv2", 64), ("mcunet", 80), ("resnet18", 64), ("mbv1", 96)])
def test_float_patch_execution_equals_layer_by_layer(name, res):
    g = _weighted(name, res)
    x = np.random.default_rng(0).random((1, res, res, 3), dtype=np.float32)
    ref = floatref.run(g, x)
    for split in P.candidate_splits(g)[:8:3]:
        for n, uniform in ((2, True), (3, False)):
            got = P.run_float(P.plan(g, split, n, uniform), x)[0]
            np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_random_graphs_patch_equals_layer_by_layer(g):
    rng = np.random.default_rng(1)
    for t in g.tensors.values():
        if t.const:
            t.data = rng.normal(0, 0.5, t.shape).astype(np.float32)
    x = rng.random(g.shape("input"), dtype=np.float32)
    ref = floatref.run(g, x)
    splits = [i for i in range(len(g.ops) - 1) if _valid(g, i)]
    for split in splits[:3]:
        _, h, w, _ = g.shape(g.ops[split].output)
        for n in {1, min(h, w, 2), min(h, w, 3)}:
            np.testing.assert_allclose(P.run_float(P.plan(g, split, n), x)[0], ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,res", [("mbv2", 144), ("mcunet", 160)])
def test_fast_peak_is_the_planned_peak(name, res):
    """`peak_bytes` (lower bounds only, what the NAS calls) equals the full plan's peak on these
    chains, where the best allocator reaches every bound."""
    g = zoo.get(name, resolution=res).graph()
    for k in (1, 2, 4, 6):
        for n in (2, 3, 4):
            split = P.split_after_block(g, k)
            assert P.peak_bytes(g, split, n) == P.plan(g, split, n).peak_sram_bytes


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_the_nas_shortcuts_are_sound(g):
    """What lets the NAS skip work without changing its answer: one tensor crosses a valid split
    and nothing else lives after it, so the layer-by-layer rest's bound can be read off the whole
    graph's live bytes; and a patch stage's cheap floor never exceeds its planned peak."""
    live = liveness.live_bytes(g)
    for split in (i for i in range(len(g.ops) - 1) if _valid(g, i)):
        rest = Graph(g.name, g.tensors, g.ops[split + 1:], [g.ops[split].output], g.outputs)
        assert P.rest_bound(live, split) == liveness.lower_bound(rest)
        _, h, w, _ = g.shape(g.ops[split].output)
        grids = list(range(1, min(h, w, 3) + 1))
        assert all(floor <= peak() for floor, peak in P.stage_peaks(g, split, grids))


def _valid(g, i) -> bool:
    try:
        P.validate_split(g, i)
        return True
    except UserError:
        return False


def test_auto_split_respects_the_budget_and_prefers_low_overhead():
    g = zoo.mobilenet_v2(0.35, 144).graph()
    p = P.auto_plan(g, 96 * 1024)
    assert p.peak_sram_bytes <= 96 * 1024 < p.layerwise_peak_sram_bytes
    for split in P.candidate_splits(g):
        for n in (2, 3, 4):
            q = P.plan(g, split, n)
            if q.peak_sram_bytes <= 96 * 1024:
                assert q.total_macs >= p.total_macs
    with pytest.raises(UserError, match="no split and grid fits"):
        P.auto_plan(g, 4 * 1024)


@pytest.mark.parametrize("split,grid,msg", [
    (100, 2, "out of range"),
    (2, 2, "leaves .* needed after it"),
    (12, 40, "grid 40 does not fit"),
])
def test_bad_splits_say_why(split, grid, msg):
    g = zoo.get("resnet18", resolution=64).graph() if split == 2 else zoo.mobilenet_v2(0.35, 96).graph()
    with pytest.raises(UserError, match=msg):
        P.plan(g, split, grid)


def test_split_after_layers_that_cannot_be_patched():
    g = zoo.mobilenet_v2(0.35, 96).graph()
    with pytest.raises(UserError, match="cannot run patch by patch"):
        P.plan(g, len(g.ops) - 2, 1)


# ------------------------------------------------------------------------------- int8, exact
from pathlib import Path  # noqa: E402

from mcunet_lite import int8ref, quant, tflite_io  # noqa: E402

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
REAL = sorted(MODELS.glob("*.tflite")) if MODELS.exists() else []


def _int8_input(g, seed):
    t, rng = g.tensors[g.inputs[0]], np.random.default_rng(seed)
    return rng.integers(-128, 128, t.shape).astype(np.int8) if t.dtype == "int8" else rng.random(t.shape, np.float32)


def _assert_exact(g, splits, grids, seeds=(0, 1)):
    for seed in seeds:
        x = _int8_input(g, seed)
        ref = int8ref.run_all(g, x)
        for split in splits:
            for n, uniform in grids:
                got = P.run_int8(P.plan(g, split, n, uniform), x)
                for a, b in zip(got, ref):
                    assert a.dtype == b.dtype and np.count_nonzero(a != b) == 0, (split, n, uniform)


@pytest.mark.skipif(not REAL, reason=f"real models not found at {MODELS} (../shared/models)")
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_int8_patch_execution_is_bit_exact_on_real_models(path):
    g = tflite_io.read(path)
    splits = [i for i in P.candidate_splits(g) if min(g.shape(g.ops[i].output)[1:3]) >= 3]
    _assert_exact(g, sorted({splits[0], splits[len(splits) // 2], splits[-1]}), [(2, True), (3, False)], (0,))


def test_int8_patch_execution_is_bit_exact_on_a_quantized_zoo_model():
    g = _weighted("mbv2", 64)
    q = quant.quantize(g, np.random.default_rng(0).random((4, 64, 64, 3), dtype=np.float32))
    _assert_exact(q, [P.split_after_block(q, 2), P.split_after_block(q, 4)], [(2, True), (4, True), (3, False)])

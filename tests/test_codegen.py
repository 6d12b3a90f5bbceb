"""C emitter on the PC: every emitted program is built with gcc (AddressSanitizer and UBSan on) and
must reproduce int8ref bit for bit, with the portable kernels and with the DSP kernels (whose
intrinsics dsp.h emulates in C off the microcontroller)."""
import shutil
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from graphs import random_graphs
from int8_graphs import every_op, quantize_randomly
from mcunet_lite import codegen, deploy, int8ref, kernel_params, patch, schedule, tflite_io
from mcunet_lite.cli import main
from mcunet_lite.errors import UserError

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
REAL = sorted(MODELS.glob("*.tflite")) if MODELS.exists() else []
needs_models = pytest.mark.skipif(not REAL, reason=f"real models not found at {MODELS} (../shared/models)")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler (gcc) on PATH")


@pytest.fixture(scope="session")
def objs(tmp_path_factory):
    """Object files shared by every build of the session (kernels compile once per flag set)."""
    return tmp_path_factory.getbasetemp() / "c-objs"


def host_check(g, out, objs, dsp, patch_plan=None, n=2, seed=0):
    r = deploy.deploy(g, "stm32f746", "host", None, patch_plan, out, dsp=dsp, sanitize=True, cache=objs,
                      n_random=n, seed=seed)
    assert r.outputs_match, f"{g.name}: C outputs differ from int8ref ({'dsp' if dsp else 'portable'})"
    return r


@needs_gcc
@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
@pytest.mark.parametrize("wide", [False, True], ids=["plain", "wide"])
def test_every_op_kind_is_bit_exact(tmp_path, objs, dsp, wide):
    g = quantize_randomly(every_op(), seed=3, wide=wide)
    r = host_check(g, tmp_path, objs, dsp)
    assert r.arena_bytes == schedule.plan(g).arena_bytes
    if wide:  # multipliers above 1 and huge accumulators must take the portable path
        assert any("portable kernel" in n for n in r.notes)


@needs_gcc
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=random_graphs(), seed=st.integers(0, 2 ** 16), dsp=st.booleans(), grid=st.integers(1, 3), data=st.data())
def test_random_graphs_layer_by_layer_and_patch_based(tmp_path, objs, g, seed, dsp, grid, data):
    q = quantize_randomly(g, seed)
    host_check(q, tmp_path / "layer", objs, dsp, seed=seed)
    splits = patch.candidate_splits(q)
    if splits:
        split = data.draw(st.sampled_from(splits))
        grid = min(grid, *q.shape(q.ops[split].output)[1:3])
        r = host_check(q, tmp_path / "patch", objs, dsp, patch.plan(q, split, grid), seed=seed)
        assert r.arena_bytes == patch.plan(q, split, grid).peak_sram_bytes


@needs_models
@needs_gcc
@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_real_models_on_the_host(tmp_path, objs, path):
    g = tflite_io.read(path)
    host_check(g, tmp_path / "dsp", objs, True)
    split = patch.candidate_splits(g)[len(patch.candidate_splits(g)) // 3]
    host_check(g, tmp_path / "patch", objs, False, patch.plan(g, split, 2), n=1)


@needs_models
@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_emitted_memory_is_the_plans(path):
    g = tflite_io.read(path)
    plan = schedule.plan(g)
    p = codegen.emit(g, plan)
    model_c = p.files["model.c"]
    assert p.arena_bytes == plan.arena_bytes and f"static int8_t A[{plan.arena_bytes}]" in model_c
    assert p.scratch_bytes == plan.extra_buffers_bytes  # the kernels use exactly the planned scratch
    for t in plan.tensors.values():
        assert f"A + {t.offset}" in model_c or t.size == 0 or t.name in dict(plan.pairs).values()
    assert not any("malloc" in text for text in p.files.values())
    assert p.macs == sum(r for r in p.op_macs.values()) and p.mark_order == list(range(len(p.marks)))


def test_dsp_weight_order_holds_every_weight_once():
    rng = np.random.default_rng(0)
    for oc, k in [(1, 3), (2, 4), (5, 27), (8, 8), (7, 13)]:
        w = rng.integers(-127, 128, (oc, k)).astype(np.int8)
        packed = kernel_params.dsp_weights(w)
        nb, tail = k // 4, k % 4
        pair = 8 * nb + (2 * tail + 3) // 4 * 4
        assert packed.size == pair * (oc // 2) + (k if oc % 2 else 0)
        for o in range(0, oc - 1, 2):
            block = packed[o // 2 * pair:(o // 2 + 1) * pair]
            heads = block[:8 * nb].reshape(nb, 2, 4)
            assert np.array_equal(heads[:, 0].reshape(-1), w[o, :4 * nb])
            assert np.array_equal(heads[:, 1].reshape(-1), w[o + 1, :4 * nb])
            assert np.array_equal(block[8 * nb:8 * nb + 2 * tail], np.concatenate([w[o, 4 * nb:], w[o + 1, 4 * nb:]]))


def test_pruned_channels_become_exact_constants():
    g = quantize_randomly(every_op(), seed=1)
    op = next(o for o in g.ops if o.name == "expand")
    w = g.tensors[op.inputs[1]].data
    dead = np.flatnonzero(np.abs(w.reshape(len(w), -1)).sum(1) == 0)
    cc = kernel_params.conv_constants(g, op)
    assert len(dead) and np.all(cc["shift"][dead] == -1) and np.all(cc["m0"][dead] == 1 << 30)
    from mcunet_lite import fixedpoint as fp
    k = np.arange(-256, 257)
    assert np.array_equal(fp.multiply_by_quantized_multiplier(4 * k, 1 << 30, -1), k)


@needs_models
def test_a_model_over_the_board_is_refused_before_linking():
    g = tflite_io.read(MODELS / "mcunet-person-det-int8.tflite")
    p = codegen.emit(g, schedule.plan(g))
    with pytest.raises(UserError, match=r"does not fit the stm32f405: it needs \d+ B .* of SRAM .*--patch-grid"):
        deploy.check_budget(p, deploy.boards.get("stm32f405"))
    pp = patch.plan(g, 9, 4)
    deploy.check_budget(codegen.emit(g, pp), deploy.boards.get("stm32f405"))  # fits patch by patch


@needs_models
@needs_gcc
def test_cli_deploy_on_the_host(tmp_path, capsys):
    model = str(MODELS / "mlperf-tiny-resnet8-cifar10-int8.tflite")
    x = np.random.default_rng(7).integers(-128, 128, (3, 32, 32, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["deploy", model, "--emulator", "host", "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--out", str(tmp_path / "build"), "--json"]) == 0
    assert '"outputs_match": true' in capsys.readouterr().out
    assert np.array_equal(np.load(tmp_path / "y.npy"), int8ref.run(tflite_io.read(model), x))
    assert main(["deploy", model, "--patch-grid", "2", "--emulator", "host"]) == 2
    assert "needs both --patch-grid N and --split-op I" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", x.astype(np.float32))
    assert main(["deploy", model, "--emulator", "host", "--input", str(tmp_path / "bad.npy")]) == 2
    assert "must be int8 of shape (N, 32, 32, 3)" in capsys.readouterr().err


def test_graphs_the_emitter_cannot_run_are_refused():
    from mcunet_lite import zoo
    with pytest.raises(UserError, match="has no weights .* quantize it first"):
        codegen.emit(f := zoo.get("mbv1").graph(), schedule.plan(f))
    g = quantize_randomly(every_op())
    with pytest.raises(UserError, match="patch plan was made for another graph"):
        codegen.emit(g, patch.plan(quantize_randomly(every_op()), 3, 2))


# MultiplyByQuantizedMultiplier written out independently of kernels.c (one expression per step)
MBQM_C = r"""
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift) {
    int64_t ab = x * ((int64_t)1 << (shift > 0 ? shift : 0)) * m0;
    int64_t high = (ab + (ab >= 0 ? (1LL << 30) : 1 - (1LL << 30))) / (1LL << 31);
    int right = shift > 0 ? 0 : -shift;
    int64_t mask = ((int64_t)1 << right) - 1;
    return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0));
}
"""


@needs_gcc
def test_one_kernel_function_can_be_replaced(tmp_path, objs):
    g = quantize_randomly(every_op(), seed=11)
    p = codegen.emit(g, schedule.plan(g), overrides={"mcu_mbqm": MBQM_C})
    assert "int64_t mcu_mbqm(" not in p.files["kernels.c"] and MBQM_C in p.files["user_mcu_mbqm.c"]
    r = deploy.deploy(g, "stm32f746", "host", out=tmp_path / "same", dsp=False, sanitize=True, cache=objs,
                      overrides={"mcu_mbqm": MBQM_C})
    assert r.outputs_match and "mcu_mbqm replaced by user_mcu_mbqm.c" in r.notes[0]
    truncating = MBQM_C.replace(" + ((high & mask) > (mask >> 1) + (high < 0))", "")
    r = deploy.deploy(g, "stm32f746", "host", out=tmp_path / "trunc", dsp=False, sanitize=True, cache=objs,
                      overrides={"mcu_mbqm": truncating})
    assert not r.outputs_match  # the replacement really runs: a rounding mistake changes the outputs
    for name in ("requant", "mcu_unknown", "mcu_mbqm(x"):  # static, absent, not a name
        with pytest.raises(UserError, match="kernels.h exports no such function"):
            codegen.emit(g, schedule.plan(g), overrides={name: MBQM_C})


def stage_output_call(g, pp) -> tuple[str, int]:
    """The C call of the patch stage's last op and the project's scratch bytes."""
    p = codegen.emit(g, pp)
    lines = p.files["model.c"].splitlines()
    assert "@PLANE" not in p.files["model.c"]
    return lines[next(i for i, ln in enumerate(lines) if ln.strip().startswith(f"/* op {pp.split_op} ")) + 1], p.scratch_bytes


@needs_models
def test_a_depthwise_not_in_place_runs_the_plane_kernel_in_the_scratch_there_is(monkeypatch):
    g = tflite_io.read(MODELS / "mcunet-person-det-int8.tflite")
    pp = patch.plan(g, 5, 2)
    assert g.is_depthwise(g.ops[5]) and g.ops[5].output == pp.stage_output  # written into the tile: not in place
    call, scratch = stage_output_call(g, pp)
    assert call.strip().startswith("mcu_depthwise_inplace(")
    monkeypatch.setattr(codegen._Emitter, "plane_or_direct", lambda self, plane, direct, planar: direct)
    call, direct_scratch = stage_output_call(g, pp)
    assert call.strip().startswith("mcu_conv2d(") and direct_scratch == scratch  # the memory figures do not move


def test_a_plane_larger_than_the_scratch_keeps_the_direct_kernel():
    from test_fuse import padded_conv
    g = padded_conv((9, 8), 8, (1, 1, 1, 1), 3, 2, True, False, 12, tail=True)  # 1x1 convs: 32 B of scratch
    call, scratch = stage_output_call(g, patch.plan(g, 2, 2))
    assert call.strip().startswith("mcu_conv2d(") and scratch < 11 * 10

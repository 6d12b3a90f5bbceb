"""Emitted C on emulated STM32s (QEMU): bit-exact outputs on both boards, memory from the ELF,
instruction counts from TIM2 and from the QEMU plugin, budget errors, the fault handler, Renode."""
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from int8_graphs import every_op, quantize_randomly
from mcunet_lite import boards, codegen, deploy, patch, schedule, tflite_io
from mcunet_lite.errors import UserError

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
REAL = sorted(MODELS.glob("*.tflite")) if MODELS.exists() else []
needs_models = pytest.mark.skipif(not REAL, reason=f"real models not found at {MODELS} (../shared/models)")
pytestmark = pytest.mark.skipif(deploy.toolchain_missing() is not None, reason=str(deploy.toolchain_missing()))
BOARDS = list(boards.BOARDS)


@pytest.fixture(scope="session")
def objs(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "c-objs"


@pytest.fixture(scope="module")
def zoo_model():
    return deploy.load_int8("mbv2", 0.35, 48, 2)


def on_board(g, board, tmp_path, objs, **kw):
    r = deploy.deploy(g, board, "qemu", out=tmp_path, cache=objs, **kw)
    assert r.outputs_match, f"{g.name} on {board}: outputs differ from int8ref"
    assert r.flash_bytes <= boards.get(board).flash_bytes and r.sram_bytes <= boards.get(board).sram_bytes
    assert r.instructions and r.stack_bytes > 0
    return r


@needs_models
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("path", REAL, ids=[p.stem for p in REAL])
def test_real_models_are_bit_exact_on_both_boards(tmp_path, objs, path, board):
    g = tflite_io.read(path)
    if "person-det" in path.name and board == "stm32f405":  # 240 kB of activations: only patch by patch fits
        with pytest.raises(UserError, match=f"does not fit the {board}"):
            deploy.deploy(g, board, "qemu", out=tmp_path / "layer", cache=objs)
        r = on_board(g, board, tmp_path, objs, patch_plan=patch.plan(g, 9, 4))
        assert r.arena_bytes == patch.plan(g, 9, 4).peak_sram_bytes
    elif "person-det" in path.name:  # its PADs folded, the float input quantized in place: TinyEngine's arena
        r = on_board(g, board, tmp_path, objs)
        assert r.arena_bytes == 245_760
    else:
        r = on_board(g, board, tmp_path, objs)
    assert sum(layer["instructions"] for layer in r.layers) == pytest.approx(r.instructions, rel=0.01)


@pytest.mark.parametrize("board", BOARDS)
def test_a_quantized_zoo_model_is_bit_exact_on_both_boards(tmp_path, objs, zoo_model, board):
    g, notes = zoo_model
    r = on_board(g, board, tmp_path, objs, notes=notes)
    assert "random weights" in r.notes[0]


def test_portable_and_dsp_kernels_agree_and_dsp_needs_fewer_instructions(tmp_path, objs):
    g = quantize_randomly(every_op(), seed=5)
    portable = on_board(g, "stm32f405", tmp_path / "portable", objs, dsp=False)
    dsp = on_board(g, "stm32f405", tmp_path / "dsp", objs)
    assert dsp.instructions < portable.instructions
    assert dsp.instructions_per_mac < portable.instructions_per_mac


@needs_models
def test_patch_based_inference_on_the_m7(tmp_path, objs):
    g = tflite_io.read(MODELS / "mlperf-tiny-vww-96-int8.tflite")
    pp = patch.plan(g, 5, 3)
    r = on_board(g, "stm32f746", tmp_path, objs, patch_plan=pp)
    assert r.mode == "patch" and r.arena_bytes == pp.peak_sram_bytes < pp.layerwise_peak_sram_bytes
    assert r.macs == pp.total_macs > r.model_macs


def test_tim2_and_the_plugin_count_the_same_instructions(tmp_path, objs):
    """The M4 build counts with TIM2 under -icount; replaying its counter reads from the QEMU
    plugin's counts at board_ticks() must give the same figures."""
    g = quantize_randomly(every_op(), seed=6)
    p = codegen.emit(g, schedule.plan(g))
    bld = deploy.build(p, "qemu", "stm32f405", deploy._random_inputs(p, 2), tmp_path, cache=objs)
    tim2 = deploy.run(bld)
    plugin = deploy.run(replace(bld, board=replace(bld.board, ticks="mark")))
    assert tim2.instructions == plugin.instructions and tim2.op_instructions == plugin.op_instructions


def test_memory_figures_come_from_the_elf(tmp_path, objs):
    g = quantize_randomly(every_op(), seed=7)
    r = on_board(g, "stm32f746", tmp_path, objs)
    sizes = deploy._sections(tmp_path / "fw.elf")
    assert r.flash_bytes == sizes[".text"] + sizes.get(".ARM.exidx", 0) + sizes.get(".data", 0)
    assert r.sram_bytes == sizes.get(".data", 0) + sizes[".bss"] + r.stack_bytes
    assert sizes[".bss"] >= r.arena_bytes + r.scratch_bytes and ".inputs" in sizes
    script = boards.get("stm32f746").linker_script()
    assert f"LENGTH = {320 * 1024}" in script and f"LENGTH = {1024 * 1024}" in script


def test_linker_overflow_is_reported_in_budget_words(tmp_path, objs):
    g = quantize_randomly(every_op(), seed=8)
    p = codegen.emit(g, schedule.plan(g))
    need = p.arena_bytes + p.scratch_bytes + boards.MIN_STACK
    tight = replace(boards.get("stm32f405"), sram_bytes=need + 16)  # passes the estimate, not the linker
    with pytest.raises(UserError) as e:
        deploy.build(p, "qemu", tight, None, tmp_path / "ram", cache=objs)
    assert "does not fit the stm32f405: the linked program needs" in str(e.value) and "SRAM" in str(e.value)
    assert "ld:" not in str(e.value) and "overflowed" not in str(e.value)
    small = replace(boards.get("stm32f405"), flash_bytes=p.const_bytes + p.input_bytes + 64)
    with pytest.raises(UserError, match="more Flash than the board's"):
        deploy.build(p, "qemu", small, None, tmp_path / "flash", cache=objs)


def test_a_fault_exits_with_code_3(tmp_path):
    board = boards.get("stm32f405")
    src = codegen.CSRC / "boards"
    (tmp_path / "fault.c").write_text("int main(void) { return *(volatile int *)0xFFFFFFF0; }\n")
    (tmp_path / "fw.ld").write_text(board.linker_script())
    subprocess.run([deploy.ARM_GCC, *board.cflags, *board.defines, "-O2", "-I", str(src), str(src / "board.c"),
                    str(tmp_path / "fault.c"), "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T",
                    str(tmp_path / "fw.ld"), "-o", str(tmp_path / "fw.elf")], check=True)
    r = subprocess.run([deploy.QEMU, "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "null",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(tmp_path / "fw.elf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "hardfault" in r.stdout + r.stderr


def test_renode_files_for_the_f746(tmp_path, objs):
    g = quantize_randomly(every_op(), seed=9)
    p = codegen.emit(g, schedule.plan(g))
    xs = deploy._random_inputs(p, 1)
    bld = deploy.build(p, "renode", "stm32f746", xs, tmp_path, cache=objs)
    expected = [deploy.int8ref.run_all(g, x[None]) for x in xs]
    resc, robot = deploy.renode_files(bld, expected)
    assert "platforms/cpus/stm32f746.repl" in resc.read_text() and str(bld.exe.resolve()) in resc.read_text()
    text = robot.read_text()
    assert "Create Terminal Tester    sysbus.usart1" in text and "ExecutedInstructions" in text
    assert f"out 0 0 {np.ascontiguousarray(expected[0][0]).view(np.uint8).tobytes().hex()[:16]}" in text
    assert subprocess.run(["arm-none-eabi-nm", str(bld.exe)], capture_output=True, text=True).stdout.count(
        "Reset_Handler") == 1 and bld.board.flash_origin == 0x08000000


@pytest.mark.skipif(shutil.which("renode-test") is None, reason="renode-test is not on PATH (Renode not installed)")
def test_renode_runs_the_model_bit_exact(tmp_path, objs):
    g = quantize_randomly(every_op(), seed=10)
    r = deploy.deploy(g, "stm32f746", "renode", out=tmp_path, cache=objs, n_random=1)
    assert r.outputs_match


RENODE_OK = """Preparing suites
Started Renode instance on port 49152; pid 10657
Starting suites
Running {robot}
+++++ Starting test 'model.mlperf-tiny-vww-96-int8 Runs Bit-Exact On The STM32F746'
executed instructions: 0x00000000027AA611


+++++ Finished test 'model.mlperf-tiny-vww-96-int8 Runs Bit-Exact On The STM32F746' in 5.14 seconds with status \
\033[32mOK\033[0m
Suite {robot} finished successfully in 6.07 seconds.
Cleaning up suites
Closing Renode pid 10657
Aggregating all robot results
Output:  .../robot_output.xml
Log:     .../log.html
Report:  .../report.html
Tests finished successfully :)
"""
RENODE_FAIL = """Preparing suites
Started Renode instance on port 49152; pid 10657
Starting suites
Running {robot}
+++++ Starting test 'model.mlperf-tiny-vww-96-int8 Runs Bit-Exact On The STM32F746'
+++++ Finished test 'model.mlperf-tiny-vww-96-int8 Runs Bit-Exact On The STM32F746' in 5.02 seconds with status \
\033[31mfailed\033[0m
Error message: InvalidOperationException: Terminal tester failed!
Line containing >>out 0 0 7790<< event: failure
Some tests failed :( See the list of failed tests below and logs for details!
"""


def stand_in_renode(tmp_path, monkeypatch, text: str, code: int) -> None:
    """A `renode-test` on PATH that prints `text` (the robot path filled in) and exits with `code`."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "out.txt").write_text(text)
    script = bin_ / "renode-test"
    script.write_text(f'#!/bin/sh\nsed "s|{{robot}}|$1|" "{bin_ / "out.txt"}"\nexit {code}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")


@pytest.mark.parametrize("text,code,match", [(RENODE_OK, 0, True), (RENODE_FAIL, 1, False)], ids=["pass", "fail"])
def test_renode_verdict_is_the_exit_code_and_the_count_is_parsed(tmp_path, objs, monkeypatch, text, code, match):
    stand_in_renode(tmp_path, monkeypatch, text, code)
    g = quantize_randomly(every_op(), seed=11)
    r = deploy.deploy(g, "stm32f746", "renode", out=tmp_path / "build", cache=objs, n_random=1)
    assert r.outputs_match is match and r.sram_bytes is None and r.instructions_per_mac is None
    assert r.instructions == (0x27AA611 if match else None)
    text = r.text()  # every figure Renode does not measure reads 'unknown'
    assert "SRAM unknown" in text and f"input(s): {'yes' if match else 'NO'}" in text
    assert (f"{0x27AA611:,d} instructions executed" in text) is match
    assert json.loads(json.dumps(r.to_dict()))["outputs_match"] is match


def test_a_renode_that_fails_otherwise_is_an_error(tmp_path, objs, monkeypatch):
    stand_in_renode(tmp_path, monkeypatch, "Could not start Renode\n", 2)
    with pytest.raises(RuntimeError, match="renode-test failed \\(exit 2\\)"):
        deploy.deploy(quantize_randomly(every_op(), seed=11), "stm32f746", "renode", out=tmp_path / "build",
                      cache=objs, n_random=1)


def test_fully_connected_on_a_rank4_input_runs_on_the_board(tmp_path, objs):
    from test_tflite_io import fc_file
    g = tflite_io.from_bytes(fc_file(keep_num_dims=False), "fc.tflite")  # TFLM flattens; we reshape in place
    r = on_board(g, "stm32f746", tmp_path, objs)
    assert r.arena_bytes == 60 + 96  # the conv's input and output; the flattened view costs nothing


def test_a_pytorch_exported_model_deploys_patch_by_patch(tmp_path, objs):
    from test_exported import exported_mbv2
    g = tflite_io.from_bytes(exported_mbv2(0.35, 64, 2, 10), "mbv2-exported.tflite")  # NCHW + TRANSPOSE, PADs
    pp = patch.plan(g, patch.split_after_block(g, 4), 4)
    r = on_board(g, "stm32f405", tmp_path, objs, patch_plan=pp)
    assert r.mode == "patch" and r.arena_bytes == pp.peak_sram_bytes


@pytest.mark.parametrize("depthwise", [True, False], ids=["depthwise", "conv"])
def test_folded_asymmetric_pads_run_exact_in_c_whole_and_patch_by_patch(tmp_path, objs, depthwise):
    from test_fuse import padded_conv
    from mcunet_lite import fuse
    g = fuse.fold_pads(padded_conv((9, 8), 8, (3, 0, 1, 2), 3, 2, depthwise, False, 12, tail=True))
    assert g.ops[1].attrs["pads"] == (3, 0, 1, 2)  # more padding than a 3x3 window reaches on top
    on_board(g, "stm32f746", tmp_path / "layer", objs)
    on_board(g, "stm32f746", tmp_path / "patch", objs, patch_plan=patch.plan(g, 1, 2))

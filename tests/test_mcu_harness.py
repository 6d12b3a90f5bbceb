"""The C-kernel harness of Lab 06 (mcunet_lite.kit.mcu_harness): a student's kernel runs on the emulated
STM32F746 inside real int8 layers; a hang, a compile error, a call into the kit's kernels and an
included kit file are reported, not scored."""
import random
import time

import pytest

from mcunet_lite import deploy
from mcunet_lite.kit import lab06, mcu_harness

pytestmark = pytest.mark.skipif(deploy.toolchain_missing() is not None, reason=str(deploy.toolchain_missing()))

SIGNATURE = ("void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, "
             "int8_t *scratch)")


@pytest.fixture(scope="module")
def block():
    return lab06.mbconv_graph(random.Random(3), 3, 2, (0, 1, 0, 1))


def test_the_kits_own_kernels_are_exact_and_counted(block):
    portable = mcu_harness.run_kernel(None, block)
    dsp = mcu_harness.run_kernel(None, block, dsp=True)
    assert portable.outputs_match and dsp.outputs_match
    assert portable.macs == dsp.macs > 0 and dsp.per_mac < portable.per_mac


def test_a_kernel_that_hangs_is_stopped(block):
    t = time.time()
    with pytest.raises(mcu_harness.CError, match="did not finish within 2 s"):
        mcu_harness.run_kernel(SIGNATURE + " { for (;;) __asm__ volatile(\"\"); }", block, timeout=2)
    assert time.time() - t < 60


def test_a_compile_error_names_the_students_line(block):
    with pytest.raises(mcu_harness.CError, match="line 2: error"):
        mcu_harness.run_kernel("#include <string.h>\n" + SIGNATURE + " { undeclared = 1; }", block)


def test_a_wrong_kernel_is_told_where_it_differs(block):
    zero = SIGNATURE + " { (void)p; (void)g; (void)x; (void)scratch; y[0] ^= 1; }"
    r = mcu_harness.run_kernel(zero, block)
    assert not r.outputs_match and "differ from int8ref" in r.first_difference


def test_calling_the_kits_kernel_is_refused(block):
    wrapper = SIGNATURE + " { mcu_depthwise_inplace_ref(p, g, x, y, scratch); }"
    glued = "#define CAT(a, b) a##b\n" + SIGNATURE + " { CAT(mcu_depthwise_inplace, _ref)(p, g, x, y, scratch); }"
    for source in (wrapper, glued):
        with pytest.raises(mcu_harness.CError, match="it calls mcu_depthwise_inplace_ref"):
            mcu_harness.run_kernel(source, block)
    assert mcu_harness.run_kernel(wrapper, block, twin_rule=False).outputs_match  # a right answer, refused


def test_pasted_or_included_kit_code_is_refused():
    assert "body of the library's" in mcu_harness.refusal(lab06.reference_c())
    assert "includes" in mcu_harness.refusal('#define mcu_depthwise_inplace_ref mine\n#include "kernels.c"\n')
    assert mcu_harness.refusal('#include <string.h>\n#include "kernels.h"\n' + SIGNATURE + " {}") is None

/* The few Cortex-M DSP instructions the DSP kernels use, as gcc's <arm_acle.h> intrinsics on the
 * microcontroller and as plain C with the same results elsewhere, so that the DSP kernels also run
 * (and are checked with sanitizers) on a PC.
 *
 * SXTB16 sign-extends bytes 0 and 2 of a word into two int16 halves (with ROR #8: bytes 1 and 3);
 * SMLAD multiplies the two int16 halves pairwise and adds both products to an accumulator: two MACs
 * in one instruction. SMMLAR adds the rounded high word of a 32 x 32 product to an accumulator;
 * SADD16 adds the int16 halves separately.
 */
#ifndef MCU_DSP_H
#define MCU_DSP_H

#include <stdint.h>
#include <string.h>

/* Pack two int16 into a word (bottom, top). */
static inline uint32_t mcu_pack16(int32_t bottom, int32_t top) {
    return (uint32_t)(uint16_t)bottom | (uint32_t)(uint16_t)top << 16;
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline uint32_t mcu_sxtb16(uint32_t v) { return __sxtb16(v); }
static inline uint32_t mcu_sxtb16_ror8(uint32_t v) {  /* gcc 12 does not fold the rotation into SXTB16 */
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static inline int32_t mcu_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad(a, b, acc); }
static inline int32_t mcu_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t mcu_smlabt(uint32_t a, uint32_t b, int32_t acc) { return __smlabt(a, b, acc); }
static inline int32_t mcu_smlatb(uint32_t a, uint32_t b, int32_t acc) { return __smlatb(a, b, acc); }
static inline int32_t mcu_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt(a, b, acc); }
static inline int32_t mcu_ssat8(int32_t v) { return __ssat(v, 8); }
static inline int32_t mcu_smmlar(int32_t a, int32_t b, int32_t acc) {
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline uint32_t mcu_sadd16(uint32_t a, uint32_t b) { return __sadd16(a, b); }
#else
static inline int32_t lo16(uint32_t v) { return (int16_t)(v & 0xFFFF); }
static inline int32_t hi16(uint32_t v) { return (int16_t)(v >> 16); }
static inline uint32_t mcu_sxtb16(uint32_t v) {
    return (uint32_t)(uint16_t)(int16_t)(int8_t)(v & 0xFF) | (uint32_t)(uint16_t)(int16_t)(int8_t)((v >> 16) & 0xFF) << 16;
}
static inline uint32_t mcu_sxtb16_ror8(uint32_t v) { return mcu_sxtb16(v >> 8 | v << 24); }
static inline int32_t mcu_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * lo16(b)) + (uint32_t)(hi16(a) * hi16(b)));
}
static inline int32_t mcu_smlabb(uint32_t a, uint32_t b, int32_t acc) { return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * lo16(b))); }
static inline int32_t mcu_smlabt(uint32_t a, uint32_t b, int32_t acc) { return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * hi16(b))); }
static inline int32_t mcu_smlatb(uint32_t a, uint32_t b, int32_t acc) { return (int32_t)((uint32_t)acc + (uint32_t)(hi16(a) * lo16(b))); }
static inline int32_t mcu_smlatt(uint32_t a, uint32_t b, int32_t acc) { return (int32_t)((uint32_t)acc + (uint32_t)(hi16(a) * hi16(b))); }
static inline int32_t mcu_ssat8(int32_t v) { return v < -128 ? -128 : v > 127 ? 127 : v; }
static inline int32_t mcu_smmlar(int32_t a, int32_t b, int32_t acc) {
    return (int32_t)(((int64_t)acc * 4294967296LL + (int64_t)a * b + 0x80000000LL) >> 32);
}
static inline uint32_t mcu_sadd16(uint32_t a, uint32_t b) {
    return mcu_pack16(lo16(a) + lo16(b), hi16(a) + hi16(b));
}
#endif

/* A 32-bit load from any address (LDR allows unaligned addresses on Cortex-M4/M7). */
static inline uint32_t mcu_load32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}


#endif

/* Cortex-M DSP convolutions: the same results as kernels.c in about a sixth of the instructions.
 *
 * - Pointwise, general convs and FULLY_CONNECTED are a matrix product over two output pixels at a
 *   time (CMSIS-NN's scheme): both pixels' inputs are widened to int16 once, into a two-column
 *   buffer in SXTB16 order (per block of 4 channels the words (x0, x2), (x1, x3)), and each pair
 *   of weight words, sign-extended by SXTB16, feeds eight SMLADs (2 pixels x 2 output channels).
 *   The emitter stores these weights channel pair by channel pair, interleaved in blocks of 4
 *   (codegen.dsp_weights), so one LDRD loads both channels' next four weights.
 * - In-place depthwise convs keep MCUNet's one-channel padded plane; at 3x3 each word loaded from
 *   a plane row serves two neighbouring outputs through SMLAD / SMLAxy on its sign-extended halves.
 * - Requantization is SMMLAR (a rounded high word plus the rounding constant) and two shifts, with
 *   the output zero point folded in; the emitter proves it exact and gives each channel a record
 *   {2 bias, M0, rounding constant, e} (mcu_conv_t.dsp, see `finish`). Layers without records run
 *   the portable kernels.
 * The innermost loop of the matrix product and its requantization are written in assembly on the
 * microcontroller (gcc spills registers there); the C beside them computes the same and runs on a PC.
 */
#include "kernels.h"

#if MCU_DSP
#include "dsp.h"

/* One output of a fast layer from its doubled accumulator acc2 = 2 acc (the kernels widen
 * activations, or pack weights, times two; records hold 2 bias): MBQM for |acc| < 2^30 and
 * e = -shift in [1, 31], plus Z_out, then the clamp (with `full` the int8 range: one SSAT).
 * SRDHM's (acc * M0 + 2^30) >> 31 is the rounded high word of acc2 * M0; RoundingDivideByPOT by e is
 * (v + 2^(e-1) - (v < 0)) >> e, and Z_out adds Z_out 2^e before the shift: SMMLAR adds the record's
 * round = 2^(e-1) + Z_out 2^e to the high word (the emitter checks the sum fits). v < 0 exactly when
 * acc < 0, except when v rounds to 0, where subtracting 1 before the shift changes nothing. */
static inline __attribute__((always_inline)) int32_t finish(int32_t acc2, int32_t m0, int32_t e, int32_t round,
                                                            int32_t lo, int32_t hi, int full) {
    int32_t v = mcu_ssat8((mcu_smmlar(acc2, m0, round) + (acc2 >> 31)) >> e);
    if (!full) {
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
    }
    return v;
}

/* A layer's requantization constants, read once: int8 stores may alias anything, so values read
 * through `p` after a store would be read again. */
typedef struct {
    const int32_t *rec;
    int32_t lo, hi;
    const mcu_add_t *fuse;
} epi_t;

static inline epi_t epilogue(const mcu_conv_t *p) {
    epi_t q = {p->dsp, p->act_min, p->act_max, p->fuse};
    return q;
}

/* Output channel o of one pixel from its accumulator (record: bias, M0, round, e). */
static inline __attribute__((always_inline)) int32_t out_value(const epi_t *q, int o, int32_t acc, int full) {
    const int32_t *r = q->rec + 4 * o;
    return finish(acc, r[1], r[3], r[2], q->lo, q->hi, full);
}

/* MBQM in 32 bits for |x| < 2^30 and e = -shift in [0, 31] (as finish, without rounding for e = 0). */
static inline int32_t mbqm32(int32_t x, int32_t m0, int32_t e) {
    int32_t v = mcu_smmlar(x * 2, m0, 0);
    return e ? (v + (1 << (e - 1)) + (v >> 31)) >> e : v;
}

/* One element of an ADD whose shifts are all in [-31, 0]: the operands shifted left 20 bits are
 * below 2^28, their rescaled sum below 2^30, so each MBQM fits 32 bits. */
int8_t mcu_add_one_dsp(const mcu_add_t *p, int32_t a, int32_t b) {
    int32_t xa = mbqm32((a - p->za) * (1 << 20), p->ma, -p->sa), xb = mbqm32((b - p->zb) * (1 << 20), p->mb, -p->sb);
    int32_t v = mbqm32(xa + xb, p->mo, -p->so) + p->zo;
    return (int8_t)(v < p->lo ? p->lo : v > p->hi ? p->hi : v);
}

/* Store it, or ADD(residual, it) with a fused residual (r is read before y is written). */
static inline __attribute__((always_inline)) void put(const epi_t *q, int8_t *y, const int8_t *r, int o, int32_t v,
                                                      int fused) {
    if (fused) y[o] = q->fuse->fast ? mcu_add_one_dsp(q->fuse, r[o], v) : mcu_add_one(q->fuse, r[o], v);
    else y[o] = (int8_t)v;
}

/* ----------------------------------------------------------------- two-column matrix product */

/* Bytes of one channel pair's weights: K / 4 blocks of 8 bytes, both tails, padded to a word. */
static inline int32_t pair_bytes(int32_t K) { return 8 * (K >> 2) + ((2 * (K & 3) + 3) & ~3); }

/* Bytes 0 and 2 (1 and 3) of a word as int16, doubled: the matrix kernels' accumulators are 2 acc. */
static inline uint32_t wide02(uint32_t v) {
    uint32_t s = mcu_sxtb16(v);
    return mcu_sadd16(s, s);
}

static inline uint32_t wide13(uint32_t v) {
    uint32_t s = mcu_sxtb16_ror8(v);
    return mcu_sadd16(s, s);
}

/* Widen K int8 values of pixels a and b (doubled) into the interleaved buffer: per block of 4
 * channels the words (a0,a2) (a1,a3) (b0,b2) (b1,b3); the K % 4 tail follows, a's then b's. */
static void widen2(const int8_t *xa, const int8_t *xb, int32_t K, uint32_t *cols) {
    int32_t nb = K >> 2, tail = K & 3;
    for (int32_t i = 0; i < nb; i++, xa += 4, xb += 4, cols += 4) {
        uint32_t va = mcu_load32(xa), vb = mcu_load32(xb);
        cols[0] = wide02(va);
        cols[1] = wide13(va);
        cols[2] = wide02(vb);
        cols[3] = wide13(vb);
    }
    int16_t *t = (int16_t *)cols;
    for (int32_t i = 0; i < tail; i++) {
        t[i] = (int16_t)(2 * xa[i]);
        t[tail + i] = (int16_t)(2 * xb[i]);
    }
}

/* The blocks of one channel pair times two widened pixels: 16 MACs in 15.5 instructions per block
 * (two blocks per loop iteration; an odd block first). */
static inline __attribute__((always_inline)) const int8_t *pair_blocks(const int8_t *w, const uint32_t *c,
                                                                       const uint32_t *end, int32_t acc[4]) {
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
#if defined(__ARM_FEATURE_DSP)
    uint32_t v0, v1, t0, t1, x02, x13;
#define MCU_BLOCK \
    "ldrd %[v0], %[v1], [%[w]], #8\n\t"       /* 4 weights of each channel */ \
    "sxtb16 %[t0], %[v0], ror #8\n\t"                                        \
    "sxtb16 %[v0], %[v0]\n\t"                                                \
    "sxtb16 %[t1], %[v1], ror #8\n\t"                                        \
    "sxtb16 %[v1], %[v1]\n\t"                                                \
    "ldrd %[x02], %[x13], [%[c]], #16\n\t"    /* pixel a */                  \
    "smlad %[a0], %[x02], %[v0], %[a0]\n\t"                                 \
    "smlad %[a0], %[x13], %[t0], %[a0]\n\t"                                 \
    "smlad %[a1], %[x02], %[v1], %[a1]\n\t"                                 \
    "smlad %[a1], %[x13], %[t1], %[a1]\n\t"                                 \
    "ldrd %[x02], %[x13], [%[c], #-8]\n\t"    /* pixel b */                  \
    "smlad %[b0], %[x02], %[v0], %[b0]\n\t"                                 \
    "smlad %[b0], %[x13], %[t0], %[b0]\n\t"                                 \
    "smlad %[b1], %[x02], %[v1], %[b1]\n\t"                                 \
    "smlad %[b1], %[x13], %[t1], %[b1]\n\t"
#define MCU_OPERANDS                                                                                         \
    : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [c] "+r"(c), [w] "+r"(w), [v0] "=&r"(v0), \
      [v1] "=&r"(v1), [t0] "=&r"(t0), [t1] "=&r"(t1), [x02] "=&r"(x02), [x13] "=&r"(x13)                    \
    : [end] "r"(end)                                                                                         \
    : "cc", "memory"
    if ((end - c) & 4) __asm__ volatile(MCU_BLOCK MCU_OPERANDS);
    if (c != end) __asm__ volatile("1:\n\t" MCU_BLOCK MCU_BLOCK "cmp %[c], %[end]\n\tbne 1b\n\t" MCU_OPERANDS);
#undef MCU_BLOCK
#undef MCU_OPERANDS
#else
    for (; c != end; c += 4, w += 8) {
        uint32_t v0 = mcu_load32(w), v1 = mcu_load32(w + 4);
        uint32_t t0 = mcu_sxtb16_ror8(v0), t1 = mcu_sxtb16_ror8(v1);
        v0 = mcu_sxtb16(v0);
        v1 = mcu_sxtb16(v1);
        a0 = mcu_smlad(c[1], t0, mcu_smlad(c[0], v0, a0));
        a1 = mcu_smlad(c[1], t1, mcu_smlad(c[0], v1, a1));
        b0 = mcu_smlad(c[3], t0, mcu_smlad(c[2], v0, b0));
        b1 = mcu_smlad(c[3], t1, mcu_smlad(c[2], v1, b1));
    }
#endif
    acc[0] = a0, acc[1] = a1, acc[2] = b0, acc[3] = b1;
    return w;
}

/* Every output channel of two pixels from their widened columns; yb == 0: pixel a only. */
static inline __attribute__((always_inline)) void mac2_body(const mcu_conv_t *p, const uint32_t *cols, int32_t K,
                                                            int8_t *ya, int8_t *yb, const int8_t *ra,
                                                            const int8_t *rb, int full, int fused) {
    const int32_t nb = K >> 2, tail = K & 3, oc = p->oc, step = pair_bytes(K);
    const uint32_t *cend = cols + 4 * nb;
    const int16_t *ta = (const int16_t *)cend, *tb = ta + tail;
    const int8_t *w = p->weight;
    const epi_t q = epilogue(p);
    int o = 0;
    for (; o + 2 <= oc; o += 2, w += step) {
        int32_t acc[4] = {q.rec[4 * o], q.rec[4 * o + 4], q.rec[4 * o], q.rec[4 * o + 4]};
        const int8_t *wt = pair_blocks(w, cols, cend, acc);
        for (int32_t i = 0; i < tail; i++) {
            acc[0] += wt[i] * ta[i];
            acc[1] += wt[tail + i] * ta[i];
            acc[2] += wt[i] * tb[i];
            acc[3] += wt[tail + i] * tb[i];
        }
        int32_t a0 = out_value(&q, o, acc[0], full), a1 = out_value(&q, o + 1, acc[1], full);
        int32_t b0 = out_value(&q, o, acc[2], full), b1 = out_value(&q, o + 1, acc[3], full);
        put(&q, ya, ra, o, a0, fused);
        put(&q, ya, ra, o + 1, a1, fused);
        if (yb) {
            put(&q, yb, rb, o, b0, fused);
            put(&q, yb, rb, o + 1, b1, fused);
        }
    }
    if (o < oc) {  /* an odd last channel: a plain row */
        int32_t a0 = q.rec[4 * o], b0 = a0;
        for (const uint32_t *c = cols; c < cend; c += 4, w += 4) {
            uint32_t v = mcu_load32(w), v13 = mcu_sxtb16_ror8(v), v02 = mcu_sxtb16(v);
            a0 = mcu_smlad(c[1], v13, mcu_smlad(c[0], v02, a0));
            b0 = mcu_smlad(c[3], v13, mcu_smlad(c[2], v02, b0));
        }
        for (int32_t i = 0; i < tail; i++) {
            a0 += w[i] * ta[i];
            b0 += w[i] * tb[i];
        }
        a0 = out_value(&q, o, a0, full);
        b0 = out_value(&q, o, b0, full);
        put(&q, ya, ra, o, a0, fused);
        if (yb) put(&q, yb, rb, o, b0, fused);
    }
}

/* Requantize the accumulators of channels o, o + 1 (records rec[0..7]) of pixels a and b with the
 * int8 clamp and store them (finish): 26 instructions in assembly, where gcc's C keeps reloading. */
static inline __attribute__((always_inline)) void store4(const int32_t *rec, const int32_t acc[4], int8_t *ya,
                                                         int8_t *yb) {
#if defined(__ARM_FEATURE_DSP)
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], m, r, e, t;
#define MCU_REQUANT(x, y) \
    "smmlar %[t], " x ", %[m], %[r]\n\tadd %[t], %[t], " x ", asr #31\n\tasr %[t], %[t], %[e]\n\t" \
    "ssat %[t], #8, %[t]\n\tstrb %[t], " y "\n\t"
    __asm__ volatile(
        "ldr %[m], [%[rec], #4]\n\tldr %[r], [%[rec], #8]\n\tldr %[e], [%[rec], #12]\n\t"
        MCU_REQUANT("%[a0]", "[%[ya]]") MCU_REQUANT("%[b0]", "[%[yb]]")
        "ldr %[m], [%[rec], #20]\n\tldr %[r], [%[rec], #24]\n\tldr %[e], [%[rec], #28]\n\t"
        MCU_REQUANT("%[a1]", "[%[ya], #1]") MCU_REQUANT("%[b1]", "[%[yb], #1]")
        : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [m] "=&r"(m), [r] "=&r"(r), [e] "=&r"(e),
          [t] "=&r"(t)
        : [rec] "r"(rec), [ya] "r"(ya), [yb] "r"(yb)
        : "memory");
#undef MCU_REQUANT
#else
    for (int i = 0; i < 4; i++) {
        const int32_t *q = rec + 4 * (i & 1);
        (i < 2 ? ya : yb)[i & 1] = (int8_t)finish(acc[i & 1 ? (i < 2 ? 1 : 3) : (i < 2 ? 0 : 2)], q[1], q[3], q[2],
                                                  -128, 127, 1);
    }
#endif
}

/* The common case: K % 4 == 0, an even number of channels, two pixels, the int8 clamp, no ADD. */
static void mac2_plain(const mcu_conv_t *p, const uint32_t *cols, int32_t K, int8_t *ya, int8_t *yb) {
    const uint32_t *cend = cols + K;
    const int8_t *w = p->weight;
    for (const int32_t *rec = p->dsp, *end = rec + 4 * p->oc; rec != end; rec += 8, ya += 2, yb += 2) {
        int32_t acc[4] = {rec[0], rec[4], rec[0], rec[4]};
        w = pair_blocks(w, cols, cend, acc);
        store4(rec, acc, ya, yb);
    }
}

/* mac2_body compiled three times: plain int8 clamp (one SSAT), any clamp, fused residual ADD. */
static void mac2(const mcu_conv_t *p, const uint32_t *cols, int32_t K, int8_t *ya, int8_t *yb, const int8_t *ra,
                 const int8_t *rb) {
    int full = p->act_min == -128 && p->act_max == 127;
    if (!p->fuse && full && yb && !(K & 3) && !(p->oc & 1)) mac2_plain(p, cols, K, ya, yb);
    else if (p->fuse) mac2_body(p, cols, K, ya, yb, ra, rb, 0, 1);
    else if (full) mac2_body(p, cols, K, ya, yb, ra, rb, 1, 0);
    else mac2_body(p, cols, K, ya, yb, ra, rb, 0, 0);
}

/* One pixel straight from its int8 input, no buffer (FULLY_CONNECTED has no scratch). */
static void mac1(const mcu_conv_t *p, const int8_t *x, int32_t K, int8_t *y, const int8_t *r) {
    const int32_t nb = K >> 2, tail = K & 3, step = pair_bytes(K);
    const int8_t *w = p->weight;
    const epi_t q = epilogue(p);
    int o = 0;
    for (; o + 2 <= p->oc; o += 2, w += step) {
        int32_t a0 = 0, a1 = 0;
        const int8_t *wt = w;
        for (int32_t i = 0; i < nb; i++, wt += 8) {
            uint32_t xv = mcu_load32(x + 4 * i), v0 = mcu_load32(wt), v1 = mcu_load32(wt + 4);
            uint32_t x02 = mcu_sxtb16(xv), x13 = mcu_sxtb16_ror8(xv);
            a0 = mcu_smlad(x13, mcu_sxtb16_ror8(v0), mcu_smlad(x02, mcu_sxtb16(v0), a0));
            a1 = mcu_smlad(x13, mcu_sxtb16_ror8(v1), mcu_smlad(x02, mcu_sxtb16(v1), a1));
        }
        for (int32_t i = 0; i < tail; i++) {
            a0 += wt[i] * x[4 * nb + i];
            a1 += wt[tail + i] * x[4 * nb + i];
        }
        a0 = out_value(&q, o, q.rec[4 * o] + 2 * a0, 0);
        a1 = out_value(&q, o + 1, q.rec[4 * o + 4] + 2 * a1, 0);
        put(&q, y, r, o, a0, q.fuse != 0);
        put(&q, y, r, o + 1, a1, q.fuse != 0);
    }
    if (o < p->oc) {
        int32_t a0 = 0;
        for (int32_t i = 0; i < K; i++) a0 += w[i] * x[i];
        put(&q, y, r, o, out_value(&q, o, q.rec[4 * o] + 2 * a0, 0), q.fuse != 0);
    }
}

/* Pixels may be paired unless a fused residual sits at other positions than the output (a patch's
 * residual region with a halo): then writing one pixel may land on the other's unread residual. */
static int pairable(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *y, const int8_t *res) {
    return !p->fuse || (res == y && g->r_pitch == g->y_pitch);
}

/* 1x1 conv, stride 1, no padding: a matrix product, row by row (runs of pixels). */
static void pointwise(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res,
                      int8_t *scratch) {
    int32_t K = p->c, rows = g->oh, n = g->ow;
    if (g->x_pitch == g->w && g->y_pitch == g->ow && (!res || g->r_pitch == g->ow)) rows = 1, n = g->oh * g->ow;
    int pair = pairable(p, g, y, res);
    uint32_t *cols = (uint32_t *)scratch;
    for (int32_t row = 0; row < rows; row++) {
        const int8_t *xr = x + (int32_t)row * g->x_pitch * K;
        int8_t *yr = y + (int32_t)row * g->y_pitch * p->oc;
        const int8_t *rr = res ? res + (int32_t)row * g->r_pitch * p->oc : 0;
        for (int32_t i = 0; i < n;) {
            const int8_t *ra = rr ? rr + i * p->oc : 0;
            if (pair && i + 1 < n) {
                widen2(xr + i * K, xr + (i + 1) * K, K, cols);
                mac2(p, cols, K, yr + i * p->oc, yr + (i + 1) * p->oc, ra, rr ? ra + p->oc : 0);
                i += 2;
            } else {
                widen2(xr + i * K, xr + i * K, K, cols);
                mac2(p, cols, K, yr + i * p->oc, 0, ra, 0);
                i += 1;
            }
        }
    }
}

/* Windows whose channel count is not a multiple of 4 (a first conv on RGB) are gathered as int8 into
 * a small stack buffer, then widened; larger ones run the portable kernel. */
#define MCU_STAGE_BYTES 128

/* n bytes from src (or n copies of the zero point) to dst, a word at a time (unaligned LDR/STR). */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t v = mcu_load32(src + i);
        memcpy(dst + i, &v, 4);
    }
    for (; i < n; i++) dst[i] = src[i];
}

static inline void fill_bytes(int8_t *dst, int8_t v, int32_t n) {
    for (int32_t i = 0; i < n; i++) dst[i] = v;
}

/* im2col of output pixel (oy, ox) as int8 into `stage` (K bytes; padding holds Z_in). */
static void gather(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int oy, int ox, int8_t *stage) {
    const int32_t C = p->c, row = p->kw * C;
    const int8_t zp = (int8_t)p->zp_in;
    for (int ky = 0; ky < p->kh; ky++, stage += row) {
        int iy = oy * p->sh - g->pt + ky, ix0 = ox * p->sw - g->pl;
        if (iy < 0 || iy >= g->h) {
            fill_bytes(stage, zp, row);
        } else if (ix0 >= 0 && ix0 + p->kw <= g->w) {
            copy_bytes(stage, x + ((int32_t)iy * g->x_pitch + ix0) * C, row);
        } else {
            for (int kx = 0; kx < p->kw; kx++) {
                if (ix0 + kx < 0 || ix0 + kx >= g->w) fill_bytes(stage + kx * C, zp, C);
                else copy_bytes(stage + kx * C, x + ((int32_t)iy * g->x_pitch + ix0 + kx) * C, C);
            }
        }
    }
}

/* im2col of output pixel (oy, ox) straight into column `col` of the widened buffer, 4 channels at a
 * time (c % 4 == 0, so every tap starts a block). */
static void im2col_blocks(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int oy, int ox, int col,
                          uint32_t *cols) {
    uint32_t zp4 = 0x01010101u * (uint8_t)p->zp_in;
    uint32_t *dst = cols + 2 * col;
    for (int ky = 0; ky < p->kh; ky++) {
        int iy = oy * p->sh - g->pt + ky;
        for (int kx = 0; kx < p->kw; kx++) {
            int ix = ox * p->sw - g->pl + kx;
            int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
            const int8_t *src = x + (inside ? ((int32_t)iy * g->x_pitch + ix) * p->c : 0);
            for (int32_t i = 0; i < p->c; i += 4, dst += 4) {
                uint32_t v = inside ? mcu_load32(src + i) : zp4;
                dst[0] = wide02(v);
                dst[1] = wide13(v);
            }
        }
    }
}

/* Output pixel i (row-major) of the call: its place in y and in the residual. */
static int8_t *at(const mcu_conv_t *p, const mcu_geom_t *g, int8_t *y, int32_t i, int16_t pitch) {
    return y + ((int32_t)(i / g->ow) * pitch + i % g->ow) * p->oc;
}

/* General conv (groups == 1) through im2col, two output pixels at a time. */
static void conv_im2col(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res,
                        int8_t *scratch) {
    int32_t K = p->kh * p->kw * p->c, n = (int32_t)g->oh * g->ow;
    uint32_t *cols = (uint32_t *)scratch;
    int pair = pairable(p, g, y, res);
    for (int32_t i = 0; i < n; i += 1 + (pair && i + 1 < n)) {
        int32_t j = pair && i + 1 < n ? i + 1 : i;
        im2col_blocks(p, g, x, i / g->ow, i % g->ow, 0, cols);
        im2col_blocks(p, g, x, j / g->ow, j % g->ow, 1, cols);
        mac2(p, cols, K, at(p, g, y, i, g->y_pitch), j != i ? at(p, g, y, j, g->y_pitch) : 0,
             res ? at(p, g, (int8_t *)res, i, g->r_pitch) : 0, res && j != i ? at(p, g, (int8_t *)res, j, g->r_pitch) : 0);
    }
}

/* The same for windows of any channel count up to MCU_STAGE_BYTES, gathered and widened. */
static void conv_im2col_staged(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
                               const int8_t *res, int8_t *scratch) {
    int32_t K = p->kh * p->kw * p->c, n = (int32_t)g->oh * g->ow;
    int8_t stage[2][MCU_STAGE_BYTES];
    int pair = pairable(p, g, y, res);
    for (int32_t i = 0; i < n; i += 1 + (pair && i + 1 < n)) {
        int32_t j = pair && i + 1 < n ? i + 1 : i;
        gather(p, g, x, i / g->ow, i % g->ow, stage[0]);
        gather(p, g, x, j / g->ow, j % g->ow, stage[1]);
        widen2(stage[0], stage[1], K, (uint32_t *)scratch);
        mac2(p, (uint32_t *)scratch, K, at(p, g, y, i, g->y_pitch), j != i ? at(p, g, y, j, g->y_pitch) : 0,
             res ? at(p, g, (int8_t *)res, i, g->r_pitch) : 0, res && j != i ? at(p, g, (int8_t *)res, j, g->r_pitch) : 0);
    }
}

void mcu_conv2d_dsp(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res,
                    int8_t *scratch) {
    /* The emitter gives records (p->dsp) only to layers one of these runs: groups == 1 and
     * FULLY_CONNECTED (no scratch), a pointwise conv, or a window whose c % 4 == 0 or that fits
     * MCU_STAGE_BYTES. */
    int window = p->kh * p->kw > 1 || p->sh > 1 || p->sw > 1 || (g->pt | g->pb | g->pl | g->pr);
    if (!p->dsp) {
        mcu_conv2d_ref(p, g, x, y, res);
    } else if (p->groups != 1) {
        mcu_depthwise_dsp(p, g, x, y);
    } else if (!scratch) {
        mac1(p, x, p->c, y, res);
    } else if (!window) {
        pointwise(p, g, x, y, res, scratch);
    } else if (p->c % 4 == 0) {
        conv_im2col(p, g, x, y, res, scratch);
    } else {
        conv_im2col_staged(p, g, x, y, res, scratch);
    }
}

/* ------------------------------------------------------------------------ depthwise in place */

/* The 3x3 kernel of one channel as int16 pairs: rows' (w0, w2) in k02[3], the middle column
 * (w01, w11) in k1a and (w21, 0) in k1b; and its requantization constants. */
typedef struct {
    uint32_t k02[3], k1a, k1b;
    int32_t bias, m0, e, round;
} dw_t;

/* One output row of a 3x3 depthwise channel from three plane rows, two outputs per step. A word
 * x0..x3 of a plane row, sign-extended to (x0, x2) and (x1, x3), gives output j the taps x0 x1 x2
 * and, at stride 1, output j + 1 the taps x1 x2 x3; at stride 2, output j + 1 takes x2 x3 x4. */
static inline __attribute__((always_inline)) void dw_row(const mcu_conv_t *p, const dw_t *k, const int8_t *r0,
                                                         int32_t pw, int ow, int8_t *out, int32_t step, int stride,
                                                         int full) {
    const uint32_t k0 = k->k02[0], k1 = k->k02[1], k2 = k->k02[2], ka = k->k1a, kb = k->k1b;
    const int32_t bias = k->bias, m0 = k->m0, e = k->e, round = k->round, lo = p->act_min, hi = p->act_max;
    const int8_t *r1 = r0 + pw, *r2 = r1 + pw;
    int8_t *end = out + (ow & ~1) * step;
    for (; out != end; out += 2 * step, r0 += 2 * stride, r1 += 2 * stride, r2 += 2 * stride) {
        int32_t a = bias, b = bias;
        uint32_t v = mcu_load32(r0), v13 = mcu_sxtb16_ror8(v), v02 = mcu_sxtb16(v);
        a = mcu_smlabb(v13, ka, mcu_smlad(v02, k0, a));
        if (stride == 1) b = mcu_smlatb(v02, ka, mcu_smlad(v13, k0, b));
        else b = mcu_smlabt((uint32_t)(int32_t)r0[4], k0, mcu_smlatb(v13, ka, mcu_smlatb(v02, k0, b)));
        v = mcu_load32(r1), v13 = mcu_sxtb16_ror8(v), v02 = mcu_sxtb16(v);
        a = mcu_smlabt(v13, ka, mcu_smlad(v02, k1, a));
        if (stride == 1) b = mcu_smlatt(v02, ka, mcu_smlad(v13, k1, b));
        else b = mcu_smlabt((uint32_t)(int32_t)r1[4], k1, mcu_smlatt(v13, ka, mcu_smlatb(v02, k1, b)));
        v = mcu_load32(r2), v13 = mcu_sxtb16_ror8(v), v02 = mcu_sxtb16(v);
        a = mcu_smlabb(v13, kb, mcu_smlad(v02, k2, a));
        if (stride == 1) b = mcu_smlatb(v02, kb, mcu_smlad(v13, k2, b));
        else b = mcu_smlabt((uint32_t)(int32_t)r2[4], k2, mcu_smlatb(v13, kb, mcu_smlatb(v02, k2, b)));
        out[0] = (int8_t)finish(a, m0, e, round, lo, hi, full);
        out[step] = (int8_t)finish(b, m0, e, round, lo, hi, full);
    }
    if (ow & 1) {
        const int8_t *r[3] = {r0, r1, r2};
        int32_t a = bias;
        for (int i = 0; i < 3; i++) {
            uint32_t w02 = k->k02[i], w1 = i == 0 ? ka : i == 1 ? ka >> 16 : kb;
            a += (int16_t)w02 * r[i][0] + (int16_t)w1 * r[i][1] + (int16_t)(w02 >> 16) * r[i][2];
        }
        out[0] = (int8_t)finish(a, m0, e, round, lo, hi, full);
    }
}

/* Every output row of one channel; the variants are compiled separately (stride, clamp). */
static void dw_channel(const mcu_conv_t *p, const mcu_geom_t *g, const dw_t *k, const int8_t *plane, int32_t pw,
                       int8_t *out) {
    int32_t ystep = (int32_t)g->y_pitch * p->c, rstep = p->sh * pw;
    int full = p->act_min == -128 && p->act_max == 127;
    for (int oy = 0; oy < g->oh; oy++, plane += rstep, out += ystep) {
        if (p->sh == 1 && full) dw_row(p, k, plane, pw, g->ow, out, p->c, 1, 1);
        else if (p->sh == 1) dw_row(p, k, plane, pw, g->ow, out, p->c, 1, 0);
        else if (full) dw_row(p, k, plane, pw, g->ow, out, p->c, 2, 1);
        else dw_row(p, k, plane, pw, g->ow, out, p->c, 2, 0);
    }
}

/* Channel c of the input region into the padded plane (strided reads, four at a time). */
static void fill_plane(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int c, int8_t *plane, int32_t pw) {
    const int32_t C = p->c, xstep = (int32_t)g->x_pitch * C, w = g->w;
    x += c;
    plane += (int32_t)g->pt * pw + g->pl;
    for (int iy = 0; iy < g->h; iy++, x += xstep, plane += pw) {
        const int8_t *src = x;
        int8_t *dst = plane, *end = plane + (w & ~3);
        for (; dst != end; dst += 4, src += 4 * C) {
            dst[0] = src[0];
            dst[1] = src[C];
            dst[2] = src[2 * C];
            dst[3] = src[3 * C];
        }
        for (int i = 0; i < (w & 3); i++) dst[i] = src[i * C];
    }
}

/* Any kernel up to 8 x 8, any stride: per output and kernel row, each group of 4 taps is one word
 * of the plane row against the pairs (w0, w2), (w1, w3); the last kw % 4 taps one at a time.
 * Compiled for 5x5 and 7x7 (MCUNet's kernels, loops unrolled) and for any other size. */
static inline __attribute__((always_inline)) void dw_any_body(const mcu_conv_t *p, const mcu_geom_t *g,
                                                              const int8_t *w, const int32_t *rec,
                                                              const int8_t *plane, int32_t pw, int8_t *out,
                                                              const int kh, const int kw) {
    uint32_t k[8][4];
    const int groups = kw >> 2;
    for (int r = 0; r < kh; r++)
        for (int i = 0; i < groups; i++) {
            const int8_t *t = w + r * kw + 4 * i;
            k[r][2 * i] = mcu_pack16(2 * t[0], 2 * t[2]);
            k[r][2 * i + 1] = mcu_pack16(2 * t[1], 2 * t[3]);
        }
    const int32_t ystep = (int32_t)g->y_pitch * p->c, xstep = p->sw, bias = rec[0], m0 = rec[1], e = rec[3],
                  round = rec[2], lo = p->act_min, hi = p->act_max;
    for (int oy = 0; oy < g->oh; oy++, out += ystep) {
        const int8_t *src = plane + (int32_t)oy * p->sh * pw;
        int8_t *o = out;
        for (int ox = 0; ox < g->ow; ox++, src += xstep, o += p->c) {
            int32_t acc = bias;
            const int8_t *row = src;
            for (int r = 0; r < kh; r++, row += pw) {
                for (int i = 0; i < groups; i++) {
                    uint32_t v = mcu_load32(row + 4 * i);
                    acc = mcu_smlad(mcu_sxtb16_ror8(v), k[r][2 * i + 1], mcu_smlad(mcu_sxtb16(v), k[r][2 * i], acc));
                }
                for (int i = 4 * groups; i < kw; i++) acc += 2 * w[r * kw + i] * row[i];
            }
            *o = (int8_t)finish(acc, m0, e, round, lo, hi, 0);
        }
    }
}

static void dw_channel_any(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *w, const int32_t *rec,
                           const int8_t *plane, int32_t pw, int8_t *out) {
    if (p->kh == 5 && p->kw == 5) dw_any_body(p, g, w, rec, plane, pw, out, 5, 5);
    else if (p->kh == 7 && p->kw == 7) dw_any_body(p, g, w, rec, plane, pw, out, 7, 7);
    else dw_any_body(p, g, w, rec, plane, pw, out, p->kh, p->kw);
}

void mcu_depthwise_inplace_dsp(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
                               int8_t *scratch) {
    if (!p->dsp) {  /* records are given to kernels up to 8 x 8 */
        mcu_depthwise_inplace_ref(p, g, x, y, scratch);
        return;
    }
    int32_t pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
    int three = p->kh == 3 && p->kw == 3 && p->sh == p->sw && p->sh <= 2;
    memset(scratch, p->zp_in, (size_t)pw * ph);
    for (int c = 0; c < p->c; c++) {
        fill_plane(p, g, x, c, scratch, pw);
        const int8_t *w = p->weight + p->kh * p->kw * c;
        const int32_t *r = p->dsp + 4 * c;
        if (!three) {
            dw_channel_any(p, g, w, r, scratch, pw, y + c);
            continue;
        }
        dw_t k = {{mcu_pack16(2 * w[0], 2 * w[2]), mcu_pack16(2 * w[3], 2 * w[5]), mcu_pack16(2 * w[6], 2 * w[8])},
                  mcu_pack16(2 * w[1], 2 * w[4]), mcu_pack16(2 * w[7], 0), r[0], r[1], r[3], r[2]};
        dw_channel(p, g, &k, scratch, pw, y + c);
    }
}

/* DEPTHWISE_CONV_2D that cannot run in place (its input is read later, or a patch writes into the
 * stage output), channel multiplier 1: straight from NHWC, padding skipped (the folded bias
 * already holds the padded taps' Z_in * w, so those are added as such). */
void mcu_depthwise_dsp(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y) {
    const int32_t C = p->c, taps = p->kh * p->kw;
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            int8_t *out = y + ((int32_t)oy * g->y_pitch + ox) * C;
            for (int32_t c = 0; c < C; c++) {
                const int8_t *w = p->weight + taps * c;
                const int32_t *r = p->dsp + 4 * c;
                int32_t acc = r[0];
                for (int ky = 0; ky < p->kh; ky++) {
                    int iy = oy * p->sh - g->pt + ky;
                    for (int kx = 0; kx < p->kw; kx++) {
                        int ix = ox * p->sw - g->pl + kx;
                        int inside = iy >= 0 && iy < g->h && ix >= 0 && ix < g->w;
                        acc += 2 * w[ky * p->kw + kx] * (inside ? x[((int32_t)iy * g->x_pitch + ix) * C + c] : p->zp_in);
                    }
                }
                out[c] = (int8_t)finish(acc, r[1], r[3], r[2], p->act_min, p->act_max, 0);
            }
        }
}
#else
typedef int mcu_kernels_dsp_unused; /* ISO C forbids an empty translation unit */
#endif

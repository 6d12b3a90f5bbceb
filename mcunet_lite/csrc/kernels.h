/* int8 kernels of the TFLite int8 contract (DESIGN.md section 4), bit-exact with mcunet_lite.int8ref.
 *
 * Activations are NHWC int8 (float32 only around QUANTIZE / DEQUANTIZE), weights OHWI int8 with
 * one scale per output channel, biases int32 with the input zero point folded in at emit time:
 * bias[c] = b[c] - Z_in * sum(w[c]), so a kernel sums w * x over raw int8 inputs and a padded
 * position holds Z_in (it adds w * Z_in, which the folded bias cancels), exactly as the contract's
 * sum(w * (x - Z_in)) + b.
 *
 * Each kernel has a portable C version written for reading (kernels.c). Convolutions also have
 * Cortex-M DSP versions (kernels_dsp.c: SMLAD on sign-extended pairs), chosen at compile time by
 * MCU_DSP (default: on where the compiler targets the DSP extension).
 *
 * A call's geometry (mcu_geom_t) is separate from an op's constants so that patch-based inference
 * (MCUNetV2 section 3.1) runs the same kernels on each patch's region: rows of a stored region are
 * `pitch` pixels apart, and a border patch gets padding only where its region leaves the tensor.
 */
#ifndef MCU_KERNELS_H
#define MCU_KERNELS_H

#include <stdint.h>

#ifndef MCU_DSP
#if defined(__ARM_FEATURE_DSP)
#define MCU_DSP 1
#else
#define MCU_DSP 0
#endif
#endif

/* One call of a sliding-window op: an h x w input region whose rows are x_pitch pixels apart,
 * padded by (pt, pb, pl, pr), gives oh x ow outputs whose rows are y_pitch pixels apart; a fused
 * residual's rows are r_pitch pixels apart. */
typedef struct {
    int16_t h, w, x_pitch;
    int16_t oh, ow, y_pitch, r_pitch;
    int16_t pt, pb, pl, pr;
} mcu_geom_t;

/* `rows` rows of `len` elements each; consecutive rows of x, x2 and y are the pitches apart. */
typedef struct {
    int32_t rows, len, x_pitch, x2_pitch, y_pitch;
} mcu_rows_t;

/* ADD (TFLite reference integer add): both operands shifted left 20 bits, rescaled to the common
 * scale 2 * max(S_a, S_b) by (m, shift), summed, requantized by (mo, so). `fast`: every shift is in
 * [-31, 0], so the DSP kernels may requantize in 32 bits (kernels_dsp.c). */
typedef struct {
    int32_t za, ma, sa, zb, mb, sb, mo, so, zo, lo, hi, fast;
} mcu_add_t;

/* CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (a 1x1 conv on a 1x1 map). */
typedef struct {
    int16_t c, oc, kh, kw, sh, sw, groups;
    int16_t zp_in, zp_out, act_min, act_max;
    const int8_t *weight;        /* OHWI (oc, kh, kw, c / groups); see kernels_dsp.c for DSP builds */
    const int32_t *bias;         /* b - Z_in * sum(w), per output channel (portable kernels) */
    const int32_t *m0;           /* QuantizeMultiplier mantissa, per output channel (portable kernels) */
    const int8_t *shift;         /* and exponent (portable kernels) */
    const int32_t *dsp;          /* DSP builds, where the DSP kernel runs the layer: per output channel
                                    {2 bias, M0, 2^(e-1) + Z_out * 2^e, e = -shift} (kernels_dsp.c); else 0 */
    const mcu_add_t *fuse;       /* a residual ADD fused into the conv (TinyEngine), or 0 */
} mcu_conv_t;

typedef struct {
    int16_t c, kh, kw, sh, sw, lo, hi;
} mcu_pool_t;

typedef struct {
    int32_t dims[4];             /* input shape, left-padded with 1s to rank 4 */
    uint8_t reduce[4];           /* 1 for each reduced axis */
    int32_t zi, zo, m0, shift;   /* the 1/count factor is folded into (m0, shift) at emit time */
} mcu_mean_t;

typedef struct {
    int32_t rows, n, m0, left, diff_min;
} mcu_softmax_t;

typedef struct {
    int16_t c, cb, ca;           /* channels, channel padding before and after */
    int16_t value;               /* the output zero point */
} mcu_pad_t;

typedef struct {
    int32_t dims[4], perm[4];    /* input shape (rank 4) and the output's source axes */
    int32_t itemsize;
} mcu_transpose_t;

typedef struct {
    int16_t c, w, oh, ow;
    const int16_t *rows, *cols;  /* source row / column of every output row / column */
} mcu_resize_t;

/* Requantization helpers (fixedpoint.py). */
int64_t mcu_srdhm(int64_t a, int64_t b);
int64_t mcu_rdbpot(int64_t x, int exponent);
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift);
int8_t mcu_add_one(const mcu_add_t *p, int32_t a, int32_t b);

/* Kernels. Convolution inputs and outputs may not share bytes except where stated. */
void mcu_conv2d(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res,
                int8_t *scratch);
void mcu_conv2d_ref(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res);
void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, int8_t *scratch);
void mcu_depthwise_inplace_ref(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
                               int8_t *scratch);
void mcu_avgpool(const mcu_pool_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y);
void mcu_maxpool(const mcu_pool_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y);
void mcu_add(const mcu_add_t *p, const mcu_rows_t *r, const int8_t *a, const int8_t *b, int8_t *y);
void mcu_mean(const mcu_mean_t *p, const int8_t *x, int8_t *y);
void mcu_softmax(const mcu_softmax_t *p, const int8_t *x, int8_t *y);
void mcu_pad(const mcu_pad_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y);
void mcu_transpose(const mcu_transpose_t *p, const void *x, void *y);
void mcu_resize_nearest(const mcu_resize_t *p, const int8_t *x, int8_t *y);
void mcu_quantize(float scale, int32_t zp, const mcu_rows_t *r, const float *x, int8_t *y);
void mcu_dequantize(float scale, int32_t zp, const mcu_rows_t *r, const int8_t *x, float *y);
void mcu_copy_rows(const mcu_rows_t *r, const void *x, void *y);

#if MCU_DSP
void mcu_conv2d_dsp(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res,
                    int8_t *scratch);
void mcu_depthwise_inplace_dsp(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
                               int8_t *scratch);
void mcu_depthwise_dsp(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y);
int8_t mcu_add_one_dsp(const mcu_add_t *p, int32_t a, int32_t b);
#endif

#endif

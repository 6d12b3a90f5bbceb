/* Portable int8 kernels: plain C loops, one per op, bit-exact with mcunet_lite.int8ref.
 *
 * Fixed-point arithmetic is done in int64 exactly as fixedpoint.py does it on numpy int64, so the
 * two agree on every input, including the corner cases a 32-bit version would have to argue about.
 */
#include "kernels.h"

#include <string.h>

#define MCU_INT32_MIN (-2147483647LL - 1)
#define MCU_INT32_MAX 2147483647LL

static int32_t clamp(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* ------------------------------------------------------------------------------ fixed point */

/* SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31 truncated, nudge 2^30 or 1 - 2^30. */
int64_t mcu_srdhm(int64_t a, int64_t b) {
    if (a == MCU_INT32_MIN && b == MCU_INT32_MIN) return MCU_INT32_MAX;
    int64_t ab = a * b;
    int64_t v = ab + (ab >= 0 ? (1LL << 30) : 1 - (1LL << 30));
    return v >= 0 ? v >> 31 : -((-v) >> 31);
}

/* RoundingDivideByPOT: x / 2^exponent rounded to nearest, halves away from zero. */
int64_t mcu_rdbpot(int64_t x, int exponent) {
    int64_t mask = ((int64_t)1 << exponent) - 1;
    int64_t remainder = x & mask, threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + (remainder > threshold);
}

/* MultiplyByQuantizedMultiplier: an exact left shift for shift > 0, a rounding right shift after. */
int64_t mcu_mbqm(int64_t x, int32_t m0, int32_t shift) {
    int64_t left = shift > 0 ? ((int64_t)1 << shift) : 1;
    return mcu_rdbpot(mcu_srdhm(x * left, m0), shift > 0 ? 0 : -shift);
}

/* One element of ADD: rescale both operands to the common scale, sum, requantize. */
int8_t mcu_add_one(const mcu_add_t *p, int32_t a, int32_t b) {
    int64_t xa = mcu_mbqm((int64_t)(a - p->za) * (1 << 20), p->ma, p->sa);
    int64_t xb = mcu_mbqm((int64_t)(b - p->zb) * (1 << 20), p->mb, p->sb);
    return (int8_t)clamp(mcu_mbqm(xa + xb, p->mo, p->so) + p->zo, p->lo, p->hi);
}

/* Conv / fully connected output: clamp(Z_out + MBQM(acc, M0_c, shift_c), act_min, act_max). */
static int8_t requant(const mcu_conv_t *p, int32_t acc, int c) {
    return (int8_t)clamp(mcu_mbqm(acc, p->m0[c], p->shift[c]) + p->zp_out, p->act_min, p->act_max);
}

/* ----------------------------------------------------------------------------- convolution */

/* CONV_2D with groups (DEPTHWISE_CONV_2D is groups == c): every output is its channel's folded bias
 * plus w * x over the window, a padded position reading Z_in. With `res` (a fused residual ADD),
 * the result is ADD(res, conv) written at y; y may be res itself, each output read before written. */
void mcu_conv2d_ref(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res) {
    int cg = p->c / p->groups, og = p->oc / p->groups;
    for (int oy = 0; oy < g->oh; oy++) {
        for (int ox = 0; ox < g->ow; ox++) {
            int8_t *out = y + ((int32_t)oy * g->y_pitch + ox) * p->oc;
            const int8_t *r = res ? res + ((int32_t)oy * g->r_pitch + ox) * p->oc : 0;
            for (int o = 0; o < p->oc; o++) {
                const int8_t *w = p->weight + (int32_t)o * p->kh * p->kw * cg;
                int32_t acc = p->bias[o];
                for (int ky = 0; ky < p->kh; ky++) {
                    int iy = oy * p->sh - g->pt + ky;
                    for (int kx = 0; kx < p->kw; kx++, w += cg) {
                        int ix = ox * p->sw - g->pl + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) {
                            for (int i = 0; i < cg; i++) acc += w[i] * p->zp_in;
                            continue;
                        }
                        const int8_t *xp = x + ((int32_t)iy * g->x_pitch + ix) * p->c + (o / og) * cg;
                        for (int i = 0; i < cg; i++) acc += w[i] * xp[i];
                    }
                }
                int8_t v = requant(p, acc, o);
                out[o] = p->fuse ? mcu_add_one(p->fuse, r[o], v) : v;
            }
        }
    }
}

/* Channel c of an h x w region into the middle of a padded plane whose border holds Z_in. */
static void plane_from_channel(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int c, int8_t *plane) {
    int pw = g->w + g->pl + g->pr;
    for (int iy = 0; iy < g->h; iy++) {
        const int8_t *src = x + (int32_t)iy * g->x_pitch * p->c + c;
        int8_t *dst = plane + (int32_t)(iy + g->pt) * pw + g->pl;
        for (int ix = 0; ix < g->w; ix++) dst[ix] = src[(int32_t)ix * p->c];
    }
}

/* In-place DEPTHWISE_CONV_2D (MCUNet section 3.2): channel by channel, input channel c is copied
 * into a padded one-channel scratch plane, then output channel c is written over the input. In
 * NHWC every byte of channel c of y lands on a byte of channel c of x, so no later channel is
 * overwritten before it is read (y may start at or before x; both have p->c channels). */
void mcu_depthwise_inplace_ref(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y,
                               int8_t *scratch) {
    int pw = g->w + g->pl + g->pr, ph = g->h + g->pt + g->pb;
    memset(scratch, p->zp_in, (size_t)pw * ph);
    for (int c = 0; c < p->c; c++) {
        plane_from_channel(p, g, x, c, scratch);
        const int8_t *w = p->weight + c * p->kh * p->kw;
        for (int oy = 0; oy < g->oh; oy++) {
            for (int ox = 0; ox < g->ow; ox++) {
                const int8_t *win = scratch + (int32_t)oy * p->sh * pw + ox * p->sw;
                int32_t acc = p->bias[c];
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) acc += w[ky * p->kw + kx] * win[ky * pw + kx];
                y[((int32_t)oy * g->y_pitch + ox) * p->c + c] = requant(p, acc, c);
            }
        }
    }
}

void mcu_conv2d(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, const int8_t *res,
                int8_t *scratch) {
#if MCU_DSP
    mcu_conv2d_dsp(p, g, x, y, res, scratch);
#else
    (void)scratch;
    mcu_conv2d_ref(p, g, x, y, res);
#endif
}

void mcu_depthwise_inplace(const mcu_conv_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y, int8_t *scratch) {
#if MCU_DSP
    mcu_depthwise_inplace_dsp(p, g, x, y, scratch);
#else
    mcu_depthwise_inplace_ref(p, g, x, y, scratch);
#endif
}

/* ---------------------------------------------------------------------------------- pooling */

/* AVERAGE_POOL_2D over the window's positions inside the input (padding excluded); the sum is
 * divided rounding halves away from zero, as the reference kernel does. */
void mcu_avgpool(const mcu_pool_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y) {
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            for (int c = 0; c < p->c; c++) {
                int32_t total = 0, count = 0;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        int iy = oy * p->sh - g->pt + ky, ix = ox * p->sw - g->pl + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                        total += x[((int32_t)iy * g->x_pitch + ix) * p->c + c];
                        count++;
                    }
                int32_t q = ((total < 0 ? -total : total) + count / 2) / count;
                y[((int32_t)oy * g->y_pitch + ox) * p->c + c] = (int8_t)clamp(total > 0 ? q : -q, p->lo, p->hi);
            }
}

/* MAX_POOL_2D over the window's positions inside the input, then the activation clamp. */
void mcu_maxpool(const mcu_pool_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y) {
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            for (int c = 0; c < p->c; c++) {
                int32_t m = -129;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        int iy = oy * p->sh - g->pt + ky, ix = ox * p->sw - g->pl + kx;
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                        int32_t v = x[((int32_t)iy * g->x_pitch + ix) * p->c + c];
                        m = v > m ? v : m;
                    }
                y[((int32_t)oy * g->y_pitch + ox) * p->c + c] = (int8_t)clamp(m, p->lo, p->hi);
            }
}

/* ----------------------------------------------------------------------------- elementwise */

/* ADD element by element, front to back; y may share bytes with a or b if it starts at or
 * before them (each element is read before the one written over it). */
void mcu_add(const mcu_add_t *p, const mcu_rows_t *r, const int8_t *a, const int8_t *b, int8_t *y) {
#if MCU_DSP
    int8_t (*one)(const mcu_add_t *, int32_t, int32_t) = p->fast ? mcu_add_one_dsp : mcu_add_one;
#else
    int8_t (*one)(const mcu_add_t *, int32_t, int32_t) = mcu_add_one;
#endif
    for (int32_t i = 0; i < r->rows; i++)
        for (int32_t j = 0; j < r->len; j++)
            y[i * r->y_pitch + j] = one(p, a[i * r->x_pitch + j], b[i * r->x2_pitch + j]);
}

/* C's round() for |v| < 2^31: halves away from zero (numpy rounds them to even). */
static int32_t round_half_away(float v) {
    int32_t t = (int32_t)v;  /* truncates */
    float d = v - (float)t;  /* exact */
    return d >= 0.5f ? t + 1 : d <= -0.5f ? t - 1 : t;
}

/* QUANTIZE float -> int8: round(x / S) + Z in float32, clamped. Floats in the arena may sit at any
 * byte offset: they are copied, not loaded through a float pointer (VLDR needs word alignment). */
void mcu_quantize(float scale, int32_t zp, const mcu_rows_t *r, const float *x, int8_t *y) {
    for (int32_t i = 0; i < r->rows; i++)
        for (int32_t j = 0; j < r->len; j++) {
            float v;
            memcpy(&v, (const char *)x + 4 * (i * r->x_pitch + j), 4);
            v /= scale;
            v = v > 1e9f ? 1e9f : v < -1e9f ? -1e9f : v;  /* beyond int8 either way */
            y[i * r->y_pitch + j] = (int8_t)clamp((int64_t)round_half_away(v) + zp, -128, 127);
        }
}

/* DEQUANTIZE int8 -> float32: S * (q - Z). The reference multiplies in double and rounds to
 * float32; a float32 scale times a 9-bit integer is exact in double, so one float32 multiply
 * (rounded once) gives the same bits. */
void mcu_dequantize(float scale, int32_t zp, const mcu_rows_t *r, const int8_t *x, float *y) {
    for (int32_t i = 0; i < r->rows; i++)
        for (int32_t j = 0; j < r->len; j++) {
            float v = scale * (float)(x[i * r->x_pitch + j] - zp);
            memcpy((char *)y + 4 * (i * r->y_pitch + j), &v, 4);
        }
}

void mcu_copy_rows(const mcu_rows_t *r, const void *x, void *y) {
    for (int32_t i = 0; i < r->rows; i++)
        memcpy((char *)y + i * r->y_pitch, (const char *)x + i * r->x_pitch, (size_t)r->len);
}

/* --------------------------------------------------------------------------------- reduction */

/* MEAN (QuantizedMeanOrSum): sum(x) - Z_in * count over the reduced axes, one requantization. */
void mcu_mean(const mcu_mean_t *p, const int8_t *x, int8_t *y) {
    int32_t stride[4], count = 1, n_out = 1;
    for (int a = 3, s = 1; a >= 0; s *= p->dims[a], a--) stride[a] = s;
    for (int a = 0; a < 4; a++) {
        if (p->reduce[a]) count *= p->dims[a]; else n_out *= p->dims[a];
    }
    for (int32_t o = 0; o < n_out; o++) {
        int32_t base = 0, rest = o;
        for (int a = 3; a >= 0; a--)  /* the kept axes of output o, innermost last */
            if (!p->reduce[a]) { base += (rest % p->dims[a]) * stride[a]; rest /= p->dims[a]; }
        int64_t total = 0;
        for (int32_t k = 0; k < count; k++) {
            int32_t off = base, rk = k;
            for (int a = 3; a >= 0; a--)
                if (p->reduce[a]) { off += (rk % p->dims[a]) * stride[a]; rk /= p->dims[a]; }
            total += x[off];
        }
        total -= (int64_t)p->zi * count;
        y[o] = (int8_t)clamp(mcu_mbqm(total, p->m0, p->shift) + p->zo, -128, 127);
    }
}

/* ------------------------------------------------------------------------------------ softmax */

static int64_t sat_shift_left(int64_t x, int e) {
    int64_t v = x * ((int64_t)1 << e);
    return v < MCU_INT32_MIN ? MCU_INT32_MIN : v > MCU_INT32_MAX ? MCU_INT32_MAX : v;
}

/* exp(a) for a in [-1/4, 0), Q0.31: gemmlowp's Taylor series around -1/8. */
static int64_t exp_quarter(int64_t a) {
    const int64_t constant_term = 1895147668, one_third = 715827883;
    int64_t x = a + (1 << 28);
    int64_t x2 = mcu_srdhm(x, x), x3 = mcu_srdhm(x2, x);
    int64_t x4_over_4 = mcu_rdbpot(mcu_srdhm(x2, x2), 2);
    int64_t poly = mcu_rdbpot(mcu_srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + mcu_srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, result Q0.31 (gemmlowp exp_on_negative_values with 5 integer bits). */
static int64_t exp_negative_q5(int64_t a) {
    static const int64_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int frac_bits = 26;
    const int64_t quarter = (int64_t)1 << (frac_bits - 2);
    int64_t a_mod = (a & (quarter - 1)) - quarter;
    int64_t result = exp_quarter(sat_shift_left(a_mod, 5));
    int64_t remainder = a_mod - a;
    for (int k = -2; k <= 4; k++)
        if (remainder & ((int64_t)1 << (frac_bits + k))) result = mcu_srdhm(result, barrel[k + 2]);
    return a == 0 ? MCU_INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31: three Newton-Raphson steps (gemmlowp). */
static int64_t one_over_one_plus(int64_t a) {
    int64_t s = a + MCU_INT32_MAX, v = s + (s >= 0 ? 1 : -1);
    int64_t half_denominator = v >= 0 ? v / 2 : -((-v) / 2);
    int64_t x = 1515870810 + mcu_srdhm(half_denominator, -1010580540);
    for (int i = 0; i < 3; i++) {
        int64_t one_minus = (1 << 29) - mcu_srdhm(half_denominator, x);
        x = x + sat_shift_left(mcu_srdhm(x, one_minus), 2);
    }
    return sat_shift_left(x, 1);
}

/* SOFTMAX over rows of n, int8 out with scale 1/256 and zero point -128 (TFLite reference): the
 * differences to the row maximum in Q5.26, exponentiated, summed in Q12.19, times the reciprocal. */
void mcu_softmax(const mcu_softmax_t *p, const int8_t *x, int8_t *y) {
    for (int32_t r = 0; r < p->rows; r++, x += p->n, y += p->n) {
        int32_t mx = -128;
        for (int32_t i = 0; i < p->n; i++) mx = x[i] > mx ? x[i] : mx;
        int64_t total = 0;
        for (int32_t i = 0; i < p->n; i++) {
            int32_t diff = x[i] - mx;
            if (diff >= p->diff_min)
                total += mcu_rdbpot(exp_negative_q5(mcu_srdhm((int64_t)diff * ((int64_t)1 << p->left), p->m0)), 12);
        }
        int headroom = 32;
        for (int64_t t = total; t > 0; t >>= 1) headroom--;
        int64_t recip = one_over_one_plus(total * ((int64_t)1 << headroom) - ((int64_t)1 << 31));
        for (int32_t i = 0; i < p->n; i++) {
            int32_t diff = x[i] - mx;
            if (diff < p->diff_min) { y[i] = -128; continue; }
            int64_t e = exp_negative_q5(mcu_srdhm((int64_t)diff * ((int64_t)1 << p->left), p->m0));
            y[i] = (int8_t)clamp(mcu_rdbpot(mcu_srdhm(recip, e), 12 - headroom + 31 - 8) - 128, -128, 127);
        }
    }
}

/* ---------------------------------------------------------------------------- data movement */

/* PAD with the output zero point: H and W by the geometry's pads, C by (cb, ca); whole rows are
 * filled or copied at once where the channels are not padded. */
void mcu_pad(const mcu_pad_t *p, const mcu_geom_t *g, const int8_t *x, int8_t *y) {
    int oc = p->c + p->cb + p->ca;
    for (int oy = 0; oy < g->oh; oy++) {
        int8_t *out = y + (int32_t)oy * g->y_pitch * oc;
        int iy = oy - g->pt;
        if (iy < 0 || iy >= g->h) {
            memset(out, p->value, (size_t)g->ow * oc);
            continue;
        }
        const int8_t *in = x + (int32_t)iy * g->x_pitch * p->c;
        memset(out, p->value, (size_t)g->pl * oc);
        if (!p->cb && !p->ca) {
            memcpy(out + g->pl * oc, in, (size_t)g->w * p->c);
        } else {
            for (int ix = 0; ix < g->w; ix++) {
                int8_t *o = out + (g->pl + ix) * oc;
                memset(o, p->value, (size_t)p->cb);
                memcpy(o + p->cb, in + ix * p->c, (size_t)p->c);
                memset(o + p->cb + p->c, p->value, (size_t)p->ca);
            }
        }
        memset(out + (g->pl + g->w) * oc, p->value, (size_t)(g->ow - g->pl - g->w) * oc);
    }
}

/* TRANSPOSE of a rank-4 tensor: output axis a runs over input axis perm[a]. */
void mcu_transpose(const mcu_transpose_t *p, const void *x, void *y) {
    int32_t stride[4], od[4], idx[4] = {0, 0, 0, 0};
    for (int a = 3, s = 1; a >= 0; s *= p->dims[a], a--) stride[a] = s;
    for (int a = 0; a < 4; a++) od[a] = p->dims[p->perm[a]];
    char *out = (char *)y;
    for (idx[0] = 0; idx[0] < od[0]; idx[0]++)
        for (idx[1] = 0; idx[1] < od[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < od[2]; idx[2]++)
                for (idx[3] = 0; idx[3] < od[3]; idx[3]++, out += p->itemsize) {
                    int32_t off = 0;
                    for (int a = 0; a < 4; a++) off += idx[a] * stride[p->perm[a]];
                    memcpy(out, (const char *)x + off * p->itemsize, (size_t)p->itemsize);
                }
}

/* RESIZE_NEAREST_NEIGHBOR: source rows and columns precomputed at emit time (float32, as TFLite). */
void mcu_resize_nearest(const mcu_resize_t *p, const int8_t *x, int8_t *y) {
    for (int oy = 0; oy < p->oh; oy++)
        for (int ox = 0; ox < p->ow; ox++, y += p->c)
            memcpy(y, x + ((int32_t)p->rows[oy] * p->w + p->cols[ox]) * p->c, (size_t)p->c);
}

/* tanh, σ and e^x (x ≤ 0) over an array, vectorised, for the kernels that compute a site's
 * maps inside their own
 * pass (hyper_native_site_forward.c): there the values come a few dozen at a time, between
 * the projection and the mixing, and scalar libm calls (tens of nanoseconds each) would cost
 * more than the pass saves; torch's own vectorised tanh cannot be called from here.
 *
 * float: |x| < 0.625 by an odd polynomial, x·(1 + x²·g(x²)) with g of degree 5, fitted by
 * least squares to tanh(x)/x on that interval (relative error 1.4e-9, below float's rounding);
 * beyond, (1 - u)/(1 + u) with u = e^(-2|x|) (no cancellation: u < 0.29), e^z as 2^k·p(r),
 * z = k·ln 2 + r with |r| ≤ ln 2 / 2 and p the degree-7 Taylor polynomial (relative error
 * 5e-9). So every value is within a few float roundings of tanh (tests compare with torch's).
 * σ(x) = 1/(1 + u) for x ≥ 0, u/(1 + u) below, with u = e^(-|x|) by the same e^z.
 * double: libm's, one call a value -- only the tests run float64.
 *
 * Built with hyper_native.c (hyper_native.py); GCC/Clang vector extensions, lowered to the
 * machine's SIMD by -march=native.
 */
#include <math.h>

typedef float vf __attribute__((vector_size(64), aligned(4), may_alias));
typedef int vi __attribute__((vector_size(64), aligned(4), may_alias));
#define LANES_F 16

static inline vf select_f(vi mask, vf yes, vf no) {
    return (vf)(((vi)yes & mask) | ((vi)no & ~mask));
}

/* e^z for z in [-87, 0], lane by lane. */
static inline vf exp_nonpositive(vf z) {
    z = select_f(z < -87.0f, (vf){0} - 87.0f, z);
    const vf shifter = (vf){0} + 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    const vf k = (z * 1.44269504088896341f + shifter) - shifter;
    const vf r = (z - k * 0.693145751953125f) - k * 1.42860682030941723212e-6f;
    vf p = (vf){0} + (1.0f / 5040);
    p = p * r + (1.0f / 720);
    p = p * r + (1.0f / 120);
    p = p * r + (1.0f / 24);
    p = p * r + (1.0f / 6);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const vi scale = (__builtin_convertvector(k, vi) + 127) << 23; /* 2^k, k ≥ -126 */
    return p * (vf)scale;
}

static inline vf tanh_lanes(vf x) {
    const vi sign = (vi)x & ((vi){0} + (int)0x80000000);
    const vf a = (vf)((vi)x & ~((vi){0} + (int)0x80000000));
    const vf s = a * a;
    vf g = (vf){0} + 0.001956183069783593f;
    g = g * s - 0.007980781714718227f;
    g = g * s + 0.021625225142240596f;
    g = g * s - 0.05393400836548145f;
    g = g * s + 0.13333116830057873f;
    g = g * s - 0.33333328995611133f;
    const vf small = a + a * (s * g);
    const vf u = exp_nonpositive(-2.0f * a);
    const vf large = (1.0f - u) / (1.0f + u);
    return (vf)((vi)select_f(a < 0.625f, small, large) | sign);
}

void tanh_values_f64(long m, const double *x, double *out) {
    for (long k = 0; k < m; k++) out[k] = tanh(x[k]);
}

static inline vf sigmoid_lanes(vf x) {
    const vf a = (vf)((vi)x & ~((vi){0} + (int)0x80000000));
    const vf u = exp_nonpositive(-a), inverse = 1.0f / (1.0f + u);
    return select_f(x >= 0.0f, inverse, u * inverse);
}

/* The lanes of `f` over x[0, m) into out (out may be x), the tail through a padded vector. */
#define VALUES(name, lanes_f)                                                                  \
void name##_values_f32(long m, const float *x, float *out) {                                  \
    long k = 0;                                                                               \
    for (; k + LANES_F <= m; k += LANES_F) *(vf *)(out + k) = lanes_f(*(const vf *)(x + k));   \
    if (k < m) {                                                                              \
        float pad[LANES_F] = {0};                                                             \
        for (long e = k; e < m; e++) pad[e - k] = x[e];                                       \
        const vf t = lanes_f(*(const vf *)pad);                                               \
        for (long e = k; e < m; e++) out[e] = t[e - k];                                       \
    }                                                                                         \
}
VALUES(tanh, tanh_lanes)
VALUES(sigmoid, sigmoid_lanes)
VALUES(exp_nonpositive, exp_nonpositive)

void sigmoid_values_f64(long m, const double *x, double *out) {
    for (long k = 0; k < m; k++) out[k] = 1 / (1 + exp(-x[k]));
}

/* e^x for x ≤ 0 (a softmax's shifted logits). */
void exp_nonpositive_values_f64(long m, const double *x, double *out) {
    for (long k = 0; k < m; k++) out[k] = exp(x[k]);
}

/* The stream mixing of a hyper-connection site, one pass over the streams per kernel.
 *
 * Built on first use by hyper_native.py (the system C compiler, -O3 -march=native -fopenmp);
 * hyper_fused.py calls it and keeps torch's bmm path where it cannot be built. Layouts, all
 * contiguous: streams h (B, n, d); per-token weights pre (B, n), res (B, n, n) with rows =
 * output stream, post (B, n) -- or one copy shared by every token, which the caller marks by
 * a token stride of 0. Per-token weight gradients (B, n) and (B, n, n) are written per token;
 * the caller sums them over the tokens for shared weights. Tokens are split over OpenMP
 * threads (the same runtime torch uses, libgomp.so.1, so the threads are torch's); each token's
 * n·d streams stay in L1 while a kernel works on them, so every stream is read once per pass,
 * where the bmm path reads them once per matrix product.
 */
#include <stddef.h>

#define KERNELS(T, S)                                                                         \
/* x_b = Σ_j pre_bj h_bj (B, d) and mixed_bi = Σ_j res_bij h_bj (B, n, d). */              \
void width_forward_##S(long B, long n, long d, const T *restrict h, const T *restrict pre,   \
                       long pre_stride, const T *restrict res, long res_stride,                \
                       T *restrict x, T *restrict mixed, int threads) {                        \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long b = 0; b < B; b++) {                                                            \
        const T *hb = h + b * n * d, *p = pre + b * pre_stride, *r = res + b * res_stride;    \
        T *xb = x + b * d, *mb = mixed + b * n * d;                                           \
        _Pragma("omp simd") for (long k = 0; k < d; k++) xb[k] = p[0] * hb[k];                \
        for (long j = 1; j < n; j++) {                                                        \
            const T pj = p[j], *hj = hb + j * d;                                              \
            _Pragma("omp simd") for (long k = 0; k < d; k++) xb[k] += pj * hj[k];             \
        }                                                                                     \
        for (long i = 0; i < n; i++) {                                                        \
            const T *ri = r + i * n;                                                          \
            T *mi = mb + i * d;                                                               \
            _Pragma("omp simd") for (long k = 0; k < d; k++) mi[k] = ri[0] * hb[k];           \
            for (long j = 1; j < n; j++) {                                                    \
                const T rij = ri[j], *hj = hb + j * d;                                        \
                _Pragma("omp simd") for (long k = 0; k < d; k++) mi[k] += rij * hj[k];        \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
/* ∂h_bj = Σ_i res_bij ∂mixed_bi + pre_bj ∂x_b, ∂pre_bj = ∂x_b·h_bj, ∂res_bij = ∂mixed_bi·h_bj. */ \
void width_backward_##S(long B, long n, long d, const T *restrict h, const T *restrict pre,  \
                        long pre_stride, const T *restrict res, long res_stride,               \
                        const T *restrict grad_x, const T *restrict grad_mixed,                \
                        T *restrict grad_h, T *restrict grad_pre, T *restrict grad_res,        \
                        int threads) {                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long b = 0; b < B; b++) {                                                            \
        const T *hb = h + b * n * d, *p = pre + b * pre_stride, *r = res + b * res_stride;    \
        const T *gx = grad_x + b * d, *gm = grad_mixed + b * n * d;                           \
        T *gh = grad_h + b * n * d;                                                           \
        for (long j = 0; j < n; j++) {                                                        \
            const T *hj = hb + j * d, pj = p[j];                                              \
            T *ghj = gh + j * d, dot = 0;                                                     \
            _Pragma("omp simd reduction(+:dot)")                                              \
            for (long k = 0; k < d; k++) { ghj[k] = pj * gx[k]; dot += gx[k] * hj[k]; }       \
            grad_pre[b * n + j] = dot;                                                        \
            for (long i = 0; i < n; i++) {                                                    \
                const T *gi = gm + i * d, rij = r[i * n + j];                                 \
                T mixed_dot = 0;                                                              \
                _Pragma("omp simd reduction(+:mixed_dot)")                                    \
                for (long k = 0; k < d; k++) { ghj[k] += rij * gi[k]; mixed_dot += gi[k] * hj[k]; } \
                grad_res[(b * n + i) * n + j] = mixed_dot;                                    \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
/* out_bi = mixed_bi + post_bi y_b (B, n, d). */                                            \
void depth_forward_##S(long B, long n, long d, const T *restrict mixed, const T *restrict post, \
                       long post_stride, const T *restrict y, T *restrict out, int threads) {  \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long b = 0; b < B; b++) {                                                            \
        const T *q = post + b * post_stride, *yb = y + b * d;                                 \
        for (long i = 0; i < n; i++) {                                                        \
            const T *mi = mixed + (b * n + i) * d, qi = q[i];                                 \
            T *oi = out + (b * n + i) * d;                                                    \
            _Pragma("omp simd") for (long k = 0; k < d; k++) oi[k] = mi[k] + qi * yb[k];      \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
/* ∂y_b = Σ_i post_bi ∂out_bi and ∂post_bi = ∂out_bi·y_b (∂mixed is ∂out itself). */        \
void depth_backward_##S(long B, long n, long d, const T *restrict grad, const T *restrict post, \
                        long post_stride, const T *restrict y, T *restrict grad_y,             \
                        T *restrict grad_post, int threads) {                                  \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long b = 0; b < B; b++) {                                                            \
        const T *q = post + b * post_stride, *yb = y + b * d, *gb = grad + b * n * d;         \
        T *gy = grad_y + b * d;                                                               \
        _Pragma("omp simd") for (long k = 0; k < d; k++) gy[k] = 0;                           \
        for (long i = 0; i < n; i++) {                                                        \
            const T *gi = gb + i * d, qi = q[i];                                              \
            T dot = 0;                                                                        \
            _Pragma("omp simd reduction(+:dot)")                                              \
            for (long k = 0; k < d; k++) { gy[k] += qi * gi[k]; dot += gi[k] * yb[k]; }       \
            grad_post[b * n + i] = dot;                                                       \
        }                                                                                     \
    }                                                                                         \
}

KERNELS(float, f32)
KERNELS(double, f64)

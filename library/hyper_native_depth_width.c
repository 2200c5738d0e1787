/* One site's depth connection and the next site's width connection in one pass over the
 * streams, forward and backward, where the two kernels of hyper_native.c make two:
 *
 *     h = mixed + post ⊗ y             (site k's depth connection; never stored)
 *     x' = pre'·h,  mixed' = res'·h     (site k+1's width connection)
 *
 * Forward, each token's h is formed chunk by chunk in a local array and mixed at once: the
 * pass reads mixed and y and writes x' and mixed', where the two kernels also write h and read
 * it back. Backward, from ∂x' and ∂mixed': ∂h = res'ᵀ·∂mixed' + pre'ᵀ ⊗ ∂x' is ∂mixed itself
 * (the depth connection passes it through), ∂y = postᵀ·∂h and ∂post = ∂h·y come from it while
 * it is in registers, and ∂pre' = ∂x'·h, ∂res' = ∂mixed'·hᵀ from h recomputed -- one pass that
 * reads mixed, y, ∂x', ∂mixed' and writes ∂mixed, ∂y, where the two kernels also read h and
 * read ∂h back. The backward's per-token work is hyper_native_mixing.c's, vectorised with the
 * width connection's own backward.
 *
 * Layouts as hyper_native.c's: contiguous streams (B, n, d), weights (P, n) or (P, n, n) with a
 * token stride of 0 when one copy is shared; per-token weight gradients come back per token,
 * (B, n) and (B, n, n), for the caller to sum. Built with hyper_native.c (hyper_native.py);
 * hyper_fused.depth_width calls it. The file includes itself once per dtype (T, S).
 */
#ifndef T
#include <stddef.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define COLUMNS 256 /* a chunk of h: n rows of COLUMNS numbers stay in L1 */

#define T float
#define S f32
#include "hyper_native_depth_width.c"
#undef T
#undef S

#define T double
#define S f64
#include "hyper_native_depth_width.c"

#else /* the kernels, for one dtype T */

void NAME(stream_copy)(T *restrict dst, const T *restrict src, long m); /* hyper_native.c */
void stream_fence(void);

/* h's columns [k0, k0 + m) of token b into `out` (n, COLUMNS). */
static inline void NAME(streams)(long n, long d, long k0, long m, const T *restrict mixed,
                                 const T *restrict q, const T *restrict yb, T *restrict out) {
    for (long j = 0; j < n; j++) {
        const T *mj = mixed + j * d + k0, qj = q[j];
        T *oj = out + j * COLUMNS;
        _Pragma("omp simd") for (long k = 0; k < m; k++) oj[k] = mj[k] + qj * yb[k0 + k];
    }
}

/* x'_b = Σ_j pre_bj h_bj (B, d) and mixed'_bi = Σ_j res_bij h_bj (B, n, d), h = mixed + post ⊗ y. */
void NAME(depth_width_forward)(long B, long n, long d, const T *restrict mixed,
                               const T *restrict post, long post_stride, const T *restrict y,
                               const T *restrict pre, long pre_stride, const T *restrict res,
                               long res_stride, T *restrict x, T *restrict mixed_out,
                               int threads) {
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b = 0; b < B; b++) {
        const T *p = pre + b * pre_stride, *r = res + b * res_stride;
        T h[n * COLUMNS];
        for (long k0 = 0; k0 < d; k0 += COLUMNS) {
            const long m = d - k0 < COLUMNS ? d - k0 : COLUMNS;
            NAME(streams)(n, d, k0, m, mixed + b * n * d, post + b * post_stride, y + b * d, h);
            T *xb = x + b * d + k0;
            _Pragma("omp simd") for (long k = 0; k < m; k++) xb[k] = p[0] * h[k];
            for (long j = 1; j < n; j++) {
                const T pj = p[j], *hj = h + j * COLUMNS;
                _Pragma("omp simd") for (long k = 0; k < m; k++) xb[k] += pj * hj[k];
            }
            for (long i = 0; i < n; i++) {
                const T *ri = r + i * n;
                T mi[COLUMNS]; /* formed here, then streamed out */
                _Pragma("omp simd") for (long k = 0; k < m; k++) mi[k] = ri[0] * h[k];
                for (long j = 1; j < n; j++) {
                    const T rij = ri[j], *hj = h + j * COLUMNS;
                    _Pragma("omp simd") for (long k = 0; k < m; k++) mi[k] += rij * hj[k];
                }
                NAME(stream_copy)(mixed_out + (b * n + i) * d + k0, mi, m);
            }
        }
        stream_fence();
    }
}

void NAME(depth_width_backward_token)(long n, long d, const T *restrict mb,
                                      const T *restrict q, const T *restrict yb,
                                      const T *restrict p, const T *restrict r,
                                      const T *restrict gx, const T *restrict gm,
                                      T *restrict gh, T *restrict gy, T *restrict gq,
                                      T *restrict grad_pre, T *restrict grad_res);

/* From ∂x' (B, d) and ∂mixed' (B, n, d): ∂mixed = ∂h (B, n, d), ∂y (B, d), and per token
 * ∂post (B, n), ∂pre' (B, n), ∂res' (B, n, n); each token's in hyper_native_mixing.c. */
void NAME(depth_width_backward)(long B, long n, long d, const T *restrict mixed,
                                const T *restrict post, long post_stride,
                                const T *restrict y, const T *restrict pre, long pre_stride,
                                const T *restrict res, long res_stride,
                                const T *restrict grad_x, const T *restrict grad_mixed_out,
                                T *restrict grad_mixed, T *restrict grad_y,
                                T *restrict grad_post, T *restrict grad_pre,
                                T *restrict grad_res, int threads) {
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b = 0; b < B; b++)
        NAME(depth_width_backward_token)(n, d, mixed + b * n * d, post + b * post_stride,
                                         y + b * d, pre + b * pre_stride, res + b * res_stride,
                                         grad_x + b * d, grad_mixed_out + b * n * d,
                                         grad_mixed + b * n * d, grad_y + b * d,
                                         grad_post + b * n, grad_pre + b * n,
                                         grad_res + b * n * n);
}

#endif

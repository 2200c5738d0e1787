/* The stream mixing of a hyper-connection site, one pass over the streams per kernel, and mHC's
 * Sinkhorn steps (below).
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
#include <math.h>
#include <omp.h>
#include <stddef.h>

#define CHUNK 256  /* tokens per inner loop of the Sinkhorn kernels: two stack arrays of it */

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
/* ∂h_bj = Σ_i res_bij ∂mixed_bi + pre_bj ∂x_b; ∂pre_bj = ∂x_b·h_bj; ∂res_bij = ∂mixed_bi·h_bj */ \
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
                for (long k = 0; k < d; k++) {                                                \
                    ghj[k] += rij * gi[k];                                                    \
                    mixed_dot += gi[k] * hj[k];                                               \
                }                                                                             \
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

/* This thread's share [b0, b1) of B tokens, in blocks of whole cache lines. */
static void token_block(long B, long *b0, long *b1) {
    const long threads = omp_get_num_threads(), me = omp_get_thread_num();
    const long share = ((B + threads - 1) / threads + 15) / 16 * 16;
    *b0 = me * share < B ? me * share : B;
    *b1 = *b0 + share < B ? *b0 + share : B;
}

/* Sinkhorn-Knopp as hyper_sinkhorn.py computes it, in its (n, n, B) layout (tokens last, so
 * every loop over b is a contiguous vector): steps (2·iters, n, n, B) receive the softmax after
 * each step, columns first (an even step normalises over i, an odd one over j). Steps 0 and 1
 * subtract the line's maximum and take logarithms; later steps divide the previous softmax by
 * its line sums. `work` holds (n, n, B) logarithms. */
#define SINKHORN(T, S, EXP, LOG)                                                              \
/* One step for tokens [b0, b1): each line (stride_line apart) normalised along its n entries \
 * (stride_along apart), in chunks of CHUNK tokens so every inner loop runs over contiguous b. \
 * With `logs` the step subtracts the line's maximum first and writes the logarithms of its  \
 * result to log_out (when given); else it divides its input by the line sums. */            \
static void sinkhorn_step_##S(long n, long b0, long b1, const T *restrict in, T *restrict out, \
                              long stride_line, long stride_along, int logs,                   \
                              T *restrict log_out) {                                          \
    T top[CHUNK], total[CHUNK];                                                               \
    for (long line = 0; line < n; line++)                                                     \
        for (long c0 = b0; c0 < b1; c0 += CHUNK) {                                            \
            const long m = b1 - c0 < CHUNK ? b1 - c0 : CHUNK;                                 \
            const T *src = in + line * stride_line + c0;                                      \
            T *dst = out + line * stride_line + c0;                                           \
            for (long b = 0; b < m; b++) total[b] = 0;                                        \
            if (logs) {                                                                       \
                for (long b = 0; b < m; b++) top[b] = src[b];                                 \
                for (long k = 1; k < n; k++)                                                  \
                    for (long b = 0; b < m; b++) {                                            \
                        const T v = src[k * stride_along + b];                                \
                        top[b] = v > top[b] ? v : top[b];                                     \
                    }                                                                         \
                for (long k = 0; k < n; k++)                                                  \
                    for (long b = 0; b < m; b++) {                                            \
                        const T e = EXP(src[k * stride_along + b] - top[b]);                  \
                        dst[k * stride_along + b] = e;                                        \
                        total[b] += e;                                                        \
                    }                                                                         \
                if (log_out) {                                                                \
                    T *logs_at = log_out + line * stride_line + c0;                           \
                    for (long b = 0; b < m; b++) top[b] += LOG(total[b]);                     \
                    for (long k = 0; k < n; k++)                                              \
                        for (long b = 0; b < m; b++)                                          \
                            logs_at[k * stride_along + b] = src[k * stride_along + b] - top[b]; \
                }                                                                             \
            } else {                                                                          \
                for (long k = 0; k < n; k++)                                                  \
                    for (long b = 0; b < m; b++) {                                            \
                        dst[k * stride_along + b] = src[k * stride_along + b];                \
                        total[b] += src[k * stride_along + b];                                \
                    }                                                                         \
            }                                                                                 \
            for (long b = 0; b < m; b++) total[b] = 1 / total[b];                             \
            for (long k = 0; k < n; k++)                                                      \
                for (long b = 0; b < m; b++) dst[k * stride_along + b] *= total[b];           \
        }                                                                                     \
}                                                                                             \
void sinkhorn_forward_##S(long B, long n, long iters, const T *restrict logits,              \
                          T *restrict steps, T *restrict work, int threads) {                  \
    const long plane = n * n * B;                                                             \
    _Pragma("omp parallel num_threads(threads)")                                              \
    {                                                                                         \
        long b0, b1;                                                                          \
        token_block(B, &b0, &b1);                                                             \
        for (long step = 0; step < 2 * iters; step++) {                                       \
            /* even: lines are columns j (stride B), along i (stride n·B); odd: rows i */      \
            const long stride_line = step % 2 ? n * B : B;                                    \
            const long stride_along = step % 2 ? B : n * B;                                   \
            const T *in = step == 0 ? logits : step == 1 ? work : steps + (step - 1) * plane; \
            sinkhorn_step_##S(n, b0, b1, in, steps + step * plane, stride_line, stride_along, \
                              step < 2, step == 0 ? work : (T *)0);                           \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
/* The exact backward of the unrolled steps: grad (n, n, B) in, the logits' gradient out;    \
 * each step in reverse maps g to g - S·Σg along its axis. */                                 \
void sinkhorn_backward_##S(long B, long n, long iters, const T *restrict steps,              \
                           const T *restrict grad, T *restrict out, int threads) {             \
    const long plane = n * n * B;                                                             \
    _Pragma("omp parallel num_threads(threads)")                                              \
    {                                                                                         \
        long b0, b1;                                                                          \
        token_block(B, &b0, &b1);                                                             \
        const T *last = steps + (2 * iters - 1) * plane;                                      \
        for (long e = 0; e < n * n; e++)                                                      \
            for (long b = b0; b < b1; b++) out[e * B + b] = grad[e * B + b] * last[e * B + b]; \
        for (long step = 2 * iters - 1; step >= 0; step--) {                                  \
            const long stride_line = step % 2 ? n * B : B;                                    \
            const long stride_along = step % 2 ? B : n * B;                                   \
            const T *s = steps + step * plane;                                                \
            for (long line = 0; line < n; line++)                                             \
                for (long c0 = b0; c0 < b1; c0 += CHUNK) {                                    \
                    const long m = b1 - c0 < CHUNK ? b1 - c0 : CHUNK;                         \
                    T *g = out + line * stride_line + c0;                                     \
                    const T *si = s + line * stride_line + c0;                                \
                    T total[CHUNK];                                                           \
                    for (long b = 0; b < m; b++) total[b] = 0;                                \
                    for (long k = 0; k < n; k++)                                              \
                        for (long b = 0; b < m; b++) total[b] += g[k * stride_along + b];     \
                    for (long k = 0; k < n; k++)                                              \
                        for (long b = 0; b < m; b++)                                          \
                            g[k * stride_along + b] -= si[k * stride_along + b] * total[b];   \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
}

SINKHORN(float, f32, expf, logf)
SINKHORN(double, f64, exp, log)

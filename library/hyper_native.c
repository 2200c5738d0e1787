/* The stream mixing of a hyper-connection site, one pass over the streams per kernel, and mHC's
 * Sinkhorn steps (below: the whole-site kernels, whose tokens hyper_native_sinkhorn.c's vectors
 * take, and the block-by-block loops it falls back on).
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
#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#define CHUNK 128   /* tokens per block of the Sinkhorn kernels up to n = 4 ... */
#define LOCAL 2048  /* ... beyond, LOCAL / n² tokens: a block's local arrays stay small */
#define STEPS 65536 /* the backward's recomputed steps per block, at most (see below) */


/* Non-temporal stores for hyper_native_depth_width.c's forward, whose mixed streams (8 MB a
 * site in the benchmarks' network) the next site reads only after a layer: an ordinary store
 * first brings the line it lands in into cache (read for ownership), these write it straight
 * to memory. An 8 MB copy on the benchmarks' machine: 0.52 ms with ordinary stores, 0.32 ms
 * with these; the 12-layer network 0.01-0.02 of its plain step faster
 * (benchmarks/hyper_stores.py). They bypass the caches, so an output read back while still
 * in cache comes from memory instead: in the single-site benchmark, whose working set stays in
 * this machine's L3 round after round, streaming width_forward's and depth_forward's outputs
 * made the site 0.02-0.03 slower, and the backward's ∂h, streamed from a pass's tile, made the
 * site backward 0.1-0.2 ms slower; those keep ordinary stores. Plain stores where the CPU has
 * none of these, and for an unaligned head and the tail; stream_fence orders them before what
 * the thread does next (the caller calls it after a token's rows). */
#define STREAM_COPY(T, S, VEC, ALIGN, LOADU, STREAM)                                          \
void stream_copy_##S(T *restrict dst, const T *restrict src, long m) {                        \
    long k = 0;                                                                               \
    for (; k < m && ((uintptr_t)(dst + k) & (ALIGN - 1)); k++) dst[k] = src[k];               \
    for (; k + VEC <= m; k += VEC) STREAM(dst + k, LOADU(src + k));                           \
    for (; k < m; k++) dst[k] = src[k];                                                       \
}
#if defined(HYPER_PLAIN_STORES) || !defined(__SSE2__) /* benchmarks/hyper_stores.py builds
                                                       * the first to compare */
#define PLAIN_STORE(p, v) (*(p) = (v))
#define PLAIN_LOAD(p) (*(p))
STREAM_COPY(float, f32, 1, 1, PLAIN_LOAD, PLAIN_STORE)
STREAM_COPY(double, f64, 1, 1, PLAIN_LOAD, PLAIN_STORE)
#elif defined(__AVX512F__)
STREAM_COPY(float, f32, 16, 64, _mm512_loadu_ps, _mm512_stream_ps)
STREAM_COPY(double, f64, 8, 64, _mm512_loadu_pd, _mm512_stream_pd)
#elif defined(__AVX__)
STREAM_COPY(float, f32, 8, 32, _mm256_loadu_ps, _mm256_stream_ps)
STREAM_COPY(double, f64, 4, 32, _mm256_loadu_pd, _mm256_stream_pd)
#else
STREAM_COPY(float, f32, 4, 16, _mm_loadu_ps, _mm_stream_ps)
STREAM_COPY(double, f64, 2, 16, _mm_loadu_pd, _mm_stream_pd)
#endif

void stream_fence(void) {
#if defined(__SSE2__)
    _mm_sfence();
#else
    __sync_synchronize();
#endif
}

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
/* Per token, vectorised in hyper_native_mixing.c (also called by hyper_native_site.c). */     \
void width_backward_token_##S(long n, long d, const T *restrict hb, const T *restrict p,    \
                              const T *restrict r, const T *restrict gx,                      \
                              const T *restrict gm, T *restrict gh, T *restrict grad_pre,    \
                              T *restrict grad_res);                                          \
void depth_backward_token_##S(long n, long d, const T *restrict gb, const T *restrict q,     \
                              const T *restrict yb, T *restrict gy, T *restrict gq);         \
/* ∂h_bj = Σ_i res_bij ∂mixed_bi + pre_bj ∂x_b, ∂pre_bj = ∂x_b·h_bj, ∂res_bij = ∂mixed_bi·h_bj */\
void width_backward_##S(long B, long n, long d, const T *restrict h, const T *restrict pre,  \
                        long pre_stride, const T *restrict res, long res_stride,               \
                        const T *restrict grad_x, const T *restrict grad_mixed,                \
                        T *restrict grad_h, T *restrict grad_pre, T *restrict grad_res,        \
                        int threads) {                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long b = 0; b < B; b++)                                                              \
        width_backward_token_##S(n, d, h + b * n * d, pre + b * pre_stride,                  \
                                 res + b * res_stride, grad_x + b * d,                        \
                                 grad_mixed + b * n * d, grad_h + b * n * d,                  \
                                 grad_pre + b * n, grad_res + b * n * n);                     \
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
    for (long b = 0; b < B; b++)                                                              \
        depth_backward_token_##S(n, d, grad + b * n * d, post + b * post_stride, y + b * d,  \
                                 grad_y + b * d, grad_post + b * n);                          \
}

KERNELS(float, f32)
KERNELS(double, f64)

/* Sinkhorn-Knopp as hyper_sinkhorn.py computes it, in its (n, n, B) layout (tokens last, so
 * every loop over b is a contiguous vector): the softmax after each of 2·iters steps, columns
 * first (an even step normalises over i, an odd one over j). Steps 0 and 1 subtract the line's
 * maximum and take logarithms; later steps divide the previous softmax by its line sums. Each
 * block of tokens runs all its steps in local arrays. The forward returns the last step only;
 * the backward recomputes a block's steps into a local array and runs back through them: the
 * steps are 2·iters·n² numbers per token (5 MB a site at 2,048 tokens, n = 4, 20 iterations),
 * which a stored copy wrote out and read back from memory, twice the time of computing them
 * again. Step after step over whole planes of memory, a load and a store 128 KB apart alias in
 * the CPU's 4 KB store-forwarding check, which made every step several times slower: another
 * reason the steps stay local. */
/* Tokens per Sinkhorn block (at most CHUNK, the size of the step's stack arrays). */
static long block_tokens(long n) {
    if (n <= 4) return CHUNK;
    return LOCAL / (n * n) > 1 ? LOCAL / (n * n) : 1;
}

/* Tokens per block of the backward, whose recomputed steps stay local: at most STEPS numbers
 * of them (a few hundred KB, in L2 and on the thread's stack). */
static long recompute_tokens(long n, long iters) {
    const long most = STEPS / (2 * iters * n * n), chunk = block_tokens(n);
    return most < 1 ? 1 : most < chunk ? most : chunk;
}

#define SINKHORN(T, S, EXP, LOG)                                                              \
/* One normalisation of the block `cur` (n, n, chunk) along axis `rows` (0: over i for each  \
 * column j, 1: over j for each row i), in place. With `logs` the line's maximum is subtracted \
 * first and the result's logarithms go to `log_out` (when given); else a division by sums. */ \
static void sinkhorn_step_##S(long n, long m, long chunk, T *restrict cur, int rows,       \
                              int logs, T *restrict log_out) {                                \
    const long stride_line = rows ? n * chunk : chunk, stride_along = rows ? chunk : n * chunk; \
    T top[CHUNK], total[CHUNK];                                                               \
    for (long line = 0; line < n; line++) {                                                   \
        T *v = cur + line * stride_line;                                                      \
        for (long b = 0; b < m; b++) total[b] = 0;                                            \
        if (logs) {                                                                           \
            for (long b = 0; b < m; b++) top[b] = v[b];                                       \
            for (long k = 1; k < n; k++)                                                      \
                for (long b = 0; b < m; b++) {                                                \
                    const T x = v[k * stride_along + b];                                      \
                    top[b] = x > top[b] ? x : top[b];                                         \
                }                                                                             \
            T *l = log_out ? log_out + line * stride_line : (T *)0;                           \
            for (long k = 0; k < n; k++)                                                      \
                for (long b = 0; b < m; b++) {                                                \
                    const T shifted = v[k * stride_along + b] - top[b];                       \
                    const T e = EXP(shifted);                                                 \
                    if (l) l[k * stride_along + b] = shifted; /* less log Σ, below */        \
                    v[k * stride_along + b] = e;                                              \
                    total[b] += e;                                                            \
                }                                                                             \
            if (l)                                                                            \
                for (long b = 0; b < m; b++) {                                                \
                    const T log_total = LOG(total[b]);                                        \
                    for (long k = 0; k < n; k++) l[k * stride_along + b] -= log_total;        \
                }                                                                             \
        } else {                                                                              \
            for (long k = 0; k < n; k++)                                                      \
                for (long b = 0; b < m; b++) total[b] += v[k * stride_along + b];             \
        }                                                                                     \
        for (long b = 0; b < m; b++) total[b] = 1 / total[b];                                 \
        for (long k = 0; k < n; k++)                                                          \
            for (long b = 0; b < m; b++) v[k * stride_along + b] *= total[b];                 \
    }                                                                                         \
}                                                                                             \
/* All steps of the tokens [c0, c0 + m) of `logits` in cur (n, n, chunk), from where the    \
 * last step is read, and each step's softmax in saved (2·iters, n, n, chunk). */           \
static void sinkhorn_block_##S(long B, long n, long iters, const T *restrict logits, long c0, \
                               long m, long chunk, T *restrict cur, T *restrict logs,         \
                               T *restrict saved) {                                           \
    for (long e = 0; e < n * n; e++)                                                          \
        for (long b = 0; b < m; b++) cur[e * chunk + b] = logits[e * B + c0 + b];             \
    for (long step = 0; step < 2 * iters; step++) {                                           \
        if (step == 1)  /* the second step starts from the first one's logarithms */          \
            for (long e = 0; e < n * n * chunk; e++) cur[e] = logs[e];                        \
        sinkhorn_step_##S(n, m, chunk, cur, (int)(step % 2), step < 2,                       \
                          step == 0 ? logs : (T *)0);                                       \
        for (long e = 0; e < n * n * chunk; e++) saved[step * n * n * chunk + e] = cur[e];     \
    }                                                                                         \
}                                                                                             \
void sinkhorn_forward_tokens_##S(long B, long n, long iters, const T *restrict logits,       \
                                 T *restrict out, long t0, long t1); /* the vectorised ones */ \
void sinkhorn_backward_tokens_##S(long B, long n, long iters, const T *restrict logits,      \
                                  const T *restrict grad, T *restrict out, long t0, long t1); \
void sinkhorn_forward_##S(long B, long n, long iters, const T *restrict logits,              \
                          T *restrict out, int threads) {                                      \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long c0 = 0; c0 < B; c0 += CHUNK)                                                    \
        sinkhorn_forward_tokens_##S(B, n, iters, logits, out, c0,                            \
                                    B - c0 < CHUNK ? B : c0 + CHUNK);                         \
}                                                                                             \
/* The exact backward of the unrolled steps: grad (n, n, B) in, the logits' gradient out;    \
 * each step in reverse maps g to g - S·Σg along its axis, S that step's softmax, recomputed \
 * per block of `recompute_tokens` tokens. The tokens [t0, t1), in the calling thread:      \
 * hyper_native_sinkhorn.c's vectorised backward calls this where a vector's tokens' steps   \
 * would not fit its local arrays. */                                                        \
void sinkhorn_backward_chunked_##S(long B, long n, long iters, const T *restrict logits,      \
                                  const T *restrict grad, T *restrict out, long t0, long t1) { \
    const long chunk = recompute_tokens(n, iters), plane = n * n * chunk;                    \
    T g[plane], total[chunk], cur[plane], logs[plane], saved[2 * iters * plane];              \
    for (long c0 = t0; c0 < t1; c0 += chunk) {                                                \
        const long m = t1 - c0 < chunk ? t1 - c0 : chunk;                                     \
        sinkhorn_block_##S(B, n, iters, logits, c0, m, chunk, cur, logs, saved);             \
        for (long e = 0; e < n * n; e++)                                                      \
            for (long b = 0; b < m; b++)                                                      \
                g[e * chunk + b] = grad[e * B + c0 + b] * cur[e * chunk + b];                 \
        for (long step = 2 * iters - 1; step >= 0; step--) {                                  \
            const int rows = (int)(step % 2);                                                 \
            const long line = rows ? n * chunk : chunk, along = rows ? chunk : n * chunk;     \
            const T *s = saved + step * plane;                                                \
            for (long l = 0; l < n; l++) {                                                    \
                T *gl = g + l * line;                                                         \
                const T *sl = s + l * line;                                                   \
                for (long b = 0; b < m; b++) total[b] = 0;                                    \
                for (long k = 0; k < n; k++)                                                  \
                    for (long b = 0; b < m; b++) total[b] += gl[k * along + b];               \
                for (long k = 0; k < n; k++)                                                  \
                    for (long b = 0; b < m; b++) gl[k * along + b] -= sl[k * along + b] * total[b]; \
            }                                                                                 \
        }                                                                                     \
        for (long e = 0; e < n * n; e++)                                                      \
            for (long b = 0; b < m; b++) out[e * B + c0 + b] = g[e * chunk + b];              \
    }                                                                                         \
}                                                                                             \
void sinkhorn_backward_##S(long B, long n, long iters, const T *restrict logits,             \
                           const T *restrict grad, T *restrict out, int threads) {             \
    _Pragma("omp parallel for schedule(static) num_threads(threads)")                         \
    for (long c0 = 0; c0 < B; c0 += CHUNK)                                                    \
        sinkhorn_backward_tokens_##S(B, n, iters, logits, grad, out, c0,                     \
                                     B - c0 < CHUNK ? B : c0 + CHUNK);                        \
}

SINKHORN(float, f32, expf, logf)
SINKHORN(double, f64, exp, log)

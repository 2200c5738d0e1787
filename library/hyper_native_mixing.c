/* The stream mixing's backward for one token, vectorised: the width connection's, the depth
 * connection's, and the two fused as hyper_native_depth_width.c's backward --
 *
 *     width:  ∂h_j = Σ_i res_ij ∂mixed_i + pre_j ∂x,  ∂pre_j = ∂x·h_j,  ∂res_ij = ∂mixed_i·h_j
 *     depth:  ∂y = Σ_i post_i ∂out_i,  ∂post_i = ∂out_i·y   (∂mixed is ∂out itself)
 *
 * for the one-pass kernels of hyper_native.c, hyper_native_depth_width.c and
 * hyper_native_site.c. Why a file of its own: written as one loop along d per dot product
 * (n + n² of them a token, `omp simd` reductions), each loop was a single chain of multiply-adds
 * with a peeled head, a scalar tail and a sum across lanes -- 1.9 times the time of this
 * version with its streams in cache (calls of 32 tokens of 4 × 256 floats, one thread: 0.88
 * against 0.47 µs a token), and static hc's fused backward took 2.26 ms a call in the
 * 12-layer network against 1.39 now (benchmarks/RESULTS.md, the tenth pass). Here whole
 * vectors of every stream go through registers at once: each dot product keeps a vector of
 * partial sums, several independent chains at a time, summed across lanes once a token.
 * Streams go in groups of GROUP so the sums stay in registers for any n.
 *
 * ∂h and ∂y add the same terms in the same order as those loops (the compiler may still fuse
 * a multiply and an add differently: a last bit); the dot products are summed in another
 * order (lanes first), as any vectorised sum is.
 * Every token's numbers come from one thread: the same for any thread count. GCC/Clang vector
 * extensions, as hyper_native_projection.c. The file includes itself once per dtype (T, S).
 */
#ifndef T
#include <stddef.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define VBYTES 64 /* one vector: 16 floats or 8 doubles */
#define GROUP 4   /* streams whose sums share the registers: 4 × (pre, post) + 4 of res */

#define T float
#define S f32
#include "hyper_native_mixing.c"
#undef T
#undef S

#define T double
#define S f64
#include "hyper_native_mixing.c"

#else /* the kernels, for one dtype T */

typedef T NAME(vec) __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));
typedef T NAME(half) __attribute__((vector_size(VBYTES / 2), aligned(sizeof(T)), may_alias));
typedef T NAME(quarter) __attribute__((vector_size(VBYTES / 4), aligned(sizeof(T)), may_alias));
#define LANES ((long)(VBYTES / sizeof(T)))

/* The sum of v's lanes, halves added first (a tree, not a chain of LANES adds). */
static inline T NAME(lanes_sum)(NAME(vec) v) {
    union { NAME(vec) v; NAME(half) h[2]; } whole = {v};
    union { NAME(half) h; NAME(quarter) q[2]; } halves = {whole.h[0] + whole.h[1]};
    const NAME(quarter) q = halves.q[0] + halves.q[1];
    T total = 0;
    for (long l = 0; l < (long)(VBYTES / 4 / sizeof(T)); l++) total += q[l];
    return total;
}

/* A stream's numbers at `row`: h's own, or (with_depth) mixed + post_j ⊗ y. */
static inline __attribute__((always_inline)) NAME(vec) NAME(stream)(
    long with_depth, const T *restrict row, T qj, NAME(vec) yv) {
    NAME(vec) h = *(const NAME(vec) *)row;
    if (with_depth) h += qj * yv;
    return h;
}
#define STREAM(j, k, yv) NAME(stream)(with_depth, hb + (j) * d + (k), with_depth ? q[j] : 0, yv)

/* Streams [j0, j0 + jn) of one token's width backward, jn ≤ GROUP (a constant where inlined,
 * so the sums stay in registers): ∂h_j into gh, ∂pre_j, ∂res_ij for every i. With
 * `with_depth` (a constant), hb holds the previous site's mixed, h = mixed + post ⊗ y is formed
 * as it goes, and that connection's backward comes from the finished ∂h: ∂y into gy (added to
 * what streams [0, j0) left there), ∂post_j into gq. */
static inline __attribute__((always_inline)) void NAME(streams_backward)(
    long n, long d, long j0, long jn, long with_depth, const T *restrict hb,
    const T *restrict q, const T *restrict yb, const T *restrict p, const T *restrict r,
    const T *restrict gx, const T *restrict gm, T *restrict gh, T *restrict gy,
    T *restrict gq, T *restrict gp, T *restrict gr) {
    typedef NAME(vec) V;
    const long whole = d / LANES * LANES;
    V pre_sums[GROUP], post_sums[GROUP];
    for (long t = 0; t < jn; t++) pre_sums[t] = post_sums[t] = (V){0};
    for (long k = 0; k < whole; k += LANES) {
        const V g = *(const V *)(gx + k), yv = with_depth ? *(const V *)(yb + k) : (V){0};
        V gyv = with_depth && j0 ? *(const V *)(gy + k) : (V){0};
        for (long t = 0; t < jn; t++) {
            const long j = j0 + t;
            pre_sums[t] += g * STREAM(j, k, yv);
            V ghj = p[j] * g;
            for (long i = 0; i < n; i++) ghj += r[i * n + j] * *(const V *)(gm + i * d + k);
            *(V *)(gh + j * d + k) = ghj;
            if (with_depth) post_sums[t] += ghj * yv, gyv += q[j] * ghj;
        }
        if (with_depth) *(V *)(gy + k) = gyv;
    }
    for (long t = 0; t < jn; t++) {
        gp[j0 + t] = NAME(lanes_sum)(pre_sums[t]);
        if (with_depth) gq[j0 + t] = NAME(lanes_sum)(post_sums[t]);
    }
    for (long i = 0; i < n; i++) { /* ∂res_ij = ∂mixed_i·h_j, h again from L1 */
        V sums[GROUP];
        for (long t = 0; t < jn; t++) sums[t] = (V){0};
        for (long k = 0; k < whole; k += LANES) {
            const V gi = *(const V *)(gm + i * d + k);
            const V yv = with_depth ? *(const V *)(yb + k) : (V){0};
            for (long t = 0; t < jn; t++) sums[t] += gi * STREAM(j0 + t, k, yv);
        }
        for (long t = 0; t < jn; t++) gr[i * n + j0 + t] = NAME(lanes_sum)(sums[t]);
    }
    for (long k = whole; k < d; k++) { /* the columns past the last whole vector */
        T gyk = with_depth && j0 ? gy[k] : 0;
        for (long t = 0; t < jn; t++) {
            const long j = j0 + t;
            const T hk = with_depth ? hb[j * d + k] + q[j] * yb[k] : hb[j * d + k];
            T ghk = p[j] * gx[k];
            for (long i = 0; i < n; i++) {
                ghk += r[i * n + j] * gm[i * d + k];
                gr[i * n + j] += gm[i * d + k] * hk;
            }
            gh[j * d + k] = ghk;
            gp[j] += gx[k] * hk;
            if (with_depth) gq[j] += ghk * yb[k], gyk += q[j] * ghk;
        }
        if (with_depth) gy[k] = gyk;
    }
}
#undef STREAM

/* One token's width backward, its streams in groups (with_depth a constant where inlined). */
static inline __attribute__((always_inline)) void NAME(token_backward)(
    long n, long d, long with_depth, const T *restrict hb, const T *restrict q,
    const T *restrict yb, const T *restrict p, const T *restrict r, const T *restrict gx,
    const T *restrict gm, T *restrict gh, T *restrict gy, T *restrict gq, T *restrict gp,
    T *restrict gr) {
    for (long j0 = 0; j0 < n; j0 += GROUP) {
        if (n - j0 >= GROUP)
            NAME(streams_backward)(n, d, j0, GROUP, with_depth, hb, q, yb, p, r, gx, gm, gh,
                                   gy, gq, gp, gr);
        else
            NAME(streams_backward)(n, d, j0, n - j0, with_depth, hb, q, yb, p, r, gx, gm, gh,
                                   gy, gq, gp, gr);
    }
}

/* ∂h_bj = Σ_i res_bij ∂mixed_bi + pre_bj ∂x_b; ∂pre_bj = ∂x_b·h_bj; ∂res_bij = ∂mixed_bi·h_bj,
 * for one token b (the pointers at its numbers): hyper_native.c's width_backward and
 * hyper_native_site.c call it per token. */
void NAME(width_backward_token)(long n, long d, const T *restrict hb, const T *restrict p,
                                const T *restrict r, const T *restrict gx,
                                const T *restrict gm, T *restrict gh, T *restrict grad_pre,
                                T *restrict grad_res) {
    if (n == GROUP)
        NAME(token_backward)(GROUP, d, 0, hb, 0, 0, p, r, gx, gm, gh, 0, 0, grad_pre, grad_res);
    else
        NAME(token_backward)(n, d, 0, hb, 0, 0, p, r, gx, gm, gh, 0, 0, grad_pre, grad_res);
}

/* The same for streams h = mixed + post ⊗ y, formed as it goes from the previous site's mixed
 * `mb`, with that depth connection's backward from the finished ∂h (∂mixed): ∂y into gy,
 * ∂post into gq. hyper_native_depth_width.c's backward calls it per token. */
void NAME(depth_width_backward_token)(long n, long d, const T *restrict mb,
                                      const T *restrict q, const T *restrict yb,
                                      const T *restrict p, const T *restrict r,
                                      const T *restrict gx, const T *restrict gm,
                                      T *restrict gh, T *restrict gy, T *restrict gq,
                                      T *restrict grad_pre, T *restrict grad_res) {
    if (n == GROUP)
        NAME(token_backward)(GROUP, d, 1, mb, q, yb, p, r, gx, gm, gh, gy, gq, grad_pre,
                             grad_res);
    else
        NAME(token_backward)(n, d, 1, mb, q, yb, p, r, gx, gm, gh, gy, gq, grad_pre, grad_res);
}

/* Streams [i0, i0 + in) of one token's depth backward, in ≤ GROUP: ∂y += Σ_i q_i ∂out_i (set,
 * not added, by the first group) and ∂post_i = ∂out_i·y. */
static inline __attribute__((always_inline)) void NAME(depth_streams_backward)(
    long d, long i0, long in, const T *restrict gb, const T *restrict q, const T *restrict yb,
    T *restrict gy, T *restrict gq) {
    typedef NAME(vec) V;
    const long whole = d / LANES * LANES;
    V sums[GROUP];
    for (long t = 0; t < in; t++) sums[t] = (V){0};
    for (long k = 0; k < whole; k += LANES) {
        const V yv = *(const V *)(yb + k);
        V gyv = i0 ? *(const V *)(gy + k) : (V){0};
        for (long t = 0; t < in; t++) {
            const V gi = *(const V *)(gb + (i0 + t) * d + k);
            gyv += q[i0 + t] * gi;
            sums[t] += gi * yv;
        }
        *(V *)(gy + k) = gyv;
    }
    for (long t = 0; t < in; t++) gq[i0 + t] = NAME(lanes_sum)(sums[t]);
    for (long k = whole; k < d; k++) {
        T gyk = i0 ? gy[k] : 0;
        for (long t = 0; t < in; t++) {
            gyk += q[i0 + t] * gb[(i0 + t) * d + k];
            gq[i0 + t] += gb[(i0 + t) * d + k] * yb[k];
        }
        gy[k] = gyk;
    }
}

/* ∂y_b = Σ_i post_bi ∂out_bi and ∂post_bi = ∂out_bi·y_b (∂mixed is ∂out itself), for one
 * token b (the pointers at its numbers): hyper_native.c's depth_backward and
 * hyper_native_site.c call it per token. */
void NAME(depth_backward_token)(long n, long d, const T *restrict gb, const T *restrict q,
                                const T *restrict yb, T *restrict gy, T *restrict gq) {
    for (long i0 = 0; i0 < n; i0 += GROUP) {
        if (n - i0 >= GROUP) NAME(depth_streams_backward)(d, i0, GROUP, gb, q, yb, gy, gq);
        else NAME(depth_streams_backward)(d, i0, n - i0, gb, q, yb, gy, gq);
    }
}

#undef LANES
#endif

/* A per-token site's whole forward in one pass over its streams, block by block of tokens --
 * dynamic hc's below, the manifold mixes' at the end:
 *
 *     projection:  per stream j, out_j = LayerNorm(h_j)·W = (h_j·W - μ_j·1ᵀW)·r_j
 *     maps:        t = tanh(out), H_pre, H_res, H_post from t (hyper_native_maps.c's)
 *     mixing:      x = H_pre·h,  mixed' = H_res·h
 *
 * As separate kernels the projection reads the streams and the mixing reads them again after
 * torch's small ops turned the products into the maps; here each block's streams (TOKENS
 * tokens, n·d numbers each: 24 KB at n·d = 1,024) are read once, into L1, and the maps are
 * formed in between (tanh by hyper_native_math.c). Where the site was handed its
 * predecessor's depth connection, the block's streams h = mixed + post ⊗ y are formed here and
 * never stored (the backward forms them again), and the mixed streams go out with
 * non-temporal stores, as depth_width_forward's.
 *
 * The products and sums of squares are projection_forward's (rows_products, the same tiles);
 * the norm and the maps as hyper_fused_site._project and dynamic_forward compute them, so the
 * values equal the separate kernels' up to tanh's rounding (tests). Every token's numbers come
 * from one thread in a fixed order: the same for any thread count.
 *
 * Built with hyper_native.c (hyper_native.py); hyper_site_native.site_forward calls it. The
 * file includes itself once per dtype (T, S).
 */
#ifndef T
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define TOKENS 6 /* tokens per block: the projection's tiles are 6 rows */
#define SINKHORN_TOKENS 128 /* mhc's blocks: its Sinkhorn steps are vectorised along the tokens */

enum { MIX_LOGITS = 0, MIX_PERMUTATIONS = 1, MIX_KRONECKER = 2, MIX_SPHERE = 3 }; /* maps.c's */

#define T float
#define S f32
#define SQRT sqrtf
#include "hyper_native_site_forward.c"
#undef T
#undef S
#undef SQRT

#define T double
#define S f64
#define SQRT sqrt
#include "hyper_native_site_forward.c"

#else /* the kernel, for one dtype T */

void NAME(rows_products)(long R, long width, long c, long cp, const T *restrict rows,
                         const T *restrict wp, T *restrict out, T *restrict sumsq);
void NAME(depth_rows)(long width, long d, long per_token, long r0, long rt,
                      const T *restrict mixed, const T *restrict post, long post_stride,
                      const T *restrict y, T *restrict rows);
void NAME(tanh_values)(long m, const T *x, T *out);
void NAME(sigmoid_values)(long m, const T *x, T *out);
void NAME(exp_nonpositive_values)(long m, const T *x, T *out);
void NAME(manifold_token)(long n, long mix, const T *restrict a, const T *restrict w,
                          T post_scale, const T *restrict gammas, const T *restrict basis,
                          T *restrict pre, T *restrict post, T *restrict r);
void NAME(sinkhorn_forward_tokens)(long B, long n, long iters, const T *restrict logits,
                                   T *restrict out, long t0, long t1);
void NAME(stream_copy)(T *restrict dst, const T *restrict src, long m);
void stream_fence(void);

/* The layer norm's moments and the projection of `rows` rows [row0, row0 + R) from their
 * products prod (R, c + 1: W's c columns and the mean's) and sums of squares sq (R):
 * mean, inv = 1/√(max(E[h²] - μ², 0) + ε) and projected (·, c) = (h·W - μ·colsum)·inv. */
static void NAME(layer_norm_rows)(long R, long c, long d, long row0, const T *restrict prod,
                                  const T *restrict sq, const T *restrict colsum, T eps,
                                  T *restrict projected, T *restrict inv, T *restrict mean) {
    for (long r = 0; r < R; r++) {
        const T *pr = prod + r * (c + 1), mu = pr[c], var = sq[r] / (T)d - mu * mu;
        const T iv = 1 / SQRT((var > 0 ? var : 0) + eps);
        T *out = projected + (row0 + r) * c;
        mean[row0 + r] = mu;
        inv[row0 + r] = iv;
        for (long q = 0; q < c; q++) out[q] = (pr[q] - mu * colsum[q]) * iv;
    }
}

/* Token b's x (d) and mixed' rows (n, d) from its streams hb (n, d); mixed' by non-temporal
 * stores where `stream`. */
static void NAME(mix_token)(long n, long d, const T *restrict hb, const T *restrict p,
                            const T *restrict r, T *restrict xb, T *restrict mb, long stream) {
    _Pragma("omp simd") for (long k = 0; k < d; k++) xb[k] = p[0] * hb[k];
    for (long j = 1; j < n; j++) {
        const T pj = p[j], *hj = hb + j * d;
        _Pragma("omp simd") for (long k = 0; k < d; k++) xb[k] += pj * hj[k];
    }
    T row[stream ? d : 1];
    for (long i = 0; i < n; i++) {
        const T *ri = r + i * n;
        T *mi = stream ? row : mb + i * d;
        _Pragma("omp simd") for (long k = 0; k < d; k++) mi[k] = ri[0] * hb[k];
        for (long j = 1; j < n; j++) {
            const T rij = ri[j], *hj = hb + j * d;
            _Pragma("omp simd") for (long k = 0; k < d; k++) mi[k] += rij * hj[k];
        }
        if (stream) NAME(stream_copy)(mb + i * d, row, d);
    }
}

/* Streams h (B, n, d) -- or, where `has_depth`, the previous site's mixed, with its depth
 * connection's post (P, n) at `depth_post_stride` and y (B, d); wp (d, cp): W and a column of
 * 1/d (the mean's), packed as projection_forward takes them; colsum (c) = 1ᵀW, with
 * c = n + 2; the maps' parameters pre0 (n), res0 (n, n), post0 (n), scales (2). Out: projected
 * and t (B·n, c), inv and mean (B·n), the per-token H_pre (B, n), H_res (B, n, n), H_post
 * (B, n), x (B, d), mixed' (B, n, d). Where `has_depth`, tiles (threads, TOKENS · n·d): each
 * thread's streams of its block. */
void NAME(dynamic_site_forward)(long B, long n, long d, long use_tanh, const T *restrict h,
                                long has_depth, const T *restrict depth_post,
                                long depth_post_stride, const T *restrict depth_y,
                                long cp, const T *restrict wp, const T *restrict colsum, T eps,
                                const T *restrict pre0, const T *restrict res0,
                                const T *restrict post0, const T *restrict scales,
                                T *restrict projected, T *restrict inv, T *restrict mean,
                                T *restrict t, T *restrict pre, T *restrict res,
                                T *restrict post, T *restrict x, T *restrict mixed_out,
                                T *restrict tiles, int threads) {
    const long c = n + 2;
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b0 = 0; b0 < B; b0 += TOKENS) {
        const long b1 = b0 + TOKENS < B ? b0 + TOKENS : B, R = (b1 - b0) * n;
        T *tile = has_depth ? tiles + omp_get_thread_num() * TOKENS * n * d : (T *)0;
        T prod[TOKENS * n * (c + 1)], sq[TOKENS * n];
        const T *hp = h + b0 * n * d;
        if (has_depth) {
            NAME(depth_rows)(d, d, n, b0 * n, R, h, depth_post, depth_post_stride, depth_y,
                             tile);
            hp = tile;
        }
        NAME(rows_products)(R, d, c + 1, cp, hp, wp, prod, sq);
        NAME(layer_norm_rows)(R, c, d, b0 * n, prod, sq, colsum, eps, projected, inv, mean);
        T *tb = t + b0 * n * c;
        if (use_tanh)
            NAME(tanh_values)(R * c, projected + b0 * n * c, tb);
        else
            for (long e = 0; e < R * c; e++) tb[e] = projected[b0 * n * c + e];
        for (long b = b0; b < b1; b++) {
            const T *tk = t + b * n * c;
            T *p = pre + b * n, *r = res + b * n * n;
            for (long j = 0; j < n; j++) { /* as dynamic_forward */
                p[j] = pre0[j] + scales[0] * tk[j * c];
                post[b * n + j] = post0[j] + scales[1] * tk[j * c + 1];
                for (long i = 0; i < n; i++)
                    r[i * n + j] = res0[i * n + j] + scales[0] * tk[j * c + 2 + i];
            }
            NAME(mix_token)(n, d, hp + (b - b0) * n * d, p, r, x + b * d,
                            mixed_out + b * n * d, has_depth);
        }
        if (has_depth) stream_fence();
    }
}

/* What H_res takes of the res logits lg (m, c) of tokens [b0, b0 + m), as
 * hyper_site_native._rest computes it, into rest (B, c - 2n): mhc_lite's softmax, each
 * KromHC pair's σ(±(w₀ - w₁)), sHC's tanhs; mhc's logits into its Sinkhorn plane log
 * (n², B), tokens last. */
static void NAME(res_values)(long B, long n, long c, long mix, long b0, long m,
                             const T *restrict lg, T *restrict rest, T *restrict log) {
    const long width = c - 2 * n;
    for (long t = 0; t < m; t++) {
        const T *l = lg + t * c + 2 * n;
        T *w = rest + (b0 + t) * width;
        if (mix == MIX_LOGITS) {
            for (long e = 0; e < width; e++) log[e * B + b0 + t] = l[e];
        } else if (mix == MIX_PERMUTATIONS) {
            T top = l[0], total = 0;
            for (long e = 1; e < width; e++) top = l[e] > top ? l[e] : top;
            for (long e = 0; e < width; e++) w[e] = l[e] - top;
            NAME(exp_nonpositive_values)(width, w, w);
            for (long e = 0; e < width; e++) total += w[e];
            for (long e = 0; e < width; e++) w[e] /= total;
        } else if (mix == MIX_KRONECKER) {
            for (long e = 0; e + 1 < width; e += 2) {
                w[e] = l[e] - l[e + 1];
                w[e + 1] = -w[e];
            }
        } else {
            for (long e = 0; e < width; e++) w[e] = l[e];
        }
    }
    T *block = rest + b0 * width;
    if (mix == MIX_KRONECKER) NAME(sigmoid_values)(m * width, block, block);
    else if (mix == MIX_SPHERE) NAME(tanh_values)(m * width, block, block);
}

/* The manifold mixes' whole site forward (mhc, mhc_lite, kromhc, shc): streams h (B, n, d) or,
 * where `has_depth`, the previous site's mixed with its depth connection, as
 * dynamic_site_forward's; W packed (n·d, cp), as projection_forward takes it; the maps' bias
 * (c), scales and each logit's scale index `group` (c int64, the Connection's buffer),
 * post_scale, sHC's gammas and basis, mhc_lite's perms (count, n²), mhc's iterations. Out:
 * colscale (c), each logit's scale; projected, gates (B, c), inv (B), rest (B, c - 2n; not
 * mhc), mhc's logits log and H_res plane res_t (n², B), the per-token H_pre (B, n), H_res
 * (B, n, n), H_post (B, n), x (B, d), mixed' (B, n, d). Where `has_depth`, each thread forms
 * its block's streams into a tile of its own (block tokens · n·d), allocated here, as
 * site_backward's scratch is (hyper_native_site.c): returns 0, or 1 where that failed
 * (nothing written). */
int NAME(manifold_site_forward)(long B, long n, long d, long c, long mix,
                                const T *restrict h, long has_depth,
                                const T *restrict depth_post, long depth_post_stride,
                                const T *restrict depth_y, long cp, const T *restrict wp,
                                T eps, const T *restrict bias, const T *restrict scales,
                                const long *restrict group, T *restrict colscale,
                                T post_scale, const T *restrict gammas,
                                const T *restrict basis, const T *restrict perms, long count,
                                long iters, T *restrict projected, T *restrict gates,
                                T *restrict inv, T *restrict rest, T *restrict log,
                                T *restrict res_t, T *restrict pre, T *restrict res,
                                T *restrict post, T *restrict x, T *restrict mixed_out,
                                int threads) {
    const long width = n * d, nn = n * n, span = mix == MIX_LOGITS ? SINKHORN_TOKENS : TOKENS;
    const size_t bytes = ((size_t)(threads * span * width) * sizeof(T) + 63) / 64 * 64;
    T *tiles = (T *)0;
    if (has_depth && !(tiles = aligned_alloc(64, bytes))) return 1;
    for (long k = 0; k < c; k++) colscale[k] = scales[group[k]];
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b0 = 0; b0 < B; b0 += span) {
        const long b1 = b0 + span < B ? b0 + span : B, m = b1 - b0;
        T *tile = has_depth ? tiles + omp_get_thread_num() * span * width : (T *)0;
        T prod[span * c], sq[span], lg[span * c];
        const T *hp = h + b0 * width;
        if (has_depth) {
            NAME(depth_rows)(width, d, 1, b0, m, h, depth_post, depth_post_stride, depth_y,
                             tile);
            hp = tile;
        }
        NAME(rows_products)(m, width, c, cp, hp, wp, prod, sq);
        for (long t = 0; t < m; t++) { /* the RMS norm, then the logits */
            const T iv = 1 / SQRT(sq[t] / (T)width + eps);
            T *pr = projected + (b0 + t) * c;
            inv[b0 + t] = iv;
            for (long k = 0; k < c; k++) {
                pr[k] = prod[t * c + k] * iv;
                lg[t * c + k] = bias[k] + pr[k] * colscale[k];
            }
        }
        NAME(sigmoid_values)(m * c, lg, gates + b0 * c);
        NAME(res_values)(B, n, c, mix, b0, m, lg, rest, log);
        if (mix == MIX_LOGITS) NAME(sinkhorn_forward_tokens)(B, n, iters, log, res_t, b0, b1);
        for (long b = b0; b < b1; b++) {
            T *r = res + b * nn;
            const T *w = mix == MIX_LOGITS ? (const T *)0 : rest + b * (c - 2 * n);
            NAME(manifold_token)(n, mix, gates + b * c, w, post_scale, gammas, basis,
                                 pre + b * n, post + b * n, r);
            if (mix == MIX_LOGITS)
                for (long e = 0; e < nn; e++) r[e] = res_t[e * B + b];
            else if (mix == MIX_PERMUTATIONS) { /* H_res = Σ_k w_k P_k, the n² sums at once */
                for (long e = 0; e < nn; e++) r[e] = 0;
                for (long k = 0; k < count; k++) {
                    const T wk = w[k], *pk = perms + k * nn;
                    _Pragma("omp simd") for (long e = 0; e < nn; e++) r[e] += wk * pk[e];
                }
            }
            NAME(mix_token)(n, d, hp + (b - b0) * width, pre + b * n, r, x + b * d,
                            mixed_out + b * width, has_depth);
        }
        if (has_depth) stream_fence();
    }
    free(tiles);
    return 0;
}

#endif

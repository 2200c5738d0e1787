/* A per-token site's whole backward for every per-token mix, block by block of tokens, so
 * that each token's streams and gradients come from memory once.
 *
 * Three steps make a site's backward: the stream mixing's (∂h from ∂x and ∂mixed, and ∂H_pre,
 * ∂H_res), the maps' (to the projection's operands `scaled` and `coef`), and the projection's
 * (∂h += scaled·Wᵀ + coef·h, ∂W = hᵀ·scaled). Each needs the one before for the same token, so
 * as three kernels over the whole site the third reads h and ∂h back from memory and writes
 * ∂h again: at 2,048 tokens × 4 streams × 256, 24 MB of the site's ~60. Here the three run
 * on PASS tokens at a time, whose h, ∂mixed and ∂h (about 200 KB at n·d = 1,024) stay in
 * cache between them.
 *
 * The numbers are those of the three kernels (the same functions, called per block): the
 * mixing's per token (hyper_native_mixing.c), the maps' and their parameter sums per PASS tokens
 * (hyper_native_maps.c, the block of hyper_site_native._BLOCK), ∂W's sums per BLOCK tokens
 * (hyper_native_projection.c, whose block is hyper_fused_site._BLOCK rows: a token's row for
 * the RMS projection, n rows for dynamic hc's per-stream layer norm): the same for any thread
 * count, and equal to the three kernels' for the manifold mixes (mhc_lite's ∂q up to rounding:
 * torch forms it there); dynamic hc's ∂W is summed in other blocks, so equal up to rounding.
 *
 * A site handed the previous site's depth connection h = mixed + post ⊗ y (hyper_fused_site)
 * saved mixed, not h (the forward never stores h): each pass forms its tokens' h again into
 * the thread's tile (one per thread, on the heap: a pass's streams can be megabytes, too many
 * for a worker's stack; the manifold kernel's own scratch, dynamic hc's caller's `tiles`), and
 * runs that connection's backward from the pass's finished ∂h
 * (= ∂mixed): ∂y and ∂post come while ∂h is in cache, where depth_backward would read it back.
 *
 * mhc's passes are SINKHORN_PASS tokens, for its Sinkhorn backward (hyper_native_sinkhorn.c),
 * vectorised along the tokens: on 16 at a time the site took 0.02-0.035 longer than as three
 * kernels; on 32 it takes as long as they do (within ±0.01 of x + mlp(x)), and in a network
 * it also takes the handed depth connection's backward (benchmarks/RESULTS.md, the seventh
 * pass; with Sinkhorn a vector of 16 tokens at a time, 16-token passes still measured 0.92×
 * in the tenth). Its maps' sums are still taken per PASS tokens, so every mix's numbers are
 * the three kernels'.
 *
 * Built with hyper_native.c (hyper_native.py); hyper_site_native.py calls it. The file
 * includes itself once per dtype (T, S).
 */
#ifndef T
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define PASS 16   /* tokens per pass of the three steps: their numbers stay in L1 and L2 */
#define BLOCK 128 /* rows per partial sum of ∂W: eight passes */
#define SINKHORN_PASS 32 /* mhc's passes: Sinkhorn's backward is vectorised along the tokens */

enum { MIX_LOGITS = 0, MIX_PERMUTATIONS = 1 }; /* as hyper_native_maps.c's MIX_* */

#define T float
#define S f32
#include "hyper_native_site.c"
#undef T
#undef S

#define T double
#define S f64
#include "hyper_native_site.c"

#else /* the kernel, for one dtype T */

void NAME(width_backward_token)(long n, long d, const T *restrict hb, const T *restrict p,
                                const T *restrict r, const T *restrict gx,
                                const T *restrict gm, T *restrict gh, T *restrict grad_pre,
                                T *restrict grad_res);
void NAME(manifold_backward_block)(long b0, long b1, long n, long c, long mix,
                                   const T *restrict projected, const T *restrict gates,
                                   const T *restrict rest, const T *restrict colscale,
                                   T post_scale, const T *restrict gammas,
                                   const T *restrict basis, const T *restrict inv, long width,
                                   const T *restrict grad_pre, const T *restrict grad_post,
                                   const T *restrict grad_res, T *restrict scaled,
                                   T *restrict coef, T *restrict row);
void NAME(dynamic_backward_block)(long b0, long b1, long n, long d, long use_tanh,
                                  const T *restrict t, const T *restrict projected,
                                  const T *restrict inv, const T *restrict mean,
                                  const T *restrict proj_mean, const T *restrict scales,
                                  const T *restrict grad_pre, const T *restrict grad_res,
                                  const T *restrict grad_post, T *restrict operand,
                                  T *restrict coef, T *restrict out);
void NAME(projection_rows)(long width, long stride, long c, long r0, long r1,
                           const T *restrict h, const T *restrict scaled, const T *restrict coef,
                           const T *restrict wt, T *restrict grad_h, T *restrict acc);
void NAME(depth_rows)(long width, long d, long per_token, long r0, long rt,
                      const T *restrict mixed, const T *restrict post, long post_stride,
                      const T *restrict y, T *restrict rows);
void NAME(depth_backward_token)(long n, long d, const T *restrict gb, const T *restrict q,
                                const T *restrict yb, T *restrict gy, T *restrict gq);
void NAME(sinkhorn_backward_tokens)(long B, long n, long iters, const T *restrict logits,
                                    const T *restrict grad, T *restrict out, long t0, long t1);
void NAME(transpose_into)(long width, long c, long stride, const T *restrict w,
                          T *restrict wt);
void NAME(blocks_into)(long blocks, long c, long width, long stride,
                       const T *restrict partial, T *restrict out);
void NAME(maps_into)(long blocks, long c, long scales, const long *restrict group,
                     const T *restrict partial, T *restrict out);

/* The previous site's depth connection, h = mixed + post ⊗ y, where the site was handed it
 * (hyper_fused_site): its backward for tokens [t0, t1) from their finished ∂h (= ∂mixed),
 * while it is in cache -- ∂y (B, d) and per token ∂post (B, n) (hyper_native_mixing.c). */
typedef struct {
    const T *post, *y; /* post (P, n) with a token stride of 0 or n; y (B, d) */
    long post_stride;
    T *grad_y, *grad_post;
} NAME(depth);

static void NAME(depth_backward_rows)(long n, long d, long t0, long t1,
                                      const T *restrict ghp, const NAME(depth) *depth) {
    for (long b = t0; b < t1; b++)
        NAME(depth_backward_token)(n, d, ghp + (b - t0) * n * d,
                                   depth->post + b * depth->post_stride,
                                   depth->y + b * d, depth->grad_y + b * d,
                                   depth->grad_post + b * n);
}

/* The stream mixing's backward for tokens [t0, t1), whose streams `hp` and gradient `ghp`
 * (t1 - t0, n, d) start at token t0: ∂h, ∂H_pre and ∂H_res (hyper_native_mixing.c). */
static void NAME(mixing_backward)(long n, long d, long t0, long t1, const T *restrict hp,
                                  const T *restrict pre, const T *restrict res,
                                  const T *restrict grad_x, const T *restrict grad_mixed,
                                  T *restrict ghp, T *restrict grad_pre,
                                  T *restrict grad_res) {
    for (long b = t0; b < t1; b++)
        NAME(width_backward_token)(n, d, hp + (b - t0) * n * d, pre + b * n, res + b * n * n,
                                   grad_x + b * d, grad_mixed + b * n * d,
                                   ghp + (b - t0) * n * d, grad_pre + b * n,
                                   grad_res + b * n * n);
}

/* The streams of tokens [t0, t1): h's own rows, or, where the site was handed the previous
 * site's depth connection (h then holds that site's mixed), h = mixed + post ⊗ y formed into
 * `tile` -- the forward never stored them. `per_token` rows of `width` make a token. */
static const T *NAME(pass_streams)(long width, long d, long per_token, long t0, long t1,
                                   const T *restrict h, const NAME(depth) *depth,
                                   long has_depth, T *restrict tile) {
    if (!has_depth) return h + t0 * per_token * width;
    NAME(depth_rows)(width, d, per_token, t0 * per_token, (t1 - t0) * per_token, h,
                     depth->post, depth->post_stride, depth->y, tile);
    return tile;
}

/* mhc_lite's ∂q = ∂H_res·Pᵀ for tokens [t0, t1), from the `count` permutation matrices
 * transposed, perms_t (n², count), which its maps take for H_res's gradient (torch forms it as
 * a matmul in hyper_site_native.backward): each token's ∂q is a row of `count` sums, built up
 * as vectors along the permutations, n² multiply-adds deep (a dot product per permutation
 * would sum 16 numbers across a vector's lanes for each). */
static void NAME(permutation_gradient)(long n, long t0, long t1, const T *restrict grad_res,
                                       const T *restrict perms_t, long count,
                                       T *restrict grad_q) {
    const long nn = n * n;
    for (long b = t0; b < t1; b++) {
        const T *g = grad_res + b * nn;
        T *q = grad_q + b * count;
        for (long k = 0; k < count; k++) q[k] = 0;
        for (long e = 0; e < nn; e++) {
            const T ge = g[e], *pe = perms_t + e * count;
            _Pragma("omp simd") for (long k = 0; k < count; k++) q[k] += ge * pe[k];
        }
    }
}

/* mhc's ∂logits of H_res (B, n²) into grad_logits for tokens [t0, t1): Sinkhorn's backward
 * (hyper_native_sinkhorn.c) from ∂H_res (B, n, n), through its (n, n, B) layout -- logits
 * `log`, and the scratch planes grad_t and out_t (n², B), tokens last. */
static void NAME(sinkhorn_gradient)(long B, long n, long iters, long t0, long t1,
                                    const T *restrict log, const T *restrict grad_res,
                                    T *restrict grad_t, T *restrict out_t,
                                    T *restrict grad_logits) {
    const long nn = n * n;
    for (long e = 0; e < nn; e++)
        for (long b = t0; b < t1; b++) grad_t[e * B + b] = grad_res[b * nn + e];
    NAME(sinkhorn_backward_tokens)(B, n, iters, log, grad_t, out_t, t0, t1);
    for (long b = t0; b < t1; b++)
        for (long e = 0; e < nn; e++) grad_logits[b * nn + e] = out_t[e * B + b];
}

/* Numbers past `at` for `count` more, rounded up to whole 64-byte lines of floats. */
static T *NAME(carve)(T **at, long count) {
    T *start = *at;
    *at += (count + 15) / 16 * 16;
    return start;
}

/* Streams h (B, n, d), per-token H_pre (B, n) and H_res (B, n, n), upstream ∂x (B, d),
 * ∂mixed (B, n, d) and ∂H_post (B, n); the maps' forward state as manifold_backward takes it;
 * mhc_lite's perms (count, n²); W (n·d, c). Out: ∂h (B, n, d); ∂W (n·d, c) in grad_w; the
 * maps' parameter gradients [∂bias (c) | ∂scales (`scales`) | ∂γ (2)] in maps_grads, the
 * scales' added by `group` (c int64 indices, the Connection's buffer).
 * The pass first copies W into Wᵀ (c, stride), rows an odd number of cache lines apart
 * (hyper_native.row_stride); sums ∂W per BLOCK tokens into partial_w (B / BLOCK, c, stride)
 * as projection_backward does, and the maps' per PASS tokens into partial_maps
 * (B / PASS, 2c + 2) as manifold_backward does; and adds both up at the end, in the blocks'
 * order (hyper_native_transpose.c). Those, the per-token scratch (∂H_pre, ∂H_res, ∂q,
 * scaled, coef) and mhc_lite's perms transposed are the kernel's own, one allocation a call:
 * from Python, a dozen buffers and three more calls cost the site 0.3 ms in a network, where
 * the interpreter's data has been pushed out of cache by the streams (benchmarks/RESULTS.md,
 * the eleventh pass).
 * Where `has_depth`, the previous site's depth backward too (depth_backward_rows), from
 * depth_post and depth_y, into depth_grad_y and depth_grad_post; each thread's pass forms its
 * streams into a tile of its own. mhc (mix MIX_LOGITS): its Sinkhorn logits `log` (n, n, B)
 * at `iters` (count n²: ∂logits take ∂q's place), its passes SINKHORN_PASS tokens (above).
 * Returns 0, or 1 where the scratch could not be allocated (nothing written). */
int NAME(site_backward)(long B, long n, long d, long c, long mix, const T *restrict h,
                        const T *restrict pre, const T *restrict res,
                        const T *restrict grad_x, const T *restrict grad_mixed,
                        const T *restrict grad_post, const T *restrict perms, long count,
                        const T *restrict projected, const T *restrict gates,
                        const T *restrict rest, const T *restrict colscale, T post_scale,
                        const T *restrict gammas, const T *restrict basis,
                        const T *restrict inv, const T *restrict w, T *restrict grad_h,
                        T *restrict grad_w, const long *restrict group, long scales,
                        T *restrict maps_grads, long has_depth, const T *restrict depth_post,
                        long depth_post_stride, const T *restrict depth_y,
                        T *restrict depth_grad_y, T *restrict depth_grad_post,
                        const T *restrict log, long iters, int threads) {
    const long width = n * d, span = mix == MIX_LOGITS ? SINKHORN_PASS : PASS;
    const long per_line = 64 / (long)sizeof(T);
    const long stride = (((width + per_line - 1) / per_line) | 1) * per_line;
    const long nn = n * n, maps_blocks = (B + PASS - 1) / PASS, w_blocks = (B + BLOCK - 1) / BLOCK;
    const long planes = mix == MIX_LOGITS ? nn * B : 0, tile = has_depth ? span * width : 0;
    const long sizes[] = {c * stride, maps_blocks * (2 * c + 2), w_blocks * c * stride, B * n,
                          B * nn, B * count, B * c, B, planes, planes, threads * tile,
                          mix == MIX_PERMUTATIONS ? nn * count : 0};
    long total = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) total += (sizes[k] + 15) / 16 * 16;
    T *scratch = aligned_alloc(64, (size_t)total * sizeof(T));
    if (!scratch) return 1;
    T *at = scratch;
    T *wt = NAME(carve)(&at, sizes[0]), *partial_maps = NAME(carve)(&at, sizes[1]);
    T *partial_w = NAME(carve)(&at, sizes[2]), *grad_pre = NAME(carve)(&at, sizes[3]);
    T *grad_res = NAME(carve)(&at, sizes[4]), *grad_q = NAME(carve)(&at, sizes[5]);
    T *scaled = NAME(carve)(&at, sizes[6]), *coef = NAME(carve)(&at, sizes[7]);
    T *grad_t = NAME(carve)(&at, sizes[8]), *out_t = NAME(carve)(&at, sizes[9]);
    T *tiles = NAME(carve)(&at, sizes[10]), *perms_t = NAME(carve)(&at, sizes[11]);
    if (mix == MIX_PERMUTATIONS)
        for (long k = 0; k < count; k++)
            for (long e = 0; e < nn; e++) perms_t[e * count + k] = perms[k * nn + e];
    const NAME(depth) depth = {depth_post, depth_y, depth_post_stride, depth_grad_y,
                               depth_grad_post};
    _Pragma("omp parallel num_threads(threads)") {
        NAME(transpose_into)(width, c, stride, w, wt); /* ends at a barrier: wt is whole */
        _Pragma("omp for schedule(static)")
        for (long r0 = 0; r0 < B; r0 += BLOCK) {
            T *acc = partial_w + r0 / BLOCK * c * stride;
            for (long e = 0; e < c * stride; e++) acc[e] = 0;
            const long r1 = r0 + BLOCK < B ? r0 + BLOCK : B;
            T *own = tiles + omp_get_thread_num() * tile;
            for (long t0 = r0; t0 < r1; t0 += span) {
                const long t1 = t0 + span < r1 ? t0 + span : r1;
                const T *hp = NAME(pass_streams)(width, d, 1, t0, t1, h, &depth, has_depth, own);
                T *ghp = grad_h + t0 * width;
                NAME(mixing_backward)(n, d, t0, t1, hp, pre, res, grad_x, grad_mixed, ghp,
                                      grad_pre, grad_res);
                if (mix == MIX_PERMUTATIONS)
                    NAME(permutation_gradient)(n, t0, t1, grad_res, perms_t, count, grad_q);
                else if (mix == MIX_LOGITS)
                    NAME(sinkhorn_gradient)(B, n, iters, t0, t1, log, grad_res, grad_t, out_t,
                                            grad_q);
                for (long s0 = t0; s0 < t1; s0 += PASS)
                    NAME(manifold_backward_block)(s0, s0 + PASS < t1 ? s0 + PASS : t1, n, c,
                                                  mix, projected, gates, rest, colscale,
                                                  post_scale, gammas, basis, inv, width,
                                                  grad_pre, grad_post,
                                                  mix <= MIX_PERMUTATIONS ? grad_q : grad_res,
                                                  scaled, coef,
                                                  partial_maps + s0 / PASS * (2 * c + 2));
                NAME(projection_rows)(width, stride, c, 0, t1 - t0, hp, scaled + t0 * c,
                                      coef + t0, wt, ghp, acc);
                if (has_depth) NAME(depth_backward_rows)(n, d, t0, t1, ghp, &depth);
            }
        } /* a barrier: every block's sums are in */
        _Pragma("omp single nowait")
        NAME(maps_into)(maps_blocks, c, scales, group, partial_maps, maps_grads);
        NAME(blocks_into)(w_blocks, c, width, stride, partial_w, grad_w);
    }
    free(scratch);
    return 0;
}

/* Dynamic hc's: its maps' state t (B, n, n + 2) and the projection's (projected, inv, mean,
 * proj_mean = mean_d(W), scales) as dynamic_backward takes them; columns (n + 3, d), Wᵀ with a
 * row of ones, rows `stride` apart, against each stream's operand [∂out·r | shift]. Out: ∂h,
 * partial_maps (B / PASS, 3n + n² + 4) as dynamic_backward's, partial_w (B / BLOCK, n + 3,
 * stride). Scratch:
 * grad_pre (B, n), grad_res (B, n, n), operand (B·n, n + 3), coef (B·n). The previous site's
 * depth backward where `has_depth`, as site_backward's, with tiles (threads, PASS · n·d). */
void NAME(dynamic_site_backward)(long B, long n, long d, long use_tanh, const T *restrict h,
                                 const T *restrict pre, const T *restrict res,
                                 const T *restrict grad_x, const T *restrict grad_mixed,
                                 const T *restrict grad_post, const T *restrict t,
                                 const T *restrict projected, const T *restrict inv,
                                 const T *restrict mean, const T *restrict proj_mean,
                                 const T *restrict scales, const T *restrict columns,
                                 long stride, T *restrict grad_h, T *restrict partial_maps,
                                 T *restrict partial_w, T *restrict grad_pre,
                                 T *restrict grad_res, T *restrict operand, T *restrict coef,
                                 long has_depth, const T *restrict depth_post,
                                 long depth_post_stride, const T *restrict depth_y,
                                 T *restrict depth_grad_y, T *restrict depth_grad_post,
                                 T *restrict tiles, int threads) {
    const long nn = n * n, c = n + 3, sums = 3 * n + nn + 4;
    const NAME(depth) depth = {depth_post, depth_y, depth_post_stride, depth_grad_y,
                               depth_grad_post};
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long r0 = 0; r0 < B; r0 += BLOCK) {
        T *acc = partial_w + r0 / BLOCK * c * stride;
        for (long e = 0; e < c * stride; e++) acc[e] = 0;
        const long r1 = r0 + BLOCK < B ? r0 + BLOCK : B;
        T *tile = has_depth ? tiles + omp_get_thread_num() * PASS * n * d : (T *)0;
        for (long t0 = r0; t0 < r1; t0 += PASS) {
            const long t1 = t0 + PASS < r1 ? t0 + PASS : r1;
            const T *hp = NAME(pass_streams)(d, d, n, t0, t1, h, &depth, has_depth, tile);
            T *ghp = grad_h + t0 * n * d;
            NAME(mixing_backward)(n, d, t0, t1, hp, pre, res, grad_x, grad_mixed, ghp,
                                  grad_pre, grad_res);
            NAME(dynamic_backward_block)(t0, t1, n, d, use_tanh, t, projected, inv, mean,
                                         proj_mean, scales, grad_pre, grad_res, grad_post,
                                         operand, coef, partial_maps + t0 / PASS * sums);
            NAME(projection_rows)(d, stride, c, 0, (t1 - t0) * n, hp, operand + t0 * n * c,
                                  coef + t0 * n, columns, ghp, acc);
            if (has_depth) NAME(depth_backward_rows)(n, d, t0, t1, ghp, &depth);
        }
    }
}

#endif

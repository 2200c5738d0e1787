/* A per-token site's projection, each way in one pass over the streams. The forward
 * (`projection_forward`, at the end): h·W with the sums of squares of the norm, which torch
 * reads h a second time for; `depth_projection_forward` forms h there too, tile by tile from
 * the previous site's depth connection, and never stores it (the width connection and the
 * backward form it again as they go). The backward, for rows h (R, width) -- vec h per token for the RMS projection, each stream for dynamic hc's layer
 * norm -- and the operands hyper_fused_site.py forms (scaled (R, c), coef (R)):
 *
 *     ∂h += scaled·Wᵀ + coef ⊙ h    and    ∂W = hᵀ·scaled,
 *
 * where torch makes three passes (addmm_ and addcmul_ into ∂h, a GEMM for ∂W). Tokens go in
 * groups of GROUP, so each group reads Wᵀ (c, width) and the ∂W accumulator once from L2
 * while the group's rows stay in registers, chunk by chunk of the width. ∂W is summed per
 * fixed block of `block` rows into partial (blocks, c, stride), which the caller adds: the same
 * numbers for any thread count. Wᵀ's rows and the accumulator's are `stride` apart
 * (hyper_native.row_stride: an odd number of cache lines), so the c rows the group walks
 * down fall in different cache sets: at a width of 1,024 floats, 4 KB apart, all c would map
 * to one set of L1 and L2 and evict each other (measured: the pass 15-35% faster padded).
 *
 * Built with hyper_native.c (hyper_native.py); GCC/Clang vector extensions (lowered to the
 * machine's SIMD by -march=native). The file includes itself once per dtype (T, S).
 */
#ifndef T
#include <stddef.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define GROUP 8     /* rows sharing one read of Wᵀ and of the ∂W accumulator */
#define VBYTES 64   /* one vector: 16 floats or 8 doubles */
#define TILE_ROWS 6 /* the forward's tiles: 6 tokens × 4 rows of Wᵀ, 24 sums in registers */
#define TILE_COLS 4

#define T float
#define S f32
#include "hyper_native_projection.c"
#undef T
#undef S

#define T double
#define S f64
#include "hyper_native_projection.c"

#else /* the kernel, for one dtype T */

typedef T NAME(vec) __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));
#define LANES ((long)(VBYTES / sizeof(T)))

/* Rows [r0, r0 + g) of the group, g ≤ GROUP, columns [e0, e1) (whole vectors). */
static inline __attribute__((always_inline)) void NAME(group_vectors)(
    long width, long stride, long c, long r0, long g, long e0, long e1, const T *restrict h,
    const T *restrict scaled, const T *restrict coef, const T *restrict wt, T *restrict grad_h,
    T *restrict acc) {
    typedef NAME(vec) V;
    for (long e = e0; e < e1; e += LANES) {
        V hv[GROUP], gv[GROUP];
        for (long t = 0; t < g; t++) {
            hv[t] = *(const V *)(h + (r0 + t) * width + e);
            gv[t] = *(V *)(grad_h + (r0 + t) * width + e) + coef[r0 + t] * hv[t];
        }
        for (long k = 0; k < c; k++) {
            const V w = *(const V *)(wt + k * stride + e);
            V a = *(V *)(acc + k * stride + e);
            for (long t = 0; t < g; t++) {
                const T s = scaled[(r0 + t) * c + k];
                gv[t] += s * w;
                a += s * hv[t];
            }
            *(V *)(acc + k * stride + e) = a;
        }
        for (long t = 0; t < g; t++) *(V *)(grad_h + (r0 + t) * width + e) = gv[t];
    }
}

/* The same for the columns [e0, width) past the last whole vector, one number at a time. */
static void NAME(group_tail)(long width, long stride, long c, long r0, long g, long e0,
                             const T *restrict h, const T *restrict scaled,
                             const T *restrict coef, const T *restrict wt, T *restrict grad_h,
                             T *restrict acc) {
    for (long t = 0; t < g; t++) {
        const long r = r0 + t;
        for (long e = e0; e < width; e++) {
            T gh = grad_h[r * width + e] + coef[r] * h[r * width + e];
            for (long k = 0; k < c; k++) {
                gh += scaled[r * c + k] * wt[k * stride + e];
                acc[k * stride + e] += scaled[r * c + k] * h[r * width + e];
            }
            grad_h[r * width + e] = gh;
        }
    }
}

/* Rows [r0, r1) of the backward, ∂W's part added into acc (c, width): in the calling thread
 * (also called by hyper_native_site.c, block by block of a whole site's backward). */
void NAME(projection_rows)(long width, long stride, long c, long r0, long r1,
                           const T *restrict h, const T *restrict scaled, const T *restrict coef,
                           const T *restrict wt, T *restrict grad_h, T *restrict acc) {
    const long whole = width / LANES * LANES;
    for (long g0 = r0; g0 < r1; g0 += GROUP) {
        const long g = r1 - g0 < GROUP ? r1 - g0 : GROUP;
        if (g == GROUP) /* a constant group: its rows stay in registers */
            NAME(group_vectors)(width, stride, c, g0, GROUP, 0, whole, h, scaled, coef, wt,
                                grad_h, acc);
        else
            NAME(group_vectors)(width, stride, c, g0, g, 0, whole, h, scaled, coef, wt, grad_h,
                                acc);
        NAME(group_tail)(width, stride, c, g0, g, whole, h, scaled, coef, wt, grad_h, acc);
    }
}

void NAME(projection_backward)(long R, long width, long stride, long c, const T *restrict h,
                               const T *restrict scaled, const T *restrict coef,
                               const T *restrict wt, T *restrict grad_h, long block,
                               T *restrict partial, int threads) {
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long r0 = 0; r0 < R; r0 += block) {
        T *acc = partial + r0 / block * c * stride;
        for (long e = 0; e < c * stride; e++) acc[e] = 0;
        NAME(projection_rows)(width, stride, c, r0, r0 + block < R ? r0 + block : R, h, scaled,
                              coef, wt, grad_h, acc);
    }
}

/* The forward: out (R, c) = h·W and sumsq (R) = Σ h², from Wᵀ (c, width), with h read from
 * memory once (torch reads it twice: the GEMM, and the norm). Tokens go in tiles of TILE_ROWS:
 * the tile's squares first, which brings its rows into L1; then Wᵀ's rows TILE_COLS at a time
 * against them, TILE_ROWS × TILE_COLS independent vector sums along the width (in registers),
 * each summed across its lanes at the end. Every token's numbers come from one thread in a
 * fixed order: the same for any thread count. */
static inline __attribute__((always_inline)) void NAME(forward_tile)(
    long width, long c, long r0, long rt, long k0, long kt, const T *restrict h,
    const T *restrict wt, T *restrict out) {
    typedef NAME(vec) V;
    const long whole = width / LANES * LANES;
    V acc[TILE_ROWS][TILE_COLS];
    for (long t = 0; t < rt; t++)
        for (long k = 0; k < kt; k++) acc[t][k] = (V){0};
    for (long e = 0; e < whole; e += LANES) {
        V x[TILE_ROWS];
        for (long t = 0; t < rt; t++) x[t] = *(const V *)(h + (r0 + t) * width + e);
        for (long k = 0; k < kt; k++) {
            const V w = *(const V *)(wt + (k0 + k) * width + e);
            for (long t = 0; t < rt; t++) acc[t][k] += x[t] * w;
        }
    }
    for (long t = 0; t < rt; t++)
        for (long k = 0; k < kt; k++) {
            T total = 0;
            for (long l = 0; l < LANES; l++) total += acc[t][k][l];
            for (long e = whole; e < width; e++)
                total += h[(r0 + t) * width + e] * wt[(k0 + k) * width + e];
            out[(r0 + t) * c + k0 + k] = total;
        }
}

static void NAME(squares)(long width, long r0, long rt, const T *restrict h,
                          T *restrict sumsq) {
    typedef NAME(vec) V;
    const long whole = width / LANES * LANES;
    for (long t = 0; t < rt; t++) {
        const T *row = h + (r0 + t) * width;
        V a = {0}, b = {0}; /* two chains: the adds' latency, not their rate, would bound one */
        long e = 0;
        for (; e + 2 * LANES <= whole; e += 2 * LANES) {
            const V x = *(const V *)(row + e), y = *(const V *)(row + e + LANES);
            a += x * x;
            b += y * y;
        }
        for (; e < whole; e += LANES) {
            const V x = *(const V *)(row + e);
            a += x * x;
        }
        a += b;
        T total = 0;
        for (long l = 0; l < LANES; l++) total += a[l];
        for (e = whole; e < width; e++) total += row[e] * row[e];
        sumsq[r0 + t] = total;
    }
}

/* Rows [r0, r0 + rt) of streams h = mixed + post ⊗ y, the previous site's depth connection
 * (hyper_native.c's depth_forward), into `rows` (rt, width): row r holds `per_token` of its
 * token's streams (all n for vec h, one for a stream's row), each stream's d numbers its mixed
 * plus its H_post weight times the token's y. Also called by hyper_native_site.c, whose
 * backward forms each block's streams again. */
void NAME(depth_rows)(long width, long d, long per_token, long r0, long rt,
                      const T *restrict mixed, const T *restrict post, long post_stride,
                      const T *restrict y, T *restrict rows) {
    for (long r = r0; r < r0 + rt; r++) {
        const long b = r / per_token, first = r % per_token;
        const T *yb = y + b * d, *q = post + b * post_stride;
        for (long s = 0; s * d < width; s++) {
            const T *m = mixed + r * width + s * d, qs = q[first + s];
            T *o = rows + (r - r0) * width + s * d;
            _Pragma("omp simd") for (long k = 0; k < d; k++) o[k] = m[k] + qs * yb[k];
        }
    }
}

/* out (R, c) = rows·W and sumsq (R) = Σ rows², for R rows of `width` in the calling thread,
 * tile by tile (forward_tile). Also called by hyper_native_site_forward.c, on the rows of a
 * block of tokens it formed. */
void NAME(rows_products)(long R, long width, long c, const T *restrict rows,
                         const T *restrict wt, T *restrict out, T *restrict sumsq) {
    for (long r0 = 0; r0 < R; r0 += TILE_ROWS) {
        const long rt = R - r0 < TILE_ROWS ? R - r0 : TILE_ROWS;
        NAME(squares)(width, r0, rt, rows, sumsq);
        for (long k0 = 0; k0 < c; k0 += TILE_COLS) {
            const long kt = c - k0 < TILE_COLS ? c - k0 : TILE_COLS;
            if (rt == TILE_ROWS && kt == TILE_COLS) /* constant counts: sums in registers */
                NAME(forward_tile)(width, c, r0, TILE_ROWS, k0, TILE_COLS, rows, wt, out);
            else
                NAME(forward_tile)(width, c, r0, rt, k0, kt, rows, wt, out);
        }
    }
}

/* rows_products over R rows split among the threads, a tile each. Where `mixed` is given,
 * each tile's rows are first formed by depth_rows into the thread's `tile` (TILE_ROWS rows, on
 * its stack) and read back from L1: h itself is never written (the site's backward forms it
 * again, block by block). */
static void NAME(forward_rows)(long R, long width, long c, const T *restrict h,
                               const T *restrict wt, T *restrict out, T *restrict sumsq,
                               long d, long per_token, const T *restrict mixed,
                               const T *restrict post, long post_stride, const T *restrict y,
                               int threads) {
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long r0 = 0; r0 < R; r0 += TILE_ROWS) {
        const long rt = R - r0 < TILE_ROWS ? R - r0 : TILE_ROWS;
        T tile[mixed ? TILE_ROWS * width : 1];
        const T *rows = h + r0 * width;
        if (mixed) {
            NAME(depth_rows)(width, d, per_token, r0, rt, mixed, post, post_stride, y, tile);
            rows = tile;
        }
        NAME(rows_products)(rt, width, c, rows, wt, out + r0 * c, sumsq + r0);
    }
}

void NAME(projection_forward)(long R, long width, long c, const T *restrict h,
                              const T *restrict wt, T *restrict out, T *restrict sumsq,
                              int threads) {
    NAME(forward_rows)(R, width, c, h, wt, out, sumsq, 0, 0, (const T *)0, (const T *)0, 0,
                       (const T *)0, threads);
}

/* The same for the streams of a site handed its predecessor's depth connection, h = mixed +
 * post ⊗ y, from mixed (R, width), post (P, n) with `post_stride` (0: one shared copy) and
 * y (B, d), formed tile by tile and never stored: where depth_forward would write h and this
 * pass read it back. `per_token`: rows a token takes (1 for vec h, n for each stream's row). */
void NAME(depth_projection_forward)(long R, long width, long c, long d, long per_token,
                                    const T *restrict mixed, const T *restrict post,
                                    long post_stride, const T *restrict y,
                                    const T *restrict wt, T *restrict out, T *restrict sumsq,
                                    int threads) {
    NAME(forward_rows)(R, width, c, mixed, wt, out, sumsq, d, per_token, mixed, post,
                       post_stride, y, threads);
}

#undef LANES
#endif

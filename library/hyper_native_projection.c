/* A per-token site's projection, each way in one pass over the streams. The forward
 * (`projection_forward`, at the end): h·W with the sums of squares of the norm, which torch
 * reads h a second time for; `depth_projection_forward` forms h there too, tile by tile from
 * the previous site's depth connection, and never stores it (the width connection and the
 * backward form it again as they go). The backward, for rows h (R, width) -- vec h per token
 * for the RMS projection, each stream for dynamic hc's layer norm -- and the operands
 * hyper_fused_site.py forms (scaled (R, c), coef (R)):
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
#define TILE_ROWS 6 /* the forward's tiles: 6 tokens × a panel of W, up to 15 sums in registers */

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

/* The forward: out (R, c) = h·W and sumsq (R) = Σ h², from W packed (width, cp) -- c columns
 * and zeros up to cp, a multiple of HALF (hyper_native.packed_columns) -- with h read from
 * memory once (torch reads it twice: the GEMM, and the norm). Tokens go in tiles of TILE_ROWS
 * rows, the tile's squares first, which brings its rows into L1; then W's columns a panel at
 * a time, as a GEMM's microkernel does: a panel is up to two whole vectors and a half vector
 * of one row of W, and each of the tile's numbers h[t, k] is broadcast against the panel's
 * vectors of W's row k, TILE_ROWS × 2.5 vector sums in registers, summed along k with no
 * reduction across lanes. A panel of one vector keeps two sums per row, k even and odd: one
 * chain per row would wait on the multiply-add's latency. Against dot products along the
 * width (TILE_ROWS × 4 rows of Wᵀ, each summed across its lanes at the end), two threads,
 * 2,048 rows of 1,024 floats: 1.44× at c = 24, 1.48× at c = 32, and 1.48× on dynamic hc's
 * rows (8,192 of 256 floats, c = 7; benchmarks/RESULTS.md, the ninth pass). Every token's
 * numbers come from one thread in a fixed order: the same for any thread count. */
typedef T NAME(half) __attribute__((vector_size(VBYTES / 2), aligned(sizeof(T)), may_alias));
#define HALF (LANES / 2)

/* Rows [r0, r0 + rt) of out (R, c) at the panel's columns [q0, q0 + full·LANES + half·HALF),
 * full ≤ 2 and half ≤ 1 (both constants where inlined), from rows (R, width) and wp. */
static inline __attribute__((always_inline)) void NAME(panel_tile)(
    long width, long c, long cp, long r0, long rt, long full, long half, long q0,
    const T *restrict rows, const T *restrict wp, T *restrict out) {
    typedef NAME(vec) V;
    typedef NAME(half) H;
    const long split = full + half == 1; /* one vector: sums for k even and k odd */
    V a[TILE_ROWS], b[TILE_ROWS], a_odd[TILE_ROWS];
    H q[TILE_ROWS], q_odd[TILE_ROWS];
    for (long t = 0; t < rt; t++) a[t] = b[t] = a_odd[t] = (V){0}, q[t] = q_odd[t] = (H){0};
    const T *x = rows + r0 * width, *w = wp + q0;
    long k = 0;
    if (split)
        for (; k + 2 <= width; k += 2) {
            const T *w0 = w + k * cp, *w1 = w0 + cp;
            for (long t = 0; t < rt; t++) {
                const T s0 = x[t * width + k], s1 = x[t * width + k + 1];
                if (full) a[t] += s0 * *(const V *)w0, a_odd[t] += s1 * *(const V *)w1;
                else q[t] += s0 * *(const H *)w0, q_odd[t] += s1 * *(const H *)w1;
            }
        }
    for (; k < width; k++) {
        const T *wk = w + k * cp;
        for (long t = 0; t < rt; t++) {
            const T s = x[t * width + k];
            if (full > 0) a[t] += s * *(const V *)wk;
            if (full > 1) b[t] += s * *(const V *)(wk + LANES);
            if (half) q[t] += s * *(const H *)(wk + full * LANES);
        }
    }
    const long span = full * LANES + half * HALF, kept = c - q0 < span ? c - q0 : span;
    for (long t = 0; t < rt; t++) {
        T lane[2 * LANES + HALF];
        *(V *)lane = a[t] + a_odd[t];
        *(V *)(lane + LANES) = b[t];
        *(H *)(lane + full * LANES) = q[t] + q_odd[t];
        for (long l = 0; l < kept; l++) out[(r0 + t) * c + q0 + l] = lane[l];
    }
}

/* panel_tile with its shape as constants: the compiler keeps the sums in registers. */
#define PANEL(rt_)                                                                            \
    (full == 2 && half ? NAME(panel_tile)(width, c, cp, r0, rt_, 2, 1, q0, rows, wp, out)    \
     : full == 2       ? NAME(panel_tile)(width, c, cp, r0, rt_, 2, 0, q0, rows, wp, out)    \
     : full && half    ? NAME(panel_tile)(width, c, cp, r0, rt_, 1, 1, q0, rows, wp, out)    \
     : full            ? NAME(panel_tile)(width, c, cp, r0, rt_, 1, 0, q0, rows, wp, out)    \
                       : NAME(panel_tile)(width, c, cp, r0, rt_, 0, 1, q0, rows, wp, out))

static void NAME(panel)(long width, long c, long cp, long r0, long rt, long full, long half,
                        long q0, const T *restrict rows, const T *restrict wp,
                        T *restrict out) {
    if (rt == TILE_ROWS) PANEL(TILE_ROWS);
    else PANEL(rt);
}
#undef PANEL

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
 * tile by tile and panel by panel: cp / HALF half vectors of columns in panels of 5 (two
 * vectors and a half), the last of 1-4, or two of 3 where 6 are left. Also called by
 * hyper_native_site_forward.c, on the rows of a block of tokens it formed. */
void NAME(rows_products)(long R, long width, long c, long cp, const T *restrict rows,
                         const T *restrict wp, T *restrict out, T *restrict sumsq) {
    for (long r0 = 0; r0 < R; r0 += TILE_ROWS) {
        const long rt = R - r0 < TILE_ROWS ? R - r0 : TILE_ROWS;
        NAME(squares)(width, r0, rt, rows, sumsq);
        for (long q0 = 0; q0 < c; ) {
            const long left = (cp - q0) / HALF, units = left == 6 ? 3 : left < 5 ? left : 5;
            NAME(panel)(width, c, cp, r0, rt, units / 2, units % 2, q0, rows, wp, out);
            q0 += units * HALF;
        }
    }
}

/* rows_products over R rows split among the threads, a tile each. Where `mixed` is given,
 * each tile's rows are first formed by depth_rows into the thread's `tile` (TILE_ROWS rows, on
 * its stack) and read back from L1: h itself is never written (the site's backward forms it
 * again, block by block). */
static void NAME(forward_rows)(long R, long width, long c, const T *restrict h, long cp,
                               const T *restrict wp, T *restrict out, T *restrict sumsq, long d,
                               long per_token, const T *restrict mixed,
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
        NAME(rows_products)(rt, width, c, cp, rows, wp, out + r0 * c, sumsq + r0);
    }
}

void NAME(projection_forward)(long R, long width, long c, const T *restrict h, long cp,
                              const T *restrict wp, T *restrict out, T *restrict sumsq,
                              int threads) {
    NAME(forward_rows)(R, width, c, h, cp, wp, out, sumsq, 0, 0, (const T *)0, (const T *)0,
                       0, (const T *)0, threads);
}

/* The same for the streams of a site handed its predecessor's depth connection, h = mixed +
 * post ⊗ y, from mixed (R, width), post (P, n) with `post_stride` (0: one shared copy) and
 * y (B, d), formed tile by tile and never stored: where depth_forward would write h and this
 * pass read it back. `per_token`: rows a token takes (1 for vec h, n for each stream's row). */
void NAME(depth_projection_forward)(long R, long width, long c, long d, long per_token,
                                    const T *restrict mixed, const T *restrict post,
                                    long post_stride, const T *restrict y,
                                    long cp, const T *restrict wp, T *restrict out,
                                    T *restrict sumsq, int threads) {
    NAME(forward_rows)(R, width, c, mixed, cp, wp, out, sumsq, d, per_token, mixed, post,
                       post_stride, y, threads);
}

#undef LANES
#undef HALF
#endif

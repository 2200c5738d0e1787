/* The projection's weights in and its gradient out, for the backward's C pass: W (width, c)
 * into Wᵀ with padded rows (`padded_transpose`), and ∂W's partial sums (blocks, c, stride)
 * added and turned back to (width, c) (`summed_transpose`). torch does each as two or three
 * ops: a zeroed buffer, then a strided copy of W.T into it (97 µs a call for mhc_lite's
 * 1,024 × 32 W on two threads); a sum over the blocks, then a transposing copy. Here each is
 * one pass, a tile of TILE × TILE numbers at a time, so both sides of the transpose are read
 * and written a cache line at a time.
 *
 * The blocks are added in their order, one by one, for every number: the same result for
 * any thread count (the blocks themselves are fixed; hyper_fused_site._BLOCK). `maps_into`
 * adds a manifold site's map parameter sums the same way. site_backward (hyper_native_site.c)
 * runs all three inside its own parallel region, before and after its passes: called from
 * Python, each costs 3-4 times its C time in a network, where the interpreter's own data has
 * been pushed out of cache by the streams.
 *
 * Built with hyper_native.c (hyper_native.py); the file includes itself once per dtype (T, S).
 */
#ifndef T
#include <stddef.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define TILE 16 /* a float cache line; two lines of doubles */

#define T float
#define S f32
#include "hyper_native_transpose.c"
#undef T
#undef S

#define T double
#define S f64
#include "hyper_native_transpose.c"

#else /* the kernels, for one dtype T */

/* Wᵀ (c, stride) from W (width, c): row j holds W's column j, zeros past the width. Shares
 * its loops among the threads of the caller's parallel region (site_backward's too). */
void NAME(transpose_into)(long width, long c, long stride, const T *restrict w,
                          T *restrict wt) {
    _Pragma("omp for schedule(static) nowait")
    for (long i0 = 0; i0 < width; i0 += TILE) {
        const long i1 = i0 + TILE < width ? i0 + TILE : width;
        for (long j0 = 0; j0 < c; j0 += TILE) {
            const long j1 = j0 + TILE < c ? j0 + TILE : c;
            for (long j = j0; j < j1; j++)
                for (long i = i0; i < i1; i++) wt[j * stride + i] = w[i * c + j];
        }
    }
    _Pragma("omp for schedule(static)")
    for (long j = 0; j < c; j++)
        for (long i = width; i < stride; i++) wt[j * stride + i] = 0;
}

/* out (width, c) = Σ_b partial[b]ᵀ, the first `width` columns of each block's (c, stride);
 * shares its loop among the region's threads, as transpose_into. */
void NAME(blocks_into)(long blocks, long c, long width, long stride,
                       const T *restrict partial, T *restrict out) {
    _Pragma("omp for schedule(static)")
    for (long i0 = 0; i0 < width; i0 += TILE) {
        const long i1 = i0 + TILE < width ? i0 + TILE : width;
        for (long j0 = 0; j0 < c; j0 += TILE) {
            const long j1 = j0 + TILE < c ? j0 + TILE : c;
            T tile[TILE][TILE];
            for (long j = j0; j < j1; j++) {
                T *sum = tile[j - j0];
                const T *row = partial + j * stride;
                for (long i = i0; i < i1; i++) sum[i - i0] = row[i];
                for (long b = 1; b < blocks; b++) {
                    const T *next = row + b * c * stride;
                    for (long i = i0; i < i1; i++) sum[i - i0] += next[i];
                }
            }
            for (long i = i0; i < i1; i++)
                for (long j = j0; j < j1; j++) out[i * c + j] = tile[j - j0][i - i0];
        }
    }
}

/* A manifold site's map parameter gradients from their blocks' sums (blocks, 2c + 2) =
 * [Σ ∂logits | Σ ∂logits·projected | ∂γ] (hyper_native_maps.c): out (c + scales + 2) =
 * [∂bias | ∂scales | ∂γ], each logit's term of the scales added into its scale's (`group`,
 * the Connection's buffer: int64 indices); blocks added in their order. One thread. */
void NAME(maps_into)(long blocks, long c, long scales, const long *restrict group,
                     const T *restrict partial, T *restrict out) {
    const long row = 2 * c + 2;
    for (long s = 0; s < scales; s++) out[c + s] = 0;
    for (long e = 0; e < row; e++) {
        T sum = partial[e];
        for (long b = 1; b < blocks; b++) sum += partial[b * row + e];
        if (e < c)
            out[e] = sum;
        else if (e < 2 * c)
            out[c + group[e - c]] += sum;
        else
            out[c + scales + e - 2 * c] = sum;
    }
}

void NAME(padded_transpose)(long width, long c, long stride, const T *restrict w,
                            T *restrict wt, int threads) {
    _Pragma("omp parallel num_threads(threads)") NAME(transpose_into)(width, c, stride, w, wt);
}

void NAME(summed_transpose)(long blocks, long c, long width, long stride,
                            const T *restrict partial, T *restrict out, int threads) {
    _Pragma("omp parallel num_threads(threads)")
    NAME(blocks_into)(blocks, c, width, stride, partial, out);
}

/* maps_into from Python: `partial` before `group`, since hyper_native.call takes the dtype
 * from its first tensor. */
void NAME(maps_sums)(long blocks, long c, long scales, const T *restrict partial,
                     const long *restrict group, T *restrict out, int threads) {
    (void)threads; /* a few hundred additions: not worth waking the threads */
    NAME(maps_into)(blocks, c, scales, group, partial, out);
}

#endif

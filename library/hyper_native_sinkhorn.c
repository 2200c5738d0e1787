/* mHC's Sinkhorn steps, forward and exact backward, one vector of tokens at a time with the
 * whole n × n matrix of each in registers: entry (i, j) of LANES tokens is one vector, so a
 * normalisation is n sums of n vectors, a reciprocal and n² products, and no loop runs over
 * the tokens. The steps are hyper_sinkhorn.py's, each entry's operations in the order of
 * hyper_native.c's loops:
 *
 *     step 0 (over i, each column j) and step 1 (over j, each row i): a softmax of the line,
 *         its maximum subtracted first; step 1 starts from step 0's log-softmax;
 *     steps 2 … 2·iters - 1: the line divided by its sum, columns on even steps.
 *
 * The backward recomputes the steps into a local array of 2·iters·n² vectors and maps the
 * gradient back through them, g ← g - S·Σ_line g. Why not hyper_native.c's loops: those run
 * along a block's tokens (32 in a site's backward pass) for every line of every step, loops
 * of two vectors, and call libm's exp and log one number at a time -- 0.62 ms for a thread's
 * 1,024 tokens in passes of 32 (n 4, 20 iterations, float32, one thread) against 0.20 ms
 * here. Those loops stay for a backward whose vector of tokens' steps would not fit STEPS
 * numbers (2·iters·n²·LANES: n 8 at 33 iterations and more in float32), and the tokens past
 * the last whole vector go through a vector padded with zero logits.
 *
 * e^x of the shifted logits (x ≤ 0) is hyper_native_math.c's (float32: within a few roundings
 * of expf, which those loops call; libm in float64, the same numbers), and libm's where it
 * underflows: logits hundreds of nats apart leave entries that are exactly 0 or subnormal
 * there, and a clamped e^x would let later steps normalise them up. Built with
 * hyper_native.c (hyper_native.py); GCC/Clang vector extensions. The file includes itself once
 * per dtype (T, S, I: an integer of T's size).
 */
#ifndef T
#include <math.h>
#include <stddef.h>
#include <string.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define VBYTES 64   /* one vector: 16 floats or 8 doubles */
#define STEPS 65536 /* hyper_native.c's: the most recomputed step numbers on a thread's stack */

#define T float
#define S f32
#define I int
#define EXP expf
#define LOG logf
#define UNDERFLOW -87.0f /* hyper_native_math.c's e^x holds there, expf goes subnormal below */
#include "hyper_native_sinkhorn.c"
#undef T
#undef S
#undef I
#undef EXP
#undef LOG
#undef UNDERFLOW

#define T double
#define S f64
#define I long
#define EXP exp
#define LOG log
#define UNDERFLOW -708.0
#include "hyper_native_sinkhorn.c"

#else /* the kernels, for one dtype T */

typedef T NAME(svec) __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));
typedef I NAME(smask) __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));
#define LANES ((long)(VBYTES / sizeof(T)))

void NAME(exp_nonpositive_values)(long m, const T *x, T *out); /* hyper_native_math.c */
void NAME(sinkhorn_backward_chunked)(long B, long n, long iters, const T *restrict logits,
                                     const T *restrict grad, T *restrict out, long t0,
                                     long t1); /* hyper_native.c */

/* Entry k of line `line`: (k, line) for a column (rows = 0), (line, k) for a row. */
#define AT(line, k) (rows ? (line) * n + (k) : (k) * n + (line))

/* One softmax step of M (n² vectors) along its lines, each line's maximum subtracted first;
 * with `logs`, the log-softmax there too (step 0's, which step 1 starts from). */
static inline __attribute__((always_inline)) void NAME(softmax_step)(
    long n, int rows, NAME(svec) *restrict M, NAME(svec) *restrict logs) {
    typedef NAME(svec) V;
    typedef NAME(smask) K;
    V e[n * n];
    for (long line = 0; line < n; line++) {
        V top = M[AT(line, 0)];
        for (long k = 1; k < n; k++) {
            const V x = M[AT(line, k)];
            const K greater = x > top;
            top = (V)(((K)x & greater) | ((K)top & ~greater));
        }
        for (long k = 0; k < n; k++) e[AT(line, k)] = M[AT(line, k)] - top;
    }
    if (logs) memcpy(logs, e, sizeof e);
    V shifted[n * n];
    memcpy(shifted, e, sizeof e);
    NAME(exp_nonpositive_values)(n * n * LANES, (const T *)e, (T *)e);
    for (long at = 0; at < n * n; at++) /* where e^x underflows, libm's value (0, subnormals) */
        for (long l = 0; l < LANES; l++)
            if (shifted[at][l] < UNDERFLOW) e[at][l] = EXP(shifted[at][l]);
    for (long line = 0; line < n; line++) {
        V total = e[AT(line, 0)];
        for (long k = 1; k < n; k++) total += e[AT(line, k)];
        if (logs) {
            V log_total;
            for (long l = 0; l < LANES; l++) log_total[l] = LOG(total[l]);
            for (long k = 0; k < n; k++) logs[AT(line, k)] -= log_total;
        }
        const V inverse = 1 / total;
        for (long k = 0; k < n; k++) M[AT(line, k)] = e[AT(line, k)] * inverse;
    }
}

/* One later step: each line of M divided by its sum. */
static inline __attribute__((always_inline)) void NAME(normalise_step)(
    long n, int rows, NAME(svec) *restrict M) {
    for (long line = 0; line < n; line++) {
        NAME(svec) total = M[AT(line, 0)];
        for (long k = 1; k < n; k++) total += M[AT(line, k)];
        const NAME(svec) inverse = 1 / total;
        for (long k = 0; k < n; k++) M[AT(line, k)] *= inverse;
    }
}

/* All 2·iters steps of M in place; with `saved` (2·iters·n² vectors), each step's softmax. */
static inline __attribute__((always_inline)) void NAME(steps)(
    long n, long iters, NAME(svec) *restrict M, NAME(svec) *restrict saved) {
    NAME(svec) logs[n * n];
    NAME(softmax_step)(n, 0, M, logs);
    if (saved) memcpy(saved, M, sizeof logs);
    memcpy(M, logs, sizeof logs); /* step 1 starts from step 0's log-softmax */
    NAME(softmax_step)(n, 1, M, 0);
    if (saved) memcpy(saved + n * n, M, sizeof logs);
    for (long step = 2; step < 2 * iters; step++) {
        NAME(normalise_step)(n, (int)(step % 2), M);
        if (saved) memcpy(saved + step * n * n, M, sizeof logs);
    }
}

/* Tokens [b0, b0 + LANES) of planes (n², B) into M (n² vectors), or `m` < LANES of them
 * into a vector padded with zeros (uniform logits past the tokens, a zero gradient). */
static inline void NAME(load_tokens)(long n, long B, long b0, long m, const T *restrict from,
                                     NAME(svec) *restrict M) {
    for (long e = 0; e < n * n; e++) {
        if (m == LANES) {
            M[e] = *(const NAME(svec) *)(from + e * B + b0);
            continue;
        }
        for (long l = 0; l < LANES; l++) M[e][l] = l < m ? from[e * B + b0 + l] : 0;
    }
}

static inline void NAME(store_tokens)(long n, long B, long b0, long m,
                                      const NAME(svec) *restrict M, T *restrict to) {
    for (long e = 0; e < n * n; e++) {
        if (m == LANES) {
            *(NAME(svec) *)(to + e * B + b0) = M[e];
            continue;
        }
        for (long l = 0; l < m; l++) to[e * B + b0 + l] = M[e][l];
    }
}

static inline __attribute__((always_inline)) void NAME(forward_vectors)(
    long B, long n, long iters, const T *restrict logits, T *restrict out, long t0, long t1) {
    NAME(svec) M[n * n];
    for (long b0 = t0; b0 < t1; b0 += LANES) {
        const long m = t1 - b0 < LANES ? t1 - b0 : LANES;
        NAME(load_tokens)(n, B, b0, m, logits, M);
        NAME(steps)(n, iters, M, 0);
        NAME(store_tokens)(n, B, b0, m, M, out);
    }
}

/* The last step's softmax, out (n, n, B), for the tokens [t0, t1) in the calling thread
 * (also called by hyper_native_site_forward.c, block by block of a site's forward). */
void NAME(sinkhorn_forward_tokens)(long B, long n, long iters, const T *restrict logits,
                                   T *restrict out, long t0, long t1) {
    if (n == 4) NAME(forward_vectors)(B, 4, iters, logits, out, t0, t1);
    else NAME(forward_vectors)(B, n, iters, logits, out, t0, t1);
}

static inline __attribute__((always_inline)) void NAME(backward_vectors)(
    long B, long n, long iters, const T *restrict logits, const T *restrict grad,
    T *restrict out, long t0, long t1) {
    typedef NAME(svec) V;
    V M[n * n], g[n * n], saved[2 * iters * n * n];
    for (long b0 = t0; b0 < t1; b0 += LANES) {
        const long m = t1 - b0 < LANES ? t1 - b0 : LANES;
        NAME(load_tokens)(n, B, b0, m, logits, M);
        NAME(steps)(n, iters, M, saved);
        NAME(load_tokens)(n, B, b0, m, grad, g);
        for (long e = 0; e < n * n; e++) g[e] *= M[e];
        for (long step = 2 * iters - 1; step >= 0; step--) {
            const int rows = (int)(step % 2);
            const V *softmax = saved + step * n * n;
            for (long line = 0; line < n; line++) {
                V total = g[AT(line, 0)];
                for (long k = 1; k < n; k++) total += g[AT(line, k)];
                for (long k = 0; k < n; k++) g[AT(line, k)] -= softmax[AT(line, k)] * total;
            }
        }
        NAME(store_tokens)(n, B, b0, m, g, out);
    }
}

/* The exact backward of the steps: grad (n, n, B) in, the logits' gradient out, for the
 * tokens [t0, t1) in the calling thread (also called by hyper_native_site.c, pass by pass of a
 * whole site's backward). */
void NAME(sinkhorn_backward_tokens)(long B, long n, long iters, const T *restrict logits,
                                    const T *restrict grad, T *restrict out, long t0, long t1) {
    if (2 * iters * n * n * LANES > STEPS)
        NAME(sinkhorn_backward_chunked)(B, n, iters, logits, grad, out, t0, t1);
    else if (n == 4)
        NAME(backward_vectors)(B, 4, iters, logits, grad, out, t0, t1);
    else
        NAME(backward_vectors)(B, n, iters, logits, grad, out, t0, t1);
}

#undef AT
#undef LANES
#endif

/* The small per-token maps of the dynamic hyper-connection mixes, forward and exact backward:
 * from a site's projection of its streams to H_pre, H_res and H_post, and back from their
 * gradients to the projection's (ready for the projection's GEMMs) and the maps' parameters.
 *
 * Built with hyper_native.c (hyper_native.py); hyper_site_native.py calls it and keeps the
 * maps' torch graph where it cannot be built. One token's maps are a few dozen to a few hundred
 * numbers, so each token is plain scalar code and the tokens are split over torch's OpenMP
 * threads. Parameter gradients are summed over fixed blocks of `block` tokens, one row of
 * `partial` (blocks, …) per block, which the caller adds: the same sums, bit for bit, for any
 * thread count.
 *
 * The maths (hyper_connections_modules.py and hyper_maps.py hold the torch reference):
 * - manifold mixes: from logits = bias + projected·colscale (colscale = the scales by column),
 *   H_pre = σ(logits[:n]), H_post = post_scale·σ(logits[n:2n]), H_res from logits[2n:] by
 *   the n! permutations (mhc_lite), 2×2 Kronecker factors (kromhc) or the Cayley spectral
 *   sphere (shc, n ≤ 4); mhc's Sinkhorn runs separately (hyper_native.c), so for it this file
 *   takes H_res's logits' gradient directly.
 * - dynamic hc: t = tanh(projected) per stream, H_pre = pre + s_α·t[·, 0], H_post = post +
 *   s_β·t[·, 1], H_res[i, j] = res[i, j] + s_α·t[j, 2 + i].
 * On the three-call path the transcendental values come in from torch (`gates`, the logits'
 * sigmoids; `rest`, what H_res takes of its logits: mhc_lite's softmax, each KromHC pair's
 * softmax, sHC's tanhs; dynamic hc's t), whose vectorised exp and tanh are several times faster
 * than scalar libm calls per token; the one-pass forward (hyper_native_site_forward.c) computes
 * them itself with hyper_native_math.c's vectorised functions and calls the token bodies here.
 * Every backward needs only those values. A block's sums stay in a local row until
 * the block is done (neighbouring rows of `partial` share cache lines).
 *
 * The file includes itself once per dtype (T, S), so each kernel is written once.
 */
#ifndef T
#include <stddef.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define NAME(name) CAT(name, S)
#define SPHERE_MAX 3 /* shc's rotations are (n-1)×(n-1): closed-form Cayley up to n = 4 */

enum { MIX_LOGITS = 0, MIX_PERMUTATIONS = 1, MIX_KRONECKER = 2, MIX_SPHERE = 3 };

#define T float
#define S f32
#include "hyper_native_maps.c"
#undef T
#undef S

#define T double
#define S f64
#include "hyper_native_maps.c"

#else /* the kernels, for one dtype T */

/* mhc_lite's softmax VJP: ∂w_k = q_k·(∂q_k - Σ_l q_l·∂q_l); torch forms H_res = q·P and
 * ∂q = ∂H_res·Pᵀ as matmuls with the permutation matrices (scattered adds into n² entries
 * here would be bound by their latency). */
static void NAME(softmax_backward)(long count, const T *restrict q, const T *restrict dq,
                                   T *restrict out) {
    T inner = 0;
    for (long k = 0; k < count; k++) inner += q[k] * dq[k];
    for (long k = 0; k < count; k++) out[k] = q[k] * (dq[k] - inner);
}

/* kromhc: factor k (outermost first) weighs I by pair[2k] and the swap by pair[2k + 1] (the
 * pair's softmax); H_res[i, j] = Π_k (bit K-1-k of i and j equal ? pair[2k] : pair[2k + 1]). */
static long NAME(factors)(long n) {
    long count = 0;
    while ((1L << count) < n) count++;
    return count;
}

static T NAME(chosen)(const T *restrict pair, long count, long k, long i, long j) {
    return ((i ^ j) >> (count - 1 - k)) & 1 ? pair[2 * k + 1] : pair[2 * k];
}

static void NAME(kronecker_forward)(long n, const T *restrict pair, T *restrict res) {
    const long count = NAME(factors)(n);
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            T v = 1;
            for (long k = 0; k < count; k++) v *= NAME(chosen)(pair, count, k, i, j);
            res[i * n + j] = v;
        }
}

/* Each factor weight's gradient: every entry's gradient times the product of the other
 * factors' chosen weights (formed directly, not by division: a weight may round to 0); then
 * each pair softmax's VJP. */
static void NAME(kronecker_backward)(long n, const T *restrict pair, const T *restrict grad,
                                     T *restrict out) {
    const long count = NAME(factors)(n);
    for (long e = 0; e < 2 * count; e++) out[e] = 0;
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++)
            for (long k = 0; k < count; k++) {
                T others = grad[i * n + j];
                for (long l = 0; l < count; l++)
                    if (l != k) others *= NAME(chosen)(pair, count, l, i, j);
                out[2 * k + (((i ^ j) >> (count - 1 - k)) & 1)] += others;
            }
    for (long k = 0; k < count; k++) {
        const T a = pair[2 * k], o = pair[2 * k + 1];
        const T inner = a * out[2 * k] + o * out[2 * k + 1];
        out[2 * k] = a * (out[2 * k] - inner);
        out[2 * k + 1] = o * (out[2 * k + 1] - inner);
    }
}

/* One Cayley rotation R = I - s·(A - A²), s = 2/(1 + θ²), θ² = Σ a², of the skew-symmetric A
 * whose strict upper triangle (row-major, as torch.triu_indices) is a_p = γ·tanhs[p]. */
static void NAME(cayley)(long m, const T *restrict tanhs, T gamma, T A[SPHERE_MAX][SPHERE_MAX],
                         T R[SPHERE_MAX][SPHERE_MAX], T *restrict scale) {
    T theta = 0;
    long p = 0;
    for (long r = 0; r < m; r++) A[r][r] = 0;
    for (long r = 0; r < m; r++)
        for (long c = r + 1; c < m; c++, p++) {
            A[r][c] = gamma * tanhs[p];
            A[c][r] = -A[r][c];
            theta += A[r][c] * A[r][c];
        }
    *scale = 2 / (1 + theta);
    for (long r = 0; r < m; r++)
        for (long c = 0; c < m; c++) {
            T square = 0;
            for (long l = 0; l < m; l++) square += A[r][l] * A[l][c];
            R[r][c] = (r == c) - *scale * (A[r][c] - square);
        }
}

/* The Cayley map's VJP: M = A - A², ∂s = -Σ ∂R⊙M, G = -s·∂R, ∂A = G + G·A + A·G (A skew),
 * ∂a_p = ∂A[r, c] - ∂A[c, r] - ∂s·s²·a_p; ∂u_p = ∂a_p·γ·(1 - tanh²), ∂γ += ∂a_p·tanh. */
static void NAME(cayley_backward)(long m, T A[SPHERE_MAX][SPHERE_MAX],
                                  T dR[SPHERE_MAX][SPHERE_MAX], const T *restrict tanhs,
                                  T scale, T gamma, T *restrict out, T *restrict grad_gamma) {
    T G[SPHERE_MAX][SPHERE_MAX], dscale = 0;
    for (long r = 0; r < m; r++)
        for (long c = 0; c < m; c++) {
            T square = 0;
            for (long l = 0; l < m; l++) square += A[r][l] * A[l][c];
            dscale -= dR[r][c] * (A[r][c] - square);
            G[r][c] = -scale * dR[r][c];
        }
    long p = 0;
    for (long r = 0; r < m; r++)
        for (long c = r + 1; c < m; c++, p++) {
            T upper = G[r][c], lower = G[c][r];
            for (long l = 0; l < m; l++) {
                upper += G[r][l] * A[l][c] + A[r][l] * G[l][c];
                lower += G[c][l] * A[l][r] + A[c][l] * G[l][r];
            }
            const T da = upper - lower - dscale * scale * scale * A[r][c];
            out[p] = da * gamma * (1 - tanhs[p] * tanhs[p]);
            *grad_gamma += da * tanhs[p];
        }
}

/* shc's rotations R_u, R_v and their A and s, from the tanhs of its logits [U (k) | V (k) |
 * Σ (n-1)]; σ = the last n-1 tanhs. */
static void NAME(rotations)(long n, const T *restrict tanhs, const T *restrict gammas,
                            T Au[SPHERE_MAX][SPHERE_MAX], T Ru[SPHERE_MAX][SPHERE_MAX],
                            T Av[SPHERE_MAX][SPHERE_MAX], T Rv[SPHERE_MAX][SPHERE_MAX],
                            T *restrict su, T *restrict sv) {
    const long m = n - 1, k = m * (m - 1) / 2;
    NAME(cayley)(m, tanhs, gammas[0], Au, Ru, su);
    NAME(cayley)(m, tanhs + k, gammas[1], Av, Rv, sv);
}

/* shc: H_res = 1/n + Q·R_u·diag(σ)·R_vᵀ·Qᵀ with Q the Helmert basis (n, n-1). */
static void NAME(sphere_forward)(long n, const T *restrict tanhs, const T *restrict gammas,
                                 const T *restrict basis, T *restrict res) {
    const long m = n - 1, k = m * (m - 1) / 2;
    const T *sigma = tanhs + 2 * k;
    T Au[SPHERE_MAX][SPHERE_MAX], Ru[SPHERE_MAX][SPHERE_MAX], Av[SPHERE_MAX][SPHERE_MAX],
        Rv[SPHERE_MAX][SPHERE_MAX], core[SPHERE_MAX][SPHERE_MAX], su, sv;
    NAME(rotations)(n, tanhs, gammas, Au, Ru, Av, Rv, &su, &sv);
    for (long a = 0; a < m; a++)
        for (long b = 0; b < m; b++) {
            T v = 0;
            for (long l = 0; l < m; l++) v += Ru[a][l] * sigma[l] * Rv[b][l];
            core[a][b] = v;
        }
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            T v = 0;
            for (long a = 0; a < m; a++)
                for (long b = 0; b < m; b++) v += basis[i * m + a] * core[a][b] * basis[j * m + b];
            res[i * n + j] = v + (T)1 / n;
        }
}

/* ∂core = Qᵀ·∂H_res·Q; ∂R_u = ∂core·R_v·diag(σ), ∂R_v = ∂coreᵀ·R_u·diag(σ),
 * ∂σ_l = (R_uᵀ·∂core·R_v)_ll; then each Cayley map's VJP and ∂v = ∂σ·(1 - σ²). */
static void NAME(sphere_backward)(long n, const T *restrict tanhs, const T *restrict gammas,
                                  const T *restrict basis, const T *restrict grad,
                                  T *restrict out, T *restrict grad_gammas) {
    const long m = n - 1, k = m * (m - 1) / 2;
    const T *sigma = tanhs + 2 * k;
    T Au[SPHERE_MAX][SPHERE_MAX], Ru[SPHERE_MAX][SPHERE_MAX], Av[SPHERE_MAX][SPHERE_MAX],
        Rv[SPHERE_MAX][SPHERE_MAX], dcore[SPHERE_MAX][SPHERE_MAX], dRu[SPHERE_MAX][SPHERE_MAX],
        dRv[SPHERE_MAX][SPHERE_MAX], su, sv;
    NAME(rotations)(n, tanhs, gammas, Au, Ru, Av, Rv, &su, &sv);
    for (long a = 0; a < m; a++)
        for (long b = 0; b < m; b++) {
            T v = 0;
            for (long i = 0; i < n; i++)
                for (long j = 0; j < n; j++)
                    v += basis[i * m + a] * grad[i * n + j] * basis[j * m + b];
            dcore[a][b] = v;
        }
    for (long l = 0; l < m; l++) {
        T ds = 0;
        for (long a = 0; a < m; a++) {
            T u = 0, v = 0;
            for (long b = 0; b < m; b++) {
                u += dcore[a][b] * Rv[b][l];
                v += dcore[b][a] * Ru[b][l];
                ds += dcore[a][b] * Ru[a][l] * Rv[b][l];
            }
            dRu[a][l] = u * sigma[l];
            dRv[a][l] = v * sigma[l];
        }
        out[2 * k + l] = ds * (1 - sigma[l] * sigma[l]);
    }
    NAME(cayley_backward)(m, Au, dRu, tanhs, su, gammas[0], out, grad_gammas);
    NAME(cayley_backward)(m, Av, dRv, tanhs + k, sv, gammas[1], out + k, grad_gammas + 1);
}

/* One token's matrices from its gates a (c), σ of the logits (the first 2n used), and w
 * (c - 2n), the res logits' values: H_pre (n), H_post (n) and, for kromhc and shc, H_res
 * (n, n) into r (mhc's Sinkhorn and mhc_lite's q·P are the caller's). Also called by
 * hyper_native_site_forward.c. */
void NAME(manifold_token)(long n, long mix, const T *restrict a, const T *restrict w,
                          T post_scale, const T *restrict gammas, const T *restrict basis,
                          T *restrict pre, T *restrict post, T *restrict r) {
    for (long j = 0; j < n; j++) {
        pre[j] = a[j];
        post[j] = post_scale * a[n + j];
    }
    if (mix == MIX_KRONECKER) NAME(kronecker_forward)(n, w, r);
    else if (mix == MIX_SPHERE && n == 1) r[0] = 1;
    else if (mix == MIX_SPHERE) NAME(sphere_forward)(n, w, gammas, basis, r);
}

/* The manifold mixes' matrices for B tokens from gates (B, c) and rest (B, c - 2n), as
 * manifold_token's: H_pre (B, n), H_post (B, n) and, for kromhc and shc, H_res (B, n, n). */
void NAME(manifold_forward)(long B, long n, long c, long mix, const T *restrict gates,
                            const T *restrict rest, T post_scale, const T *restrict gammas,
                            const T *restrict basis, T *restrict pre,
                            T *restrict post, T *restrict res, int threads) {
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b = 0; b < B; b++)
        NAME(manifold_token)(n, mix, gates + b * c, rest + b * (c - 2 * n), post_scale, gammas,
                             basis, pre + b * n, post + b * n,
                             mix == MIX_KRONECKER || mix == MIX_SPHERE ? res + b * n * n
                                                                       : (T *)0);
}

/* Back from ∂H_pre, ∂H_post and ∂H_res (B, n, n) -- for mhc the res logits' own gradient,
 * for mhc_lite the softmax's, ∂q (B, c - 2n) -- to `scaled` (B, c) = ∂projected·inv and the
 * RMS norm's coefficient
 * coef (B) = -(∂projected·projected)·inv²/width, the projection's backward operands
 * (hyper_fused_site.py); partial (blocks, 2c + 2) = [Σ ∂logits | Σ ∂logits·projected | ∂γ]. */
/* The tokens [b0, b1) of `manifold_backward` (below), their sums into row (2c + 2): one
 * block, in the calling thread (also called by hyper_native_site.c). */
void NAME(manifold_backward_block)(long b0, long b1, long n, long c, long mix,
                                   const T *restrict projected, const T *restrict gates,
                                   const T *restrict rest, const T *restrict colscale,
                                   T post_scale, const T *restrict gammas,
                                   const T *restrict basis, const T *restrict inv, long width,
                                   const T *restrict grad_pre, const T *restrict grad_post,
                                   const T *restrict grad_res, T *restrict scaled,
                                   T *restrict coef, T *restrict row) {
    T gl[c], acc[2 * c + 2];
    for (long k = 0; k < 2 * c + 2; k++) acc[k] = 0;
    for (long b = b0; b < b1; b++) {
        const T *a = gates + b * c, *w = rest + b * (c - 2 * n), *p = projected + b * c;
        for (long j = 0; j < n; j++) {
            gl[j] = grad_pre[b * n + j] * a[j] * (1 - a[j]);
            gl[n + j] = grad_post[b * n + j] * post_scale * a[n + j] * (1 - a[n + j]);
        }
        const T *g = grad_res + (mix == MIX_KRONECKER || mix == MIX_SPHERE ? b * n * n
                                                                           : b * (c - 2 * n));
        if (mix == MIX_LOGITS)
            for (long k = 2 * n; k < c; k++) gl[k] = g[k - 2 * n];
        else if (mix == MIX_PERMUTATIONS) NAME(softmax_backward)(c - 2 * n, w, g, gl + 2 * n);
        else if (mix == MIX_KRONECKER) NAME(kronecker_backward)(n, w, g, gl + 2 * n);
        else if (n > 1) NAME(sphere_backward)(n, w, gammas, basis, g, gl + 2 * n, acc + 2 * c);
        T dot = 0;
        for (long k = 0; k < c; k++) {
            const T gp = gl[k] * colscale[k];
            scaled[b * c + k] = gp * inv[b];
            dot += gp * p[k];
            acc[k] += gl[k];
            acc[c + k] += gl[k] * p[k];
        }
        coef[b] = -dot * inv[b] * inv[b] / width;
    }
    for (long k = 0; k < 2 * c + 2; k++) row[k] = acc[k];
}

void NAME(manifold_backward)(long B, long n, long c, long mix, const T *restrict projected,
                             const T *restrict gates, const T *restrict rest,
                             const T *restrict colscale, T post_scale,
                             const T *restrict gammas,
                             const T *restrict basis, const T *restrict inv, long width,
                             const T *restrict grad_pre, const T *restrict grad_post,
                             const T *restrict grad_res, T *restrict scaled, T *restrict coef,
                             long block, T *restrict partial, int threads) {
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b0 = 0; b0 < B; b0 += block)
        NAME(manifold_backward_block)(b0, b0 + block < B ? b0 + block : B, n, c, mix, projected,
                                      gates, rest, colscale, post_scale, gammas, basis, inv,
                                      width, grad_pre, grad_post, grad_res, scaled, coef,
                                      partial + b0 / block * (2 * c + 2));
}

/* Dynamic hc's matrices for B tokens of n streams from t (B, n, n + 2), tanh(projected) or
 * projected itself without tanh. */
void NAME(dynamic_forward)(long B, long n, const T *restrict t, const T *restrict pre0,
                           const T *restrict res0, const T *restrict post0,
                           const T *restrict scales, T *restrict pre, T *restrict res,
                           T *restrict post, int threads) {
    const long c = n + 2;
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b = 0; b < B; b++) {
        const T *tb = t + b * n * c;
        for (long j = 0; j < n; j++) {
            pre[b * n + j] = pre0[j] + scales[0] * tb[j * c];
            post[b * n + j] = post0[j] + scales[1] * tb[j * c + 1];
            for (long i = 0; i < n; i++)
                res[(b * n + i) * n + j] = res0[i * n + j] + scales[0] * tb[j * c + 2 + i];
        }
    }
}

/* Back to the layer-norm projection's operands (hyper_fused_site.py), per token and stream j:
 * operand (B·n, c + 1) = [∂out·r | shift] and coef (B, n) = b·r, with ∂out = ∂t·(1 - t²),
 * b = -(∂out·projected)·r/d, shift = -(∂out·r)·mean_d(W) - b·r·μ; partial (blocks,
 * 2n + n² + 2 + c) = [∂pre | ∂res | ∂post | ∂s_α, ∂s_β | Σ μ·∂out·r]. */
/* The tokens [b0, b1) of `dynamic_backward` (below), their sums into row (2n + n² + 2 + c): one
 * block, in the calling thread (also called by hyper_native_site.c). */
void NAME(dynamic_backward_block)(long b0, long b1, long n, long d, long use_tanh,
                                  const T *restrict t, const T *restrict projected,
                                  const T *restrict inv, const T *restrict mean,
                                  const T *restrict proj_mean, const T *restrict scales,
                                  const T *restrict grad_pre, const T *restrict grad_res,
                                  const T *restrict grad_post, T *restrict operand,
                                  T *restrict coef, T *restrict out) {
    const long c = n + 2, width = 2 * n + n * n + 2 + c;
    T acc[width];
    T *acc_res = acc + n, *acc_post = acc + n + n * n, *acc_scales = acc_post + n;
    T *acc_mean = acc_scales + 2;
    for (long k = 0; k < width; k++) acc[k] = 0;
    for (long b = b0; b < b1; b++)
        for (long j = 0; j < n; j++) {
            const long row = b * n + j;
            const T *tj = t + row * c, *pj = projected + row * c;
            const T gpre = grad_pre[row], gpost = grad_post[row], r = inv[row];
            T *op = operand + row * (c + 1);
            acc[j] += gpre;
            acc_post[j] += gpost;
            acc_scales[0] += tj[0] * gpre;
            acc_scales[1] += tj[1] * gpost;
            op[0] = scales[0] * gpre;
            op[1] = scales[1] * gpost;
            for (long i = 0; i < n; i++) {
                const T gres = grad_res[(b * n + i) * n + j];
                acc_res[i * n + j] += gres;
                acc_scales[0] += tj[2 + i] * gres;
                op[2 + i] = scales[0] * gres;
            }
            T dot = 0, shift = 0;
            for (long q = 0; q < c; q++) {
                const T gout = use_tanh ? op[q] * (1 - tj[q] * tj[q]) : op[q];
                dot += gout * pj[q];
                op[q] = gout * r;
                shift -= op[q] * proj_mean[q];
                acc_mean[q] += mean[row] * op[q];
            }
            const T bco = -dot * r / d;
            op[c] = shift - bco * r * mean[row];
            coef[row] = bco * r;
        }
    for (long k = 0; k < width; k++) out[k] = acc[k];
}

void NAME(dynamic_backward)(long B, long n, long d, long use_tanh, const T *restrict t,
                            const T *restrict projected, const T *restrict inv,
                            const T *restrict mean, const T *restrict proj_mean,
                            const T *restrict scales, const T *restrict grad_pre,
                            const T *restrict grad_res, const T *restrict grad_post,
                            T *restrict operand, T *restrict coef, long block,
                            T *restrict partial, int threads) {
    const long width = 2 * n + n * n + 2 + n + 2;
    _Pragma("omp parallel for schedule(static) num_threads(threads)")
    for (long b0 = 0; b0 < B; b0 += block)
        NAME(dynamic_backward_block)(b0, b0 + block < B ? b0 + block : B, n, d, use_tanh, t,
                                     projected, inv, mean, proj_mean, scales, grad_pre,
                                     grad_res, grad_post, operand, coef,
                                     partial + b0 / block * width);
}

#endif

/* The bias side of the CUDA attention table (mirrors of cpu_attn.c's
 * bias_grad_reduce and cpu_bias.c), and the table itself.
 *
 * These follow the CPU formulas operation for operation, with the rounding
 * pinned (__fmul_rn / __fadd_rn and the double forms stop nvcc from fusing a
 * multiply and an add the CPU does separately), so they agree with the CPU
 * to the bit except where the device's double log differs from glibc's by
 * an ulp:
 *   alibi_bias        one thread per (h, i, j): -slope_h * (i - j)
 *   bias_grad_reduce  one thread per (h, i, j), batch rows summed in order
 *   fire_fwd          one thread per (i, j): u(i, j) in double, then each
 *                     head's MLP output (the hidden layer is recomputed per
 *                     head instead of kept in an array)
 *   fire_bwd          one block per query row i, walking j = 0..i in order
 *                     and accumulating that row's partial parameter sums in
 *                     double (shared memory when they fit, else the row of
 *                     `part`); then one thread per parameter adds the rows
 *                     in row order, exactly the CPU's reduction. */
#include <math.h>

#include "cuda_attn.cuh"

#define FIRE_MAX_W 4096 /* as the CPU kernels */
#define FIRE_THREADS 256

static int64_t attn_scratch_floats(icl_attn_shape s) {
  (void)s;
  return 0; /* the GPU kernels keep everything in shared memory and registers */
}

/* ---- ALiBi and the bias gradient ---------------------------------------------------- */

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_alibi(float *bias, const float *slopes, int64_t H, int64_t T) {
  const int64_t n = H * T * T, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    int64_t h = idx / (T * T), rem = idx - h * T * T, i = rem / T, j = rem - i * T;
    bias[idx] = j <= i ? __fmul_rn(-slopes[h], (float)(i - j)) : 0.0f;
  }
}

static int alibi_bias(icl_ctx *ctx, float *bias, const float *slopes, int64_t H, int64_t T) {
  icl_cuda_state *st = ctx->cuda;
  if (H <= 0 || T <= 0) return ICL_OK;
  icl_launch(k_alibi, icl_cuda_blocks(st, H * T * T, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, bias, slopes, H, T);
  ICL_CU_LAUNCHED(ctx, "alibi bias");
  return ICL_OK;
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_bias_grad(float *G, const float *dS, int64_t B, int64_t H, int64_t T) {
  const int64_t n = H * T * T, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    int64_t h = idx / (T * T), rem = idx - h * T * T, i = rem / T, j = rem - i * T;
    float g = 0.0f;
    if (j <= i)
      for (int64_t b = 0; b < B; b++) g = __fadd_rn(g, dS[(b * H + h) * T * T + rem]);
    G[idx] = g;
  }
}

static int bias_grad_reduce(icl_ctx *ctx, float *G, const float *dS, int64_t B, int64_t H, int64_t T) {
  icl_cuda_state *st = ctx->cuda;
  if (H <= 0 || T <= 0) return ICL_OK;
  icl_launch(k_bias_grad, icl_cuda_blocks(st, H * T * T, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, G, dS, B, H, T);
  ICL_CU_LAUNCHED(ctx, "attention bias gradient");
  return ICL_OK;
}

/* ---- FIRE --------------------------------------------------------------------------- */

__device__ __forceinline__ double dsgn(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

struct fire_args {
  float *bias;
  const float *G, *W1, *b1, *W2, *b2, *c, *Lm;
  float L_init, eps, mult;
  int64_t W, H, T, np;
  double *part;
  int acc_shared;
};

/* ln(|c x| + 1) */
__device__ __forceinline__ double fire_psi(double c, double x) { return log(__dadd_rn(fabs(__dmul_rn(c, x)), 1.0)); }

__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_fire_fwd(fire_args a) {
  const int64_t T = a.T, W = a.W, H = a.H, n = T * T, step = (int64_t)gridDim.x * blockDim.x;
  const double cc = a.c[0], thr = fabs(__dmul_rn((double)a.Lm[0], (double)a.L_init));
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const int64_t i = idx / T, j = idx - i * T;
    if (j > i) {
      for (int64_t h = 0; h < H; h++) a.bias[h * n + idx] = 0.0f;
      continue;
    }
    const double m = (double)i > thr ? (double)i : thr;
    const double den = __dadd_rn(fire_psi(cc, m), (double)a.eps);
    const float u = (float)__ddiv_rn(fire_psi(cc, (double)(i - j)), den);
    for (int64_t h = 0; h < H; h++) {
      const float *w2 = a.W2 + h * W;
      float acc = 0.0f;
      for (int64_t k = 0; k < W; k++) {
        float z = __fadd_rn(__fmul_rn(a.W1[k], u), a.b1[k]);
        z = z > 0 ? z : 0.0f;
        acc = __fadd_rn(acc, __fmul_rn(w2[k], z));
      }
      a.bias[h * n + idx] = __fmul_rn(a.mult, __fadd_rn(acc, a.b2[h]));
    }
  }
}

/* the fields both directions read: the MLP, the distance transform, the shape */
static fire_args fire_pack(const float *W1, const float *b1, const float *W2, const float *c, const float *Lmult,
                           float L_init, float eps, int64_t W, int64_t H, int64_t T, float mult) {
  fire_args a = {};
  a.W1 = W1;
  a.b1 = b1;
  a.W2 = W2;
  a.c = c;
  a.Lm = Lmult;
  a.L_init = L_init;
  a.eps = eps;
  a.mult = mult;
  a.W = W;
  a.H = H;
  a.T = T;
  return a;
}

static int fire_fwd(icl_ctx *ctx, float *bias, const float *W1, const float *b1, const float *W2, const float *b2,
                    const float *c, const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T,
                    float mult) {
  if (W > FIRE_MAX_W) return icl_errorf(ctx, ICL_EINVAL, "FIRE: mlp width %lld > %d", (long long)W, FIRE_MAX_W);
  if (T <= 0 || H <= 0) return ICL_OK;
  icl_cuda_state *st = ctx->cuda;
  fire_args a = fire_pack(W1, b1, W2, c, Lmult, L_init, eps, W, H, T, mult);
  a.bias = bias;
  a.b2 = b2;
  icl_launch(k_fire_fwd, icl_cuda_blocks(st, T * T, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, a);
  ICL_CU_LAUNCHED(ctx, "FIRE forward");
  return ICL_OK;
}

/* Row i's partial sums, in the CPU's layout: dW2 [H*W] | db2 [H] | dW1 [W] |
 * db1 [W] | dc | dL. Shared memory: delta [W] doubles, a [W] and g [H]
 * floats, then (acc_shared) the np accumulators. */
__global__ void __launch_bounds__(FIRE_THREADS) k_fire_bwd_rows(fire_args a) {
  ICL_DYN_SMEM(double2, smd);
  __shared__ float s_u;
  __shared__ double s_dc, s_dL;
  const int64_t W = a.W, H = a.H, T = a.T, np = a.np, HW = H * W, i = blockIdx.x;
  double *sdelta = reinterpret_cast<double *>(smd);
  float *sa = reinterpret_cast<float *>(sdelta + W), *sg = sa + W;
  double *acc = a.acc_shared ? sdelta + W + (W + H + 1) / 2 : a.part + i * np;
  const int tid = threadIdx.x;
  for (int64_t q = tid; q < np; q += FIRE_THREADS) acc[q] = 0.0;
  /* the row's constants, as the CPU computes them */
  const double cc = a.c[0], Lm = a.Lm[0], Li = (double)a.L_init, thr = fabs(__dmul_rn(Lm, Li)), fi = (double)i;
  const double m = fi > thr ? fi : thr;
  const double dm_dthr = thr > fi ? 1.0 : (thr == fi ? 0.5 : 0.0);
  const double cm1 = __dadd_rn(fabs(__dmul_rn(cc, m)), 1.0), sgm = dsgn(__dmul_rn(cc, m));
  const double den = __dadd_rn(log(cm1), (double)a.eps), den2 = __dmul_rn(den, den);
  const double dden_dc = __ddiv_rn(__dmul_rn(sgm, m), cm1);
  const double dden_dL =
      __dmul_rn(__dmul_rn(__dmul_rn(__ddiv_rn(__dmul_rn(sgm, cc), cm1), dm_dthr), dsgn(__dmul_rn(Lm, Li))), Li);
  for (int64_t j = 0; j <= i; j++) {
    if (tid == 0) {
      const double r = fi - (double)j, cr1 = __dadd_rn(fabs(__dmul_rn(cc, r)), 1.0), n = log(cr1);
      s_u = (float)__ddiv_rn(n, den);
      s_dc = __dsub_rn(__ddiv_rn(__ddiv_rn(__dmul_rn(dsgn(__dmul_rn(cc, r)), r), cr1), den),
                       __ddiv_rn(__dmul_rn(n, dden_dc), den2));
      s_dL = __dmul_rn(__ddiv_rn(-n, den2), dden_dL);
    }
    for (int64_t h = tid; h < H; h += FIRE_THREADS) sg[h] = __fmul_rn(a.mult, a.G[(h * T + i) * T + j]);
    __syncthreads();
    const float u = s_u;
    for (int64_t k = tid; k < W; k += FIRE_THREADS) {
      const float av = __fadd_rn(__fmul_rn(a.W1[k], u), a.b1[k]);
      double delta = 0.0;
      if (av > 0)
        for (int64_t h = 0; h < H; h++) delta = __dadd_rn(delta, __dmul_rn((double)sg[h], (double)a.W2[h * W + k]));
      sa[k] = av;
      sdelta[k] = delta;
    }
    __syncthreads();
    for (int64_t q = tid; q < np; q += FIRE_THREADS) {
      if (q < HW) {
        const int64_t k = q % W;
        if (sa[k] > 0) acc[q] = __dadd_rn(acc[q], __dmul_rn((double)sg[q / W], (double)sa[k]));
      } else if (q < HW + H) {
        acc[q] = __dadd_rn(acc[q], (double)sg[q - HW]);
      } else if (q < HW + H + W) {
        const int64_t k = q - HW - H;
        if (sa[k] > 0) acc[q] = __dadd_rn(acc[q], __dmul_rn(sdelta[k], (double)u));
      } else if (q < HW + H + 2 * W) {
        const int64_t k = q - HW - H - W;
        if (sa[k] > 0) acc[q] = __dadd_rn(acc[q], sdelta[k]);
      } else if (q == HW + H + 2 * W) { /* dc and dL from gamma = dLoss/du, summed over k in order */
        double gamma = 0.0;
        for (int64_t k = 0; k < W; k++)
          if (sa[k] > 0) gamma = __dadd_rn(gamma, __dmul_rn(sdelta[k], (double)a.W1[k]));
        acc[q] = __dadd_rn(acc[q], __dmul_rn(gamma, s_dc));
        acc[q + 1] = __dadd_rn(acc[q + 1], __dmul_rn(gamma, s_dL));
      }
    }
    __syncthreads();
  }
  if (a.acc_shared)
    for (int64_t q = tid; q < np; q += FIRE_THREADS) a.part[i * np + q] = acc[q];
}

struct fire_grads {
  float *dW1, *db1, *dW2, *db2, *dc, *dL;
};

/* rows added in row order, then once into the gradients (the CPU's order) */
__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_fire_bwd_sum(fire_args a, fire_grads g) {
  const int64_t W = a.W, H = a.H, np = a.np, HW = H * W;
  for (int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; q < np; q += (int64_t)gridDim.x * blockDim.x) {
    double s = a.part[q];
    for (int64_t i = 1; i < a.T; i++) s = __dadd_rn(s, a.part[i * np + q]);
    const float f = (float)s;
    float *dst = q < HW ? g.dW2 + q
                 : q < HW + H ? g.db2 + (q - HW)
                 : q < HW + H + W ? g.dW1 + (q - HW - H)
                 : q < HW + H + 2 * W ? g.db1 + (q - HW - H - W)
                 : q == HW + H + 2 * W ? g.dc
                                      : g.dL;
    *dst = __fadd_rn(*dst, f);
  }
}

static int fire_bwd(icl_ctx *ctx, const float *G, const float *W1, const float *b1, const float *W2, const float *c,
                    const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T, float mult,
                    float *dW1, float *db1, float *dW2, float *db2, float *dc, float *dLmult, double *part) {
  if (W > FIRE_MAX_W || H > FIRE_MAX_W)
    return icl_errorf(ctx, ICL_EINVAL, "FIRE: mlp width %lld or heads %lld > %d", (long long)W, (long long)H,
                      FIRE_MAX_W);
  if (T <= 0 || H <= 0 || W <= 0) return ICL_OK;
  if (T > (int64_t)INT32_MAX) return icl_errorf(ctx, ICL_ENOTIMPL, "FIRE (cuda): T %lld too long", (long long)T);
  icl_cuda_state *st = ctx->cuda;
  fire_args a = fire_pack(W1, b1, W2, c, Lmult, L_init, eps, W, H, T, mult);
  a.G = G;
  a.np = H * W + H + 2 * W + 2;
  a.part = part;
  /* delta [W] doubles, a [W] + g [H] floats rounded up to doubles, then the accumulators */
  const size_t fixed = sizeof(double) * (size_t)(W + (W + H + 1) / 2);
  const size_t with_acc = fixed + sizeof(double) * (size_t)a.np;
  const size_t limit = st->prop.sharedMemPerBlockOptin > 0 ? (size_t)st->prop.sharedMemPerBlockOptin : 48 * 1024;
  a.acc_shared = with_acc + 1024 <= limit; /* 1 KB for the static scalars */
  const size_t smem = a.acc_shared ? with_acc : fixed;
  if (smem + 1024 > limit)
    return icl_errorf(ctx, ICL_ENOTIMPL, "FIRE backward (cuda): width %lld and %lld heads need %zu bytes of shared memory",
                      (long long)W, (long long)H, smem);
  if (smem > 48 * 1024)
    ICL_CU(ctx, "FIRE backward: shared memory",
           cudaFuncSetAttribute(k_fire_bwd_rows, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  icl_launch(k_fire_bwd_rows, (unsigned)T, FIRE_THREADS, smem, st->stream, a);
  ICL_CU_LAUNCHED(ctx, "FIRE backward (rows)");
  fire_grads g = {dW1, db1, dW2, db2, dc, dLmult};
  icl_launch(k_fire_bwd_sum, icl_cuda_blocks(st, a.np, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, a, g);
  ICL_CU_LAUNCHED(ctx, "FIRE backward (sum)");
  return ICL_OK;
}

/* order: fwd, bwd, scratch_floats, bias_grad_reduce, alibi_bias, fire_fwd, fire_bwd, fwd_proj, bwd_proj
 * (pe/attn_kernels.h); no projection-fused passes here (cuBLAS does the projections) */
extern "C" const icl_attn_kernels icl_cuda_attn_kernels = {
    icl_cuda_attn_fwd, icl_cuda_attn_bwd, attn_scratch_floats, bias_grad_reduce, alibi_bias, fire_fwd, fire_bwd,
    nullptr,           nullptr,
};

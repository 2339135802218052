/* The nn area's kernels on the GPU: the mirror of engine/nn/cpu_nn.c.
 *
 * Numbers. Row sums of RMSNorm follow the CPU's order exactly: eight lane
 * sums (lane k takes elements k, k+8, ...), added lane 0..7, then the tail.
 * Eight threads own one row (thread k = lane k), so a row's sum is the CPU's
 * sum bit for bit, and so are rstd, y and dx. SwiGLU uses the CPU's
 * polynomial exp inside 8-lane blocks (cuda_nn_math.cuh): also bit for bit.
 * What goes through libm (SiLU, the SwiGLU tail, BCE) is within a few ulp.
 * Column sums (RMSNorm's dw, bias_grad) cannot follow the CPU's row-serial
 * order at speed: rows are cut into fixed chunks, each chunk's sum is taken in
 * double into the state's scratch, and a second kernel adds the chunks in
 * order, so the result never changes between runs (it differs from the CPU's
 * float running sum by that sum's own rounding). The loss is one block that
 * sums in double in a fixed tree.
 *
 * Nothing allocates or synchronises: every kernel can be captured. */
#include "cuda_internal.cuh"
#include "cuda_launch.cuh"
#include "cuda_nn_math.cuh"

extern "C" {
#include "nn/nn_kernels.h"
}

#define ROWS_PER_BLOCK (ICL_CUDA_THREADS / 8) /* eight threads per row */

/* ---- RMSNorm: eight threads per row -------------------------------------------- */

/* Sum over the lanes of a row group in the CPU's order: acc of lane 0..7,
 * then the tail elements d8..d-1 (tail[q] held by lane q). Every lane of the
 * group gets the same value. All eight lanes must call it. */
__device__ __forceinline__ float row_sum8(float acc, float tail, int64_t ntail) {
  float s = 0.0f;
#pragma unroll
  for (int q = 0; q < 8; q++) s = __fadd_rn(s, __shfl_sync(0xffffffffu, acc, q, 8));
#pragma unroll
  for (int q = 0; q < 7; q++) {
    float t = __shfl_sync(0xffffffffu, tail, q, 8);
    if (q < ntail) s = __fadd_rn(s, t);
  }
  return s;
}

/* Each lane walks its elements k, k + 8, ... in order (the CPU's order), U
 * at a time: the U loads of a chunk are issued before the first of its adds
 * or stores. Loading one element per iteration left one memory round trip
 * per element in flight per thread (the stores may alias the next loads, so
 * neither compiler nor hardware can run ahead): on an H100 the backward took
 * 208 us for 6528 x 256, a third of the standard model's training step
 * (ncu, docs/cuda.md). */
#define NORM_U 8

/* mode 0: y = rmsnorm(x); mode 1: a = x + delta, y = rmsnorm(a) */
template <int MODE>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_rmsnorm_fwd(float *y, float *__restrict__ rstd, float *a, const float *x, const float *delta,
                  const float *__restrict__ w, int64_t rows, int64_t d, float eps) {
  const int k = threadIdx.x & 7;
  const int64_t d8 = d & ~(int64_t)7, ntail = d - d8;
  for (int64_t rb = (int64_t)blockIdx.x * ROWS_PER_BLOCK; rb < rows; rb += (int64_t)gridDim.x * ROWS_PER_BLOCK) {
    const int64_t r = rb + (threadIdx.x >> 3);
    const bool ok = r < rows;
    const float *xr = x + r * d;
    float acc = 0.0f, tail = 0.0f;
    if (ok) {
      int64_t j = k;
      for (; j + 8 * (NORM_U - 1) < d8; j += 8 * NORM_U) {
        float v[NORM_U];
#pragma unroll
        for (int u = 0; u < NORM_U; u++) v[u] = xr[j + 8 * u];
        if (MODE == 1) {
          float e[NORM_U];
#pragma unroll
          for (int u = 0; u < NORM_U; u++) e[u] = delta[r * d + j + 8 * u];
#pragma unroll
          for (int u = 0; u < NORM_U; u++) {
            v[u] = __fadd_rn(v[u], e[u]);
            a[r * d + j + 8 * u] = v[u];
          }
        }
#pragma unroll
        for (int u = 0; u < NORM_U; u++) acc = __fadd_rn(acc, __fmul_rn(v[u], v[u]));
      }
      for (; j < d8; j += 8) {
        float v = xr[j];
        if (MODE == 1) {
          v = __fadd_rn(v, delta[r * d + j]);
          a[r * d + j] = v;
        }
        acc = __fadd_rn(acc, __fmul_rn(v, v));
      }
      if (k < ntail) {
        float v = xr[d8 + k];
        if (MODE == 1) {
          v = __fadd_rn(v, delta[r * d + d8 + k]);
          a[r * d + d8 + k] = v;
        }
        tail = __fmul_rn(v, v);
      }
    }
    /* every load of the row happened above: y may alias x from here on */
    const float rs = icl_nn_rstd(row_sum8(acc, tail, ntail), d, eps);
    if (ok) {
      if (k == 0) rstd[r] = rs;
      const float *src = MODE == 1 ? a + r * d : xr; /* a: this thread's own writes */
      float *yr = y + r * d;
      int64_t j = k;
      for (; j + 8 * (NORM_U - 1) < d; j += 8 * NORM_U) {
        float v[NORM_U], g[NORM_U];
#pragma unroll
        for (int u = 0; u < NORM_U; u++) v[u] = src[j + 8 * u], g[u] = w[j + 8 * u];
#pragma unroll
        for (int u = 0; u < NORM_U; u++) yr[j + 8 * u] = icl_nn_norm_out(g[u], v[u], rs);
      }
      for (; j < d; j += 8) yr[j] = icl_nn_norm_out(w[j], src[j], rs);
    }
  }
}

/* dx (= or +=) of RMSNorm: g = dy w; gx = 8-lane sum of g x; dx = rs (g - x c) */
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_rmsnorm_bwd_dx(float *dx, const float *dy, const float *__restrict__ x, const float *__restrict__ w,
                     const float *__restrict__ rstd, int64_t rows, int64_t d, int accumulate) {
  const int k = threadIdx.x & 7;
  const int64_t d8 = d & ~(int64_t)7, ntail = d - d8;
  for (int64_t rb = (int64_t)blockIdx.x * ROWS_PER_BLOCK; rb < rows; rb += (int64_t)gridDim.x * ROWS_PER_BLOCK) {
    const int64_t r = rb + (threadIdx.x >> 3);
    const bool ok = r < rows;
    const float *xr = x + r * d, *dyr = dy + r * d;
    float acc = 0.0f, tail = 0.0f;
    if (ok) {
      int64_t j = k;
      for (; j + 8 * (NORM_U - 1) < d8; j += 8 * NORM_U) {
        float g[NORM_U], v[NORM_U], c[NORM_U];
#pragma unroll
        for (int u = 0; u < NORM_U; u++) g[u] = dyr[j + 8 * u], v[u] = w[j + 8 * u], c[u] = xr[j + 8 * u];
#pragma unroll
        for (int u = 0; u < NORM_U; u++) acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(g[u], v[u]), c[u]));
      }
      for (; j < d8; j += 8) acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(dyr[j], w[j]), xr[j]));
      if (k < ntail) tail = __fmul_rn(__fmul_rn(dyr[d8 + k], w[d8 + k]), xr[d8 + k]);
    }
    const float gx = row_sum8(acc, tail, ntail);
    if (ok) {
      const float rs = rstd[r], c = icl_nn_norm_c(gx, rs, d);
      float *dxr = dx + r * d;
      int64_t j = k;
      for (; j + 8 * (NORM_U - 1) < d; j += 8 * NORM_U) {
        float g[NORM_U], v[NORM_U], e[NORM_U], o[NORM_U];
#pragma unroll
        for (int u = 0; u < NORM_U; u++) g[u] = dyr[j + 8 * u], v[u] = w[j + 8 * u], e[u] = xr[j + 8 * u];
        if (accumulate) {
#pragma unroll
          for (int u = 0; u < NORM_U; u++) o[u] = dxr[j + 8 * u];
#pragma unroll
          for (int u = 0; u < NORM_U; u++) dxr[j + 8 * u] = __fadd_rn(o[u], icl_nn_norm_dx(g[u], v[u], e[u], c, rs));
        } else {
#pragma unroll
          for (int u = 0; u < NORM_U; u++) dxr[j + 8 * u] = icl_nn_norm_dx(g[u], v[u], e[u], c, rs);
        }
      }
      for (; j < d; j += 8) {
        float v = icl_nn_norm_dx(dyr[j], w[j], xr[j], c, rs);
        dxr[j] = accumulate ? __fadd_rn(dxr[j], v) : v;
      }
    }
  }
}

/* ---- column sums in fixed chunks -------------------------------------------------- */

#define COL_TILE 32
#define COL_SLICES (ICL_CUDA_THREADS / COL_TILE)

/* part[chunk, j] = sum over the chunk's rows of term(r, j), in double:
 * term = dy (bias) or dy * (x * rstd) (RMSNorm's dw). Thread (cx, sy) sums
 * rows sy, sy + 8, ... of the chunk; the eight slices are added in order. */
template <int NORM>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_colsum_part(double *__restrict__ part, const float *__restrict__ dy, const float *__restrict__ x,
                  const float *__restrict__ rstd, int64_t rows, int64_t d, int64_t chunk_rows) {
  __shared__ double sh[COL_SLICES][COL_TILE];
  const int cx = threadIdx.x % COL_TILE, sy = threadIdx.x / COL_TILE;
  const int64_t j = (int64_t)blockIdx.x * COL_TILE + cx, chunk = blockIdx.y;
  const int64_t r0 = chunk * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double acc = 0.0;
  if (j < d)
    for (int64_t r = r0 + sy; r < r1; r += COL_SLICES) {
      float t = dy[r * d + j];
      if (NORM) t = __fmul_rn(t, __fmul_rn(x[r * d + j], rstd[r]));
      acc += (double)t;
    }
  sh[sy][cx] = acc;
  __syncthreads();
  if (sy == 0 && j < d) {
    double s = 0.0;
#pragma unroll
    for (int q = 0; q < COL_SLICES; q++) s += sh[q][cx];
    part[chunk * d + j] = s;
  }
}

/* out[j] += sum of the chunks' partials, in chunk order */
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_colsum_finish(float *__restrict__ out, const double *__restrict__ part, int64_t nchunks, int64_t d) {
  for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < d; j += (int64_t)gridDim.x * blockDim.x) {
    double s = 0.0;
    int64_t c = 0;
    for (; c + NORM_U <= nchunks; c += NORM_U) { /* U loads in flight, then the adds in chunk order */
      double v[NORM_U];
#pragma unroll
      for (int u = 0; u < NORM_U; u++) v[u] = part[(c + u) * d + j];
#pragma unroll
      for (int u = 0; u < NORM_U; u++) s += v[u];
    }
    for (; c < nchunks; c++) s += part[c * d + j];
    out[j] = (float)((double)out[j] + s);
  }
}

/* The chunking depends on (rows, d) and the scratch size only, so a result
 * never depends on the device or the run. */
static int colsum(icl_ctx *ctx, const char *what, int norm, float *out, const float *dy, const float *x,
                  const float *rstd, int64_t rows, int64_t d) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || d <= 0) return ICL_OK;
  int64_t max_chunks = (int64_t)(st->scratch_bytes / sizeof(double)) / d;
  if (max_chunks > 65535) max_chunks = 65535; /* gridDim.y */
  if (max_chunks < 1)
    return icl_errorf(ctx, ICL_EINVAL, "cuda: %s: %lld columns exceed the reduction scratch", what, (long long)d);
  int64_t chunk_rows = 64;
  if ((rows + chunk_rows - 1) / chunk_rows > max_chunks) chunk_rows = (rows + max_chunks - 1) / max_chunks;
  int64_t nchunks = (rows + chunk_rows - 1) / chunk_rows;
  double *part = (double *)st->scratch;
  dim3 grid((unsigned)((d + COL_TILE - 1) / COL_TILE), (unsigned)nchunks);
  if (norm)
    icl_launch(k_colsum_part<1>, grid, ICL_CUDA_THREADS, 0, st->stream, part, dy, x, rstd, rows, d, chunk_rows);
  else
    icl_launch(k_colsum_part<0>, grid, ICL_CUDA_THREADS, 0, st->stream, part, dy, x, rstd, rows, d, chunk_rows);
  ICL_CU_LAUNCHED(ctx, what);
  icl_launch(k_colsum_finish, icl_cuda_blocks(st, d, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, out, part,
             nchunks, d);
  ICL_CU_LAUNCHED(ctx, what);
  return ICL_OK;
}

/* ---- the table's RMSNorm entries -------------------------------------------------- */

static unsigned row_blocks(const icl_cuda_state *st, int64_t rows) {
  return icl_cuda_blocks(st, rows * 8, ICL_CUDA_THREADS);
}

static int rmsnorm_fwd(icl_ctx *ctx, float *y, float *rstd, const float *x, const float *w, int64_t rows, int64_t d,
                       float eps) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || d <= 0) return ICL_OK;
  icl_launch(k_rmsnorm_fwd<0>, row_blocks(st, rows), ICL_CUDA_THREADS, 0, st->stream, y, rstd, (float *)NULL, x,
             (const float *)NULL, w, rows, d, eps);
  ICL_CU_LAUNCHED(ctx, "rmsnorm_fwd");
  return ICL_OK;
}

static int add_rmsnorm_fwd(icl_ctx *ctx, float *a, float *y, float *rstd, const float *x, const float *delta,
                           const float *w, int64_t rows, int64_t d, float eps) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || d <= 0) return ICL_OK;
  icl_launch(k_rmsnorm_fwd<1>, row_blocks(st, rows), ICL_CUDA_THREADS, 0, st->stream, y, rstd, a, x, delta, w, rows, d,
             eps);
  ICL_CU_LAUNCHED(ctx, "add_rmsnorm_fwd");
  return ICL_OK;
}

static int rmsnorm_bwd(icl_ctx *ctx, float *dx, float *dw, const float *dy, const float *x, const float *w,
                       const float *rstd, int64_t rows, int64_t d, int accumulate) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || d <= 0) return ICL_OK;
  icl_launch(k_rmsnorm_bwd_dx, row_blocks(st, rows), ICL_CUDA_THREADS, 0, st->stream, dx, dy, x, w, rstd, rows, d,
             accumulate);
  ICL_CU_LAUNCHED(ctx, "rmsnorm_bwd");
  return dw ? colsum(ctx, "rmsnorm_bwd (dw)", 1, dw, dy, x, rstd, rows, d) : ICL_OK;
}

static int bias_grad(icl_ctx *ctx, float *db, const float *dy, int64_t rows, int64_t d) {
  return colsum(ctx, "bias_grad", 0, db, dy, NULL, NULL, rows, d);
}

/* ---- elementwise ---------------------------------------------------------------------- */

enum { EW_ADD, EW_SILU, EW_SILU_BWD };

/* y = op(a, b) over n elements; 4 at a time when every pointer is 16-byte aligned */
template <int OP> __device__ __forceinline__ float ew(float a, float b) {
  if (OP == EW_ADD) return __fadd_rn(a, b);
  if (OP == EW_SILU) return icl_nn_silu(a);
  return icl_nn_silu_bwd(b, a); /* a = dy, b = x */
}

template <int OP>
__global__ void __launch_bounds__(ICL_CUDA_THREADS) k_ew(float *y, const float *a, const float *b, int64_t n, int vec) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x, tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t n4 = n >> 2;
    for (int64_t i = tid; i < n4; i += step) {
      float4 va = ((const float4 *)a)[i], vb = OP == EW_SILU ? va : ((const float4 *)b)[i], vy;
      vy.x = ew<OP>(va.x, vb.x);
      vy.y = ew<OP>(va.y, vb.y);
      vy.z = ew<OP>(va.z, vb.z);
      vy.w = ew<OP>(va.w, vb.w);
      ((float4 *)y)[i] = vy;
    }
    done = n4 << 2;
  }
  for (int64_t i = done + tid; i < n; i += step) y[i] = ew<OP>(a[i], OP == EW_SILU ? 0.0f : b[i]);
}

template <int OP>
static int launch_ew(icl_ctx *ctx, const char *what, float *y, const float *a, const float *b, int64_t n) {
  icl_cuda_state *st = ctx->cuda;
  if (n <= 0) return ICL_OK;
  int vec = icl_cuda_aligned16(y) && icl_cuda_aligned16(a) && (OP == EW_SILU || icl_cuda_aligned16(b));
  icl_launch(k_ew<OP>, icl_cuda_blocks(st, vec ? (n + 3) / 4 : n, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, y,
             a, b, n, vec);
  ICL_CU_LAUNCHED(ctx, what);
  return ICL_OK;
}

static int add(icl_ctx *ctx, float *y, const float *a, const float *b, int64_t n) {
  return launch_ew<EW_ADD>(ctx, "add", y, a, b, n);
}

static int silu_fwd(icl_ctx *ctx, float *y, const float *x, int64_t n) {
  return launch_ew<EW_SILU>(ctx, "silu_fwd", y, x, NULL, n);
}

static int silu_bwd(icl_ctx *ctx, float *dx, const float *dy, const float *x, int64_t n) {
  return launch_ew<EW_SILU_BWD>(ctx, "silu_bwd", dx, dy, x, n);
}

__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_bias_add(float *y, const float *__restrict__ b, int64_t rows, int64_t d, int narrow) {
  const int64_t n = rows * d, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t j = narrow ? (int64_t)((uint32_t)i % (uint32_t)d) : i % d;
    y[i] = __fadd_rn(y[i], b[j]);
  }
}

static int bias_add(icl_ctx *ctx, float *y, const float *b, int64_t rows, int64_t d) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || d <= 0) return ICL_OK;
  int narrow = icl_cuda_narrow_ok(st, rows * d);
  icl_launch(k_bias_add, icl_cuda_blocks(st, rows * d, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, y, b, rows,
             d, narrow);
  ICL_CU_LAUNCHED(ctx, "bias_add");
  return ICL_OK;
}

/* ---- SwiGLU: element (r, j) of h against gate gu[r, j] and up gu[r, f + j] ------------- */

/* Four consecutive columns per thread (f % 4 == 0: float4 loads, since the
 * rows of gu and h then start 16-byte aligned when the buffers do). j < f8
 * are inside the CPU's 8-lane blocks (polynomial exp), the rest its tail. */
template <int BWD>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_swiglu4(float *__restrict__ out, const float *__restrict__ dh, const float *__restrict__ gu, int64_t rows,
              int64_t f, int narrow) {
  const int64_t f4 = f >> 2, n = rows * f4, f8 = f & ~(int64_t)7, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; q < n; q += step) {
    int64_t r, c;
    if (narrow) {
      uint32_t qq = (uint32_t)q, rr = qq / (uint32_t)f4;
      r = rr;
      c = (int64_t)(qq - rr * (uint32_t)f4) << 2;
    } else {
      r = q / f4;
      c = (q - r * f4) << 2;
    }
    const float *g = gu + r * 2 * f;
    float4 gv = *(const float4 *)(g + c), uv = *(const float4 *)(g + f + c);
    float ga[4] = {gv.x, gv.y, gv.z, gv.w}, ua[4] = {uv.x, uv.y, uv.z, uv.w};
    if (!BWD) {
      float h[4];
#pragma unroll
      for (int e = 0; e < 4; e++) h[e] = icl_nn_swiglu(ga[e], ua[e], c + e < f8);
      *(float4 *)(out + r * f + c) = make_float4(h[0], h[1], h[2], h[3]);
    } else {
      float4 dv = *(const float4 *)(dh + r * f + c);
      float da[4] = {dv.x, dv.y, dv.z, dv.w}, dg[4], du[4];
#pragma unroll
      for (int e = 0; e < 4; e++) icl_nn_swiglu_bwd(ga[e], ua[e], da[e], c + e < f8, &dg[e], &du[e]);
      float *o = out + r * 2 * f;
      *(float4 *)(o + c) = make_float4(dg[0], dg[1], dg[2], dg[3]);
      *(float4 *)(o + f + c) = make_float4(du[0], du[1], du[2], du[3]);
    }
  }
}

/* any f and alignment: one element per thread */
template <int BWD>
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_swiglu1(float *out, const float *dh, const float *gu, int64_t rows, int64_t f) {
  const int64_t n = rows * f, f8 = f & ~(int64_t)7, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t r = i / f, j = i - r * f;
    float g = gu[r * 2 * f + j], u = gu[r * 2 * f + f + j];
    if (!BWD) {
      out[i] = icl_nn_swiglu(g, u, j < f8);
    } else {
      float dg, du;
      icl_nn_swiglu_bwd(g, u, dh[i], j < f8, &dg, &du);
      out[r * 2 * f + j] = dg;
      out[r * 2 * f + f + j] = du;
    }
  }
}

template <int BWD>
static int swiglu(icl_ctx *ctx, const char *what, float *out, const float *dh, const float *gu, int64_t rows,
                  int64_t f) {
  icl_cuda_state *st = ctx->cuda;
  if (rows <= 0 || f <= 0) return ICL_OK;
  int vec = f % 4 == 0 && icl_cuda_aligned16(out) && icl_cuda_aligned16(gu) && (!BWD || icl_cuda_aligned16(dh));
  if (vec) {
    int64_t n = rows * (f / 4);
    icl_launch(k_swiglu4<BWD>, icl_cuda_blocks(st, n, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, out, dh, gu,
               rows, f, icl_cuda_narrow_ok(st, n));
  } else {
    icl_launch(k_swiglu1<BWD>, icl_cuda_blocks(st, rows * f, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream, out,
               dh, gu, rows, f);
  }
  ICL_CU_LAUNCHED(ctx, what);
  return ICL_OK;
}

static int swiglu_fwd(icl_ctx *ctx, float *h, const float *gu, int64_t rows, int64_t f) {
  return swiglu<0>(ctx, "swiglu_fwd", h, NULL, gu, rows, f);
}

static int swiglu_bwd(icl_ctx *ctx, float *dgu, const float *dh, const float *gu, int64_t rows, int64_t f) {
  return swiglu<1>(ctx, "swiglu_bwd", dgu, dh, gu, rows, f);
}

/* ---- loss: one block, double sums in a fixed tree ---------------------------------------- */

#define LOSS_THREADS 1024

__global__ void __launch_bounds__(LOSS_THREADS)
    k_loss(int kind, float *loss_out, float *dpred, const float *__restrict__ pred, int64_t ps,
           const float *__restrict__ target, int64_t n, float scale) {
  __shared__ double part[LOSS_THREADS / 32];
  const float inv = __fdiv_rn(1.0f, (float)n);
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += LOSS_THREADS) {
    float p = pred[i * ps], y = target[i];
    if (kind == ICL_LOSS_MSE) {
      float e = __fsub_rn(p, y);
      acc += (double)e * (double)e; /* exact product: an FMA changes nothing */
      if (dpred) dpred[i * ps] = __fmul_rn(__fmul_rn(__fmul_rn(scale, 2.0f), e), inv);
    } else {
      float t = __fmul_rn(0.5f, __fadd_rn(y, 1.0f));
      float sp = p > 0 ? __fadd_rn(p, log1pf(expf(-p))) : log1pf(expf(p));
      acc += (double)__fsub_rn(sp, __fmul_rn(t, p));
      if (dpred) dpred[i * ps] = __fmul_rn(__fmul_rn(scale, __fsub_rn(icl_nn_sigmoid(p), t)), inv);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = part[threadIdx.x];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
    if (threadIdx.x == 0 && loss_out) *loss_out = (float)(acc / (double)n);
  }
}

static int loss(icl_ctx *ctx, icl_loss_kind kind, float *loss_out, float *dpred, const float *pred, int64_t ps,
                const float *target, int64_t n, float scale) {
  if (n <= 0) return icl_errorf(ctx, ICL_EINVAL, "loss: no predictions");
  icl_cuda_state *st = ctx->cuda;
  icl_launch(k_loss, 1, LOSS_THREADS, 0, st->stream, (int)kind, loss_out, dpred, pred, ps, target, n, scale);
  ICL_CU_LAUNCHED(ctx, "loss");
  return ICL_OK;
}

extern "C" const icl_nn_kernels icl_cuda_nn_kernels = {
    rmsnorm_fwd, rmsnorm_bwd, add_rmsnorm_fwd, add,        bias_add, bias_grad,
    silu_fwd,    silu_bwd,    swiglu_fwd,      swiglu_bwd, loss,
};

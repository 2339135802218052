/* Shared pieces of the CUDA attention kernels (cuda_attn_fwd.cu,
 * cuda_attn_bwd.cu): tile geometry, loading a head's rows into shared memory
 * (rotating q/k on the way, or transposing), the two register-tiled products
 * every kernel is made of, and the rotated store of a gradient tile.
 *
 * Geometry. A block of 256 threads owns a 64 x 64 tile of (query, key)
 * pairs: thread (ty, tx) = (tid / 16, tid % 16) holds the 4 x 4 micro-tile
 * rows ty*4.., columns tx*4.. . The 16 threads of a row group are one half
 * of a warp, so row reductions are 4 xor-shuffles. Head sizes are padded to
 * HDP in {16, 32, 64, 128} with zero columns (any hd <= 128 works; hd is
 * even whenever there is a rotation).
 *
 * Two products, both reading shared memory with 16-byte loads:
 *   tile_dot:  s[r][j] = sum_c A[c][ty*4+r] * B[c][tx*4+j]   (A, B stored
 *              transposed [HDP][LD]; the contraction over the head size)
 *   tile_acc:  o[r][c] += sum_j P[ty*4+r][j] * M[j][tx*CPT+c] (P [64][LD],
 *              M [64][HDP] row-major; the contraction over a 64-tile)
 * Every sum runs in a fixed order, so results never change between runs.
 * fp32 throughout (FFMA, no TF32): the parity tests hold these kernels to
 * the CPU's float results. */
#ifndef ICL_CUDA_ATTN_CUH
#define ICL_CUDA_ATTN_CUH

#include "cuda_internal.cuh"
#include "cuda_launch.cuh"

extern "C" {
#include "pe/attn_kernels.h"
}

#define AT_TILE 64    /* query rows and key columns per tile */
#define AT_THREADS 256
#define AT_LD 68      /* row stride of transposed and probability tiles: 16-byte aligned, bank-spread */
#define AT_MAX_HD 128 /* largest head size (padded) */
#define HALF_MASK 0xffffffffu
/* blocks per SM that ptxas must fit in registers: 2 (<= 128 registers) for the
 * standard and toy head sizes; the wide instantiations may use more instead of
 * spilling (spills are build errors) */
#define AT_MINB(HDP) ((HDP) <= 32 ? 2 : 1)

static inline int at_hdp(int64_t hd) { return hd <= 16 ? 16 : hd <= 32 ? 32 : hd <= 64 ? 64 : 128; }
static inline int at_ntiles(int64_t T) { return (int)((T + AT_TILE - 1) / AT_TILE); }

__device__ __forceinline__ float4 at_ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }
__device__ __forceinline__ void at_st4(float *p, float a, float b, float c, float d) {
  *reinterpret_cast<float4 *>(p) = make_float4(a, b, c, d);
}
__device__ __forceinline__ float at_get(const float4 &v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

/* max / sum over the 16 threads of a row group (xor stays inside the half warp) */
__device__ __forceinline__ float at_row_max(float v) {
#pragma unroll
  for (int d = 1; d < 16; d <<= 1) v = fmaxf(v, __shfl_xor_sync(HALF_MASK, v, d));
  return v;
}
__device__ __forceinline__ float at_row_sum(float v) {
#pragma unroll
  for (int d = 1; d < 16; d <<= 1) v += __shfl_xor_sync(HALF_MASK, v, d);
  return v;
}

template <int HDP> __device__ __forceinline__ void tile_dot(float (&s)[4][4], const float *A, const float *B) {
#pragma unroll
  for (int r = 0; r < 4; r++)
#pragma unroll
    for (int j = 0; j < 4; j++) s[r][j] = 0.0f;
  const float *a = A + (threadIdx.x >> 4) * 4, *b = B + (threadIdx.x & 15) * 4;
#pragma unroll 2
  for (int c = 0; c < HDP; c++) {
    float4 av = at_ld4(a + c * AT_LD), bv = at_ld4(b + c * AT_LD);
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
      for (int j = 0; j < 4; j++) s[r][j] = fmaf(at_get(av, r), at_get(bv, j), s[r][j]);
  }
}

/* CPT consecutive floats of a row-major [64][HDP] tile */
template <int CPT> __device__ __forceinline__ void at_ldrow(float (&m)[CPT], const float *p) {
  if constexpr (CPT == 1) {
    m[0] = p[0];
  } else if constexpr (CPT == 2) {
    float2 v = *reinterpret_cast<const float2 *>(p);
    m[0] = v.x;
    m[1] = v.y;
  } else {
#pragma unroll
    for (int q = 0; q < CPT / 4; q++) {
      float4 v = at_ld4(p + 4 * q);
      m[4 * q] = v.x;
      m[4 * q + 1] = v.y;
      m[4 * q + 2] = v.z;
      m[4 * q + 3] = v.w;
    }
  }
}

template <int HDP>
__device__ __forceinline__ void tile_acc(float (&o)[4][HDP / 16], const float *P, const float *M) {
  constexpr int CPT = HDP / 16;
  const float *p = P + (threadIdx.x >> 4) * 4 * AT_LD, *m = M + (threadIdx.x & 15) * CPT;
#pragma unroll 1
  for (int j = 0; j < AT_TILE; j += 4) {
    float4 pv[4];
#pragma unroll
    for (int r = 0; r < 4; r++) pv[r] = at_ld4(p + r * AT_LD + j);
#pragma unroll
    for (int jj = 0; jj < 4; jj++) {
      float mv[CPT];
      at_ldrow<CPT>(mv, m + (j + jj) * HDP);
#pragma unroll
      for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < CPT; c++) o[r][c] = fmaf(at_get(pv[r], jj), mv[c], o[r][c]);
    }
  }
}

/* Where a head's rows live: element (t, c) of head h in batch row b of a
 * row-major [B*T, ld] matrix is base[(b*T + t)*ld + col0 + c]. */
struct at_rows {
  const float *base;
  int64_t ld, col0;
};

/* Rows t0..t0+63 of one head into dst[c*AT_LD + r] (transposed), rotated by
 * the tables when cs != NULL (hd even), zero outside t < T and c < hd. When
 * keep != NULL the rotated rows are also written to keep[t*hd + c]. */
template <int HDP>
__device__ __forceinline__ void load_t(float *dst, at_rows src, int64_t b, int64_t T, int64_t t0, int hd,
                                       const float *cs, const float *sn, float *keep) {
  const int tid = threadIdx.x;
  if (cs) {
    const int half = hd >> 1;
    for (int it = tid; it < AT_TILE * half; it += AT_THREADS) {
      int r = it / half, p = it - r * half;
      int64_t t = t0 + r;
      float a = 0.0f, c2 = 0.0f;
      if (t < T) {
        const float *row = src.base + (b * T + t) * src.ld + src.col0;
        float x0 = row[p], x1 = row[p + half], co = cs[t * half + p], si = sn[t * half + p];
        a = x0 * co - x1 * si;
        c2 = x1 * co + x0 * si;
        if (keep) {
          keep[t * hd + p] = a;
          keep[t * hd + p + half] = c2;
        }
      }
      dst[p * AT_LD + r] = a;
      dst[(p + half) * AT_LD + r] = c2;
    }
  } else {
    for (int it = tid; it < AT_TILE * hd; it += AT_THREADS) {
      int r = it / hd, c = it - r * hd;
      int64_t t = t0 + r;
      float a = 0.0f;
      if (t < T) {
        a = src.base[(b * T + t) * src.ld + src.col0 + c];
        if (keep) keep[t * hd + c] = a;
      }
      dst[c * AT_LD + r] = a;
    }
  }
  for (int it = tid; it < AT_TILE * (HDP - hd); it += AT_THREADS) dst[(hd + (it >> 6)) * AT_LD + (it & 63)] = 0.0f;
}

/* Rows t0..t0+63 of one head into dst[r*HDP + c] (row-major), zero outside;
 * keep as in load_t. */
template <int HDP>
__device__ __forceinline__ void load_r(float *dst, at_rows src, int64_t b, int64_t T, int64_t t0, int hd,
                                       float *keep) {
  for (int it = threadIdx.x; it < AT_TILE * HDP; it += AT_THREADS) {
    int r = it / HDP, c = it - r * HDP;
    int64_t t = t0 + r;
    float a = 0.0f;
    if (t < T && c < hd) {
      a = src.base[(b * T + t) * src.ld + src.col0 + c];
      if (keep) keep[t * hd + c] = a;
    }
    dst[it] = a;
  }
}

/* A gradient tile g[r*HDP + c] (rows t0..) to its columns of dqkv, with the
 * rotation undone (dx_c = dx'_c cos + dx'_{c+h} sin, dx_{c+h} = dx'_{c+h} cos
 * - dx'_c sin, the CPU's rot_row inverse) when cs != NULL. */
template <int HDP>
__device__ __forceinline__ void store_rot(const float *g, float *dqkv, int64_t ld, int64_t col0, int64_t b,
                                          int64_t T, int64_t t0, int hd, const float *cs, const float *sn) {
  const int tid = threadIdx.x;
  if (cs) {
    const int half = hd >> 1;
    for (int it = tid; it < AT_TILE * half; it += AT_THREADS) {
      int r = it / half, p = it - r * half;
      int64_t t = t0 + r;
      if (t >= T) continue;
      float x0 = g[r * HDP + p], x1 = g[r * HDP + p + half], co = cs[t * half + p], si = sn[t * half + p];
      float *row = dqkv + (b * T + t) * ld + col0;
      row[p] = x0 * co + x1 * si;
      row[p + half] = x1 * co - x0 * si;
    }
  } else {
    for (int it = tid; it < AT_TILE * hd; it += AT_THREADS) {
      int r = it / hd, c = it - r * hd;
      int64_t t = t0 + r;
      if (t < T) dqkv[(b * T + t) * ld + col0 + c] = g[r * HDP + c];
    }
  }
}

/* Dynamic shared memory above the 48 KB default needs an opt-in per kernel;
 * done once per kernel (not a stream operation, so harmless under capture). */
template <typename K> static inline cudaError_t at_smem_optin(K kernel, size_t bytes, int *done) {
  if (*done || bytes <= 48 * 1024) return cudaSuccess;
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
  if (e == cudaSuccess) *done = 1;
  return e;
}

/* the attention entry points that live in other files */
extern "C" {
int icl_cuda_attn_fwd(icl_ctx *ctx, icl_attn_shape s, float *out, const float *qkv, const float *cos_t,
                      const float *sin_t, const float *bias, float scale, float *q, float *k, float *v, float *P,
                      int keep, const icl_attn_capture *cap, float *scratch, int nthreads);
int icl_cuda_attn_bwd(icl_ctx *ctx, icl_attn_shape s, float *dqkv, const float *dout, const float *cos_t,
                      const float *sin_t, float scale, const float *q, const float *k, const float *v, float *P,
                      float *dS, float *scratch, int nthreads);
}

#endif

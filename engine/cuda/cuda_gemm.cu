/* Row-major strided-batched GEMM through cuBLAS.
 *
 * backend.h's contract is row-major: C[b] = alpha op(A[b]) op(B[b]) + beta C[b]
 * with C m x n (ldc), op(A) m x k, op(B) k x n. A row-major matrix read as
 * column-major is its transpose, so cuBLAS (column-major) computes
 *   C^T = alpha op(B)^T op(A)^T + beta C^T,
 * i.e. the operands swap places, m and n swap, and each keeps its own
 * transpose flag and leading dimension.
 *
 * TF32 tensor-op math unless ctx->strict_fp32, chosen per call through the
 * compute type. alpha and beta are host values, read at enqueue time (fine
 * under graph capture); the workspace was fixed at start, so nothing here
 * allocates. */
#include <limits.h>

#include "cuda_internal.cuh"

/* k == 0: BLAS would skip C only when beta == 1; the CPU backend writes
 * C = beta * C (zeros when beta == 0, even over NaN), and so does this. */
__global__ void __launch_bounds__(ICL_CUDA_THREADS)
    k_scale_c(float *c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, int64_t batch, float beta) {
  int64_t total = batch * m * n, step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
    int64_t q = i / n, col = i - q * n, b = q / m, row = q - b * m;
    float *p = c + b * stride_c + row * ldc + col;
    *p = beta == 0.0f ? 0.0f : __fmul_rn(beta, *p);
  }
}

extern "C" int icl_cuda_gemm(icl_ctx *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                             const float *a, int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                             int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c, int64_t batch) {
  icl_cuda_state *st = ctx->cuda;
  if (m < 0 || n < 0 || k < 0 || batch < 0)
    return icl_errorf(ctx, ICL_EINVAL, "cuda: gemm: negative size (m %lld, n %lld, k %lld, batch %lld)",
                      (long long)m, (long long)n, (long long)k, (long long)batch);
  if (m == 0 || n == 0 || batch == 0) return ICL_OK;
  if (k == 0) {
    int64_t total = batch * m * n;
    k_scale_c<<<icl_cuda_blocks(st, total, ICL_CUDA_THREADS), ICL_CUDA_THREADS, 0, st->stream>>>(c, m, n, ldc, stride_c,
                                                                                                   batch, beta);
    ICL_CU_LAUNCHED(ctx, "gemm (k = 0)");
    return ICL_OK;
  }
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX || batch > INT_MAX)
    return icl_errorf(ctx, ICL_EINVAL,
                      "cuda: gemm: sizes beyond cuBLAS's 32-bit range (m %lld, n %lld, k %lld, lda %lld, ldb %lld, "
                      "ldc %lld, batch %lld)",
                      (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldb, (long long)ldc,
                      (long long)batch);
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasComputeType_t compute = ctx->strict_fp32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
  ICL_CUBLAS(ctx, "gemm",
             cublasGemmStridedBatchedEx(st->blas, opb, opa, (int)n, (int)m, (int)k, &alpha, b, CUDA_R_32F, (int)ldb,
                                        (long long)stride_b, a, CUDA_R_32F, (int)lda, (long long)stride_a, &beta, c,
                                        CUDA_R_32F, (int)ldc, (long long)stride_c, (int)batch, compute,
                                        CUBLAS_GEMM_DEFAULT));
  ICL_CU_LAUNCHED(ctx, "gemm");
  return ICL_OK;
}

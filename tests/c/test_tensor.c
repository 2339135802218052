/* Tensor core: views share storage, copies do not, broadcasting and
 * reductions give the numbers numpy would, random draws are reproducible. */
#include <string.h>

#include "harness.h"
#include "ops/ops.h"

static icl_tensor *from(icl_ctx *ctx, int ndim, const int64_t *shape, const float *v) {
  return icl_tensor_from_host(ctx, v, ICL_F32, ICL_CPU, ndim, shape);
}

static void test_views_share_storage(void) {
  icl_ctx *ctx = icl_t_ctx();
  int64_t s[2] = {2, 3};
  float v[6] = {1, 2, 3, 4, 5, 6};
  icl_tensor *a = from(ctx, 2, s, v);
  icl_tensor *t = icl_transpose(ctx, a, 0, 1);
  CHECK(t->shape[0] == 3 && t->shape[1] == 2 && !icl_is_contiguous(t));
  float host[6];
  CHECK_OK(ctx, icl_copy_to_host(ctx, host, t));
  float want[6] = {1, 4, 2, 5, 3, 6};
  CHECK(memcmp(host, want, sizeof want) == 0);
  icl_tensor *n = icl_narrow(ctx, a, 1, 1, 2);
  CHECK_OK(ctx, icl_fill(ctx, n, 9));
  CHECK_OK(ctx, icl_copy_to_host(ctx, host, a));
  float want2[6] = {1, 9, 9, 4, 9, 9};
  CHECK(memcmp(host, want2, sizeof want2) == 0);
  int64_t r[1] = {-1};
  icl_tensor *flat = icl_reshape(ctx, t, 1, r); /* non-contiguous: must copy */
  CHECK(flat && flat->storage != a->storage && flat->shape[0] == 6);
  icl_tensor *sel = icl_select(ctx, a, 0, 1);
  CHECK(sel->ndim == 1 && sel->shape[0] == 3 && ((float *)icl_tensor_data(sel))[0] == 4);
  CHECK(icl_select(ctx, a, 0, 2) == NULL && ctx->errcode == ICL_ERANGE);
  icl_tensor_free(ctx, flat);
  icl_tensor_free(ctx, sel);
  icl_tensor_free(ctx, n);
  icl_tensor_free(ctx, t);
  icl_tensor_free(ctx, a);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

static void test_broadcast_binary(void) {
  icl_ctx *ctx = icl_t_ctx();
  int64_t sa[2] = {2, 3}, sb[1] = {3};
  float va[6] = {1, 2, 3, 4, 5, 6}, vb[3] = {10, 20, 30};
  icl_tensor *a = from(ctx, 2, sa, va), *b = from(ctx, 1, sb, vb);
  icl_tensor *c = icl_op_binary(ctx, ICL_BIN_ADD, a, b);
  float host[6];
  CHECK_OK(ctx, icl_copy_to_host(ctx, host, c));
  float want[6] = {11, 22, 33, 14, 25, 36};
  CHECK(memcmp(host, want, sizeof want) == 0);
  int64_t sbad[1] = {2};
  icl_tensor *bad = icl_tensor_zeros(ctx, ICL_F32, ICL_CPU, 1, sbad);
  CHECK(icl_op_binary(ctx, ICL_BIN_ADD, a, bad) == NULL);
  CHECK(ctx->errcode == ICL_ESHAPE && strstr(icl_last_error(ctx), "[2, 3]") != NULL);
  icl_tensor *d = icl_op_binary_scalar(ctx, ICL_BIN_SUB, a, 1.0f, 1); /* 1 - a */
  CHECK_OK(ctx, icl_copy_to_host(ctx, host, d));
  CHECK(host[0] == 0 && host[5] == -5);
  icl_tensor *tr = icl_transpose(ctx, a, 0, 1);
  icl_tensor *e = icl_op_binary(ctx, ICL_BIN_MUL, tr, tr); /* strided inputs */
  CHECK_OK(ctx, icl_copy_to_host(ctx, host, e));
  CHECK(host[1] == 16 && host[2] == 4);
  icl_tensor *fs[] = {a, b, c, bad, d, tr, e};
  for (int i = 0; i < 7; i++) icl_tensor_free(ctx, fs[i]);
  CHECK(ctx->cpu_bytes == 0);
  icl_ctx_free(ctx);
}

static void test_reductions(void) {
  icl_ctx *ctx = icl_t_ctx();
  int64_t s[2] = {2, 3};
  float v[6] = {1, 5, 3, 4, 2, 6};
  icl_tensor *a = from(ctx, 2, s, v);
  icl_tensor *sum0 = icl_op_reduce(ctx, ICL_RED_SUM, a, 0, 0);
  icl_tensor *mean1 = icl_op_reduce(ctx, ICL_RED_MEAN, a, -1, 1);
  icl_tensor *amax = icl_op_reduce(ctx, ICL_RED_ARGMAX, a, 1, 0);
  icl_tensor *var = icl_op_reduce(ctx, ICL_RED_VAR, a, ICL_DIM_ALL, 0);
  float h[3];
  CHECK_OK(ctx, icl_copy_to_host(ctx, h, sum0));
  CHECK(h[0] == 5 && h[1] == 7 && h[2] == 9);
  CHECK(mean1->ndim == 2 && mean1->shape[1] == 1);
  CHECK_OK(ctx, icl_copy_to_host(ctx, h, mean1));
  CHECK_CLOSE(h[0], 3.0, 1e-7, 0);
  CHECK_CLOSE(h[1], 4.0, 1e-7, 0);
  int32_t idx[2];
  CHECK_OK(ctx, icl_copy_to_host(ctx, idx, amax));
  CHECK(idx[0] == 1 && idx[1] == 2);
  CHECK(var->ndim == 0);
  CHECK_CLOSE(*(float *)icl_tensor_data(var), 3.5, 1e-6, 0);
  icl_tensor *fs[] = {a, sum0, mean1, amax, var};
  for (int i = 0; i < 5; i++) icl_tensor_free(ctx, fs[i]);
  icl_ctx_free(ctx);
}

static void test_matmul_and_softmax(void) {
  icl_ctx *ctx = icl_t_ctx();
  int64_t sa[3] = {2, 2, 3}, sb[2] = {3, 2};
  float va[12] = {1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0}, vb[6] = {1, 2, 3, 4, 5, 6};
  icl_tensor *a = from(ctx, 3, sa, va), *b = from(ctx, 2, sb, vb);
  icl_tensor *c = icl_op_matmul(ctx, a, b);
  CHECK(c && c->ndim == 3 && c->shape[0] == 2 && c->shape[1] == 2 && c->shape[2] == 2);
  float h[8];
  CHECK_OK(ctx, icl_copy_to_host(ctx, h, c));
  float want[8] = {22, 28, 49, 64, 1, 2, 3, 4};
  CHECK(memcmp(h, want, sizeof want) == 0);
  CHECK(icl_op_matmul(ctx, b, b) == NULL && strstr(icl_last_error(ctx), "inner dims"));
  icl_tensor *sm = icl_op_softmax(ctx, b, 0, 0);
  CHECK_OK(ctx, icl_copy_to_host(ctx, h, sm));
  CHECK_CLOSE(h[0] + h[2] + h[4], 1.0, 1e-6, 0);
  CHECK_CLOSE(h[4], 1.0 / (1.0 + exp(-2.0) + exp(-4.0)), 1e-6, 0);
  icl_tensor *fs[] = {a, b, c, sm};
  for (int i = 0; i < 4; i++) icl_tensor_free(ctx, fs[i]);
  icl_ctx_free(ctx);
}

static void test_random_reproducible(void) {
  icl_ctx *ctx = icl_t_ctx();
  int64_t s[1] = {100000};
  icl_tensor *a = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 1, s, 0, 1, 42, 0);
  icl_tensor *b = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 1, s, 0, 1, 42, 0);
  icl_tensor *c = icl_op_random(ctx, ICL_DIST_NORMAL, ICL_F32, ICL_CPU, 1, s, 0, 1, 42, 1);
  CHECK(memcmp(icl_tensor_data(a), icl_tensor_data(b), 100000 * sizeof(float)) == 0);
  CHECK(memcmp(icl_tensor_data(a), icl_tensor_data(c), 100000 * sizeof(float)) != 0);
  icl_tensor *m = icl_op_reduce(ctx, ICL_RED_MEAN, a, ICL_DIM_ALL, 0);
  icl_tensor *v = icl_op_reduce(ctx, ICL_RED_VAR, a, ICL_DIM_ALL, 0);
  CHECK_CLOSE(*(float *)icl_tensor_data(m), 0.0, 0, 0.01);
  CHECK_CLOSE(*(float *)icl_tensor_data(v), 1.0, 0, 0.02);
  icl_tensor *u = icl_op_random(ctx, ICL_DIST_RANDINT, ICL_I32, ICL_CPU, 1, s, 3, 7, 1, 0);
  int32_t *ui = icl_tensor_data(u);
  int lo = 99, hi = -99;
  for (int i = 0; i < 100000; i++) {
    lo = ui[i] < lo ? ui[i] : lo;
    hi = ui[i] > hi ? ui[i] : hi;
  }
  CHECK(lo == 3 && hi == 6);
  icl_tensor *fs[] = {a, b, c, m, v, u};
  for (int i = 0; i < 6; i++) icl_tensor_free(ctx, fs[i]);
  icl_ctx_free(ctx);
}

int main(void) {
  ICL_RUN(test_views_share_storage);
  ICL_RUN(test_broadcast_binary);
  ICL_RUN(test_reductions);
  ICL_RUN(test_matmul_and_softmax);
  ICL_RUN(test_random_reproducible);
  return icl_t_finish("test_tensor");
}

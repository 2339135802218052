#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "core/backend.h"

icl_model *icl_model_create(icl_ctx *ctx, int64_t n_dims, int64_t hidden, icl_device dev) {
  if (n_dims <= 0 || hidden <= 0) {
    icl_errorf(ctx, ICL_EINVAL, "model: n_dims and hidden_size must be positive (got %lld, %lld)", (long long)n_dims,
               (long long)hidden);
    return NULL;
  }
  if (!icl_backend_get(ctx, dev)) return NULL;
  icl_model *m = calloc(1, sizeof *m);
  if (!m) {
    icl_errorf(ctx, ICL_ENOMEM, "model: out of memory");
    return NULL;
  }
  icl_params_init(&m->params);
  m->n_dims = n_dims;
  m->hidden = hidden;
  m->device = dev;
  m->init_std = 0.02f;
  int64_t s[2] = {hidden, n_dims};
  m->p_read_in = icl_params_declare(ctx, &m->params, "read_in.weight", 2, s, 1);
  if (m->p_read_in < 0) {
    icl_model_free(ctx, m);
    return NULL;
  }
  return m;
}

int icl_model_finish(icl_ctx *ctx, icl_model *m, uint64_t seed) {
  if (!m->ops) return icl_errorf(ctx, ICL_EINVAL, "model: no backbone attached");
  int64_t s[2] = {1, m->hidden};
  m->p_read_out = icl_params_declare(ctx, &m->params, "read_out.weight", 2, s, 1);
  if (m->p_read_out < 0) return ctx->errcode;
  if (icl_params_alloc(ctx, &m->params, m->device)) return ctx->errcode;
  /* streams 0 and 1 of the seed belong to read_in/read_out; backbones use 2.. */
  if (icl_params_init_normal(ctx, &m->params, m->p_read_in, 0, m->init_std, seed, 0) ||
      icl_params_init_normal(ctx, &m->params, m->p_read_out, 0, m->init_std, seed, 1))
    return ctx->errcode;
  return m->ops->init_params ? m->ops->init_params(ctx, m, seed) : ICL_OK;
}

void icl_model_free(icl_ctx *ctx, icl_model *m) {
  if (!m) return;
  if (m->ops && m->ops->destroy) m->ops->destroy(ctx, m);
  icl_params_free(ctx, &m->params);
  icl_tensor_free(ctx, m->arena);
  free(m);
}

static int64_t pad16(int64_t n) { return (n + 15) & ~(int64_t)15; }

int icl_model_reserve(icl_ctx *ctx, icl_model *m, int64_t B, int64_t T, int train) {
  int64_t ws = m->ops->workspace ? m->ops->workspace(m, B, T, train) : 0;
  if (m->arena && B <= m->cap_B && T <= m->cap_T && (train <= m->cap_train) && ws <= m->cap_ws) return ICL_OK;
  /* grow to the largest shape seen, so alternating shapes settle quickly;
   * but an inference request longer than the training capacity drops the
   * training buffers (their size grows with T^2 for attention), and a
   * training request after such an arena starts again from its own length */
  int64_t nb = B > m->cap_B ? B : m->cap_B, nt = T > m->cap_T ? T : m->cap_T;
  int ntrain = train || m->cap_train;
  if (!train && m->cap_train && T > m->cap_T) ntrain = 0;
  if (train && !m->cap_train && m->arena) nt = T;
  int64_t nws = m->ops->workspace ? m->ops->workspace(m, nb, nt, ntrain) : 0;
  if (ws > nws) nws = ws;
  int64_t bt = nb * nt, D = m->n_dims, H = m->hidden;
  int64_t total = pad16(bt * D) + 2 * pad16(bt * H) + 2 * pad16(bt) + (ntrain ? 2 * pad16(bt * H) : 0) + pad16(nws);
  icl_tensor_free(ctx, m->arena);
  m->arena = icl_tensor_empty(ctx, ICL_F32, m->device, 1, &total);
  if (!m->arena) {
    m->cap_B = m->cap_T = m->cap_ws = 0;
    return icl_error_prefix(ctx, "model: activations for batch %lld x %lld tokens: ", (long long)nb, (long long)nt);
  }
  float *p = icl_tensor_data(m->arena);
  m->tokens = p, p += pad16(bt * D);
  m->h0 = p, p += pad16(bt * H);
  m->hL = p, p += pad16(bt * H);
  m->out = p, p += pad16(bt);
  m->dout = p, p += pad16(bt);
  if (ntrain) {
    m->dhL = p, p += pad16(bt * H);
    m->dh0 = p, p += pad16(bt * H);
  } else {
    m->dhL = m->dh0 = NULL;
  }
  m->ws = p;
  m->cap_B = nb, m->cap_T = nt, m->cap_ws = nws, m->cap_train = ntrain;
  m->last_B = m->last_T = 0;
  m->arena_gen++;
  return ICL_OK;
}

static icl_view view3(float *data, int64_t a, int64_t b, int64_t c, int64_t sa, int64_t sb, int64_t sc) {
  icl_view v;
  memset(&v, 0, sizeof v);
  v.data = data;
  v.ndim = 3;
  v.shape[0] = a, v.shape[1] = b, v.shape[2] = c;
  v.stride[0] = sa, v.stride[1] = sb, v.stride[2] = sc;
  return v;
}

/* tokens[b, 2i, :] = xs[b, i, :]; tokens[b, 2i+1, :] = (ys[b, i], 0, ..., 0) */
static int build_tokens(icl_ctx *ctx, const icl_backend *be, icl_model *m, const float *xs, const float *ys, int64_t B,
                        int64_t N) {
  int64_t D = m->n_dims, T = 2 * N;
  float *tok = m->tokens;
  int rc =
      be->copy(ctx, view3(tok, B, N, D, T * D, 2 * D, 1), ICL_F32, view3((float *)xs, B, N, D, N * D, D, 1), ICL_F32);
  if (!rc) rc = be->fill(ctx, view3(tok + D, B, N, D, T * D, 2 * D, 1), ICL_F32, 0.0);
  if (!rc)
    rc =
        be->copy(ctx, view3(tok + D, B, N, 1, T * D, 2 * D, 1), ICL_F32, view3((float *)ys, B, N, 1, N, 1, 1), ICL_F32);
  return rc;
}

int icl_model_forward(icl_ctx *ctx, icl_model *m, const float *xs, const float *ys, int64_t B, int64_t N, float *pred,
                      int train) {
  if (B <= 0 || N <= 0)
    return icl_errorf(ctx, ICL_ESHAPE, "model: empty batch (B=%lld, N=%lld)", (long long)B, (long long)N);
  int64_t T = 2 * N, bt = B * T, D = m->n_dims, H = m->hidden;
  if (icl_model_reserve(ctx, m, B, T, train)) return ctx->errcode;
  const icl_backend *be = icl_backend_get(ctx, m->device);
  int rc = build_tokens(ctx, be, m, xs, ys, B, N);
  /* the read-in straight into the backbone's input buffer where it has one */
  float *h0 = train && m->ops->input_slot ? m->ops->input_slot(m, B, T, m->ws) : m->h0;
  if (!rc)
    rc = be->gemm(ctx, 0, 1, bt, H, D, 1.0f, m->tokens, D, 0, icl_params_data(&m->params, m->p_read_in), D, 0, 0.0f, h0,
                  H, 0, 1);
  if (!rc) rc = m->ops->forward(ctx, m, h0, m->hL, B, T, m->ws, train);
  /* the read-out at the x tokens (even rows) only: a training forward may
   * leave the other rows of hL unwritten, and nothing reads their outputs */
  if (!rc && train)
    rc = be->gemm(ctx, 0, 1, bt / 2, 1, H, 1.0f, m->hL, 2 * H, 0, icl_params_data(&m->params, m->p_read_out), H, 0,
                  0.0f, m->out, 2, 0, 1);
  else if (!rc)
    rc = be->gemm(ctx, 0, 1, bt, 1, H, 1.0f, m->hL, H, 0, icl_params_data(&m->params, m->p_read_out), H, 0, 0.0f,
                  m->out, 1, 0, 1);
  /* predictions are the outputs at the x tokens: every other element */
  if (!rc && pred) rc = be->copy(ctx, view3(pred, B, N, 1, N, 1, 1), ICL_F32, view3(m->out, B, N, 1, T, 2, 1), ICL_F32);
  m->last_B = train && !rc ? B : 0;
  m->last_T = train && !rc ? T : 0;
  return rc;
}

/* dout (gradient at every token, zero at y tokens) -> parameter gradients */
static int backward_from_dout(icl_ctx *ctx, icl_model *m) {
  int64_t B = m->last_B, T = m->last_T, bt = B * T, D = m->n_dims, H = m->hidden;
  const icl_backend *be = icl_backend_get(ctx, m->device);
  icl_params *p = &m->params;
  /* read_out: dW_out += dout^T hL over the x tokens (dout is zero at the
   * others, where hL may be unset) ; dhL = dout W_out at every row */
  int rc = be->gemm(ctx, 1, 0, 1, H, bt / 2, 1.0f, m->dout, 2, 0, m->hL, 2 * H, 0, 1.0f,
                    icl_params_grad(p, m->p_read_out), H, 0, 1);
  if (!rc)
    rc = be->gemm(ctx, 0, 0, bt, H, 1, 1.0f, m->dout, 1, 0, icl_params_data(p, m->p_read_out), H, 0, 0.0f, m->dhL, H, 0,
                  1);
  if (!rc) rc = m->ops->backward(ctx, m, m->dhL, m->dh0, B, T, m->ws);
  /* read_in: dW_in += dh0^T tokens */
  if (!rc)
    rc = be->gemm(ctx, 1, 0, H, D, bt, 1.0f, m->dh0, H, 0, m->tokens, D, 0, 1.0f, icl_params_grad(p, m->p_read_in), D,
                  0, 1);
  return rc;
}

int icl_model_backward(icl_ctx *ctx, icl_model *m, const float *dpred) {
  if (!m->last_B) return icl_errorf(ctx, ICL_EINVAL, "model: backward needs a training forward first");
  int64_t B = m->last_B, T = m->last_T, N = T / 2;
  const icl_backend *be = icl_backend_get(ctx, m->device);
  int rc = be->fill(ctx, view3(m->dout, B, T, 1, T, 1, 1), ICL_F32, 0.0);
  if (!rc)
    rc = be->copy(ctx, view3(m->dout, B, N, 1, T, 2, 1), ICL_F32, view3((float *)dpred, B, N, 1, N, 1, 1), ICL_F32);
  return rc ? rc : backward_from_dout(ctx, m);
}

int icl_model_loss_step(icl_ctx *ctx, icl_model *m, const float *xs, const float *ys, int64_t B, int64_t N,
                        icl_loss_kind kind, float *loss_out) {
  const icl_backend *be = icl_backend_get(ctx, m->device);
  if (!be) return ctx->errcode;
  int rc = icl_params_zero_grad(ctx, &m->params);
  if (!rc) rc = icl_model_forward(ctx, m, xs, ys, B, N, NULL, 1);
  int64_t T = 2 * N;
  if (!rc) rc = be->fill(ctx, view3(m->dout, B, T, 1, T, 1, 1), ICL_F32, 0.0);
  /* predictions sit at every other output: stride 2 over the flat [B*T] */
  if (!rc) rc = be->nn->loss(ctx, kind, loss_out, m->dout, m->out, 2, ys, B * N, 1.0f);
  return rc ? rc : backward_from_dout(ctx, m);
}

/* One training step (train_step.h): the body, and on a GPU its CUDA graphs.
 *
 * The graph cache is keyed by (N, d_t, strict_fp32, arena generation): the
 * kernels' shapes, the GEMMs' compute type and every pointer into the
 * model's arena are fixed by these. Pointers outside the arena (parameters,
 * gradients, moments, scalars, the step's own buffers) never move while the
 * step exists. */
#include "train_step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "optim/optim_kernels.h"
#include "tasks/task_kernels.h"
#include "tasks/task_rng.h"
#ifdef ICL_HAVE_CUDA
#include "cuda/icl_cuda.h"
#endif

#define MAX_GRAPHS 8

typedef struct graph_slot {
  int64_t N, d_t;
  int strict;
  int state; /* 0 empty, 1 seen once (eager), 2 captured */
  void *graph;
  uint64_t used;
} graph_slot;

struct icl_train_step {
  icl_model *m;
  icl_adamw *opt;
  const icl_task *task;
  icl_train_step_cfg cfg;
  icl_device dev;
  icl_tensor *xs, *ys, *ws, *ring, *loss1;
  int graphs_on;
  char why_off[256];
  int64_t eager, captures, replays, nodes, last_N;
  graph_slot slot[MAX_GRAPHS];
  uint64_t tick, gen;
};

static void graph_free(icl_ctx *ctx, void *g) {
#ifdef ICL_HAVE_CUDA
  icl_cuda_graph_free(ctx, (icl_cuda_graph *)g);
#else
  (void)ctx;
  (void)g;
#endif
}

static void drop_graphs(icl_ctx *ctx, icl_train_step *ts) {
  for (int i = 0; i < MAX_GRAPHS; i++) {
    graph_free(ctx, ts->slot[i].graph);
    memset(&ts->slot[i], 0, sizeof ts->slot[i]);
  }
}

void icl_train_step_free(icl_ctx *ctx, icl_train_step *ts) {
  if (!ts) return;
  drop_graphs(ctx, ts);
  icl_tensor_free(ctx, ts->xs);
  icl_tensor_free(ctx, ts->ys);
  icl_tensor_free(ctx, ts->ws);
  icl_tensor_free(ctx, ts->ring);
  icl_tensor_free(ctx, ts->loss1);
  free(ts);
}

static icl_tensor *buf(icl_ctx *ctx, icl_device dev, int64_t n, float value) {
  if (n < 1) n = 1;
  return icl_tensor_full(ctx, ICL_F32, dev, 1, &n, value);
}

icl_train_step *icl_train_step_new(icl_ctx *ctx, icl_model *m, icl_adamw *opt, const icl_task *task,
                                   const icl_train_step_cfg *cfg) {
  const int64_t B = cfg->B, N = cfg->max_N, D = m->n_dims;
  icl_device dev = m->device;
  if (B < 1 || N < 1 || (uint64_t)B > ICL_TRNG_MAX_PROMPTS || (uint64_t)N > ICL_TRNG_MAX_POINTS) {
    icl_errorf(ctx, ICL_EINVAL, "train step: batch %lld and n_points %lld must be in [1, 2^24] and [1, 2^20]",
               (long long)B, (long long)N);
    return NULL;
  }
  if (task->p.n_dims != D) {
    icl_errorf(ctx, ICL_ESHAPE, "train step: the task has n_dims %lld, the model %lld", (long long)task->p.n_dims,
               (long long)D);
    return NULL;
  }
  if (opt->value->storage->device != dev || icl_tensor_data(opt->value) != icl_tensor_data(m->params.value) ||
      icl_numel(opt->value) != icl_numel(m->params.value)) {
    icl_errorf(ctx, ICL_EINVAL, "train step: the optimiser is not over this model's parameters");
    return NULL;
  }
  const icl_backend *be = icl_backend_get(ctx, dev);
  if (!be) return NULL;
  if (!be->task || !be->task->sample || !be->optim || !be->optim->ring_put || !be->nn) {
    icl_errorf(ctx, ICL_ENOTIMPL, "train step: the %s backend lacks task, optimiser or nn kernels", be->name);
    return NULL;
  }
  icl_train_step *ts = calloc(1, sizeof *ts);
  if (!ts) {
    icl_errorf(ctx, ICL_ENOMEM, "train step: out of memory");
    return NULL;
  }
  ts->m = m;
  ts->opt = opt;
  ts->task = task;
  ts->cfg = *cfg;
  ts->dev = dev;
  ts->xs = buf(ctx, dev, B * N * D, 0.0f);
  ts->ys = ts->xs ? buf(ctx, dev, B * N, 0.0f) : NULL;
  ts->ws = ts->ys ? buf(ctx, dev, B * icl_task_fn_slots(&task->p) * icl_task_fn_floats(&task->p), 0.0f) : NULL;
  ts->ring = ts->ws ? buf(ctx, dev, ICL_TRAIN_RING, NAN) : NULL;
  ts->loss1 = ts->ring ? buf(ctx, dev, 1, NAN) : NULL;
  if (!ts->loss1 || icl_model_reserve(ctx, m, B, 2 * N, 1)) {
    icl_error_prefix(ctx, "train step: ");
    icl_train_step_free(ctx, ts);
    return NULL;
  }
#ifdef ICL_HAVE_CUDA
  ts->graphs_on = cfg->graphs && dev == ICL_CUDA;
#endif
  if (!ts->graphs_on)
    snprintf(ts->why_off, sizeof ts->why_off, "%s", dev != ICL_CUDA ? "not on a GPU" : "not asked for");
  ts->gen = m->arena_gen;
  return ts;
}

/* the step itself: every argument is fixed for a given (N, d_t) */
static int body(icl_ctx *ctx, icl_train_step *ts, const icl_backend *be, int64_t N, int64_t d_t) {
  float *scal = icl_tensor_data(ts->opt->scal);
  float *xs = icl_tensor_data(ts->xs), *ys = icl_tensor_data(ts->ys), *loss1 = icl_tensor_data(ts->loss1);
  icl_task_draw d;
  memset(&d, 0, sizeof d);
  d.B = ts->cfg.B;
  d.N = N;
  d.n_dims_truncated = d_t;
  d.seed = ts->cfg.seed;
  d.stream = 0;
  d.stream_add = scal + ICL_OPT_STEPS; /* the batch of step s is stream s */
  d.prompt_offset = 0;
  int rc = be->task->sample(ctx, &ts->task->p, &d, xs, ys, icl_tensor_data(ts->ws));
  if (!rc) rc = icl_model_loss_step(ctx, ts->m, xs, ys, ts->cfg.B, N, ts->cfg.loss, loss1);
  if (!rc) rc = be->optim->ring_put(ctx, icl_tensor_data(ts->ring), ICL_TRAIN_RING, loss1, scal);
  if (!rc) rc = icl_adamw_step(ctx, ts->opt);
  return rc;
}

static int run_eager(icl_ctx *ctx, icl_train_step *ts, const icl_backend *be, int64_t N, int64_t d_t) {
  ts->eager++;
  return body(ctx, ts, be, N, d_t);
}

#ifdef ICL_HAVE_CUDA
static graph_slot *find_slot(icl_train_step *ts, int64_t N, int64_t d_t, int strict) {
  graph_slot *empty = NULL, *oldest = NULL;
  for (int i = 0; i < MAX_GRAPHS; i++) {
    graph_slot *s = &ts->slot[i];
    if (s->state && s->N == N && s->d_t == d_t && s->strict == strict) return s;
    if (!s->state && !empty) empty = s;
    if (!oldest || s->used < oldest->used) oldest = s;
  }
  return empty ? empty : oldest;
}

static int run_graph(icl_ctx *ctx, icl_train_step *ts, const icl_backend *be, int64_t N, int64_t d_t) {
  icl_model *m = ts->m;
  /* the arena may have been reallocated since (an evaluation); its pointers are baked into the graphs */
  if (icl_model_reserve(ctx, m, ts->cfg.B, 2 * N, 1)) return ctx->errcode;
  if (m->arena_gen != ts->gen) {
    drop_graphs(ctx, ts);
    ts->gen = m->arena_gen;
  }
  int strict = ctx->strict_fp32 != 0;
  graph_slot *s = find_slot(ts, N, d_t, strict);
  s->used = ++ts->tick;
  /* find_slot may hand back the least recently used slot of another key */
  const int mine = s->state && s->N == N && s->d_t == d_t && s->strict == strict;
  if (mine && s->state == 2) {
    ts->replays++;
    return icl_cuda_graph_launch(ctx, (icl_cuda_graph *)s->graph);
  }
  if (!mine) {
    /* a new key: one eager step first (uploads what the model keeps per length) */
    graph_free(ctx, s->graph);
    memset(s, 0, sizeof *s);
    s->N = N, s->d_t = d_t, s->strict = strict, s->state = 1, s->used = ts->tick;
    return run_eager(ctx, ts, be, N, d_t);
  }
  /* second step at this key: capture it, then replay */
  icl_cuda_graph *g = NULL;
  int rc = icl_cuda_capture_begin(ctx);
  if (!rc) {
    int brc = body(ctx, ts, be, N, d_t);
    if (brc) {
      snprintf(ts->why_off, sizeof ts->why_off, "capture failed: %s", icl_last_error(ctx));
      icl_cuda_capture_end(ctx, 0, NULL);
      rc = brc;
    } else {
      rc = icl_cuda_capture_end(ctx, 1, &g);
      if (rc) snprintf(ts->why_off, sizeof ts->why_off, "capture failed: %s", icl_last_error(ctx));
    }
  } else {
    snprintf(ts->why_off, sizeof ts->why_off, "capture failed: %s", icl_last_error(ctx));
  }
  if (!rc && m->arena_gen != ts->gen) { /* the body reallocated: the graph's pointers are stale */
    icl_cuda_graph_free(ctx, g);
    g = NULL;
    snprintf(ts->why_off, sizeof ts->why_off, "capture failed: the model's arena moved during the step");
    rc = 1;
  }
  if (rc) {
    /* nothing of this step ran: do it eagerly, and stay eager from now on */
    icl_clear_error(ctx);
    ts->graphs_on = 0;
    drop_graphs(ctx, ts);
    return run_eager(ctx, ts, be, N, d_t);
  }
  s->graph = g;
  s->state = 2;
  ts->captures++;
  ts->nodes = (int64_t)icl_cuda_graph_nodes(g);
  ts->replays++;
  return icl_cuda_graph_launch(ctx, g);
}
#endif

int icl_train_step_run(icl_ctx *ctx, icl_train_step *ts, int64_t N, int64_t d_t) {
  const int64_t D = ts->m->n_dims;
  if (N < 1 || N > ts->cfg.max_N)
    return icl_errorf(ctx, ICL_EINVAL,
                      "train step: n_points %lld outside [1, %lld] (the step was made for at most "
                      "%lld)",
                      (long long)N, (long long)ts->cfg.max_N, (long long)ts->cfg.max_N);
  if (d_t < 1 || d_t > D)
    return icl_errorf(ctx, ICL_EINVAL, "train step: n_dims_truncated = %lld must be in [1, n_dims = %lld]",
                      (long long)d_t, (long long)D);
  const icl_backend *be = icl_backend_get(ctx, ts->dev);
  if (!be) return ctx->errcode;
  ts->last_N = N;
#ifdef ICL_HAVE_CUDA
  int safe = !ts->m->ops->graph_safe || ts->m->ops->graph_safe(ts->m);
  if (ts->graphs_on && safe) return run_graph(ctx, ts, be, N, d_t);
#endif
  return run_eager(ctx, ts, be, N, d_t);
}

int icl_train_step_run_group(icl_ctx *ctx, int K, icl_train_step *const *ts, const int *lanes, int64_t N,
                             int64_t d_t) {
  if (K < 1) return icl_errorf(ctx, ICL_EINVAL, "train step group: no steps");
  for (int k = 0; k < K; k++)
    if (ts[k]->dev != ts[0]->dev)
      return icl_errorf(ctx, ICL_EINVAL, "train step group: steps 1 and %d are on different devices", k + 1);
#ifdef ICL_HAVE_CUDA
  if (ts[0]->dev == ICL_CUDA && lanes) {
    int top = 0;
    for (int k = 0; k < K; k++) {
      if (lanes[k] < 1 || lanes[k] > ICL_CUDA_LANES_MAX)
        return icl_errorf(ctx, ICL_EINVAL, "train step group: lane %d of step %d is not in 1..%d", lanes[k], k + 1,
                          ICL_CUDA_LANES_MAX);
      if (lanes[k] > top) top = lanes[k];
    }
    if (icl_cuda_lane_current(ctx) != 0)
      return icl_errorf(ctx, ICL_EINVAL, "train step group: called from lane %d", icl_cuda_lane_current(ctx));
    if (icl_cuda_lanes_fork(ctx, top)) return ctx->errcode;
    int rc = ICL_OK, bad = 0;
    for (int k = 0; k < K && !rc; k++) {
      rc = icl_cuda_lane_use(ctx, lanes[k]);
      int64_t before = ts[k]->replays;
      if (!rc) rc = icl_train_step_run(ctx, ts[k], N, d_t);
      /* an eager or capturing step may have allocated or freed: the allocator knows one stream only */
      if (!rc && ts[k]->replays == before) rc = icl_backend_get(ctx, ICL_CUDA)->sync(ctx);
      bad = k;
    }
    /* back on lane 0, which waits for every lane, also after an error */
    char msg[ICL_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", rc ? icl_last_error(ctx) : "");
    int rc2 = icl_cuda_lane_use(ctx, 0);
    if (!rc2) rc2 = icl_cuda_lanes_join(ctx, top);
    if (rc) return icl_errorf(ctx, rc, "step %d of the group: %s", bad + 1, msg);
    return rc2;
  }
#else
  (void)lanes;
#endif
  for (int k = 0; k < K; k++)
    if (icl_train_step_run(ctx, ts[k], N, d_t)) return icl_error_prefix(ctx, "step %d of the group: ", k + 1);
  return ICL_OK;
}

int icl_train_step_loss(icl_ctx *ctx, icl_train_step *ts, int64_t s, float *out) {
  if (s < 0) return icl_errorf(ctx, ICL_EINVAL, "train step: no loss for step %lld", (long long)s);
  const icl_backend *be = icl_backend_get(ctx, ts->dev);
  if (!be) return ctx->errcode;
  const float *ring = icl_tensor_data(ts->ring);
  return be->memcpy(ctx, out, ICL_CPU, ring + s % ICL_TRAIN_RING, ts->dev, sizeof(float));
}

void icl_train_step_batch(const icl_train_step *ts, const float **xs, const float **ys) {
  *xs = icl_tensor_data(ts->xs);
  *ys = icl_tensor_data(ts->ys);
}

void icl_train_step_get_stats(const icl_train_step *ts, icl_train_step_stats *out) {
  memset(out, 0, sizeof *out);
  out->eager = ts->eager;
  out->captures = ts->captures;
  out->replays = ts->replays;
  out->nodes = ts->nodes;
  out->graphs_on = ts->graphs_on;
  snprintf(out->why_off, sizeof out->why_off, "%s", ts->graphs_on ? "" : ts->why_off);
}

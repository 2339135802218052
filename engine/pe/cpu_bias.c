/* CPU kernels of the additive-bias encodings.
 * FIRE (models_and_pe.md §4, §7.3): u, a = W1 u + b1 and z = relu(a) depend
 * only on (i, j), so they are computed once per layer and shared by every
 * head and batch row; backward recomputes them from the parameters instead
 * of storing T*T*W floats. Query rows are split over threads; each row keeps
 * its own partial parameter sums, added in row order afterwards, so the
 * result does not depend on the thread count. The numerator of u, log(|c
 * (i - j)| + 1), depends on the distance only: computed once per distance
 * (T logs instead of T (T + 1) / 2, the same values) up to FIRE_MAX_TABLE
 * tokens, in a table on the stack (no allocation in a step), per pair
 * beyond. */
#include "cpu_bias.h"

#include <math.h>
#include <string.h>

#define FIRE_MAX_W 4096
#define FIRE_MAX_TABLE 4096

int icl_cpu_alibi_bias(icl_ctx *ctx, float *bias, const float *slopes, int64_t H, int64_t T) {
  (void)ctx;
#pragma omp parallel for schedule(static) if (H * T * T >= 65536)
  for (int64_t hi = 0; hi < H * T; hi++) {
    int64_t h = hi / T, i = hi % T;
    float *row = bias + hi * T, m = slopes[h];
    for (int64_t j = 0; j <= i; j++) row[j] = -m * (float)(i - j);
    for (int64_t j = i + 1; j < T; j++) row[j] = 0;
  }
  return ICL_OK;
}

static inline double sgn(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

/* log(|c r| + 1): from the table when there is one (T <= FIRE_MAX_TABLE), else computed */
static inline double log_dist(const double *table, double cc, int64_t r) {
  return table ? table[r] : log(fabs(cc * (double)r) + 1.0);
}

static const double *log_table(double *table, double cc, int64_t T) {
  if (T > FIRE_MAX_TABLE) return NULL;
  for (int64_t r = 0; r < T; r++) table[r] = log(fabs(cc * (double)r) + 1.0);
  return table;
}

int icl_cpu_fire_fwd(icl_ctx *ctx, float *bias, const float *W1, const float *b1, const float *W2, const float *b2,
                     const float *c, const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T,
                     float mult) {
  if (W > FIRE_MAX_W) return icl_errorf(ctx, ICL_EINVAL, "FIRE: mlp width %lld > %d", (long long)W, FIRE_MAX_W);
  const double cc = c[0], thr = fabs((double)Lmult[0] * (double)L_init);
  double tab[FIRE_MAX_TABLE];
  const double *nlog = log_table(tab, cc, T);
#pragma omp parallel for schedule(dynamic, 4) if (T * T * W * H >= 200000)
  for (int64_t i = 0; i < T; i++) {
    float z[FIRE_MAX_W];
    double m = (double)i > thr ? (double)i : thr;
    double den = log(fabs(cc * m) + 1.0) + (double)eps;
    for (int64_t j = 0; j <= i; j++) {
      float u = (float)(log_dist(nlog, cc, i - j) / den);
      for (int64_t k = 0; k < W; k++) {
        float a = W1[k] * u + b1[k];
        z[k] = a > 0 ? a : 0;
      }
      for (int64_t h = 0; h < H; h++) {
        const float *w2 = W2 + h * W;
        float acc = 0;
        for (int64_t k = 0; k < W; k++) acc += w2[k] * z[k];
        bias[(h * T + i) * T + j] = mult * (acc + b2[h]);
      }
    }
    for (int64_t h = 0; h < H; h++)
      for (int64_t j = i + 1; j < T; j++) bias[(h * T + i) * T + j] = 0;
  }
  return ICL_OK;
}

int icl_cpu_fire_bwd(icl_ctx *ctx, const float *G, const float *W1, const float *b1, const float *W2, const float *c,
                     const float *Lmult, float L_init, float eps, int64_t W, int64_t H, int64_t T, float mult,
                     float *dW1, float *db1, float *dW2, float *db2, float *dc, float *dLmult, double *part) {
  if (W > FIRE_MAX_W || H > FIRE_MAX_W)
    return icl_errorf(ctx, ICL_EINVAL, "FIRE: mlp width %lld or heads %lld > %d", (long long)W, (long long)H,
                      FIRE_MAX_W);
  const double cc = c[0], Lm = Lmult[0], thr = fabs(Lm * (double)L_init);
  const int64_t np = H * W + H + 2 * W + 2;
  double tab[FIRE_MAX_TABLE];
  const double *nlog = log_table(tab, cc, T);
#pragma omp parallel for schedule(dynamic, 4) if (T * T * W * H >= 200000)
  for (int64_t i = 0; i < T; i++) {
    double *pr = part + i * np;
    double *pW2 = pr, *pb2 = pr + H * W, *pW1 = pb2 + H, *pb1 = pW1 + W, *pc = pb1 + W, *pL = pc + 1;
    memset(pr, 0, sizeof(double) * (size_t)np);
    float g[FIRE_MAX_W];
    double fi = (double)i;
    double m = fi > thr ? fi : thr;
    double dm_dthr = thr > fi ? 1.0 : (thr == fi ? 0.5 : 0.0);
    double den = log(fabs(cc * m) + 1.0) + (double)eps;
    double dden_dc = sgn(cc * m) * m / (fabs(cc * m) + 1.0);
    double dden_dL = sgn(cc * m) * cc / (fabs(cc * m) + 1.0) * dm_dthr * sgn(Lm * (double)L_init) * (double)L_init;
    for (int64_t j = 0; j <= i; j++) {
      double r = fi - (double)j;
      double n = log_dist(nlog, cc, i - j);
      float u = (float)(n / den);
      for (int64_t h = 0; h < H; h++) {
        g[h] = mult * G[(h * T + i) * T + j];
        pb2[h] += g[h];
      }
      double gamma = 0;
      for (int64_t k = 0; k < W; k++) {
        float a = W1[k] * u + b1[k];
        if (a <= 0) continue;
        double delta = 0;
        for (int64_t h = 0; h < H; h++) {
          pW2[h * W + k] += (double)g[h] * a;
          delta += (double)g[h] * W2[h * W + k];
        }
        pW1[k] += delta * u;
        pb1[k] += delta;
        gamma += delta * W1[k];
      }
      double du_dc = sgn(cc * r) * r / (fabs(cc * r) + 1.0) / den - n * dden_dc / (den * den);
      double du_dL = -n / (den * den) * dden_dL;
      pc[0] += gamma * du_dc;
      pL[0] += gamma * du_dL;
    }
  }
  /* rows added in order into row 0, then once into the gradients */
  for (int64_t i = 1; i < T; i++)
    for (int64_t q = 0; q < np; q++) part[q] += part[i * np + q];
  const double *pW2 = part, *pb2 = part + H * W, *pW1 = pb2 + H, *pb1 = pW1 + W, *pc = pb1 + W, *pL = pc + 1;
  for (int64_t q = 0; q < H * W; q++) dW2[q] += (float)pW2[q];
  for (int64_t h = 0; h < H; h++) db2[h] += (float)pb2[h];
  for (int64_t k = 0; k < W; k++) dW1[k] += (float)pW1[k], db1[k] += (float)pb1[k];
  dc[0] += (float)pc[0];
  dLmult[0] += (float)pL[0];
  return ICL_OK;
}

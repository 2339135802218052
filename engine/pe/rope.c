/* RoPE and its scalings: inv_freq and the attention factor m for one
 * forward (models_and_pe.md §2). Frequencies are computed in float32 the way
 * HF does (exponent 2c/D in float, base^e, reciprocal), so a parity test sees
 * the same buffer; angles and cos/sin are then taken in double. */
#include <math.h>

#include "pe.h"

void icl_rope_default_inv_freq(double base, int64_t D, float *inv_freq) {
  float b = (float)base;
  for (int64_t c = 0; c < D / 2; c++) inv_freq[c] = 1.0f / powf(b, (float)(2 * c) / (float)D);
}

double icl_rope_ntk_base(double base, int64_t D, double factor, double L, double Lmax) {
  return base * pow(factor * L / Lmax - (factor - 1.0), (double)D / (double)(D - 2));
}

/* the pair index whose wavelength fits `rot` rotations into L0 */
static double corr_dim(double rot, int64_t D, double base, double L0) {
  return (double)D * log(L0 / (rot * 2.0 * M_PI)) / (2.0 * log(base));
}

void icl_yarn_range(double base, int64_t D, double L0, double beta_fast, double beta_slow, double *lo, double *hi) {
  double l = floor(corr_dim(beta_fast, D, base, L0)), h = ceil(corr_dim(beta_slow, D, base, L0));
  if (l < 0) l = 0;
  if (h > (double)(D - 1)) h = (double)(D - 1);
  *lo = l;
  *hi = h;
}

double icl_yarn_mscale(double s) { return s <= 1.0 ? 1.0 : 0.1 * log(s) + 1.0; }

void icl_yarn_inv_freq(double base, int64_t D, double s, double L0, double beta_fast, double beta_slow,
                       float *inv_freq, double *mscale) {
  double lo, hi;
  icl_yarn_range(base, D, L0, beta_fast, beta_slow, &lo, &hi);
  if (lo == hi) hi += 0.001;
  float b = (float)base, sf = (float)s, flo = (float)lo, span = (float)(hi - lo);
  for (int64_t c = 0; c < D / 2; c++) {
    float p = powf(b, (float)(2 * c) / (float)D);
    float extra = 1.0f / p, inter = 1.0f / (sf * p);
    float ramp = ((float)c - flo) / span;
    ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
    float e = 1.0f - ramp; /* extrapolation weight */
    inv_freq[c] = inter * (1.0f - e) + extra * e;
  }
  *mscale = icl_yarn_mscale(s);
}

int icl_pe_rotation(const icl_pe_cfg *cfg, int64_t hd, int64_t T, float *inv_freq, double *mscale, double *scale) {
  double L = (double)T, Lt = (double)cfg->L_train, f = cfg->factor;
  *mscale = 1.0;
  *scale = 1.0;
  switch (cfg->rot) {
  case ICL_ROT_NONE: return 0;
  case ICL_ROT_ROPE: icl_rope_default_inv_freq(cfg->theta, hd, inv_freq); return 1;
  case ICL_ROT_LINEAR:
    icl_rope_default_inv_freq(cfg->theta, hd, inv_freq);
    for (int64_t c = 0; c < hd / 2; c++) inv_freq[c] /= (float)f;
    *scale = f;
    return 1;
  case ICL_ROT_DYNAMIC:
    if (L <= Lt) {
      icl_rope_default_inv_freq(cfg->theta, hd, inv_freq);
    } else {
      icl_rope_default_inv_freq(icl_rope_ntk_base(cfg->theta, hd, f, L, Lt), hd, inv_freq);
      *scale = f * L / Lt - (f - 1.0);
    }
    return 1;
  case ICL_ROT_YARN:
    icl_yarn_inv_freq(cfg->theta, hd, f, Lt, cfg->beta_fast, cfg->beta_slow, inv_freq, mscale);
    *scale = f;
    return 1;
  case ICL_ROT_DYNAMIC_YARN: {
    double s;
    if (cfg->dyn_yarn == ICL_DYN_YARN_CODE) s = L <= f * Lt ? 1.0 : L / Lt;
    else s = L / Lt > 1.0 ? L / Lt : 1.0;
    if (s <= 1.0) icl_rope_default_inv_freq(cfg->theta, hd, inv_freq);
    else icl_yarn_inv_freq(cfg->theta, hd, s, Lt, cfg->beta_fast, cfg->beta_slow, inv_freq, mscale);
    *scale = s;
    return 1;
  }
  }
  return 0;
}

void icl_rope_tables(const float *inv_freq, double mscale, int64_t T, int64_t half, float *cos_t, float *sin_t) {
  for (int64_t p = 0; p < T; p++)
    for (int64_t c = 0; c < half; c++) {
      double a = (double)p * (double)inv_freq[c];
      cos_t[p * half + c] = (float)(cos(a) * mscale);
      sin_t[p * half + c] = (float)(sin(a) * mscale);
    }
}

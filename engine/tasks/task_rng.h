/* Where each random number of a prompt comes from: the Philox index layout
 * of the task library. Header-only (host C and CUDA device code) so a GPU
 * thread per (prompt, point) computes exactly what the CPU loop does.
 *
 * Every draw is Philox(seed, stream, index), four 32-bit words, with
 *
 *   index = g << 40 | purpose << 36 | local          (local < 2^36)
 *
 *   g        global prompt number (prompt_offset + b), < 2^24
 *   purpose  ICL_TRNG_FN_A  parameters of the prompt's function
 *            ICL_TRNG_FN_B  parameters of the independent label function
 *                           (the eval quirk; same layout as FN_A)
 *            ICL_TRNG_X     input coordinates
 *            ICL_TRNG_PT    per-point extras (forcing coin, label noise)
 *   local    FN_A/FN_B: sub << 28 | element  (sub < 256: which parameter
 *                       array; element < 2^28)
 *            X:         i << 16 | block      (i = point < 2^20)
 *            PT:        i << 16 | 0
 *
 * Words within a block:
 *   normal element e of an array:  block e >> 1, words (0,1) for even e and
 *                                  (2,3) for odd e, via icl_normal_from
 *   sign/bit element e:            block e >> 7, word (e >> 5) & 3, bit e & 31
 *   categorical element e:         block e, words (0,1) (icl_below / icl_u01)
 *   PT: word 0 = forcing coin (uniform), words (2,3) = label noise (normal)
 *
 * No generator state is carried from one number to the next, so the order
 * of evaluation (threads, devices, prompt chunks) never changes the data. */
#ifndef ICL_TASK_RNG_H
#define ICL_TASK_RNG_H

#include "core/rng.h"

#define ICL_TRNG_FN_A 0u
#define ICL_TRNG_FN_B 1u
#define ICL_TRNG_X 2u
#define ICL_TRNG_PT 3u

#define ICL_TRNG_MAX_PROMPTS (1ull << 24)
#define ICL_TRNG_MAX_POINTS (1ull << 20)
#define ICL_TRNG_MAX_BLOCKS (1ull << 16)

ICL_HD uint64_t icl_trng_index(uint64_t g, uint32_t purpose, uint64_t local) {
  return (g << 40) | ((uint64_t)purpose << 36) | local;
}

ICL_HD uint64_t icl_trng_fn_local(uint32_t sub, uint64_t element) { return ((uint64_t)sub << 28) | element; }
ICL_HD uint64_t icl_trng_pt_local(uint64_t i, uint64_t block) { return (i << 16) | block; }

/* Standard normal number e of the array whose blocks start at `base` */
ICL_HD float icl_trng_normal(uint64_t seed, uint64_t stream, uint64_t base, uint64_t e) {
  icl_philox_out r = icl_philox(seed, stream, base + (e >> 1));
  return (e & 1) ? icl_normal_from(r.v[2], r.v[3]) : icl_normal_from(r.v[0], r.v[1]);
}

/* normals e = 0..n-1 of the array at `base` into out: the values of
 * icl_trng_normal, one Philox block per pair */
ICL_HD void icl_trng_normals(uint64_t seed, uint64_t stream, uint64_t base, uint64_t n, float *out) {
  for (uint64_t e = 0; e < n; e += 2) {
    icl_philox_out r = icl_philox(seed, stream, base + (e >> 1));
    out[e] = icl_normal_from(r.v[0], r.v[1]);
    if (e + 1 < n) out[e + 1] = icl_normal_from(r.v[2], r.v[3]);
  }
}

/* +1 or -1 for element e (one bit each) */
ICL_HD float icl_trng_sign(uint64_t seed, uint64_t stream, uint64_t base, uint64_t e) {
  icl_philox_out r = icl_philox(seed, stream, base + (e >> 7));
  uint32_t w = r.v[(e >> 5) & 3];
  return ((w >> (e & 31)) & 1u) ? 1.0f : -1.0f;
}

/* the whole block of element e (categorical draws) */
ICL_HD icl_philox_out icl_trng_block(uint64_t seed, uint64_t stream, uint64_t base, uint64_t e) {
  return icl_philox(seed, stream, base + e);
}

#endif

/* XXH64: see hash.h. Little-endian reads are done bytewise so the result does not depend on
 * the host's byte order or on alignment. */
#include "hash.h"

#include <string.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t rd64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static inline uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t round1(uint64_t acc, uint64_t in) {
  acc += in * P2;
  acc = rotl(acc, 31);
  return acc * P1;
}

static inline uint64_t merge1(uint64_t acc, uint64_t v) {
  acc ^= round1(0, v);
  return acc * P1 + P4;
}

void icl_xxh64_init(icl_xxh64_state *h, uint64_t seed) {
  memset(h, 0, sizeof *h);
  h->seed = seed;
  h->v[0] = seed + P1 + P2;
  h->v[1] = seed + P2;
  h->v[2] = seed;
  h->v[3] = seed - P1;
}

static void stripe(uint64_t *v, const unsigned char *p) {
  v[0] = round1(v[0], rd64(p));
  v[1] = round1(v[1], rd64(p + 8));
  v[2] = round1(v[2], rd64(p + 16));
  v[3] = round1(v[3], rd64(p + 24));
}

void icl_xxh64_update(icl_xxh64_state *h, const void *data, size_t n) {
  const unsigned char *p = data;
  h->total += n;
  if (h->nbuf) {
    size_t take = 32 - h->nbuf < n ? 32 - h->nbuf : n;
    memcpy(h->buf + h->nbuf, p, take);
    h->nbuf += take, p += take, n -= take;
    if (h->nbuf < 32) return;
    stripe(h->v, h->buf);
    h->nbuf = 0;
  }
  uint64_t v[4] = {h->v[0], h->v[1], h->v[2], h->v[3]};
  for (; n >= 32; p += 32, n -= 32) stripe(v, p);
  memcpy(h->v, v, sizeof v);
  memcpy(h->buf, p, n);
  h->nbuf = n;
}

uint64_t icl_xxh64_digest(const icl_xxh64_state *h) {
  uint64_t acc;
  if (h->total >= 32) {
    const uint64_t *v = h->v;
    acc = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
    for (int i = 0; i < 4; i++) acc = merge1(acc, v[i]);
  } else {
    acc = h->seed + P5;
  }
  acc += h->total;
  const unsigned char *p = h->buf;
  size_t n = h->nbuf;
  for (; n >= 8; p += 8, n -= 8) {
    acc ^= round1(0, rd64(p));
    acc = rotl(acc, 27) * P1 + P4;
  }
  if (n >= 4) {
    acc ^= (uint64_t)rd32(p) * P1;
    acc = rotl(acc, 23) * P2 + P3;
    p += 4, n -= 4;
  }
  for (; n; p++, n--) {
    acc ^= (uint64_t)*p * P5;
    acc = rotl(acc, 11) * P1;
  }
  acc ^= acc >> 33;
  acc *= P2;
  acc ^= acc >> 29;
  acc *= P3;
  acc ^= acc >> 32;
  return acc;
}

uint64_t icl_xxh64(const void *data, size_t n, uint64_t seed) {
  icl_xxh64_state h;
  icl_xxh64_init(&h, seed);
  icl_xxh64_update(&h, data, n);
  return icl_xxh64_digest(&h);
}

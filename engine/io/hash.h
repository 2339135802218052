/* XXH64 (Yann Collet's xxHash, 64-bit variant), written from the published algorithm description.
 * Used for the integrity checksums of safetensors checkpoints: fast (several GB/s, so a 300 MB
 * checkpoint costs well under a second) and with far better error detection than CRC-32 for
 * large files. Streaming form: init, update any number of times, digest. */
#ifndef ICL_HASH_H
#define ICL_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct icl_xxh64_state {
  uint64_t v[4];
  uint64_t total;
  uint64_t seed;
  unsigned char buf[32];
  size_t nbuf;
} icl_xxh64_state;

void icl_xxh64_init(icl_xxh64_state *h, uint64_t seed);
void icl_xxh64_update(icl_xxh64_state *h, const void *data, size_t n);
uint64_t icl_xxh64_digest(const icl_xxh64_state *h);
uint64_t icl_xxh64(const void *data, size_t n, uint64_t seed);

#endif

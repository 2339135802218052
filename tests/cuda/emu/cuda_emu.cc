/* The scheduler of the CUDA emulator (cuda_emu.h): blocks in order, the
 * threads of a block as fibers (emu_fiber.h) switched at barriers. */
#include "cuda_emu.h"

#include <stdio.h>
#include <stdlib.h>

#include <vector>

extern "C" {
#include "core/context.h"
}
#include "cuda/cuda_internal.cuh"
#include "emu_fiber.h"

enum { RUN, AT_BLOCK, AT_WARP, DONE };

struct emu_thread {
  emu_fiber fb;
  uint3 tid;
  int lin, state;
  unsigned shfl_seq;
};

emu_thread *emu_cur;
uint3 emu_block_idx;
dim3 emu_block_dim, emu_grid_dim;

static std::vector<emu_thread> threads;
static std::vector<char *> stacks;
static const std::function<void()> *body_fn;
static std::vector<unsigned char> dyn;
static double warp_vals[32][2][32]; /* a float or a double per lane, exactly */
static const size_t STACK = 256 * 1024;
static const size_t GUARD = 4096;
static const unsigned char GUARD_BYTE = 0xa5;

const uint3 &emu_thread_idx() { return emu_cur->tid; }
void *emu_dyn_smem() { return dyn.data(); }

static void die(const char *what) {
  fprintf(stderr, "cuda emulator: %s in block (%u, %u, %u), grid (%u, %u, %u), block size %u\n", what,
          emu_block_idx.x, emu_block_idx.y, emu_block_idx.z, emu_grid_dim.x, emu_grid_dim.y, emu_grid_dim.z,
          emu_block_dim.x * emu_block_dim.y * emu_block_dim.z);
  abort();
}

static void entry() {
  (*body_fn)();
  emu_cur->state = DONE;
}

static void park(int state) {
  emu_cur->state = state;
  emu_fiber_yield(&emu_cur->fb);
}

void emu_syncthreads() { park(AT_BLOCK); }

int emu_lane() { return emu_cur->lin & 31; }

double emu_shfl_from(double v, int src) {
  emu_thread *t = emu_cur;
  const int lane = t->lin & 31, warp = t->lin >> 5, buf = t->shfl_seq & 1;
  if (src < 0 || src > 31) die("shuffle source lane out of range");
  warp_vals[warp][buf][lane] = v;
  park(AT_WARP);
  t->shfl_seq++;
  return warp_vals[warp][buf][src];
}

float emu_shfl_xor(float v, int lane_mask) {
  if (lane_mask < 1 || lane_mask > 31) die("shuffle lane mask out of range");
  return (float)emu_shfl_from(v, emu_lane() ^ lane_mask);
}

static void run_block(int n) {
  for (int i = 0; i < n; i++) {
    emu_thread &t = threads[i];
    t.state = RUN;
    t.shfl_seq = 0;
    t.lin = i;
    t.tid.x = (unsigned)i % emu_block_dim.x;
    t.tid.y = ((unsigned)i / emu_block_dim.x) % emu_block_dim.y;
    t.tid.z = (unsigned)i / (emu_block_dim.x * emu_block_dim.y);
    emu_fiber_init(&t.fb, stacks[i], STACK, entry);
  }
  for (unsigned round = 0;; round++) {
    int ran = 0;
    /* Between two barriers the threads run one after another, in index order
     * on even rounds and reverse order on odd ones: a thread that reads what
     * another writes in the same interval (a missing barrier) sees the old
     * value in one of the two orders, and the result goes wrong. */
    for (int k = 0; k < n; k++) {
      const int i = round & 1 ? n - 1 - k : k;
      if (threads[i].state == RUN) {
        emu_cur = &threads[i];
        emu_fiber_resume(&threads[i].fb);
        ran = 1;
      }
    }
    int live = 0, at_block = 0, released = 0;
    for (int i = 0; i < n; i++) {
      live += threads[i].state != DONE;
      at_block += threads[i].state == AT_BLOCK;
    }
    if (!live) return;
    for (int w = 0; w * 32 < n; w++) { /* a warp's shuffle: all 32 lanes, same sequence number */
      int at = 0;
      for (int l = 0; l < 32 && w * 32 + l < n; l++) at += threads[w * 32 + l].state == AT_WARP;
      if (at == 0) continue;
      if (at < 32) continue;
      for (int l = 1; l < 32; l++)
        if (threads[w * 32 + l].shfl_seq != threads[w * 32].shfl_seq) die("lanes met at different shuffles");
      for (int l = 0; l < 32; l++) threads[w * 32 + l].state = RUN;
      released = 1;
    }
    if (at_block == live) {
      for (int i = 0; i < n; i++)
        if (threads[i].state == AT_BLOCK) threads[i].state = RUN;
      released = 1;
    }
    if (!ran && !released) die("deadlock (threads wait at different barriers)");
  }
}

void emu_run(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
  const int n = (int)(block.x * block.y * block.z);
  if (n % 32) die("block size not a multiple of 32");
  if (n > 1024) die("block size > 1024");
  while ((int)stacks.size() < n) stacks.push_back((char *)malloc(STACK));
  if ((int)threads.size() < n) threads.resize(n);
  body_fn = &body;
  emu_block_dim = block;
  emu_grid_dim = grid;
  /* NaN bytes, then a guard zone: a write past the launch's dynamic shared
   * memory size is caught after the block */
  dyn.assign((smem ? smem : 16) + GUARD, 0xff);
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        emu_block_idx.x = x;
        emu_block_idx.y = y;
        emu_block_idx.z = z;
        memset(dyn.data(), 0xff, dyn.size());
        memset(dyn.data() + dyn.size() - GUARD, GUARD_BYTE, GUARD);
        run_block(n);
        for (size_t i = dyn.size() - GUARD; i < dyn.size(); i++)
          if (dyn[i] != GUARD_BYTE) die("write past the dynamic shared memory");
      }
}

/* A context's device state for the emulated kernels: what they read from it
 * (stream, SM count, the shared-memory opt-in limit of an H100, scratch). */
extern "C" void icl_emu_attach(icl_ctx *ctx) {
  icl_cuda_state *st = (icl_cuda_state *)calloc(1, sizeof *st);
  st->sm_count = 4;
  st->prop.sharedMemPerBlockOptin = 227 * 1024;
  st->prop.multiProcessorCount = 4;
  /* the reduction partials of the column sums (cuda_nn.cu) */
  st->scratch_bytes = ICL_CUDA_SCRATCH_BYTES;
  st->scratch = calloc(1, st->scratch_bytes);
  ctx->cuda = st;
}

extern "C" void icl_emu_detach(icl_ctx *ctx) {
  free(ctx->cuda->scratch);
  free(ctx->cuda);
  ctx->cuda = NULL;
}

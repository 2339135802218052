#!/usr/bin/env bash
# Times the CUDA backend's generic ops (bench_gpu_ops.c): the standard model's
# GEMM shapes in TF32 and strict FP32, and a 1 GiB device-to-device copy.
#
#   bench/gpu/bench_gpu_ops.sh [--tests] [build-dir]      (build-dir: build)
#
# Builds the benchmark first when it is missing. --tests also builds and runs
# the GPU tests (tests/c/test_gpu_*, with their full output) before timing,
# so one call on a GPU machine checks and times. Without a device the
# benchmark prints "no CUDA device, skipping" and exits 0. Where $OUT is set
# (a lent device machine) the output is also written under it.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
tests=0
if [ "${1:-}" = "--tests" ]; then
  tests=1
  shift
fi
build=${1:-$root/build}
bin=$build/bench/gpu/bench_gpu_ops

if [ ! -x "$bin" ] || [ "$tests" = 1 ]; then
  cmake -S "$root" -B "$build" >/dev/null
  cmake --build "$build" -j"$(nproc)"
fi
if [ ! -x "$bin" ]; then # only built with the CUDA backend
  echo "no CUDA backend in this build (nvcc not found), skipping"
  exit 0
fi

log=/dev/null
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then log=$OUT/bench_gpu_ops.txt; fi

{
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv || true
  fi
  if [ "$tests" = 1 ]; then
    # run directly rather than through ctest: every line (the measured errors
    # too) is wanted, not only a failing test's
    for t in "$build"/tests/test_gpu_*; do
      rc=0
      (cd "$root" && ICL_NUM_THREADS=$(nproc) "$t") || rc=$?
      echo "$(basename "$t"): exit $rc (0 passed, 77 skipped)"
    done
  fi
  "$bin"
} 2>&1 | tee "$log"

#!/usr/bin/env bash
# Configure and build icl into ${ICL_BUILD_DIR:-build} (CUDA when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ICL_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${ICL_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

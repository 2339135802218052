#!/usr/bin/env bash
# The one prepared script for a GPU session (H100 / H200): build, test, time.
#
#   bash bench/gpu/run_all.sh            (on the device machine, from the repository root)
#   device run:  command "bash bench/gpu/run_all.sh", carry [".devdeps"], timeout_s 600
#
# Steps and their budgets (seconds, of ICL_RUN_BUDGET = 480 in all):
#   0. environment report                                        ~5
#   1. build dependencies: the system's, else apt-get (60 s at most, usually
#      no network there), else the carried .devdeps/icl-devdeps.tar.xz made
#      here by bench/gpu/prepare_carry.sh (headers, libraries, lua5.4,
#      pkg-config); see docs/cuda.md                              ~5
#   2. build for sm_90 (-DICL_WERROR=OFF: the device's compiler is another
#      version; warnings are kept at zero where the code is written)   ~150
#   3. tests: ctest -L gpu (the parity suite) plus the host-side CUDA tests
#      and the CPU training-step test                              ~90
#   4. op benchmark (bench_gpu_ops)                                ~20
#   5. icl model benchmark: nope, alibi, fire, dynamic-yarn (TF32), nope (FP32)  ~40
#   6. PyTorch + HF eager, same config                             ~40
#   5b. 4 toy runs one by one vs one group of 4 (bench_group_gpu.sh)  ~40
#   7. torch.compile, encoding by encoding while the budget lasts  the rest
# Environment: OUT (default out/gpu-run), ICL_BUILD_DIR (default build-gpu),
# ICL_WERROR (default OFF), ICL_RUN_BUDGET (default 480); ICL_RUN_QUICK=1 (the
# icl benchmark for nope only), ICL_RUN_PROFILE=1 (kernel times of one
# standard step under ncu, ICL_PROFILE_PE, into ncu.txt), ICL_RUN_TORCH=0
# (no PyTorch: stops after the icl steps). A check of the
# no-GPU mode on the development machine reuses its build:
#   ICL_BUILD_DIR=build ICL_WERROR=ON bash bench/gpu/run_all.sh
# Everything goes under $OUT (env.txt, build.log, tests.log, bench_ops.txt,
# bench_llama.txt, group.txt, torch.txt, summary.txt: 8 files); the summary table is
# printed last. Without a GPU it builds, skips the GPU tests (exit 77) and
# the benchmarks, and says so.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
OUT=${OUT:-$root/out/gpu-run}
mkdir -p "$OUT"
T0=$(date +%s)
BUDGET=${ICL_RUN_BUDGET:-480}
BUILD=${ICL_BUILD_DIR:-$root/build-gpu}
elapsed() { echo $(($(date +%s) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }
note() { echo "[$(elapsed)s] $*" | tee -a "$OUT/summary.txt"; }
: >"$OUT/summary.txt"

# ---- 0. environment ----------------------------------------------------------------
gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi
{
  date -u
  uname -a
  nproc
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw --format=csv 2>&1
  command -v nvcc && nvcc --version | tail -2
  cmake --version | head -1
  gcc --version | head -1
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__,
             "cuda", torch.cuda.is_available())' 2>&1 | tail -1
} >"$OUT/env.txt" 2>&1
note "gpu: $([ $gpu = 1 ] && nvidia-smi --query-gpu=name --format=csv,noheader | head -1 || echo none)"

# ---- 1. dependencies -----------------------------------------------------------------
have_deps() { pkg-config --exists lua5.4 openblas yaml-0.1 plplot 2>/dev/null && command -v lua5.4 >/dev/null; }
ICL_LIBS="" LUA_EXTRA_PATH="" LUA_EXTRA_CPATH=""
if [ -z "${ICL_FORCE_DEVDEPS:-}" ] && have_deps; then
  note "deps: from the system"
elif [ -z "${ICL_FORCE_DEVDEPS:-}" ] && command -v apt-get >/dev/null 2>&1 &&
  timeout 60 apt-get install -y -q --no-install-recommends lua5.4 liblua5.4-dev libopenblas-dev libyaml-dev \
    libplplot-dev pkg-config >>"$OUT/env.txt" 2>&1 && have_deps; then
  note "deps: installed with apt-get"
elif [ -f .devdeps/icl-devdeps.tar.xz ]; then
  rm -rf /tmp/icl-deps && mkdir -p /tmp/icl-deps && tar -C /tmp/icl-deps -xJf .devdeps/icl-devdeps.tar.xz
  DEPS=/tmp/icl-deps/devdeps
  ICL_LIBS=$DEPS/lib
  # wrappers: the carried programs find their libraries; nothing else sees them
  mkdir -p /tmp/icl-deps/bin
  for p in pkg-config lua5.4; do
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' "$ICL_LIBS" \
      "$DEPS/bin/$p" >/tmp/icl-deps/bin/$p
    chmod +x /tmp/icl-deps/bin/$p
  done
  export PATH=/tmp/icl-deps/bin:$PATH
  export PKG_CONFIG_PATH=$DEPS/lib/pkgconfig PKG_CONFIG_LIBDIR=$DEPS/lib/pkgconfig
  LUA_EXTRA_PATH="$DEPS/share/lua/5.4/?.lua;" LUA_EXTRA_CPATH="$DEPS/lib/lua/5.4/?.so;"
  if have_deps; then note "deps: carried (.devdeps, unpacked in /tmp/icl-deps)"; else
    note "deps: the carried .devdeps did not work (pkg-config: $(pkg-config --list-all 2>&1 | head -3))"
    exit 1
  fi
else
  note "deps: lua5.4/openblas/yaml/plplot missing, apt-get failed and no .devdeps carried: cannot build"
  note "      (run bench/gpu/prepare_carry.sh on the development machine and carry .devdeps)"
  exit 1
fi
# icl processes (and only they) see the carried libraries
icl_env() { if [ -n "$ICL_LIBS" ]; then env LD_LIBRARY_PATH="$ICL_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; else "$@"; fi; }

# ---- 2. build ------------------------------------------------------------------------
lua_tests=OFF
command -v busted >/dev/null 2>&1 && lua_tests=ON
t=$(elapsed)
if ! cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DICL_CUDA_ARCHS=90 -DICL_WERROR="${ICL_WERROR:-OFF}" \
  -DICL_LUA_TESTS=$lua_tests >"$OUT/build.log" 2>&1; then
  note "build: cmake configure FAILED (build.log)"
  tail -30 "$OUT/build.log"
  exit 1
fi
grep -q "CUDA backend ON" "$OUT/build.log" || note "build: WARNING: the CUDA backend is OFF (nvcc not found)"
if ! timeout $(($(left) > 60 ? $(left) - 60 : 60)) cmake --build "$BUILD" -j"$(nproc)" >>"$OUT/build.log" 2>&1; then
  note "build: FAILED after $(($(elapsed) - t)) s (build.log)"
  grep -E "error|Error" "$OUT/build.log" | head -20
  exit 1
fi
note "build: ok in $(($(elapsed) - t)) s ($(grep -c -i 'warning' "$OUT/build.log") warning lines)"

# ---- 3. tests --------------------------------------------------------------------------
t=$(elapsed)
# the GPU suite one test at a time (one device); then the host-side CUDA
# tests, the kernels on the CPU emulator of the CUDA execution model (emu_*,
# when built) and the CPU training step, in parallel
(cd "$BUILD" && icl_env ctest -L gpu -V --timeout 120) >"$OUT/tests.log" 2>&1
trc=$?
(cd "$BUILD" && icl_env ctest -R "^cuda\.|emu_|test_train_step" -j"$(nproc)" --output-on-failure --timeout 300) \
  >>"$OUT/tests.log" 2>&1 || trc=1
passed=$(grep -cE "^[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed" "$OUT/tests.log")
failed=$(grep -E "^[0-9]+/[0-9]+ Test +#[0-9]+: .*(Failed|Timeout|Exception)" "$OUT/tests.log" | sed 's/.*: //; s/ \.\.\..*//' |
  tr '\n' ' ')
skipped=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(Skipped|Not Run)" "$OUT/tests.log")
note "tests: $passed passed, skipped $skipped, failed: ${failed:-none} ($(($(elapsed) - t)) s, tests.log)"

if [ $gpu = 0 ]; then
  note "no GPU: the gpu tests skipped (exit 77) and the benchmarks not run"
  note "total $(elapsed) s; tests exit code $trc"
  exit $trc
fi

# ---- 4. op benchmark ------------------------------------------------------------------
t=$(elapsed)
icl_env timeout 120 "$BUILD/bench/gpu/bench_gpu_ops" >"$OUT/bench_ops.txt" 2>&1
note "bench_gpu_ops: done in $(($(elapsed) - t)) s (bench_ops.txt)"

# ---- 5. icl on the standard model --------------------------------------------------------
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$LUA_EXTRA_PATH;" LUA_CPATH="$BUILD/lua/?.so;$LUA_EXTRA_CPATH;"
t=$(elapsed)
if [ "${ICL_RUN_QUICK:-0}" = 1 ]; then
  icl_env timeout 60 lua5.4 bench/gpu/bench_llama_gpu.lua --steps 100 --reps 3 --pe nope >"$OUT/bench_llama.txt" 2>&1
else
  {
    icl_env timeout 150 lua5.4 bench/gpu/bench_llama_gpu.lua --steps 100 --reps 5
    icl_env timeout 60 lua5.4 bench/gpu/bench_llama_gpu.lua --steps 50 --reps 3 --pe nope --strict
    icl_env timeout 60 lua5.4 bench/gpu/bench_llama_gpu.lua --steps 50 --reps 3 --pe nope --no-graphs
  } >"$OUT/bench_llama.txt" 2>&1
fi
note "icl benchmark: done in $(($(elapsed) - t)) s (bench_llama.txt)"

# ---- 5b. runs of one shape: one by one vs one group (sweeps, issue 9) ------------------
t=$(elapsed)
{
  ICL=bin/icl icl_env timeout 150 bash bench/gpu/bench_group_gpu.sh 2000 4
  ICL=bin/icl icl_env timeout 150 bash bench/gpu/bench_group_gpu.sh 1000 8
} >"$OUT/group.txt" 2>&1
note "group benchmark: ($(($(elapsed) - t)) s)"
grep '^group-gpu' "$OUT/group.txt" | tee -a "$OUT/summary.txt"

# ---- 5c. where the time of a standard step goes: kernel times under Nsight Compute --------
if [ "${ICL_RUN_PROFILE:-0}" = 1 ] && command -v ncu >/dev/null 2>&1; then
  t=$(elapsed)
  # eager steps (no graph), so each kernel is one launch: skip the warm-up (3 steps of ~560
  # launches), then one step
  icl_env timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
    --launch-skip 1700 --launch-count 560 lua5.4 bench/gpu/bench_llama_gpu.lua --pe "${ICL_PROFILE_PE:-nope}" \
    --steps 2 --reps 1 --no-graphs >"$OUT/ncu.txt" 2>&1
  note "ncu: rc $? in $(($(elapsed) - t)) s (ncu.txt)"
fi

# ---- 6. and 7. PyTorch -----------------------------------------------------------------------
if [ "${ICL_RUN_TORCH:-1}" = 0 ]; then
  note "torch: skipped (ICL_RUN_TORCH=0); total $(elapsed) s; tests exit code $trc"
  exit $trc
fi
t=$(elapsed)
export PYTHONUNBUFFERED=1
timeout 150 python3 bench/gpu/torch_llama_gpu.py --mode eager --steps 20 --reps 3 >"$OUT/torch.txt" 2>&1
note "torch eager: done in $(($(elapsed) - t)) s"
for pe in nope alibi fire dynamic-yarn; do
  l=$(left)
  if [ "$l" -lt 90 ]; then
    echo "torch-compile $pe tf32 n/a (skipped: $l s of the budget left)" >>"$OUT/torch.txt"
    continue
  fi
  t=$(elapsed)
  timeout $((l - 30)) python3 bench/gpu/torch_llama_gpu.py --mode compile --pe $pe --steps 20 --reps 3 \
    >>"$OUT/torch.txt" 2>&1 || echo "torch-compile $pe tf32 n/a (failed or timed out after $(($(elapsed) - t)) s)" \
    >>"$OUT/torch.txt"
  note "torch compile $pe: $(($(elapsed) - t)) s"
done

# ---- summary ------------------------------------------------------------------------------
python3 - "$OUT" <<'EOF' | tee -a "$OUT/summary.txt"
import re, sys
out = sys.argv[1]
def rows(path, prefix):
    r = {}
    for line in open(path, errors="replace"):
        f = line.split()
        # the table is of graph replays: skip the --no-graphs control line
        if len(f) >= 5 and f[0] == prefix and f[3] != "n/a" and "graphs=off" not in line:
            try:
                r[(f[1], f[2])] = (float(f[3]), line)
            except ValueError:
                pass
    return r
icl = rows(f"{out}/bench_llama.txt", "icl-gpu")
eager = rows(f"{out}/torch.txt", "torch-eager")
comp = rows(f"{out}/torch.txt", "torch-compile")
mfu = {}
for (pe, mode), (v, line) in icl.items():
    m = re.search(r"mfu_tf32=([\d.]+)%.*mfu_fp32=([\d.]+)%.*50k=(\d+)s", line)
    mfu[(pe, mode)] = m.groups() if m else ("?", "?", "?")
print("\nstandard Llama, batch 64 x 102 tokens, steps/s (median); MFU vs H100 SXM dense TF32 495 / FP32 67 TFLOP/s")
print(f"{'encoding':14} {'icl':>8} {'ms/step':>8} {'MFU tf32':>9} {'MFU fp32':>9} {'50k steps':>9} "
      f"{'HF eager':>9} {'compile':>9} {'x eager':>8} {'x compile':>9}")
for pe in ["nope", "alibi", "fire", "dynamic-yarn"]:
    i = icl.get((pe, "tf32"), (None,))[0]
    e = eager.get((pe, "tf32"), (None,))[0]
    c = comp.get((pe, "tf32"), (None,))[0]
    f = lambda v, p=2: "n/a" if v is None else f"{v:.{p}f}"
    r = lambda a, b: "n/a" if a is None or b is None else f"{a / b:.1f}x"
    m = mfu.get((pe, "tf32"), ("n/a", "n/a", "n/a"))
    print(f"{pe:14} {f(i):>8} {f(None if i is None else 1000 / i):>8} {m[0] + '%':>9} {m[1] + '%':>9} "
          f"{m[2] + 's':>9} {f(e):>9} {f(c):>9} {r(i, e):>8} {r(i, c):>9}")
for (pe, mode), (v, line) in sorted(icl.items()):
    m = re.search(r"(eval8x=\S+)", line)
    print(f"icl {pe} {mode}: {m.group(1) if m else 'eval8x=?'} (batch 64 x 816 tokens after training)")
s = icl.get(("nope", "fp32"), (None,))[0]
print(f"icl nope strict FP32: {'n/a' if s is None else f'{s:.2f} steps/s'}; goals: >= 10x eager, >= 3x compile, "
      "50k steps < 300 s")
EOF
note "total $(elapsed) s; tests exit code $trc"
exit $trc

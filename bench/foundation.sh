#!/usr/bin/env bash
# Runs the foundation benchmark for icl and PyTorch CPU in one go, with the
# same thread count, and prints the ratio table (icl speed / PyTorch speed).
# Needs: a built tree (scripts/build.sh) and `pip install torch`.
set -euo pipefail
cd "$(dirname "$0")/.."
export ICL_NUM_THREADS=${ICL_NUM_THREADS:-2} OMP_NUM_THREADS=${ICL_NUM_THREADS:-2}
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/${ICL_BUILD_DIR:-build}/lua/?.so;;"
icl=$(lua5.4 bench/foundation.lua)
torch=$(python3 bench/torch_foundation.py)
python3 - "$icl" "$torch" <<'PY'
import json, sys, platform, subprocess
icl = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
pt = {d["what"]: d for d in (json.loads(l) for l in sys.argv[2].splitlines() if l.startswith("{"))}
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
import os
print(f"CPU: {cpu}, threads: {os.environ['ICL_NUM_THREADS']}")
print(f"| {'what':40s} | {'icl ms':>8s} | {'icl GFLOP/s':>11s} | {'torch ms':>8s} | {'torch GFLOP/s':>13s} | {'ratio':>6s} |")
print("|" + "-" * 42 + "|" + "-" * 10 + "|" + "-" * 13 + "|" + "-" * 10 + "|" + "-" * 15 + "|" + "-" * 8 + "|")
for d in icl:
    p = pt[d["what"]]
    print(f"| {d['what']:40s} | {d['seconds']*1e3:8.2f} | {d['gflops']:11.1f} | {p['seconds']*1e3:8.2f} | {p['gflops']:13.1f} | {p['seconds']/d['seconds']:5.2f}x |")
PY

#!/usr/bin/env bash
# Mamba training step on the CPU: icl vs HF transformers' MambaModel (its
# slow path, the Python loop over time), same thread count, one run.
#   bench/mamba_cpu.sh            # needs a built tree (build/) and torch + transformers
# Environment: ICL_NUM_THREADS (2), HF_LAYERS (2), HF_STEPS (1), ICL_STEPS (3).
# HF's slow path keeps several [B, E, T, N] tensors per layer for autograd
# (about 1.7 GB per layer at batch 64, 102 tokens), so the 32-layer model does
# not fit in memory and one step would take about half an hour: HF is timed
# with HF_LAYERS layers and compared with icl at the same depth; icl is also
# timed at the full 32 layers. Prints the JSON lines and a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${ICL_NUM_THREADS:-2}
export ICL_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/${ICL_BUILD_DIR:-build}/lua/?.so;;"
hf_layers=${HF_LAYERS:-2}
load=$(cut -d' ' -f1-3 /proc/loadavg)
peak1=$(lua5.4 bench/sgemm_peak.lua | awk '{print $2}')
icl_full=$(lua5.4 bench/mamba_step.lua 32 "${ICL_STEPS:-3}" 1)
icl_small=$(lua5.4 bench/mamba_step.lua "$hf_layers" "${ICL_STEPS:-3}" 1)
torch=$(python3 bench/torch_mamba_step.py --layers "$hf_layers" --steps "${HF_STEPS:-1}" --warmup 1 \
        --threads "$threads" 2>/dev/null | grep '^{')
peak2=$(lua5.4 bench/sgemm_peak.lua | awk '{print $2}')
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$icl_full"
echo "$icl_small"
echo "$torch"
echo "sgemm peak (4096^3): $peak1 GFLOP/s before, $peak2 after"
python3 - "$icl_full" "$icl_small" "$torch" "$load" "$load_end" "$peak1" "$peak2" <<'PY'
import json, subprocess, sys
full, small, pt = (json.loads(x) for x in sys.argv[1:4])
peak = max(float(sys.argv[6]), float(sys.argv[7]))
theoretical = full["threads"] * 2.45 * 32  # 2.45 GHz x 32 FP32 FLOP/cycle (2 FMA x 8 lanes) per core
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print(f"\nCPU: {cpu}, {full['threads']} threads; load average {sys.argv[4]} (start), {sys.argv[5]} (end)")
print(f"batch {full['batch']}, {full['tokens']} tokens, D = 20, hidden 256, state 16, expand 2, conv 4, T_c = {full['T_c']}\n")
print("| implementation | layers | steps timed | ms / step | steps / s | vs HF (same layers) |")
print("|---|---|---|---|---|---|")
print(f"| HF MambaModel slow path (torch {pt['torch']}, transformers {pt['transformers']}) | {pt['layers']} | {pt['steps']} | {pt['ms_per_step']:.0f} | {pt['steps_per_s']:.4f} | 1 |")
print(f"| icl | {small['layers']} | {small['steps']} | {small['ms_per_step']:.0f} | {small['steps_per_s']:.3f} | {pt['ms_per_step'] / small['ms_per_step']:.0f}x |")
hf32 = pt['ms_per_step'] / pt['layers'] * 32
print(f"| HF, 32 layers (per-layer time x 32, not run) | 32 | - | {hf32:.0f} | {1000 / hf32:.5f} | 1 |")
print(f"| icl | 32 | {full['steps']} | {full['ms_per_step']:.0f} | {full['steps_per_s']:.3f} | {hf32 / full['ms_per_step']:.0f}x |")
print()
print("| icl, 32 layers, per step | seconds |")
print("|---|---|")
for k in ("proj", "scan", "conv", "other"):
    print(f"| {k} | {full[k + '_s_per_step']:.2f} |")
rate = full["proj_gflops"]
print(f"\nprojections: {full['proj_gflop_per_step']:.0f} GFLOP per step at {rate:.1f} GFLOP/s = "
      f"{100 * rate / peak:.0f}% of the measured sgemm peak ({peak:.1f} GFLOP/s, 4096^3), "
      f"{100 * rate / theoretical:.0f}% of the theoretical {theoretical:.1f} GFLOP/s")
print(f"peak RSS: icl 32 layers {full['rss_peak_mb']:.0f} MB, icl {small['layers']} layers {small['rss_peak_mb']:.0f} MB, "
      f"HF {pt['layers']} layers {pt['rss_peak_mb']:.0f} MB")
PY

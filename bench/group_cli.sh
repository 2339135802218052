#!/usr/bin/env bash
# Two seeds of one config trained with `icl train --seeds 0,1` (one process, one run per core)
# vs the same two runs one after another (each with every thread). Whole commands, so the
# figure includes start-up, held-out evaluations and checkpoint saves (no OOD evaluation).
# usage: bench/group_cli.sh [steps=500] [config=configs/toy_task.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-500}
config=${2:-configs/toy_task.yaml}
icl=${ICL:-bin/icl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
set_args=(--set "training.max_steps=$steps" --no-eval --progress-every 1000)
t0=$(now)
for seed in 0 1; do
  "$icl" train "$config" "${set_args[@]}" --set "training.seed=$seed" --run-dir "$tmp/alone$seed" >/dev/null 2>&1
done
t1=$(now)
"$icl" train "$config" "${set_args[@]}" --seeds 0,1 --run-dir "$tmp/g0" --run-dir "$tmp/g1" >/dev/null 2>&1
t2=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v s="$steps" -v cfg="$config" 'BEGIN {
  printf "%s, 2 seeds x %d steps: one by one %.1f s, grouped (--seeds 0,1) %.1f s, ratio %.2fx\n",
         cfg, s, b - a, c - b, (b - a) / (c - b) }'

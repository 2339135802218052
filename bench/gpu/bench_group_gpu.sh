#!/usr/bin/env bash
# Runs of one shape on one GPU (issue: sweeps, "many runs per GPU"): K seeds
# of the toy config trained
#   alone    one after another, K processes (`icl train --device cuda`);
#   lanes    as one group (`icl train --seeds 0,..,K-1`), each run's CUDA graph
#            replayed on a lane (stream) of its own, so the K steps overlap;
#   serial   the same group with ICL_GROUP_LANES=0: the K replays in turn on
#            one stream.
# Reported: whole commands (start-up, CUDA initialisation, the held-out
# evaluations and checkpoints of the config included, no OOD evaluation: what
# a sweep pays) and the training step alone (from the time stamps of the
# first and last train records in metrics.jsonl), as ratios to `alone`, and
# whether every grouped run's model.safetensors equals its run alone, bit for bit.
# usage: bench/gpu/bench_group_gpu.sh [steps=2000] [K=4] [config=configs/toy_task.yaml]
set -uo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-2000}
K=${2:-4}
config=${3:-configs/toy_task.yaml}
icl=${ICL:-bin/icl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
args=(--device "${ICL_BENCH_DEVICE:-cuda}" --set "training.max_steps=$steps" --no-eval --progress-every 100000)
seeds=$(seq -s, 0 $((K - 1)))
t0=$(now)
for ((s = 0; s < K; s++)); do
  if ! "$icl" train "$config" "${args[@]}" --set "training.seed=$s" --run-dir "$tmp/alone/r$s" >"$tmp/alone$s.log" 2>&1
  then echo "group-gpu alone seed $s FAILED:"; tail -5 "$tmp/alone$s.log"; exit 1; fi
done
t1=$(now)
grouped() { # mode
  local dirs=() s
  for ((s = 0; s < K; s++)); do dirs+=(--run-dir "$tmp/$1/r$s"); done
  if ! "$icl" train "$config" "${args[@]}" --seeds "$seeds" "${dirs[@]}" >"$tmp/$1.log" 2>&1
  then echo "group-gpu $1 FAILED:"; tail -5 "$tmp/$1.log"; return 1; fi
}
grouped lanes
t2=$(now)
ICL_GROUP_LANES=0 grouped serial
t3=$(now)
python3 - "$tmp" "$K" "$steps" "$config" "$t0" "$t1" "$t2" "$t3" <<'PY'
import json, sys, filecmp, statistics
tmp, K, steps, cfg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = [float(x) for x in sys.argv[5:9]]
wall = {"alone": t[1] - t[0], "lanes": t[2] - t[1], "serial": t[3] - t[2]}
def step_ms(mode, r):  # ms per step from the first to the last train record
    recs = [json.loads(l) for l in open(f"{tmp}/{mode}/r{r}/metrics.jsonl") if '"train"' in l]
    a, b = recs[0], recs[-1]
    return 1000 * (b["time"] - a["time"]) / (b["step"] - a["step"])
# alone: K runs one after another; grouped: one step of the group advances all K
ms = {"alone": sum(step_ms("alone", r) for r in range(K)),
      "lanes": statistics.median(step_ms("lanes", r) for r in range(K)),
      "serial": statistics.median(step_ms("serial", r) for r in range(K))}
same = {m: sum(filecmp.cmp(f"{tmp}/alone/r{r}/model.safetensors", f"{tmp}/{m}/r{r}/model.safetensors",
                           shallow=False) for r in range(K)) for m in ("lanes", "serial")}
for m in ("alone", "lanes", "serial"):
    print(f"group-gpu {cfg} K={K} steps={steps} mode={m} wall={wall[m]:.1f}s ratio_wall={wall['alone'] / wall[m]:.2f}x "
          f"step_ms={ms[m]:.3f} ratio_step={ms['alone'] / ms[m]:.2f}x"
          + ("" if m == "alone" else f" bitwise_same_as_alone={same[m]}/{K}"))
PY

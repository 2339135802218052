#!/usr/bin/env bash
# Llama training-step speed on the CPU: icl against PyTorch CPU eager (HF
# LlamaModel, eager attention, fp32; ALiBi/FIRE as a custom bias in eager
# attention), both with 2 threads, in the same run, at the standard size
# (16 layers, hidden 256, 8 heads) and the toy size (2 layers, hidden 64,
# 2 heads); batch 64, 51 examples (102 tokens), D = 20.
# Both report the median of their timed steps. At the toy size (steps of
# 40-150 ms) both run at once in alternating bursts (bench/interleave.py:
# TOY_BURSTS bursts of TOY_STEPS steps per side, the order swapped every
# burst), so whatever else the shared machine runs lands on both sides
# alike; each side's median is over all its bursts, and the spread of the
# ratio between neighbouring bursts is printed too. TOY_MODE=rounds runs the
# older scheme instead: whole processes alternating for TOY_ROUNDS rounds of
# 15 steps, the table keeping each side's best round. The table keeps each
# side's best line when the output of several runs is given to it.
#   bench/llama_cpu.sh                   # everything (about 15 minutes on 2 cores)
#   STD_PES="rope fire" TOY_PES="rope" STD_STEPS=3 TOY_BURSTS=8 bench/llama_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ICL_BUILD_DIR:-build}
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/$BUILD/lua/?.so;;"
export ICL_NUM_THREADS=2 OMP_NUM_THREADS=2
# unset: every encoding; set but empty (STD_PES=""): none of that size
STD_PES=${STD_PES-"nope rope alibi fire dynamic-yarn yarn linear dynamic"}
TOY_PES=${TOY_PES-"nope rope alibi fire dynamic-yarn yarn linear dynamic"}
STD_STEPS=${STD_STEPS:-3}
TOY_MODE=${TOY_MODE:-interleaved}
TOY_BURSTS=${TOY_BURSTS:-16}
TOY_STEPS=${TOY_STEPS:-5}
TOY_ROUNDS=${TOY_ROUNDS:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
lua5.4 bench/sgemm_peak.lua | tee -a "$out"
for pe in $STD_PES; do
  lua5.4 bench/llama_step.lua standard "$pe" "$STD_STEPS" 1 | tee -a "$out"
  python3 bench/torch_llama_step.py standard "$pe" "$STD_STEPS" 1 | tee -a "$out"
done
for pe in $TOY_PES; do
  if [ "$TOY_MODE" = rounds ]; then
    for _ in $(seq "$TOY_ROUNDS"); do
      lua5.4 bench/llama_step.lua toy "$pe" 15 3 | tee -a "$out"
      python3 bench/torch_llama_step.py toy "$pe" 15 3 | tee -a "$out"
    done
  else
    python3 bench/interleave.py toy "$pe" "$TOY_BURSTS" "$TOY_STEPS" 3 | tee -a "$out"
  fi
done
lua5.4 bench/sgemm_peak.lua | tee -a "$out"
echo
lua5.4 bench/llama_table.lua "$out"

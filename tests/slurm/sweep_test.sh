#!/usr/bin/env bash
# End to end on a real one-node Slurm: start the test cluster
# (tests/slurm/cluster.sh), submit a toy sweep as one job array with
# `icl sweep SPEC --slurm`, follow it with `--status --json` until every cell
# has ended and the summary job has written summary.md, check that every cell
# finished exactly once; then the same with `group: seeds` (one array task
# per group of seeds); and stop the daemons (also on failure).
#
# The trainer is the fake one (tests/sweep/fake_train.sh) unless
# ICL_SWEEP_REAL=1, which runs the real `icl train` on a tiny config.
# Exits 77 (skipped) without root or without slurm-wlm/munge.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${ICL_BUILD_DIR:-$ROOT/build}
if [ "$(id -u)" != 0 ]; then echo "# skip: the Slurm test needs root"; exit 77; fi
for p in slurmctld slurmd munged sbatch squeue sinfo; do
  if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$p" ]; then
    echo "# skip: $p is not installed (slurm-wlm munge)"
    exit 77
  fi
done
export PATH=$PATH:/usr/sbin
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$BUILD/lua/?.so;;"
WORK=$(mktemp -d /tmp/icl-slurm-sweep.XXXXXX)
chmod 755 "$WORK" # munged runs as the munge user and must reach the cluster directory inside
export ICL_SLURM_DIR=$WORK/cluster
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
finish() {
  local rc=$?
  if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
    echo "# --- logs (failure) ---"
    tail -n 30 "$ICL_SLURM_DIR"/log/*.log 2>/dev/null | sed 's/^/# /'
    for f in "$WORK"/out/*/slurm/*.out; do [ -f "$f" ] && { echo "# $f"; sed 's/^/#   /' "$f"; }; done
  fi
  bash "$ROOT/tests/slurm/cluster.sh" stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap finish EXIT

if ! bash "$ROOT/tests/slurm/cluster.sh" start >"$WORK/cluster.out" 2>&1; then
  rc=$?
  if [ "$rc" = 77 ]; then echo "# skip: $(cat "$WORK/cluster.out")"; exit 77; fi
  sed 's/^/# /' "$WORK/cluster.out"
  not_ok "start a one-node Slurm"
  echo "$n passed, $failed failed" | sed "s/^$n passed/$((n - failed)) passed/"
  exit 1
fi
ok "start a one-node Slurm"
export SLURM_CONF=$ICL_SLURM_DIR/slurm.conf
echo "# sinfo:"; sinfo | sed 's/^/#   /'

mkdir -p "$WORK/cfg"
if [ "${ICL_SWEEP_REAL:-0}" = 1 ]; then
  unset ICL_SWEEP_TRAIN_CMD
  config="$ROOT/configs/tasks/{task}/{encoding}.yaml"
  tasks='"linear_regression"'; encs='"nope", "alibi"'
  overrides='"training.max_steps=20", "training.save_steps=10", "training.eval_steps=10", "training.logging_steps=5"'
  extra='device = "cpu",'
else
  export ICL_SWEEP_TRAIN_CMD="$ROOT/tests/sweep/fake_train.sh" FAKE_STEP_SLEEP=0.2
  for t in linear_regression majority; do
    mkdir -p "$WORK/cfg/$t"
    for e in nope rope; do echo "task: $t" >"$WORK/cfg/$t/$e.yaml"; done
  done
  config="$WORK/cfg/{task}/{encoding}.yaml"
  tasks='"linear_regression", "majority"'; encs='"nope", "rope"'
  overrides='"training.max_steps=5"'
  extra=''
fi
cat >"$WORK/toy.lua" <<SPEC
return {
  name = "slurmtoy", output_dir = "$WORK/out", config = "$config",
  tasks = {$tasks}, encodings = {$encs}, sizes = {"tiny"}, seeds = 1,
  overrides = {$overrides}, $extra
  slurm = {partition = "test", time = "00:10:00", cpus_per_task = 1, array_limit = 2},
}
SPEC
icl() { "$ROOT/bin/icl" "$@"; }
field() { # field NAME < status JSON  (n_cells, finished, done)
  FIELD=$1 lua5.4 -e 'local j = require("icl.sweep.json").decode(io.read("a"))
    print(tostring(({n_cells = j.n_cells, finished = j.counts.finished, done = j.done})[os.getenv("FIELD")]))' 
}
# wait_sweep SPEC NAME: until every cell has ended, the summary exists and the queue is empty;
# sets done_ (1 when that happened in time) and st (the last --status --json)
wait_sweep() {
  local deadline=$((SECONDS + ${ICL_SLURM_TIMEOUT:-300}))
  done_=0
  while [ $SECONDS -lt $deadline ]; do
    st=$(icl sweep "$1" --status --json 2>/dev/null)
    if [ "$(echo "$st" | field done)" = true ] && [ -f "$WORK/out/$2/summary.md" ] &&
       [ -z "$(squeue -h 2>/dev/null)" ]; then done_=1; break; fi
    sleep 2
  done
  echo "# icl sweep --status:"; icl sweep "$1" --status | sed 's/^/#   /'
}
cells=$(icl sweep "$WORK/toy.lua" --status --json | field n_cells)
out=$(icl sweep "$WORK/toy.lua" --slurm 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
check "icl sweep --slurm submits one job array" '[ $rc = 0 ] && echo "$out" | grep -q "submitted array job"'
job=$(echo "$out" | sed -n 's/^submitted array job \([0-9]*\).*/\1/p')
echo "# squeue after submission:"; squeue | sed 's/^/#   /'

wait_sweep "$WORK/toy.lua" slurmtoy
check "every array task ended within the time limit" '[ $done_ = 1 ]'
fin=$(echo "$st" | field finished)
check "all $cells cells finished (status says $fin)" '[ "$fin" = "$cells" ]'
check "the summary job wrote summary.md and summary.json" \
  '[ -f "$WORK/out/slurmtoy/summary.md" ] && [ -f "$WORK/out/slurmtoy/summary.json" ]'
check "one Slurm log per cell" '[ "$(ls "$WORK"/out/slurmtoy/slurm/cell-*.out 2>/dev/null | wc -l)" = "$cells" ]'
if [ "${ICL_SWEEP_REAL:-0}" != 1 ]; then
  once=1
  for d in "$WORK"/out/slurmtoy/*/*/; do
    case "$d" in */compare/*|*/slurm/*) continue ;; esac # summary outputs, not cells
    c=$(grep -c "^finish" "$d/fake_trainer.log" 2>/dev/null); [ "$c" = 1 ] || { once=0; echo "# $d: $c finish lines"; }
  done
  check "every cell was trained exactly once" '[ $once = 1 ]'
else
  check "every cell wrote ood_length.json" \
    '[ "$(ls "$WORK"/out/slurmtoy/*/*/ood_length.json 2>/dev/null | wc -l)" = "$cells" ]'
fi
echo "# summary.md:"; sed 's/^/#   /' "$WORK/out/slurmtoy/summary.md" 2>/dev/null
echo "# job $job done; sinfo:"; sinfo | sed 's/^/#   /'

# group: seeds on Slurm: one array task per group of seeds, each group one trainer process
genc='"nope"'
cat >"$WORK/grouped.lua" <<SPEC
return {
  name = "slurmgroup", output_dir = "$WORK/out", config = "$config",
  tasks = {$tasks}, encodings = {$genc}, sizes = {"tiny"}, seeds = 2, group = "seeds",
  overrides = {$overrides}, $extra
  slurm = {partition = "test", time = "00:10:00", cpus_per_task = 1, array_limit = 2},
}
SPEC
gcells=$(icl sweep "$WORK/grouped.lua" --status --json | field n_cells)
out=$(icl sweep "$WORK/grouped.lua" --slurm 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ntasks=$((gcells / 2))
check "group: seeds submits one array task per group ($gcells cells, $ntasks tasks)" \
  '[ $rc = 0 ] && echo "$out" | grep -q "of $ntasks tasks (group: seeds"'
wait_sweep "$WORK/grouped.lua" slurmgroup
fin=$(echo "$st" | field finished)
check "grouped: all $gcells cells finished (status says $fin) and the summary was built" \
  '[ $done_ = 1 ] && [ "$fin" = "$gcells" ]'
check "grouped: one Slurm log per group" \
  '[ "$(ls "$WORK"/out/slurmgroup/slurm/cell-*.out 2>/dev/null | wc -l)" = "$ntasks" ]'
check "grouped: each array task trained its group in one process" \
  '[ "$(cat "$WORK"/out/slurmgroup/slurm/cell-*.out | grep -c "one process for 2 cells")" = "$gcells" ]'
if [ "${ICL_SWEEP_REAL:-0}" != 1 ]; then
  once=1
  for d in "$WORK"/out/slurmgroup/*/*/; do
    case "$d" in */compare/*|*/slurm/*) continue ;; esac
    c=$(grep -c "^finish" "$d/fake_trainer.log" 2>/dev/null); [ "$c" = 1 ] || { once=0; echo "# $d: $c finish lines"; }
  done
  check "grouped: every cell was trained exactly once" '[ $once = 1 ]'
fi
echo "$((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]

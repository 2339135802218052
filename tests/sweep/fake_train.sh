#!/usr/bin/env bash
# A stand-in for `icl train` with the same contract, for testing sweeps
# without training anything:
#   fake_train.sh CONFIG [--set key=value]... --run-dir DIR [--device D] [--no-eval]
#   fake_train.sh CONFIG ... --seeds S1,S2 --run-dir DIR1 --run-dir DIR2   (a group: the runs in turn)
# It honours DIR/run.lock (refuses a run locked by a live process), resumes
# from its own checkpoint file, and writes status.json, metrics.jsonl and
# ood_length.json like the trainer. Knobs (environment):
#   FAKE_STEPS         steps when no --set training.max_steps (default 6)
#   FAKE_STEP_SLEEP    seconds per step (default 0.05)
#   FAKE_FAIL          space-separated substrings of DIR: those runs fail at step FAKE_FAIL_AT (default 2)
#   FAKE_CRASH         substrings: those runs exit 3 without writing a failed status (a crash)
#   FAKE_SLOW          substrings: those runs sleep FAKE_SLOW_SLEEP (default 1) per step
#   FAKE_EVENTS        a file shared by all runs: "start|end <time> <pid> <dir>" lines (starts end
#                      with gpu=$CUDA_VISIBLE_DEVICES)
# Every run also appends "start <pid> <from-step>" / "finish <pid>" to DIR/fake_trainer.log.
set -u
# a group (--seeds S1,S2,... with one --run-dir per seed, as `icl train --seeds`): the runs one
# after another in this process's place; exit 1 when any failed, as the trainer does
if [[ " $* " == *" --seeds "* ]]; then
  args=() dirs=() seeds=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --seeds) seeds="$2"; shift 2 ;;
      --run-dir) dirs+=("$2"); shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  IFS=, read -r -a list <<<"$seeds"
  [ "${#list[@]}" = "${#dirs[@]}" ] || { echo "icl: train: ${#list[@]} seeds but ${#dirs[@]} --run-dir" >&2; exit 2; }
  rc=0
  for i in "${!list[@]}"; do
    "$0" "${args[@]}" --set "training.seed=${list[$i]}" --run-dir "${dirs[$i]}" || rc=1
  done
  exit $rc
fi
config="" dir="" device="" no_eval=0 max_steps="${FAKE_STEPS:-6}" seed=0
while [ $# -gt 0 ]; do
  case "$1" in
    --set) case "$2" in
             training.max_steps=*) max_steps="${2#*=}" ;;
             training.seed=*) seed="${2#*=}" ;;
           esac; shift 2 ;;
    --run-dir) dir="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --no-eval) no_eval=1; shift ;;
    -*) echo "icl: train: unknown option $1" >&2; exit 2 ;;
    *) config="$1"; shift ;;
  esac
done
[ -n "$dir" ] || { echo "icl: train: --run-dir is required here" >&2; exit 2; }
[ -f "$config" ] || { echo "icl: config not found: $config" >&2; exit 2; }
: "$device"
mkdir -p "$dir"
now() { date +%s.%N; }
matches() { # matches "$list" -> does $dir contain one of the words?
  local w
  for w in $1; do case "$dir" in *"$w"*) return 0 ;; esac; done
  return 1
}
host=$(hostname)
write_status() { # state step [error]
  local err="null"
  [ $# -ge 3 ] && err="\"$3\""
  printf '{"state": "%s", "step": %d, "max_steps": %d, "error": %s, "pid": %d, "host": "%s"}\n' \
    "$1" "$2" "$max_steps" "$err" "$$" "$host" >"$dir/status.json.tmp.$$"
  mv -f "$dir/status.json.tmp.$$" "$dir/status.json"
}

# the run lock, as the trainer does it
if [ -f "$dir/run.lock" ]; then
  owner=$(head -n1 "$dir/run.lock" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$$" ] && kill -0 "$owner" 2>/dev/null; then
    echo "icl: run $dir is being trained by process $owner (remove $dir/run.lock if that is wrong)" >&2
    exit 1
  fi
fi
echo "$$" >"$dir/run.lock"
trap 'rm -f "$dir/run.lock"' EXIT

start=0
[ -f "$dir/checkpoint-fake.txt" ] && start=$(cat "$dir/checkpoint-fake.txt")
[ "$start" -gt 0 ] && echo "resuming $dir from step $start"
echo "start $$ $start" >>"$dir/fake_trainer.log"
[ -n "${FAKE_EVENTS:-}" ] && echo "start $(now) $$ $dir gpu=${CUDA_VISIBLE_DEVICES:-none}" >>"$FAKE_EVENTS"
write_status running "$start"

sleep_s="${FAKE_STEP_SLEEP:-0.05}"
matches "${FAKE_SLOW:-}" && sleep_s="${FAKE_SLOW_SLEEP:-1}"
step=$start
while [ "$step" -lt "$max_steps" ]; do
  sleep "$sleep_s"
  step=$((step + 1))
  if matches "${FAKE_FAIL:-}" && [ "$step" -ge "${FAKE_FAIL_AT:-2}" ]; then
    msg="training stopped: fake failure at step $step"
    write_status failed "$step" "$msg"
    echo "icl: $msg" >&2
    [ -n "${FAKE_EVENTS:-}" ] && echo "end $(now) $$ $dir" >>"$FAKE_EVENTS"
    exit 1
  fi
  if matches "${FAKE_CRASH:-}" && [ "$step" -ge "${FAKE_FAIL_AT:-2}" ]; then
    echo "Segmentation fault (fake)" >&2
    [ -n "${FAKE_EVENTS:-}" ] && echo "end $(now) $$ $dir" >>"$FAKE_EVENTS"
    exit 3
  fi
  printf '{"kind": "train", "step": %d, "loss": %s}\n' "$step" "$(awk -v s="$step" 'BEGIN{printf "%.4f", 1/s}')" \
    >>"$dir/metrics.jsonl"
  echo "$step" >"$dir/checkpoint-fake.txt.tmp.$$" && mv -f "$dir/checkpoint-fake.txt.tmp.$$" "$dir/checkpoint-fake.txt"
  write_status running "$step"
  echo "train step $step/$max_steps"
done
write_status trained "$max_steps"
if [ "$no_eval" = 0 ]; then
  # values that depend on the seed and encoding, so that mean ± std is checkable
  enc=$(basename "$dir"); enc=${enc%%-*}
  k=$(printf '%s' "$enc" | cksum | awk '{print $1 % 7}')
  awk -v s="$seed" -v k="$k" 'BEGIN {
    printf "{\"positions\": [1, 2, 3], \"mean\": [0.5, 0.4, 0.3], \"n_prompts\": 64,\n"
    printf " \"summary\": {\"band_in\": %.6f, \"band_ood_2x\": %.6f,", 0.1 * k + 0.01 * s, 0.2 * k + 0.02 * s
    printf " \"value_at_8N\": %.6f, \"effective_length\": %d}}\n", 1 + k + s, 50 + 10 * s
  }' >"$dir/ood_length.json.tmp.$$"
  mv -f "$dir/ood_length.json.tmp.$$" "$dir/ood_length.json"
fi
# the commit: the "finish" record and the finished status go together, even
# when a SIGTERM (the sweep died) arrives in between
trap '' TERM INT
echo "finish $$" >>"$dir/fake_trainer.log"
write_status finished "$max_steps"
trap - TERM INT
[ -n "${FAKE_EVENTS:-}" ] && echo "end $(now) $$ $dir" >>"$FAKE_EVENTS"
echo "trained $max_steps steps"
exit 0

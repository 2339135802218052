#!/usr/bin/env bash
# Train every task x encoding, like the published train.sh:
#   icl train CONFIGS/tasks/<task>/<encoding>.yaml ARGS...
# Defaults: the paper's 7 tasks x the 7 models (nope rope alibi fire yarn dynamic_yarn mamba).
# Runs land in models/<task>/<dims>/<date>/<encoding>-s<seed>-<time>/; a run directory given with
# --run-dir is resumed, so re-running after an interruption continues where it stopped.
# Usage: experiments/train.sh [-n] [-k] [-t TASKS] [-e ENCODINGS] [-c CONFIGS] [-- ICL_TRAIN_ARGS...]

set -euo pipefail
source "$(dirname "$0")/drivers.sh"
driver_parse "$PAPER_TASKS" "$ALL_ENCODINGS" "$@"
for task in $TASKS; do
  for enc in $ENCODINGS; do
    cfg="$CONFIGS/tasks/$task/$enc.yaml"
    if [ ! -f "$cfg" ]; then echo "$(basename "$0"): $cfg: no such config" >&2; exit 2; fi
    driver_run $ICL train "$cfg" ${EXTRA[@]+"${EXTRA[@]}"}
  done
done
[ "$FAILED" = 0 ] || { echo "$(basename "$0"): $FAILED run(s) failed" >&2; exit 1; }

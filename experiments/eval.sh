#!/usr/bin/env bash
# OOD-length evaluation of every trained task x encoding, like the published eval.sh:
#   icl eval RUN ARGS...   (standard.png, ood_length.png, ood_length.json in RUN)
# RUN is the newest run directory of the task and encoding under models/<task>/<dims>/.
# Defaults: the paper's 7 tasks x the 7 models.
# Usage: experiments/eval.sh [-n] [-k] [-t TASKS] [-e ENCODINGS] [-m MODELS] [-d DIMS] [-- ICL_EVAL_ARGS...]

set -euo pipefail
source "$(dirname "$0")/drivers.sh"
driver_parse "$PAPER_TASKS" "$ALL_ENCODINGS" "$@"
driver_each_run eval

#!/usr/bin/env bash
# Duplicated-data attacks and lost-in-the-middle of every trained task x encoding, like the
# published eval_atk.sh:  icl atk RUN ARGS...
# Defaults: linear_regression (Fig. 12) and majority (Fig. 13) x the 7 models.
# Usage: experiments/eval_atk.sh [-n] [-k] [-t TASKS] [-e ENCODINGS] [-m MODELS] [-d DIMS] [-- ICL_ATK_ARGS...]

set -euo pipefail
source "$(dirname "$0")/drivers.sh"
driver_parse "linear_regression majority" "$ALL_ENCODINGS" "$@"
driver_each_run atk

#!/usr/bin/env bash
# Attention analyses (recency bias, repeated blocks) of every trained task x encoding, like the
# published eval_attn.sh:  icl attn RUN ARGS...
# Defaults: linear_regression x the six Llama encodings (Mamba has no attention).
# Usage: experiments/eval_attn.sh [-n] [-k] [-t TASKS] [-e ENCODINGS] [-m MODELS] [-d DIMS] [-- ICL_ATTN_ARGS...]

set -euo pipefail
source "$(dirname "$0")/drivers.sh"
driver_parse "linear_regression" "nope rope alibi fire yarn dynamic_yarn" "$@"
driver_each_run attn

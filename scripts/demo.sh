#!/usr/bin/env bash
# The main job on the CPU: train the toy in-context regression experiment
# and leave a run directory with its plots (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f configs/toy_task.yaml ] && command -v icl >/dev/null && icl train --help >/dev/null 2>&1; then
  exec icl train configs/toy_task.yaml --device cpu "$@"
fi
exec lua5.4 experiments/demo_fit.lua "$@"

# Shared part of the experiment drivers (train.sh, eval.sh, eval_attn.sh, eval_atk.sh), sourced by
# them: options, the task x encoding loop and how a trained run is found. See docs/runner.md.
#
#   -t "TASK ..."      tasks (default: the script's; env TASKS)
#   -e "ENC ..."       encodings = config names under configs/tasks/<task>/ (env ENCODINGS)
#   -c DIR             config tree (default: configs; env CONFIGS)
#   -m DIR             where runs live (default: models; env MODELS)
#   -d DIMS            the curriculum directory of the runs, e.g. dim_4-16 (default: any; env DIMS)
#   -n                 dry run: print each command, run nothing
#   -k                 keep going after a failed command (default: stop at the first failure)
#   -- ARGS...         passed to every icl command (e.g. --device cpu, --set training.max_steps=100)
# ICL names the icl command (default: icl on PATH, else this checkout's bin/icl).

# the 7 tasks of the paper and the 7 models of the published task configs
PAPER_TASKS="linear_regression conjunction disjunction majority sparse_thres int_halfspace parity"
ALL_ENCODINGS="nope rope alibi fire yarn dynamic_yarn mamba"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
if [ -z "${ICL:-}" ]; then
  if command -v icl >/dev/null 2>&1; then ICL=icl; else ICL="$root/bin/icl"; fi
fi

driver_usage() {
  sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
  sed -n '4,13p' "$here/drivers.sh" | sed 's/^# \{0,1\}//'
}

driver_parse() { # default tasks, default encodings, then "$@"
  TASKS=${TASKS:-$1}
  ENCODINGS=${ENCODINGS:-$2}
  shift 2
  CONFIGS=${CONFIGS:-configs}
  MODELS=${MODELS:-models}
  DIMS=${DIMS:-}
  DRY=0 KEEP=0
  while [ $# -gt 0 ]; do
    case "$1" in
      -t) TASKS=$2; shift 2 ;;
      -e) ENCODINGS=$2; shift 2 ;;
      -c) CONFIGS=$2; shift 2 ;;
      -m) MODELS=$2; shift 2 ;;
      -d) DIMS=$2; shift 2 ;;
      -n) DRY=1; shift ;;
      -k) KEEP=1; shift ;;
      -h|--help) driver_usage; exit 0 ;;
      --) shift; break ;;
      *) echo "$(basename "$0"): unknown option $1 (see -h)" >&2; exit 2 ;;
    esac
  done
  EXTRA=("$@")
  FAILED=0
}

# print a command (shell-quoted) and run it unless -n
driver_run() {
  printf '%q ' "$@" | sed 's/ $//'
  echo
  [ "$DRY" = 1 ] && return 0
  if ! "$@"; then
    FAILED=$((FAILED + 1))
    [ "$KEEP" = 1 ] || { echo "$(basename "$0"): stopped after a failed command (-k keeps going)" >&2; exit 1; }
  fi
}

# the newest run directory of (task, encoding): MODELS/<task>/<dims>/<date>/<encoding>-s<seed>-<time>
driver_find_run() {
  local task=$1 enc=$2 d best=""
  for d in "$MODELS/$task"/${DIMS:-*}/*/"$enc"-s*; do
    [ -f "$d/config.yaml" ] || continue
    best=$d # the glob sorts by dims, date, then name (time of day), so the last is the newest
  done
  printf '%s' "$best"
}

# for every task x encoding with a trained run: $ICL <subcommand> RUN EXTRA...
driver_each_run() {
  local sub=$1 task enc run
  for task in $TASKS; do
    for enc in $ENCODINGS; do
      run=$(driver_find_run "$task" "$enc")
      if [ -z "$run" ]; then
        echo "# no run of $task / $enc under $MODELS/$task/${DIMS:-*}/ (train it first)" >&2
        continue
      fi
      driver_run $ICL "$sub" "$run" ${EXTRA[@]+"${EXTRA[@]}"}
    done
  done
  [ "$FAILED" = 0 ] || { echo "$(basename "$0"): $FAILED command(s) failed" >&2; exit 1; }
}

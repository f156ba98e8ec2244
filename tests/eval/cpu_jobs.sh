#!/usr/bin/env bash
# The CPU half of the tiny model's adherence evaluation (issue 5), spread over
# several machines' spare cores: every (prompt/seed pair, setting) is one job
# of one single-threaded sla2-eval process (one video); PROCS jobs run at once
# until the deadline. Jobs whose video is already in a TSV under DONE_DIR are
# skipped, so each call adds the next videos and a later call (or machine)
# goes on where the last stopped. Job order is pair by pair, every setting of
# a pair before the next pair: a run cut short still covers every setting
# over the same prompts.
#
# Usage: tests/eval/cpu_jobs.sh SLA2_EVAL OUT_DIR LIMIT_S PROCS [DONE_DIR]
#   SLA2_EVAL  a built sla2-eval (CPU backend)
#   OUT_DIR    gets new.tsv: the videos finished in this call (one TSV)
#   LIMIT_S    wall seconds from now; no job starts after LIMIT_S - MIN_LEFT_S
#              (MIN_LEFT_S, default 150: about one video on a slow core), and
#              jobs under way at LIMIT_S are cancelled (not counted)
#   PROCS      processes at once (each one thread)
#   DONE_DIR   folder of earlier TSVs (default docs/eval)
# Environment: SLA2_EVAL_SETTINGS (default the 7 settings of sla2-eval),
# SLA2_EVAL_PAIRS (default 100: 50 prompts x seeds 0,1), SLA2_EVAL_STEPS (default
# the runtime's 20; fewer only to try the script), SLA2_EVAL_REVERSE=1 (take the
# jobs from the last pair backwards: a second machine working beside a first
# that goes forwards meets it in the middle instead of repeating its videos).
set -uo pipefail
[ $# -ge 4 ] || { echo "usage: $0 SLA2_EVAL OUT_DIR LIMIT_S PROCS [DONE_DIR]" >&2; exit 2; }
EVAL=$1 OUT=$2 LIMIT=$3 PROCS=$4
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DONE=${5:-$ROOT/docs/eval}
SETTINGS=${SLA2_EVAL_SETTINGS:-dense,0.1:none,0.1:int8,0.1:int8_fp8,0.05:none,0.05:int8,0.05:int8_fp8}
PAIRS=${SLA2_EVAL_PAIRS:-100}
MIN_LEFT=${MIN_LEFT_S:-150}
deadline=$(( $(date +%s) + LIMIT ))
rm -rf "$OUT/jobs" # a folder of an earlier call on this machine would count again
mkdir -p "$OUT/jobs"
model=(--model "$ROOT/models/tiny-demo.yaml" --weights "$ROOT/models/tiny-demo.safetensors"
       --runtime "$ROOT/models/tiny-demo.runtime.yaml" --prompts 50 --seeds 0,1)
[ -n "${SLA2_EVAL_STEPS:-}" ] && model+=(--steps "$SLA2_EVAL_STEPS")

# Videos already done: "setting<TAB>prompt<TAB>seed" lines.
cat "$DONE"/*.tsv 2>/dev/null | grep -v -e '^#' -e '^setting' | cut -f1-3 | sort -u >"$OUT/done.txt"
: >"$OUT/jobs.txt"
for ((pair = 0; pair < PAIRS; pair++)); do
  for setting in ${SETTINGS//,/ }; do
    video=$("$EVAL" "${model[@]}" --list --shard "$pair/$PAIRS" --settings "$setting") || exit 1
    grep -qxF -- "$video" "$OUT/done.txt" || echo "$pair $setting" >>"$OUT/jobs.txt"
  done
done
[ "${SLA2_EVAL_REVERSE:-0}" = 1 ] && { tac "$OUT/jobs.txt" >"$OUT/jobs.rev" && mv "$OUT/jobs.rev" "$OUT/jobs.txt"; }
echo "cpu_jobs: $(wc -l <"$OUT/jobs.txt") videos to do, $(wc -l <"$OUT/done.txt") done before; $PROCS processes, ${LIMIT} s"

# Bash cannot export arrays: each job rebuilds the model flags from a string
# (no spaces in the paths).
run_job() { # pair setting
  local left=$(( deadline - $(date +%s) )) model
  [ $left -ge "$MIN_LEFT" ] || return 0
  read -r -a model <<<"$model_str"
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$EVAL" "${model[@]}" --backend cpu --threads 1 --quiet \
    --shard "$1/$PAIRS" --settings "$2" --time-limit "$left" --tsv "$OUT/jobs/$1-${2/:/_}.tsv" >/dev/null 2>&1
  return 0
}
export -f run_job
export EVAL OUT PAIRS MIN_LEFT deadline
export model_str="${model[*]}"
xargs -P "$PROCS" -L 1 bash -c 'run_job $0 $1' <"$OUT/jobs.txt"

# One TSV of this call's videos (the header of the first job's file).
first=$(ls "$OUT"/jobs/*.tsv 2>/dev/null | head -n 1)
if [ -n "$first" ]; then
  # planned = the videos in this file, so that --merge of several calls adds up
  count=$(cat "$OUT"/jobs/*.tsv | grep -cv -e '^#' -e '^setting')
  grep -e '^#' -e '^setting' "$first" | sed "s/shard=[^;]*;/shard=jobs;/; s/planned=[0-9]*;/planned=$count;/" >"$OUT/new.tsv"
  cat "$OUT"/jobs/*.tsv | grep -v -e '^#' -e '^setting' >>"$OUT/new.tsv"
fi
echo "cpu_jobs: $(grep -cv -e '^#' -e '^setting' "$OUT/new.tsv" 2>/dev/null || echo 0) videos finished in this call"

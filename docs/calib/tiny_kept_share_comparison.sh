#!/bin/sh
# Calibrated per-layer topk against one uniform topk at EQUAL kept share and
# equal quantisation, on the tiny demo model (issue 7). For each k of a list,
# sla2-calib --kept-share k/64 (the tiny model has 64 key blocks, so the
# uniform baseline keeps exactly k blocks in every layer whenever the
# allocation uses its whole share) calibrates on prompts-calib.txt (seed 0 or
# SLA2_CALIB_SEEDS, 4 sampled steps, every candidate topk in int8_fp8; with SLA2_CALIB_REFINE
# the allocation is then refined against the final videos), then --compare
# generates, for each held-out prompt of prompts-compare.txt and each compare
# seed, the dense video, the calibrated one and the uniform ones (int8_fp8 and
# none), and prints each one's error against the dense video and its prompt
# adherence. Ends with one table over the k values. Sampling as in
# tiny_comparison.sh (Euler, guidance 4, shift 5), 10 steps.
#   docs/calib/tiny_kept_share_comparison.sh [BUILD_DIR] [STEPS] [COMPARE_SEEDS]
# Environment:
#   SLA2_CALIB_KS            the k values (default "3 6 9 13")
#   SLA2_CALIB_BACKEND       cpu|cuda|auto (default auto: CUDA when a GPU is usable)
#   SLA2_CALIB_PROMPTS       calibration prompt file (default docs/calib/prompts-calib.txt)
#   SLA2_CALIB_COMPARE       held-out prompt file (default docs/calib/prompts-compare.txt)
#   SLA2_CALIB_SAMPLE_STEPS  sampled steps per calibration run (default 4)
#   SLA2_CALIB_TOPKS         --topk-candidates (default: the tool's, 0.02 ... 0.5)
#   SLA2_CALIB_METRIC        rel-l2 (default) or cosine: the error each layer's choice minimises
#   SLA2_CALIB_OUT           the folder for the outputs (default docs/calib)
#   SLA2_CALIB_SEEDS         calibration seeds (default 0): more seeds, more calibration videos for
#                            --refine to fit, so less overfitting to a few (the comparison's prompts
#                            are held out whatever the seeds)
#   SLA2_CALIB_REFINE        empty (default): no refinement; a number N: --refine N, which improves
#                            each allocation against the final video on the calibration prompts x
#                            seeds (each of its up to 12 moves a round generates all of those videos:
#                            seconds on the GPU, minutes on the CPU)
# Outputs, <sha> the checkpoint's first 8 sha256 digits: per k
# tiny-demo-<sha>-kept-<k>of64.txt (the tool's output), .yaml, .png; and
# tiny-demo-<sha>-kept-share-summary.txt (the table below, with the command);
# with SLA2_CALIB_REFINE=N the names end in -refineN (kept-<k>of64-refineN.txt,
# kept-share-refineN-summary.txt).
# A CPU smoke run (a minute or two):
#   SLA2_CALIB_BACKEND=cpu SLA2_CALIB_KS=6 SLA2_CALIB_SAMPLE_STEPS=1 \
#   SLA2_CALIB_TOPKS=0.05,0.1,0.2 SLA2_CALIB_PROMPTS=one-prompt.txt \
#   SLA2_CALIB_COMPARE=one-prompt.txt SLA2_CALIB_OUT=/tmp/ks \
#   docs/calib/tiny_kept_share_comparison.sh build 3 0
# (add SLA2_CALIB_REFINE=2 for refinement: up to 15 more 3-step videos a round there).
# With refinement on the GPU, calibrating on 4 seeds (compared on the held-out
# prompts with seeds 0-3, as the table in BENCHMARKS.md):
#   SLA2_CALIB_BACKEND=cuda SLA2_CALIB_REFINE=20 SLA2_CALIB_SEEDS=0,1,2,3 \
#   docs/calib/tiny_kept_share_comparison.sh BUILD 10 0,1,2,3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
steps=${2:-10}
seeds=${3:-0,1}
ks=${SLA2_CALIB_KS:-3 6 9 13}
backend=${SLA2_CALIB_BACKEND:-auto}
prompts=${SLA2_CALIB_PROMPTS:-docs/calib/prompts-calib.txt}
compare=${SLA2_CALIB_COMPARE:-docs/calib/prompts-compare.txt}
sample_steps=${SLA2_CALIB_SAMPLE_STEPS:-4}
metric=${SLA2_CALIB_METRIC:-rel-l2}
calib_seeds=${SLA2_CALIB_SEEDS:-0}
refine=${SLA2_CALIB_REFINE:-}
refine_flag=""
if [ -n "$refine" ]; then
  case $refine in
    *[!0-9]*) echo "SLA2_CALIB_REFINE: expected a number of rounds (1..1000), got '$refine'" >&2; exit 2 ;;
  esac
  refine_flag="--refine $refine"
fi
blocks=64 # key blocks of the tiny model (4096 tokens / block_k 64)
calib=$(find "$build" -name sla2-calib -type f -perm -u+x | head -n 1)
[ -n "$calib" ] || { echo "sla2-calib not found under $build" >&2; exit 1; }
calib=$(cd "$(dirname "$calib")" && pwd)/sla2-calib
case $metric in
  rel-l2) metric_flag="" ;;
  cosine) metric_flag="--min-cosine 1" ;; # picks the metric; under --kept-share its value is not used
  *) echo "SLA2_CALIB_METRIC: expected rel-l2 or cosine, got '$metric'" >&2; exit 2 ;;
esac
topk_flag=""
[ -z "${SLA2_CALIB_TOPKS:-}" ] || topk_flag="--topk-candidates $SLA2_CALIB_TOPKS"
cd "$root" # relative paths in the YAML's header
out=${SLA2_CALIB_OUT:-docs/calib}
mkdir -p "$out"
sha=$(sha256sum models/tiny-demo.safetensors | cut -c1-8)
suffix=${refine:+-refine$refine} # refined runs do not overwrite the plain ones
summary=$out/tiny-demo-$sha-kept-share$suffix-summary.txt
rows=$(mktemp)
trap 'rm -f "$rows" "$rows.rc"' EXIT
start=$(date +%s)
for k in $ks; do
  name=$out/tiny-demo-$sha-kept-${k}of$blocks$suffix
  {
    echo "checkpoint: $(sha256sum models/tiny-demo.safetensors)"
    echo "command: sla2-calib --backend $backend --kept-share $k/$blocks $metric_flag $topk_flag $refine_flag" \
         "--steps $steps --sample-steps $sample_steps, calibration prompts $prompts, seeds $calib_seeds," \
         "compare prompts $compare, seeds $seeds"
    run_start=$(date +%s)
    rc=0
    # shellcheck disable=SC2086 # the flags are word lists on purpose
    "$calib" --model models/tiny-demo.yaml --weights models/tiny-demo.safetensors --backend "$backend" \
        --prompts "$prompts" --seeds "$calib_seeds" --steps "$steps" --sample-steps "$sample_steps" \
        --sampler euler --guidance 4 --shift 5 --kept-share "$k/$blocks" $metric_flag $topk_flag $refine_flag \
        --quiet \
        --out "$name.yaml" --plot "$name.png" \
        --compare --compare-prompts "$compare" --compare-seeds "$seeds" || rc=$?
    echo "$rc" >"$rows.rc"
    echo "wall: $(( $(date +%s) - run_start )) s"
  } 2>&1 | tee "$name.txt"
  rc=$(cat "$rows.rc")
  [ "$rc" = 0 ] || { echo "sla2-calib failed (status $rc) at k = $k; see $name.txt" >&2; exit 1; }
  # The comparison's lines (calib_compare.c): "compare: ... kept share X% ... (N of 64 key blocks, Y%)",
  # the summary's rows (calibrated, then the uniform one in the same mode; the last three fields are
  # error, attributes matched, all-3 count) and "paired calibrated - uniform MODE ...: video rel-L2 D +- SE".
  awk -v k="$k" '
    /^compare:/ { for (i = 1; i <= NF; i++) { if ($i == "share") cal = $(i + 1); if ($i == "blocks,") uni = $(i + 1) }
                  sub(/\)?,$/, "", uni) }
    /^summary over/ { row = 0; next }
    row >= 0 && /^  / { row++
                        if (row == 2) { ce = $(NF - 2); ca = $(NF - 1) }
                        if (row == 3) { ue = $(NF - 2); ua = $(NF - 1) } }
    /^paired calibrated/ { for (i = 1; i <= NF; i++) { if ($i == "rel-L2") { d = $(i + 1); se = $(i + 3) }
                                                      if ($i == "closer") { cl = $(i + 2) "/" $(i + 4) } }
                           sub(/;$/, "", cl) }
    BEGIN { row = -1 }
    END { printf "%4s  %8s  %8s  %10s  %10s  %18s  %7s  %6s  %6s\n", k, cal, uni, ce, ue, d " +- " se, cl, ca, ua }
  ' "$name.txt" >>"$rows"
done
{
  echo
  echo "checkpoint: $(sha256sum models/tiny-demo.safetensors)"
  topk_note=${SLA2_CALIB_TOPKS:+, candidates $SLA2_CALIB_TOPKS}
  refine_note=${refine:+, --refine $refine against the final calibration videos}
  echo "kept share k/$blocks, $backend, $steps Euler steps (guidance 4, shift 5); calibration: $prompts," \
       "seeds $calib_seeds, $sample_steps sampled steps, metric $metric$topk_note$refine_note;" \
       "comparison: $compare, seeds $seeds"
  echo "video rel-L2: mean over the videos of ||video - dense video|| / ||dense video||; paired: calibrated" \
       "minus uniform (same mode) per video, mean +- standard error; closer: videos where calibrated is closer;" \
       "adherence: mean attributes matched of 3"
  printf "%4s  %8s  %8s  %10s  %10s  %18s  %7s  %6s  %6s\n" k "cal kept" "uni kept" "cal err" "uni err" \
         "paired cal-uni" closer "cal adh" "uni adh"
  cat "$rows"
  echo "wall: $(( $(date +%s) - start )) s"
} | tee "$summary"

#!/bin/sh
# Does calibration pay off on the tiny demo model? One command, re-runnable on
# a new checkpoint: calibrates on prompts-calib.txt (seed 0, 4 sampled steps),
# then generates, for each held-out prompt of prompts-compare.txt and each
# compare seed, the dense video, the calibrated one and one uniform topk at the
# same mean kept share (int8_fp8 and none), and prints each one's error against
# the dense video and its prompt adherence. Sampling as the model card's
# (Euler, guidance 4, shift 5), 10 steps (20 in the card).
#   docs/calib/tiny_comparison.sh [BUILD_DIR] [BUDGET] [STEPS] [COMPARE_SEEDS]
# BUDGET: a rel-L2 budget (default 0.05), or cos:C for --min-cosine C.
# Environment: SLA2_CALIB_BACKEND cpu|cuda|auto (default auto: CUDA when a GPU
# is usable), SLA2_CALIB_COMPARE the held-out prompt file (default
# docs/calib/prompts-compare.txt), SLA2_CALIB_OUT the folder for the outputs (default docs/calib):
# tiny-demo-<sha>-calib-<budget>.txt (starting with the checkpoint's sha256;
# <sha> its first 8 digits, so runs on another checkpoint keep their own
# files), .png, and tiny-demo-<sha>-calibrated-<budget>.yaml.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
budget=${2:-0.05}
steps=${3:-10}
seeds=${4:-0,1,2,3}
backend=${SLA2_CALIB_BACKEND:-auto}
compare=${SLA2_CALIB_COMPARE:-docs/calib/prompts-compare.txt}
calib=$(find "$build" -name sla2-calib -type f -perm -u+x | head -n 1)
[ -n "$calib" ] || { echo "sla2-calib not found under $build" >&2; exit 1; }
calib=$(cd "$(dirname "$calib")" && pwd)/sla2-calib
cd "$root" # relative paths in the YAML's header
d=docs/calib
out=${SLA2_CALIB_OUT:-$d}
mkdir -p "$out"
case $budget in
  cos:*) flag="--min-cosine ${budget#cos:}" name=cos${budget#cos:} ;;
  *) flag="--max-rel-l2 $budget" name=$budget ;;
esac
sha=$(sha256sum models/tiny-demo.safetensors | cut -c1-8)
start=$(date +%s)
{
  echo "checkpoint: $(sha256sum models/tiny-demo.safetensors)"
  echo "command: sla2-calib --backend $backend $flag --steps $steps, compare prompts $compare, seeds $seeds"
  "$calib" --model models/tiny-demo.yaml --weights models/tiny-demo.safetensors --backend "$backend" \
      --prompts $d/prompts-calib.txt --seeds 0 --steps "$steps" --sample-steps 4 \
      --sampler euler --guidance 4 --shift 5 $flag --quiet \
      --out "$out/tiny-demo-$sha-calibrated-$name.yaml" --plot "$out/tiny-demo-$sha-calib-$name.png" \
      --compare --compare-prompts "$compare" --compare-seeds "$seeds" || [ $? = 3 ]
  echo "wall: $(( $(date +%s) - start )) s"
} 2>&1 | tee "$out/tiny-demo-$sha-calib-$name.txt"

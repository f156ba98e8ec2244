#!/bin/sh
# Reproduces docs/calib/BENCHMARKS-calib.md on the tiny demo model: calibrates
# on prompts-calib.txt, then compares calibrated vs uniform-topk videos (equal
# mean kept share) against the dense video on the held-out prompts-compare.txt.
# Sampling as the model card's samples (Euler, guidance 4, shift 5), 10 steps (20 in the card)
# so that the whole comparison runs in about half an hour on the 2-core CPU.
#   docs/calib/tiny_comparison.sh [BUILD_DIR] [BUDGET] [STEPS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
budget=${2:-0.2}
steps=${3:-10}
calib=$(find "$build" -name sla2-calib -type f -perm -u+x | head -n 1)
[ -n "$calib" ] || { echo "sla2-calib not found under $build" >&2; exit 1; }
calib=$(cd "$(dirname "$calib")" && pwd)/sla2-calib
cd "$root" # relative paths in the YAML's header
d=docs/calib
"$calib" --model models/tiny-demo.yaml --weights models/tiny-demo.safetensors \
    --prompts $d/prompts-calib.txt --seeds 0 --steps "$steps" --sample-steps 4 \
    --sampler euler --guidance 4 --shift 5 --max-rel-l2 "$budget" \
    --out $d/tiny-demo-calibrated-$budget.yaml --plot $d/tiny-demo-calib-$budget.png \
    --compare --compare-prompts $d/prompts-compare.txt | tee $d/tiny-demo-calib-$budget.txt

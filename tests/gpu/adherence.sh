#!/usr/bin/env bash
# Prompt adherence of the tiny demo model through the SDK on the GPU:
# sla2-gen --backend cuda over prompts x seeds x attention settings, read by
# the C analyser (--score). Usage: tests/gpu/adherence.sh [PROMPTS] [SEEDS]
# (defaults: every 72 colour/shape/direction prompts, seeds 0 1). Prints a
# table of the share of videos whose colour, shape, direction (and all three)
# match. Builds build-gpu/ like tests/gpu/run.sh, with the same carried
# libraries (.blas/, .ditdeps/) where the machine lacks them.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLA2_GPU_BUILD:-$ROOT/build-gpu}
LOGS=${SLA2_GPU_LOG_DIR:-$BUILD/logs}
PROMPTS=${1:-72}
SEEDS=${2:-"0 1"}
mkdir -p "$LOGS"
ARGS=()
if ! ls /usr/lib/*/openblas-openmp/libopenblas.so >/dev/null 2>&1 && [ -d "$ROOT/.blas" ]; then
  ARGS+=(-DSLA2_OPENBLAS_LIBRARY="$ROOT/.blas/lib/libopenblas.so" -DSLA2_OPENBLAS_INCLUDE="$ROOT/.blas/include")
  export LD_LIBRARY_PATH="$ROOT/.blas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if ! pkg-config --exists yaml-0.1 2>/dev/null && [ -d "$ROOT/.blas/yaml" ]; then
  export PKG_CONFIG_PATH="$ROOT/.blas/yaml/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$ROOT/.blas/yaml/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if ! ls /usr/include/png.h >/dev/null 2>&1 && [ -d "$ROOT/.ditdeps/png" ]; then
  ARGS+=(-DPNG_LIBRARY="$ROOT/.ditdeps/png/lib/libpng16.so" -DPNG_PNG_INCLUDE_DIR="$ROOT/.ditdeps/png/include")
  export LD_LIBRARY_PATH="$ROOT/.ditdeps/png/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cmake -S "$ROOT" -B "$BUILD" -DSLA2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${SLA2_CUDA_ARCHS:-90}" \
  -DCMAKE_BUILD_TYPE=Release -DSLA2_BUILD_TESTS=OFF "${ARGS[@]}" >"$LOGS/adherence-configure.log" 2>&1 &&
  cmake --build "$BUILD" -j"$(nproc)" --target sla2-gen >"$LOGS/adherence-build.log" 2>&1 ||
  { tail -30 "$LOGS/adherence-configure.log" "$LOGS/adherence-build.log"; exit 1; }

colours=(red green blue yellow cyan magenta) shapes=(circle square triangle) directions=(left right up down)
prompts=()
for c in "${colours[@]}"; do for s in "${shapes[@]}"; do for d in "${directions[@]}"; do
  prompts+=("$c $s moving $d"); done; done; done
# a spread of the 72 when fewer are asked for
step=$(( ${#prompts[@]} / PROMPTS )); [ $step -ge 1 ] || step=1

settings=("dense|--attention dense" "sla2 topk0.1 none|--topk 0.1 --quant none"
          "sla2 topk0.1 int8|--topk 0.1 --quant int8" "sla2 topk0.1 int8_fp8|--topk 0.1 --quant int8_fp8"
          "sla2 topk0.05 none|--topk 0.05 --quant none" "sla2 topk0.05 int8|--topk 0.05 --quant int8"
          "sla2 topk0.05 int8_fp8|--topk 0.05 --quant int8_fp8")
printf '%-26s %7s %7s %7s %9s %7s %9s\n' setting videos colour shape direction all "s/video"
for entry in "${settings[@]}"; do
  name=${entry%%|*} flags=${entry#*|}
  n=0 col=0 shp=0 dir=0 all=0 start=$(date +%s.%N)
  for ((i = 0; i < ${#prompts[@]}; i += step)); do
    for seed in $SEEDS; do
      # shellcheck disable=SC2086
      line=$("$BUILD/apps/gen/sla2-gen" --backend cuda --model "$ROOT/models/tiny-demo.yaml" \
        --weights "$ROOT/models/tiny-demo.safetensors" --runtime "$ROOT/models/tiny-demo.runtime.yaml" \
        --prompt "${prompts[$i]}" --seed "$seed" $flags --quiet --score --out "$LOGS/v.y4m" 2>>"$LOGS/adherence-errors.log" |
        grep '^adherence:')
      n=$((n + 1))
      grep -q 'colour [a-z]*: yes' <<<"$line" && col=$((col + 1))
      grep -q 'shape [a-z]*: yes' <<<"$line" && shp=$((shp + 1))
      grep -q 'direction [a-z]*: yes' <<<"$line" && dir=$((dir + 1))
      grep -q '^adherence: 3/3' <<<"$line" && all=$((all + 1))
    done
  done
  awk -v name="$name" -v n=$n -v c=$col -v s=$shp -v d=$dir -v a=$all -v t0="$start" -v t1="$(date +%s.%N)" \
    'BEGIN { printf "%-26s %7d %7.2f %7.2f %9.2f %7.2f %9.2f\n", name, n, c/n, s/n, d/n, a/n, (t1-t0)/n }'
done

#!/usr/bin/env bash
# Prompt adherence of the tiny demo model through the SDK, on the GPU and on
# the CPU at once (issue 5): sla2-eval loads the model once and generates
# PROMPTS x SEEDS x 7 attention settings (dense; SLA2 topk 0.1 and 0.05,
# i.e. 6 and 3 of 64 key blocks, each with none, int8, int8_fp8), scoring
# each video with the C analyser.
#
# Usage: tests/gpu/adherence.sh [PROMPTS] [SEEDS] [LIMIT_S] [CPU_SHARDS]
#   PROMPTS     a spread of the 72 colour/shape/direction prompts (default 50)
#   SEEDS       noise seeds (default "0 1")
#   LIMIT_S     wall-time limit of the evaluation, both parts (default auto:
#               what is left of 560 s since the script started, the build
#               included, so one 10-minute device call holds it). At the limit
#               the runs stop; the tables count only the videos finished.
#   CPU_SHARDS  CPU processes (default auto: one a core, 2 cores left to the
#               GPU process, at most one per (prompt, seed) pair); each gets
#               (cores - 2) / CPU_SHARDS threads. One thread a process does
#               the most videos per core-second (on a 2-core EPYC VM: 2 videos
#               cost 17.7 core-s as 1 process x 2 threads, 12.9 core-s as 2 x 1).
# Environment: SLA2_EVAL_GPU=0 runs the CPU part only (and builds without
# CUDA: for checking the script on a CPU machine); SLA2_EVAL_RESUME=1 keeps
# the TSVs of a previous call on this machine and adds the videos they lack
# (a second device call extends the CPU coverage); SLA2_EVAL_BUILD_ONLY=1
# builds and stops (a first call, so the next has its whole 10 minutes for
# the evaluation on the same warm machine); SLA2_EVAL_STEPS overrides
# the runtime's 20 steps; SLA2_GPU_BUILD the build folder (default build-gpu).
# Writes the tables, the GPU TSV and all.tar.gz (every TSV and log) to $OUT/adherence when OUT
# is set (else $BUILD/adherence), and prints both tables. The build uses the
# carried libraries (.blas/, .ditdeps/) where the machine lacks them.
set -uo pipefail
script_start=$(date +%s)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLA2_GPU_BUILD:-$ROOT/build-gpu}
PROMPTS=${1:-50}
SEEDS=${2:-"0 1"}
LIMIT=${3:-auto}
SHARDS=${4:-auto}
GPU=${SLA2_EVAL_GPU:-1}
WORK=$BUILD/adherence
mkdir -p "$WORK"

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
if [ "$GPU" = 1 ]; then
  ARGS+=(-DSLA2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${SLA2_CUDA_ARCHS:-90a}")
else
  ARGS+=(-DSLA2_CUDA=OFF)
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLA2_BUILD_TESTS=OFF "${ARGS[@]}" >"$WORK/configure.log" 2>&1 &&
  cmake --build "$BUILD" -j"$(nproc)" --target sla2-eval >"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/configure.log" "$WORK/build.log"; exit 1; }
EVAL=$BUILD/apps/eval/sla2-eval
[ "${SLA2_EVAL_BUILD_ONLY:-0}" = 1 ] && { echo "built $EVAL in $(( $(date +%s) - script_start )) s"; exit 0; }

cores=$(nproc)
reserve=$([ "$GPU" = 1 ] && echo 2 || echo 0)
if [ "$SHARDS" = auto ]; then
  pairs=$(( PROMPTS * $(wc -w <<<"${SEEDS//,/ }") ))
  SHARDS=$(( cores - reserve )); [ $SHARDS -le $pairs ] || SHARDS=$pairs; [ $SHARDS -ge 1 ] || SHARDS=1
fi
threads=$(( (cores - reserve) / SHARDS )); [ $threads -ge 1 ] || threads=1
if [ "$LIMIT" = auto ]; then
  LIMIT=$(( 560 - ($(date +%s) - script_start) )); [ $LIMIT -ge 60 ] || LIMIT=60
fi
common=(--model "$ROOT/models/tiny-demo.yaml" --weights "$ROOT/models/tiny-demo.safetensors"
        --runtime "$ROOT/models/tiny-demo.runtime.yaml" --prompts "$PROMPTS" --seeds "$SEEDS" --time-limit "$LIMIT")
[ -n "${SLA2_EVAL_STEPS:-}" ] && common+=(--steps "$SLA2_EVAL_STEPS")
if [ "${SLA2_EVAL_RESUME:-0}" = 1 ]; then
  common+=(--resume)
else
  rm -f "$WORK"/gpu.* "$WORK"/cpu.*
fi
echo "adherence: $PROMPTS prompts x seeds '$SEEDS' x 7 settings; limit ${LIMIT} s;" \
     "GPU: $([ "$GPU" = 1 ] && echo "1 process" || echo off); CPU: $SHARDS processes x $threads threads ($cores cores)"

videos() { cat "$@" 2>/dev/null | grep -cv -e '^#' -e '^setting'; }
gpu_before=$(videos "$WORK"/gpu.tsv) cpu_before=$(videos "$WORK"/cpu.*.tsv)

# Both parts at once; timeout is only the backstop of --time-limit (which
# cancels a video under way at its next step).
pids=()
run_start=$(date +%s.%N)
if [ "$GPU" = 1 ]; then
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 timeout -k 10 $((LIMIT + 30)) \
    "$EVAL" "${common[@]}" --backend cuda --threads 2 --tsv "$WORK/gpu.tsv" >"$WORK/gpu.out" 2>"$WORK/gpu.log" &
  gpu_pid=$!
fi
for ((i = 0; i < SHARDS; i++)); do
  OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads timeout -k 10 $((LIMIT + 30)) \
    "$EVAL" "${common[@]}" --backend cpu --threads "$threads" --shard "$i/$SHARDS" --tsv "$WORK/cpu.$i.tsv" \
    >"$WORK/cpu.$i.out" 2>"$WORK/cpu.$i.log" &
  pids+=($!)
done

gpu_wall=""
while :; do
  running=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
  if [ "$GPU" = 1 ] && [ -z "$gpu_wall" ]; then
    if kill -0 "$gpu_pid" 2>/dev/null; then running=1
    else gpu_wall=$(awk -v a="$run_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'); fi
  fi
  [ $running = 1 ] || break
  sleep 5
  now=$(date +%s)
  if (( (now - script_start) % 60 < 5 )); then
    echo "  $(awk -v a="$run_start" -v b="$now" 'BEGIN { printf "%.0f", b - a }') s: videos done:" \
         "$([ "$GPU" = 1 ] && echo "GPU $(videos "$WORK"/gpu.tsv),") CPU $(videos "$WORK"/cpu.*.tsv)"
  fi
done
cpu_wall=$(awk -v a="$run_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
failed=0
[ "$GPU" = 1 ] && { wait "$gpu_pid" || { echo "GPU run: exit $?"; tail -5 "$WORK/gpu.log"; failed=1; }; }
for ((i = 0; i < SHARDS; i++)); do
  wait "${pids[$i]}" || { echo "CPU shard $i: exit $?"; tail -5 "$WORK/cpu.$i.log"; failed=1; }
done

# The tables, from the TSVs alone (what a later reader can recompute)
report() { # name, wall seconds, videos before this call, TSVs...
  local name=$1 wall=$2 before=$3; shift 3
  local device; device=$(sed -n '1s/.*device=\([^;]*\);.*/\1/p' "$1")
  local table; table=$("$EVAL" --merge "$@") || { echo "$name: no table (see the logs in $WORK)"; failed=1; return; }
  local n; n=$(videos "$@")
  {
    echo "### $name: $device; $(awk -v n="$n" -v b="$before" -v w="$wall" 'BEGIN {
      printf "%d videos, %d of them in this call (%d s of wall time, %.2f s/video overall)", n, n - b, w, (n > b ? w / (n - b) : 0) }')"
    echo
    echo "$table"
    echo
  } | tee "$WORK/$name.table.md"
}
echo
[ "$GPU" = 1 ] && report gpu "$gpu_wall" "$gpu_before" "$WORK"/gpu.tsv
report cpu "$cpu_wall" "$cpu_before" "$WORK"/cpu.*.tsv
echo "(s/video in the tables: each process's own time per video; the CPU's $SHARDS processes ran at once)"
grep -h '^stopped' "$WORK"/*.out | sort | uniq -c | sed 's/^/note: /'

if [ -n "${OUT:-}" ]; then
  # the device returns at most 8 files: the tables, the GPU TSV and one archive of everything
  mkdir -p "$OUT/adherence" && cp "$WORK"/*.table.md "$OUT/adherence/" 2>/dev/null
  [ -f "$WORK/gpu.tsv" ] && cp "$WORK/gpu.tsv" "$OUT/adherence/"
  tar -czf "$OUT/adherence/all.tar.gz" -C "$WORK" . 2>/dev/null
  echo "TSVs and tables: \$OUT/adherence/ (everything in all.tar.gz)"
else
  echo "TSVs and tables: $WORK"
fi
exit $failed

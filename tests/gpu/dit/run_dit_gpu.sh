#!/usr/bin/env bash
# The DiT's CUDA operators on a machine with a GPU:
#   1. builds test_dit_gpu and sla2-bench (architectures: $SLA2_CUDA_ARCHS, default 90a),
#   2. runs test_dit_gpu (CUDA forward against the CPU forward and the PyTorch fixture,
#      float32, weight-only INT8 / FP8, BF16 and FP8_GEMM linears), then its quick case
#      list with SLA2_CUDA_FP8_GEMM=0 (FP8_GEMM linears as bf16 GEMMs, as before sm_89),
#   3. runs its quick case list under compute-sanitizer memcheck,
#   4. runs `sla2-bench model` (Wan2.1-1.3B at 480p, dense against SLA2 at topk 0.03) with
#      f32 weights, then SLA2 alone with int8, fp8, bf16 and fp8_gemm weights (memory and time
#      per mode; bf16 runs real bf16 GEMMs, fp8_gemm FP8 ones: compare their gemm columns).
# SLA2_GPU_STEPS picks steps (default "build test memcheck bench"; the build is reused when
# skipped), SLA2_BENCH_STORAGES the benchmark's weight storages. Extra arguments go to every
# `sla2-bench model`. Logs go to $SLA2_GPU_LOG_DIR
# (default build-dit-gpu/logs); a summary ends the output.
# Where the machine lacks them, OpenBLAS and libyaml come from a carried .blas/
# (as tests/gpu/run.sh) and libpng from a carried .ditdeps/png/.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${SLA2_GPU_BUILD:-$ROOT/build-dit-gpu}
ARCHS=${SLA2_CUDA_ARCHS:-90a}
LOGS=${SLA2_GPU_LOG_DIR:-$BUILD/logs}
BENCH_RUNS=${SLA2_BENCH_RUNS:-3}
STEPS=" ${SLA2_GPU_STEPS:-build test memcheck bench} "
want() { [[ "$STEPS" == *" $1 "* ]]; }
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH="$CUDA_HOME/bin:$PATH"
mkdir -p "$LOGS"

ARGS=()
if ! { pkg-config --exists openblas 2>/dev/null || ls /usr/lib/*/openblas-openmp/libopenblas.so >/dev/null 2>&1; } &&
   [ -d "$ROOT/.blas" ]; then
  ARGS+=(-DSLA2_OPENBLAS_LIBRARY="$ROOT/.blas/lib/libopenblas.so" -DSLA2_OPENBLAS_INCLUDE="$ROOT/.blas/include")
  export LD_LIBRARY_PATH="$ROOT/.blas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "using the carried OpenBLAS in .blas/"
fi
if ! pkg-config --exists yaml-0.1 2>/dev/null && [ -d "$ROOT/.blas/yaml" ]; then
  export PKG_CONFIG_PATH="$ROOT/.blas/yaml/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$ROOT/.blas/yaml/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "using the carried libyaml in .blas/yaml/"
fi
if ! ls /usr/include/png.h >/dev/null 2>&1 && [ -d "$ROOT/.ditdeps/png" ]; then
  ARGS+=(-DPNG_LIBRARY="$ROOT/.ditdeps/png/lib/libpng16.so" -DPNG_PNG_INCLUDE_DIR="$ROOT/.ditdeps/png/include")
  export LD_LIBRARY_PATH="$ROOT/.ditdeps/png/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "using the carried libpng in .ditdeps/png/"
fi
export OPENBLAS_NUM_THREADS=1

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }
status_build=skipped status_test=skipped status_memcheck=skipped status_bench=skipped

if want build; then
  step "build (sm_$ARCHS)"
  status_build=FAIL
  if cmake -S "$ROOT" -B "$BUILD" -DSLA2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DCMAKE_BUILD_TYPE=Release \
       -DSLA2_BUILD_TESTS=OFF -DSLA2_BUILD_APPS=OFF -DCMAKE_PROJECT_INCLUDE="$ROOT/tests/gpu/dit/dit_targets.cmake" \
       "${ARGS[@]}" >"$LOGS/configure.log" 2>&1 &&
     cmake --build "$BUILD" -j"$(nproc)" --target test_dit_gpu sla2-bench >"$LOGS/build.log" 2>&1; then
    status_build=ok
  else
    tail -n 30 "$LOGS/configure.log"; grep -E "error|Error" -A3 "$LOGS/build.log" | head -60
  fi
fi

# The binaries sit in the build's root while dit_targets.cmake include()s
# their CMakeLists, in their own folders once add_subdirectory() does.
find_bin() { for d in "$BUILD" "$BUILD/tests/gpu/dit" "$BUILD/apps/bench"; do [ -x "$d/$1" ] && echo "$d/$1" && return; done; }
TEST=$(find_bin test_dit_gpu) BENCH=$(find_bin sla2-bench)

if [ $status_build != FAIL ] && [ -n "$TEST" ] && want test; then
  status_test=FAIL
  step "test_dit_gpu"
  timeout 150 "$TEST" 2>&1 | tee "$LOGS/test_dit_gpu.log"
  rc=${PIPESTATUS[0]}
  step "SLA2_CUDA_FP8_GEMM=0 test_dit_gpu --quick"
  SLA2_CUDA_FP8_GEMM=0 timeout 150 "$TEST" --quick 2>&1 | tee "$LOGS/test_dit_gpu_no_fp8_gemm.log"
  [ "$rc" = 0 ] && [ "${PIPESTATUS[0]}" = 0 ] && status_test=ok
fi
if [ $status_build != FAIL ] && [ -n "$TEST" ] && want memcheck; then
  status_memcheck=FAIL
  step "compute-sanitizer --tool memcheck test_dit_gpu --quick"
  SAN="$CUDA_HOME/bin/compute-sanitizer"
  command -v compute-sanitizer >/dev/null && SAN=compute-sanitizer
  timeout 150 "$SAN" --tool memcheck --error-exitcode 99 "$TEST" --quick \
    >"$LOGS/memcheck.log" 2>&1
  rc=$?
  tail -12 "$LOGS/memcheck.log"
  [ $rc = 0 ] && status_memcheck=ok
fi
if [ $status_build != FAIL ] && [ -n "$BENCH" ] && want bench; then
  status_bench=ok
  for storage in ${SLA2_BENCH_STORAGES:-f32 int8 fp8 bf16 fp8_gemm}; do
    step "sla2-bench model --weights-storage $storage"
    dense=(); [ $storage = f32 ] || dense=(--no-dense)
    timeout 220 "$BENCH" model --runs "$BENCH_RUNS" --weights-storage $storage "${dense[@]}" "$@" 2>&1 |
      tee "$LOGS/bench_model_$storage.log"
    [ "${PIPESTATUS[0]}" = 0 ] || status_bench=FAIL
  done
fi

step "summary"
printf '%-12s %s\n' build $status_build test_dit_gpu $status_test memcheck $status_memcheck bench $status_bench
! printf '%s\n' $status_build $status_test $status_memcheck $status_bench | grep -q FAIL

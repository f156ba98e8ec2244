#!/usr/bin/env bash
# GPU tests of the CUDA backend, on a machine with a GPU:
#   1. builds the SDK with CUDA (architectures: $SLA2_CUDA_ARCHS, default 90a),
#   2. runs sla2_gpu_test: every case against the CPU backend (rel-L2,
#      cosine, block masks, statistics; fails past the stated tolerances),
#   3. runs the quick case list under compute-sanitizer memcheck and racecheck.
# Logs go to $SLA2_GPU_LOG_DIR (default build-gpu/logs); a summary table ends the output.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLA2_GPU_BUILD:-$ROOT/build-gpu}
ARCHS=${SLA2_CUDA_ARCHS:-90a}
LOGS=${SLA2_GPU_LOG_DIR:-$BUILD/logs}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
mkdir -p "$LOGS"

# OpenBLAS: a copy carried in .blas/ (cblas.h, libopenblas.so) where the machine has none.
BLAS_ARGS=()
if ! { pkg-config --exists openblas 2>/dev/null || ls /usr/lib/*/openblas-openmp/libopenblas.so >/dev/null 2>&1; } &&
   [ -d "$ROOT/.blas" ]; then
  BLAS_ARGS=(-DSLA2_OPENBLAS_LIBRARY="$ROOT/.blas/lib/libopenblas.so" -DSLA2_OPENBLAS_INCLUDE="$ROOT/.blas/include")
  export LD_LIBRARY_PATH="$ROOT/.blas/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "using the carried OpenBLAS in .blas/"
fi
# libyaml (the model importer's dependency): likewise.
if ! pkg-config --exists yaml-0.1 2>/dev/null && [ -d "$ROOT/.blas/yaml" ]; then
  export PKG_CONFIG_PATH="$ROOT/.blas/yaml/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$ROOT/.blas/yaml/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "using the carried libyaml in .blas/yaml/"
fi
# The fast CPU path runs OpenBLAS inside OpenMP regions: keep BLAS single-threaded.
export OPENBLAS_NUM_THREADS=1

step() { printf '\n== %s\n' "$*"; }
status_build=FAIL status_test=FAIL status_memcheck=FAIL status_racecheck=FAIL

step "build (sm_$ARCHS)"
if cmake -S "$ROOT" -B "$BUILD" -DSLA2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DCMAKE_BUILD_TYPE=Release \
     -DSLA2_BUILD_TESTS=OFF -DSLA2_CUDA_RESOURCE_USAGE=ON "${BLAS_ARGS[@]}" >"$LOGS/configure.log" 2>&1 &&
   cmake --build "$BUILD" -j"$(nproc)" --target sla2 sla2-bench >"$LOGS/build.log" 2>&1 &&
   c++ -O2 -std=c++17 "$ROOT/tests/gpu/test_cuda_attention.cpp" -I"$ROOT/sdk/include" -I"$CUDA_HOME/include" \
     -L"$BUILD/sdk" -lsla2 -L"$CUDA_HOME/lib64" -lcudart -Wl,-rpath,"$BUILD/sdk" -o "$BUILD/sla2_gpu_test" \
     >>"$LOGS/build.log" 2>&1; then
  status_build=ok
else
  tail -n 30 "$LOGS/configure.log"; grep -E "error|Error" -A3 "$LOGS/build.log" | head -60
fi

if [ $status_build = ok ]; then
  step "sla2_gpu_test (full case list)"
  "$BUILD/sla2_gpu_test" "$@" 2>&1 | tee "$LOGS/gpu_test.log"
  [ "${PIPESTATUS[0]}" = 0 ] && status_test=ok

  # On sm_90 the sparse kernel runs on wgmma; its mma.sync kernels (sm_90
  # without the sm_90a code, and the other GPUs) are checked here too: the
  # FP16-mma P.V with e4m3-rounded operands, and the e4m3 mma.sync path.
  step "sla2_gpu_test with SLA2_CUDA_WGMMA=0 (mma.sync kernels)"
  SLA2_CUDA_WGMMA=0 "$BUILD/sla2_gpu_test" "$@" >"$LOGS/gpu_test_mma_sync.log" 2>&1
  rc=$?
  tail -n 1 "$LOGS/gpu_test_mma_sync.log"
  [ $rc = 0 ] || status_test=FAIL

  step "sla2_gpu_test with SLA2_CUDA_FP8_MMA=1 (e4m3 mma.sync path)"
  SLA2_CUDA_FP8_MMA=1 "$BUILD/sla2_gpu_test" "$@" >"$LOGS/gpu_test_fp8mma.log" 2>&1
  rc=$?
  tail -n 1 "$LOGS/gpu_test_fp8mma.log"
  [ $rc = 0 ] || status_test=FAIL

  # The single-stage sparse kernel (small-smem GPUs where two stages do not
  # fit) and the two-stage linear_out (sm_89/sm_120's 99 KB) run here when forced.
  step "sla2_gpu_test with SLA2_CUDA_STAGES=1 (single-stage kernel)"
  SLA2_CUDA_STAGES=1 "$BUILD/sla2_gpu_test" "$@" >"$LOGS/gpu_test_1stage.log" 2>&1
  rc=$?
  tail -n 1 "$LOGS/gpu_test_1stage.log"
  [ $rc = 0 ] || status_test=FAIL

  SAN="$CUDA_HOME/bin/compute-sanitizer"
  command -v compute-sanitizer >/dev/null && SAN=compute-sanitizer
  for tool in memcheck racecheck; do
    step "compute-sanitizer --tool $tool (quick case list)"
    "$SAN" --tool $tool --error-exitcode 99 "$BUILD/sla2_gpu_test" --quick >"$LOGS/$tool.log" 2>&1
    rc=$?
    SLA2_CUDA_STAGES=1 "$SAN" --tool $tool --error-exitcode 99 "$BUILD/sla2_gpu_test" --quick \
      >"$LOGS/${tool}_1stage.log" 2>&1 || rc=$?
    SLA2_CUDA_WGMMA=0 "$SAN" --tool $tool --error-exitcode 99 "$BUILD/sla2_gpu_test" --quick \
      >"$LOGS/${tool}_mma_sync.log" 2>&1 || rc=$?
    tail -n 1 "$LOGS/${tool}_1stage.log" "$LOGS/${tool}_mma_sync.log"
    tail -4 "$LOGS/$tool.log"
    [ $rc = 0 ] && eval status_$tool=ok
  done
fi

step "summary"
printf '%-12s %s\n' build $status_build gpu_test $status_test memcheck $status_memcheck racecheck $status_racecheck
[ $status_build$status_test$status_memcheck$status_racecheck = okokokok ]

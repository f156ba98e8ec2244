#!/usr/bin/env bash
# sla2-preview on the GPU machine: builds it with CUDA (architectures
# $SLA2_CUDA_ARCHS, default 90), runs the scripted test of test_preview.sh on
# the tiny demo model with --backend cuda on SDL's offscreen video driver (no
# display there), checks the screenshots' pixels with check_screens.py (the
# video is not blank and changes between steps; the mask lights as many cells
# as the stats say were kept; the timing bars split into phases), that
# --backend auto picks CUDA, and reports the window's frame rate.
#
# The machine lacks SDL2 (and libyaml, OpenBLAS, libpng): they come from the
# carried .sdl/ (tools/pack-device-libs.sh makes it) and, where carried, the
# .blas/ and .ditdeps/ of tests/gpu/dit/run_dit_gpu.sh. Carry [".sdl"] alone:
# with .blas/ (37 MB of OpenBLAS) the working tree passes the 64 MiB a call
# carries. Results (log, screenshots, fps) go to $OUT when it is set, else to
# $BUILD/out. Exit: 0 when every check passed.
#
# A rehearsal where there is no GPU: SLA2_PREVIEW_BACKEND=cpu builds without
# CUDA and runs on the CPU; SLA2_PREVIEW_CARRIED_SDL=1 takes SDL2, BLAS,
# libyaml and libpng from .sdl/ alone even where the machine has them (every
# carried library, none of the machine's), as on a GPU machine given .sdl/.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLA2_GPU_BUILD:-$ROOT/build-preview-gpu}
ARCHS=${SLA2_CUDA_ARCHS:-90}
RESULTS=${OUT:-$BUILD/out}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
SDL=$ROOT/.sdl
BACKEND=${SLA2_PREVIEW_BACKEND:-cuda}
FORCE_CARRIED=${SLA2_PREVIEW_CARRIED_SDL:-0}
export PATH="$CUDA_HOME/bin:$PATH"
mkdir -p "$BUILD" "$RESULTS"
LOG=$RESULTS/run_preview_gpu.log
exec > >(tee "$LOG") 2>&1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }
add_lib_path() { export LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; }

step "dependencies"
[ -d "$SDL" ] || { echo "no .sdl/: run tools/pack-device-libs.sh where SDL2 is installed, and carry .sdl"; exit 1; }
if ! command -v pkg-config >/dev/null; then
  export PATH="$SDL/bin:$PATH"
  add_lib_path "$SDL/lib"
  echo "using the carried pkg-config in .sdl/bin/"
fi
ARGS=()
if [ "$FORCE_CARRIED" != 1 ] && pkg-config --exists sdl2 SDL2_ttf 2>/dev/null; then
  echo "using the machine's SDL2 $(pkg-config --modversion sdl2)"
else
  export PKG_CONFIG_PATH="$SDL/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  # The machine's own copy of a library where it has one (built for its
  # glibc); the carried one where it has none.
  mkdir -p "$BUILD/sdl-lib"
  rm -f "$BUILD"/sdl-lib/*
  for lib in "$SDL"/lib/*.so*; do
    name=$(basename "$lib")
    case $name in libSDL2*) ;; *) [ "$FORCE_CARRIED" != 1 ] && ldconfig -p | grep -q "^[[:space:]]*$name " && continue ;; esac
    ln -s "$lib" "$BUILD/sdl-lib/$name"
  done
  add_lib_path "$BUILD/sdl-lib"
  echo "using the carried SDL2 $(pkg-config --modversion sdl2) in .sdl/ ($(ls "$BUILD/sdl-lib" | wc -l) of $(ls "$SDL"/lib/*.so* | wc -l) libraries; the machine has the rest)"
  unresolved=$(ldd "$BUILD/sdl-lib/libSDL2_ttf-2.0.so.0" 2>&1 | grep -E "not found|version .* not found" || true)
  [ -z "$unresolved" ] || { echo "the carried SDL2 does not load here:"; echo "$unresolved"; exit 1; }
fi
if [ "$FORCE_CARRIED" != 1 ] &&
   { pkg-config --exists openblas 2>/dev/null || ls /usr/lib/*/openblas-openmp/libopenblas.so >/dev/null 2>&1; }; then
  echo "using the machine's OpenBLAS"
elif [ "$FORCE_CARRIED" != 1 ] && [ -d "$ROOT/.blas/lib" ]; then
  ARGS+=(-DSLA2_OPENBLAS_LIBRARY="$ROOT/.blas/lib/libopenblas.so" -DSLA2_OPENBLAS_INCLUDE="$ROOT/.blas/include")
  add_lib_path "$ROOT/.blas/lib"
  echo "using the carried OpenBLAS in .blas/"
else
  # CBLAS of Debian's netlib BLAS: slow, but the preview on CUDA runs no BLAS on the CPU.
  ARGS+=(-DSLA2_OPENBLAS_LIBRARY="$SDL/blas/lib/libblas.so" -DSLA2_OPENBLAS_INCLUDE="$SDL/blas/include")
  add_lib_path "$SDL/blas/lib"
  echo "using the carried netlib CBLAS in .sdl/blas/"
fi
if [ "$FORCE_CARRIED" = 1 ] || ! pkg-config --exists yaml-0.1 2>/dev/null; then
  yaml=$ROOT/.blas/yaml
  [ -d "$yaml" ] && [ "$FORCE_CARRIED" != 1 ] || yaml=$SDL/yaml
  export PKG_CONFIG_PATH="$yaml/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  add_lib_path "$yaml/lib"
  echo "using the carried libyaml in ${yaml#$ROOT/}"
fi
if [ "$FORCE_CARRIED" = 1 ] || ! ls /usr/include/png.h >/dev/null 2>&1; then
  png=$ROOT/.ditdeps/png
  [ -d "$png" ] && [ "$FORCE_CARRIED" != 1 ] || png=$SDL/png
  ARGS+=(-DPNG_LIBRARY="$png/lib/libpng16.so" -DPNG_PNG_INCLUDE_DIR="$png/include")
  add_lib_path "$png/lib"
  echo "using the carried libpng in ${png#$ROOT/}"
fi
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
[ -f "$FONT" ] && [ "$FORCE_CARRIED" != 1 ] || FONT=$SDL/fonts/DejaVuSansMono.ttf
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: no GPU listed"

[ "$BACKEND" = cuda ] && ARGS+=(-DSLA2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS") || ARGS+=(-DSLA2_CUDA=OFF)
step "build sla2-preview (${ARGS[*]})"
start=$(date +%s)
if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
     -DSLA2_BUILD_TESTS=OFF -DSLA2_PREVIEW_ASAN=OFF "${ARGS[@]}" >"$BUILD/configure.log" 2>&1 &&
   cmake --build "$BUILD" -j"$(nproc)" --target sla2-preview >"$BUILD/build.log" 2>&1; then
  echo "built in $(( $(date +%s) - start )) s"
else
  tail -n 30 "$BUILD/configure.log"; grep -E "error|Error" -A3 "$BUILD/build.log" | head -60
  echo "sla2-preview: build failed"; exit 1
fi
APP=$BUILD/apps/preview/sla2-preview
export SDL_VIDEODRIVER=offscreen
ldd "$APP" | grep -E "libSDL2|libsla2|not found"

step "sla2-preview --backend $BACKEND, 3 steps, scripted, screenshots"
work=$BUILD/run
rm -rf "$work"
mkdir -p "$work"
cat "$ROOT/tests/preview/prompt.script" "$ROOT/tests/preview/fixture.script" >"$work/tiny.script"
start=$(date +%s.%N)
timeout 150 "$APP" --backend "$BACKEND" --model "$ROOT/models/tiny-demo.yaml" --weights "$ROOT/models/tiny-demo.safetensors" \
  --steps 3 --font "$FONT" --script "$work/tiny.script" --screenshot-dir "$work/shots" --save-dir "$work/saved" \
  >"$work/preview.log" 2>&1
rc=$?
cat "$work/preview.log"
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ $rc -eq 0 ] && echo "ok: scripted run exits 0 ($seconds s)" || fail "scripted run: rc $rc after $seconds s"
grep -qE "backend $BACKEND: " "$work/preview.log" && echo "ok: $(grep -oE "backend $BACKEND: .*" "$work/preview.log")" ||
  fail "the startup line does not name the $BACKEND backend and its device"
python3 "$ROOT/tests/preview/check_screens.py" "$work/shots" || fail "screenshot checks"
grep -q "analyser: red circle moving right" "$work/preview.log" && echo "ok: the analyser reads the prompt in the video" ||
  echo "note: the analyser read: $(grep -o 'analyser: .*' "$work/preview.log" || echo nothing)"
fps=$(sed -n 's/^ui fps: \([0-9.]*\) while generating.*/\1/p' "$work/preview.log")
echo "measured: ${fps:-no} frames per second while the $BACKEND generates ($(grep -o 'ui fps: .*' "$work/preview.log"))"

auto=cpu
nvidia-smi -L >/dev/null 2>&1 && [ "$BACKEND" = cuda ] && auto=cuda
step "--backend auto picks $auto"
printf 'quit\n' >"$work/quit.script"
timeout 60 "$APP" --backend auto --model "$ROOT/models/tiny-demo.yaml" --weights "$ROOT/models/tiny-demo.safetensors" \
  --font "$FONT" --script "$work/quit.script" >"$work/auto.log" 2>&1
grep -qE "backend $auto: " "$work/auto.log" && echo "ok: auto: $(grep -oE "backend $auto: .*" "$work/auto.log")" ||
  { fail "--backend auto did not pick $auto"; cat "$work/auto.log"; }

# At most 8 files come back from $OUT: the log, two views, and every screenshot in one archive.
cp "$work/shots/all.png" "$RESULTS/all.png" 2>/dev/null
cp "$work/shots/timing.png" "$RESULTS/timing.png" 2>/dev/null
tar -czf "$RESULTS/shots.tar.gz" -C "$work" shots preview.log auto.log 2>/dev/null
step "summary"
[ $failures -eq 0 ] && echo "sla2-preview on $BACKEND: all checks passed" || echo "sla2-preview on $BACKEND: $failures checks failed"
exit $failures

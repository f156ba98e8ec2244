#!/usr/bin/env bash
# sla2-preview under Xvfb (started here): generate 3 steps on the fixture
# model (and on the tiny demo model when models/tiny-demo.* exist), visit
# every view, check the screenshots' pixels, Escape while generating exits 0
# within a second; bad flags, a missing model and no display give clear
# errors. usage: test_preview.sh SLA2_PREVIEW REPO_ROOT
# Exit: the number of failures; 77 (skipped) without Xvfb or python3.
set -u
app=$1 root=$2
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$root/tests/fixtures/dit
work=$(mktemp -d)
xvfb_pid=
cleanup() {
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
fixture=(--model "$fixtures/model.yaml" --weights "$fixtures/weights.safetensors" --text-embedding "$fixtures/io.safetensors")

for tool in Xvfb python3; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not found (Debian: xvfb, python3)"; exit 77; }
done

expect_fail() { # expected-substring, then the arguments
  local want=$1; shift
  out=$("$app" "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || [ $rc -gt 2 ] || ! grep -qF -- "$want" <<<"$out"; then
    fail "sla2-preview $* -> rc $rc, output: $out (wanted '$want')"
    return 1
  else
    echo "ok: rc $rc, '$want'"
  fi
}

# ---- Errors that need no display ------------------------------------------
"$app" --help | grep -q -- "--script FILE" && echo "ok: --help" || fail "--help"
expect_fail "unknown flag '--bogus'" "${fixture[@]}" --bogus 1
expect_fail "--steps: expected an integer in [1, 1000], got '0'" "${fixture[@]}" --steps 0
expect_fail "--seed: expected an integer >= 0, got 'abc'" "${fixture[@]}" --seed abc
expect_fail "--size: expected WxH" "${fixture[@]}" --size 10x10
expect_fail "--attention: expected dense or sla2" "${fixture[@]}" --attention sparse
# CUDA asked for where it cannot run (a CPU-only libsla2, or no GPU): a clear error, exit 1.
if nvidia-smi -L >/dev/null 2>&1; then
  echo "note: a GPU is present: the no-CUDA error is not checked (tests/preview/run_preview_gpu.sh runs on it)"
else
  out=$("$app" "${fixture[@]}" --backend cuda 2>&1); rc=$?
  if [ $rc -ne 1 ] || ! grep -qE "^sla2-preview: --backend cuda: .*(has no CUDA backend|no usable device)" <<<"$out"; then
    fail "--backend cuda without CUDA: rc $rc, output: $out"
  else
    echo "ok: rc 1, $out"
  fi
fi
expect_fail "--backend: expected cpu, cuda or auto, got 'tpu'" "${fixture[@]}" --backend tpu
expect_fail "--steps: needs a value" "${fixture[@]}" --steps
expect_fail "unexpected argument 'extra'" "${fixture[@]}" extra
expect_fail "/nonexistent/model.yaml" --model /nonexistent/model.yaml --weights "$fixtures/weights.safetensors" \
  --text-embedding "$fixtures/io.safetensors"
expect_fail "/nonexistent/w.safetensors" --model "$fixtures/model.yaml" --weights /nonexistent/w.safetensors \
  --text-embedding "$fixtures/io.safetensors"
expect_fail "--text-embedding /nonexistent/io.safetensors: No such file or directory" --model "$fixtures/model.yaml" \
  --weights "$fixtures/weights.safetensors" --text-embedding /nonexistent/io.safetensors
(cd "$work" && expect_fail "models/tiny-demo.yaml" --steps 3) || failures=$((failures + 1)) # the default model
expect_fail "has no built-in vocabulary: give --text-embedding FILE" --model "$fixtures/model.yaml" \
  --weights "$fixtures/weights.safetensors"
printf 'key d\nfly away\n' >"$work/bad.script"
expect_fail "bad.script:2: unknown command 'fly'" "${fixture[@]}" --script "$work/bad.script"
expect_fail "/nonexistent.script: cannot open the script" "${fixture[@]}" --script /nonexistent.script
out=$(env -u DISPLAY -u WAYLAND_DISPLAY SDL_VIDEODRIVER=x11 "$app" "${fixture[@]}" 2>&1); rc=$?
if [ $rc -ne 1 ] || ! grep -qF "cannot open a window: SDL_Init(SDL_INIT_VIDEO) failed" <<<"$out"; then
  fail "no display: rc $rc, output: $out"
else
  echo "ok: no display: rc 1, $(head -n 1 <<<"$out")"
fi

# ---- Under Xvfb -----------------------------------------------------------
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.1; done
[ -s "$work/display" ] || { fail "Xvfb did not start: $(cat "$work/xvfb.log")"; exit $failures; }
export DISPLAY=:$(head -n 1 "$work/display")
# SDL picks its renderer: OpenGL through Mesa (llvmpipe) where installed, else software.
echo "Xvfb on $DISPLAY"

# Runs a script on a model; checks the exit status, the screenshots and the saved files.
scripted_run() { # label, script, then the model's arguments
  local label=$1 script=$2; shift 2
  local shots=$work/$label saved=$work/$label-saved
  start=$(date +%s.%N)
  "$app" "$@" --steps 3 --script "$script" --screenshot-dir "$shots" --save-dir "$saved" >"$work/$label.log" 2>&1
  rc=$?
  seconds=$(since "$start")
  [ $rc -eq 0 ] && echo "ok: $label: scripted run exits 0 ($seconds s)" || { fail "$label: rc $rc"; cat "$work/$label.log"; }
  python3 "$here/check_screens.py" "$shots" | sed "s/^/$label: /"
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$label: screenshot checks"
  local y4m png
  y4m=$(ls "$saved"/*.y4m 2>/dev/null | head -n 1) png=$(ls "$saved"/*.png 2>/dev/null | head -n 1)
  [ -n "$y4m" ] && head -c 9 "$y4m" | grep -q YUV4MPEG2 && echo "ok: $label: s saved $(basename "$y4m")" ||
    fail "$label: s saved no Y4M"
  [ -n "$png" ] && [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
    echo "ok: $label: s saved $(basename "$png")" || fail "$label: s saved no window PNG"
  grep -q "saved the video to $saved/.*y4m and the window to $saved/.*png" "$work/$label.log" &&
    echo "ok: $label: s says where it saved" || fail "$label: s does not say where it saved"
  grep "ui fps:" "$work/$label.log" | sed "s/^/$label: /" || fail "$label: no ui fps line"
  grep -qE "backend (cpu: CPU|cuda: .*sm_)" "$work/$label.log" && echo "ok: $label: $(grep -oE "backend (cpu|cuda): .*" "$work/$label.log")" ||
    fail "$label: the backend and device are not named"
}

# The window keeps >= 30 frames per second while the CPU generates (measured
# over a run long enough to mean something: the tiny model's seconds-long steps).
check_fps() { # label
  local fps
  fps=$(sed -n 's/^ui fps: \([0-9.]*\) while generating.*/\1/p' "$work/$1.log")
  if [ -n "$fps" ] && awk -v f="$fps" 'BEGIN { exit !(f >= 30) }'; then
    echo "ok: $1: the window drew $fps frames per second while generating"
  else
    fail "$1: ui fps while generating '${fps:-none}' < 30"
  fi
}

scripted_run fixture "$here/fixture.script" "${fixture[@]}"

# Escape while generating: cancel, join the worker, free, exit 0 within a second.
shots=$work/escape
"$app" "${fixture[@]}" --steps 1000 --script "$here/escape.script" --screenshot-dir "$shots" >"$work/escape.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f "$shots/running.txt" ] && break; sleep 0.02; done
start=$(date +%s.%N)
wait $pid
rc=$?
seconds=$(since "$start")
if [ ! -f "$shots/running.txt" ] || [ $rc -ne 0 ] || ! awk -v s="$seconds" 'BEGIN { exit !(s < 1.0) }'; then
  fail "escape while generating: rc $rc after $seconds s"; cat "$work/escape.log"
else
  echo "ok: Escape while generating: exit 0 after $seconds s ($(grep -o 'everything freed in [0-9]* ms' "$work/escape.log"))"
fi

# Optional: the same runs with an ASan/UBSan build (SLA2_PREVIEW_ASAN=path/to/sla2-preview built with
# -fsanitize=address,undefined) on SDL's dummy video driver, since SDL's X11 backend itself leaks a
# few bytes from modules it unloads at SDL_Quit (a bare SDL_CreateWindow program shows the same).
if [ -n "${SLA2_PREVIEW_ASAN:-}" ]; then
  for run in "fixture.script --steps 3" "escape.script --steps 1000"; do
    set -- $run
    out=$(ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$here/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
      SDL_VIDEODRIVER=dummy "$SLA2_PREVIEW_ASAN" \
      "${fixture[@]}" "$2" "$3" --script "$here/$1" --screenshot-dir "$work/asan-$1" --save-dir "$work/asan-saved" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error" <<<"$out"; then
      fail "ASan/UBSan, $1: rc $rc"; echo "$out" | tail -40
    else
      echo "ok: ASan/UBSan, $1: no error, no leak"
    fi
  done
fi

# The tiny demo model, where it has been trained: the prompt typed with Tab completion.
if [ -f "$root/models/tiny-demo.yaml" ] && [ -f "$root/models/tiny-demo.safetensors" ]; then
  cat "$here/prompt.script" "$here/fixture.script" >"$work/tiny.script"
  scripted_run tiny "$work/tiny.script" --model "$root/models/tiny-demo.yaml" \
    --weights "$root/models/tiny-demo.safetensors"
  check_fps tiny
  grep -q "generating 'red circle moving right'" "$work/tiny.log" && echo "ok: tiny: Tab completed the prompt" ||
    fail "tiny: the prompt was not completed to 'red circle moving right'"
else
  echo "note: models/tiny-demo.* not found: the tiny model's run is skipped"
fi

[ $failures -eq 0 ] && echo "sla2-preview: all checks passed" || echo "sla2-preview: $failures checks failed"
exit $failures

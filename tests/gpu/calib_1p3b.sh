#!/usr/bin/env bash
# sla2-calib on the CUDA backend at the Wan2.1-1.3B 480p shape (issue 7), on
# a machine with a GPU:
#   1. builds sla2-calib with CUDA (architectures $SLA2_CUDA_ARCHS, default 90a),
#   2. meanwhile writes random Wan2.1-1.3B weights (BF16, every tensor the SDK loads for
#      configs/models/wan2.1-t2v-1.3b.yaml) and one random prompt embedding
#      ("context" [64, 4096]) with python3 + torch, once,
#   3. calibrates on them: 1 embedding, seed 0, 2 steps, both sampled, latents
#      1 x 16 x 21 x 60 x 104 (32760 tokens), printing the per-layer table and
#      the wall time.
# Random weights make the chosen settings meaningless; what this shows is that
# the tool runs on the GPU at the real shape, and how long it takes.
# Each candidate costs one 1.3B forward (about 1.9 s with 29 dense layers), so
# the default candidate list is short enough for ~4 minutes (30 layers x at
# most 2 samples): SLA2_CALIB_TOPKS (default 0.1; 0.03,0.1 takes up to 4),
# SLA2_CALIB_MODES (default int8_fp8), SLA2_CALIB_BUDGET (rel-L2, default 0.1).
# SLA2_CALIB_BUILD_ONLY=1 builds and writes the weights, then stops.
# Logs and outputs go to $OUT when set (else $BUILD/logs); the weights to
# $BUILD/calib-1p3b. Where the machine lacks them, OpenBLAS and libyaml come
# from a carried .blas/ and libpng from a carried .ditdeps/png/ (as
# tests/gpu/dit/run_dit_gpu.sh).
set -uo pipefail
script_start=$(date +%s)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLA2_GPU_BUILD:-$ROOT/build-calib-gpu}
ARCHS=${SLA2_CUDA_ARCHS:-90a}
LOGS=${OUT:-$BUILD/logs}
WORK=$BUILD/calib-1p3b
TOPKS=${SLA2_CALIB_TOPKS:-0.1}
MODES=${SLA2_CALIB_MODES:-int8_fp8}
BUDGET=${SLA2_CALIB_BUDGET:-0.1}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH="$CUDA_HOME/bin:$PATH"
mkdir -p "$LOGS" "$WORK"

ARGS=()
if ! { pkg-config --exists openblas 2>/dev/null || ls /usr/lib/*/openblas-openmp/libopenblas.so >/dev/null 2>&1; } &&
   [ -d "$ROOT/.blas" ]; then
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

step() { printf '\n== %s (%s, %d s in)\n' "$*" "$(date -u +%T)" $(( $(date +%s) - script_start )); }

write_weights() {
  python3 - "$WORK" <<'PY'
# Every tensor dit_weights_load reads for wan2.1-t2v-1.3b.yaml (router and
# alpha per head, qk_norm, cross_attn_norm), BF16, written as safetensors by
# hand (header, then the tensors in order). Values as apps/bench/model's
# generator: linear weights with std 1/sqrt(fan_in), small biases, norms near
# 1, modulation within +-0.1, routers with std 1/sqrt(head_dim), alpha logits
# in [1, 3].
import ctypes, json, os, struct, sys, torch
work = sys.argv[1]
dim, ffn, freq, text_dim, heads, layers, cin, patch = 1536, 8960, 256, 4096, 12, 30, 16, (1, 2, 2)
hd = dim // heads
g = torch.Generator(device="cuda").manual_seed(0)
def uni(shape, scale):
    return (torch.rand(shape, generator=g, device="cuda") * 2 - 1) * scale
def linear(name, out, inp):
    yield name + ".weight", (out, inp), lambda: uni((out, inp), (3.0 / inp) ** 0.5)
    yield name + ".bias", (out,), lambda: uni((out,), 0.02)
def norm(name):
    yield name, (dim,), lambda: 1 + uni((dim,), 0.1)
def tensors():
    patch_in = cin * patch[0] * patch[1] * patch[2]
    yield "patch_embedding.weight", (dim, cin) + patch, lambda: uni((dim, cin) + patch, (3.0 / patch_in) ** 0.5)
    yield "patch_embedding.bias", (dim,), lambda: uni((dim,), 0.02)
    yield from linear("text_embedding.0", dim, text_dim)
    yield from linear("text_embedding.2", dim, dim)
    yield from linear("time_embedding.0", dim, freq)
    yield from linear("time_embedding.2", dim, dim)
    yield from linear("time_projection.1", 6 * dim, dim)
    for i in range(layers):
        b = f"blocks.{i}"
        yield b + ".modulation", (1, 6, dim), lambda: uni((1, 6, dim), 0.1)
        for attn in ("self_attn", "cross_attn"):
            for p in "qkvo":
                yield from linear(f"{b}.{attn}.{p}", dim, dim)
            yield from norm(f"{b}.{attn}.norm_q.weight")
            yield from norm(f"{b}.{attn}.norm_k.weight")
        yield from norm(b + ".norm3.weight")
        yield b + ".norm3.bias", (dim,), lambda: uni((dim,), 0.02)
        yield from linear(b + ".ffn.0", ffn, dim)
        yield from linear(b + ".ffn.2", dim, ffn)
        for r in ("router_q", "router_k"):
            yield f"{b}.self_attn.sla2.{r}", (heads, hd, hd), lambda: uni((heads, hd, hd), (3.0 / hd) ** 0.5)
        yield b + ".self_attn.sla2.alpha", (heads,), lambda: 2 + uni((heads,), 1.0)
    yield "head.modulation", (1, 2, dim), lambda: uni((1, 2, dim), 0.1)
    yield from linear("head.head", cin * patch[0] * patch[1] * patch[2], dim)
def write(path, items):
    header, offset = {}, 0
    for name, shape, _ in items:
        n = 2
        for s in shape:
            n *= s
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, shape, make in items:
            data = make().to(torch.bfloat16).contiguous().cpu()
            # the raw bytes in one copy (bytes(storage) would go element by element)
            f.write(ctypes.string_at(data.data_ptr(), data.numel() * data.element_size()))
    os.replace(path + ".tmp", path)  # a run cut short leaves no half-written file behind
write(f"{work}/weights.safetensors", list(tensors()))
write(f"{work}/context.safetensors", [("context", (64, text_dim), lambda: torch.randn((64, text_dim), generator=g, device="cuda"))])
PY
}

# The weights are written (GPU and disk) while the build runs (CPU).
step "random Wan2.1-1.3B weights and a prompt embedding, in the background; build sla2-calib (sm_$ARCHS)"
weights_pid=
if [ ! -s "$WORK/weights.safetensors" ] || [ ! -s "$WORK/context.safetensors" ]; then
  write_weights >"$WORK/weights.log" 2>&1 &
  weights_pid=$!
fi
if ! { cmake -S "$ROOT" -B "$BUILD" -DSLA2_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DCMAKE_BUILD_TYPE=Release \
         -DSLA2_BUILD_TESTS=OFF "${ARGS[@]}" >"$BUILD/configure.log" 2>&1 &&
       cmake --build "$BUILD" -j"$(nproc)" --target sla2-calib >"$BUILD/build.log" 2>&1; }; then
  tail -n 30 "$BUILD/configure.log"; grep -E "error|Error" -A3 "$BUILD/build.log" | head -60
  cp "$BUILD/configure.log" "$BUILD/build.log" "$LOGS/" 2>/dev/null
  exit 1
fi
CALIB=$BUILD/calib/sla2-calib
if [ -n "$weights_pid" ] && ! wait "$weights_pid"; then
  tail -20 "$WORK/weights.log"; exit 1
fi
step "built; weights written"

ls -l "$WORK"
[ "${SLA2_CALIB_BUILD_ONLY:-0}" = 1 ] && { echo "built and written in $(( $(date +%s) - script_start )) s"; exit 0; }

step "sla2-calib --backend cuda: Wan2.1-1.3B 480p, 1 embedding, 2 steps, both sampled"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
calib_start=$(date +%s.%N)
"$CALIB" --backend cuda --model "$ROOT/configs/models/wan2.1-t2v-1.3b.yaml" --weights "$WORK/weights.safetensors" \
    --text-embedding "$WORK/context.safetensors" --seeds 0 --steps 2 --sample-steps 2 \
    --topk-candidates "$TOPKS" --modes "$MODES" --max-rel-l2 "$BUDGET" \
    --out "$LOGS/calib-1p3b.yaml" --plot "$LOGS/calib-1p3b.png" >"$LOGS/calib-1p3b.txt" 2>"$LOGS/calib-1p3b.stderr"
rc=$?
cat "$LOGS/calib-1p3b.txt"
tr '\r' '\n' <"$LOGS/calib-1p3b.stderr" | grep -v '^\[' | tail -20
printf 'sla2-calib exit status %d, wall time %s s (model load included); script %d s\n' $rc \
    "$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $calib_start }")" $(( $(date +%s) - script_start ))
[ $rc = 0 ] || [ $rc = 3 ]

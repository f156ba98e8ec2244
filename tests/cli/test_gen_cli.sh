#!/usr/bin/env bash
# sla2-gen as a user runs it: a small generation writes a Y4M and a PNG
# strip; every bad flag or file gives a clear message and a non-zero exit.
set -u
gen=$1 fixtures=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
model=(--model "$fixtures/dit/model.yaml" --weights "$fixtures/dit/weights.safetensors")
emb=(--text-embedding "$fixtures/dit/io.safetensors")

expect_fail() { # expected-substring, then the arguments
  local want=$1; shift
  out=$("$gen" "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: sla2-gen $* -> rc $rc, output: $out (wanted '$want')"; failures=$((failures + 1))
  else
    echo "ok: $want"
  fi
}

"$gen" "${model[@]}" "${emb[@]}" --steps 2 --guidance 1 --quiet --out "$work/v.y4m" --png "$work/strip.png" >/dev/null \
  || { echo "FAIL: generation"; failures=$((failures + 1)); }
head -c 9 "$work/v.y4m" | grep -q YUV4MPEG2 || { echo "FAIL: no Y4M header"; failures=$((failures + 1)); }
"$gen" "${model[@]}" "${emb[@]}" --steps 1 --guidance 1 --quiet --weights-storage bf16 --out "$work/b.y4m" |
  grep -q "weights bf16" || { echo "FAIL: --weights-storage bf16"; failures=$((failures + 1)); }
printf 'weights: bf16\n' >"$work/bf16.yaml"
"$gen" "${model[@]}" "${emb[@]}" --steps 1 --guidance 1 --quiet --runtime "$work/bf16.yaml" --out "$work/b.y4m" |
  grep -q "weights bf16" || { echo "FAIL: runtime weights: bf16"; failures=$((failures + 1)); }
[ "$(head -c 8 "$work/strip.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "FAIL: no PNG"; failures=$((failures + 1)); }
"$gen" --help | grep -q -- "--text-embedding" || { echo "FAIL: --help"; failures=$((failures + 1)); }

expect_fail "unknown flag '--bogus'" "${model[@]}" "${emb[@]}" --bogus 1
expect_fail "--steps: expected" "${model[@]}" "${emb[@]}" --steps 0
expect_fail "--steps: expected" "${model[@]}" "${emb[@]}" --steps abc
expect_fail "--topk: expected" "${model[@]}" "${emb[@]}" --topk 1.5
expect_fail "--quant: expected none, int8 or int8_fp8" "${model[@]}" "${emb[@]}" --quant fp4
expect_fail "--sampler: expected unipc or euler" "${model[@]}" "${emb[@]}" --sampler ddim
expect_fail "--attention: expected dense or sla2" "${model[@]}" "${emb[@]}" --attention sparse
expect_fail "--backend: expected cpu, cuda or auto" "${model[@]}" "${emb[@]}" --backend tpu
expect_fail "--weights-storage: expected f32, int8, fp8, bf16 or fp8_gemm" "${model[@]}" "${emb[@]}" --weights-storage int4
printf 'weights: fp4\n' >"$work/bad-weights.yaml"
expect_fail "bad-weights.yaml:1:" "${model[@]}" "${emb[@]}" --runtime "$work/bad-weights.yaml"
expect_fail "--seed: needs a value" "${model[@]}" "${emb[@]}" --seed
expect_fail "--model and --weights are required" "${emb[@]}"
expect_fail "give exactly one of --prompt and --text-embedding" "${model[@]}"
expect_fail "no built-in vocabulary" "${model[@]}" --prompt "red circle"
expect_fail "/nonexistent.yaml" --model /nonexistent.yaml --weights "$fixtures/dit/weights.safetensors" "${emb[@]}"
expect_fail "missing from the checkpoint" --model "$fixtures/dit/model.yaml" --weights "$fixtures/dit/io.safetensors" "${emb[@]}"
printf 'not a safetensors file' >"$work/bad.safetensors"
expect_fail "bad.safetensors" --model "$fixtures/dit/model.yaml" --weights "$work/bad.safetensors" "${emb[@]}"
expect_fail "'context'" "${model[@]}" --text-embedding "$fixtures/dit/weights.safetensors" --steps 1
expect_fail "/nonexistent-dir/sub/v.y4m: cannot create its directory" "${model[@]}" "${emb[@]}" --steps 1 --guidance 1 --quiet --out /nonexistent-dir/sub/v.y4m
[ $failures -eq 0 ] && echo "sla2-gen CLI: all checks passed"
exit $failures

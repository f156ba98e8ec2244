#!/usr/bin/env bash
# sla2-eval from the command line: a tiny real run (1 prompt, 1 seed, dense,
# 2 steps) writes one TSV line of the documented columns; --time-limit and
# --resume count honestly; shards partition the run (--list); --merge of
# shard TSVs gives the unsharded table; every bad flag or file gives a clear
# message and a non-zero exit. Usage: test_eval_cli.sh SLA2_EVAL REPO_ROOT
set -u
eval_bin=$1 root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
model=(--model "$root/models/tiny-demo.yaml" --weights "$root/models/tiny-demo.safetensors")
fixture=(--model "$root/tests/fixtures/dit/model.yaml" --weights "$root/tests/fixtures/dit/weights.safetensors")

expect_fail() { # expected-substring, then the arguments
  local want=$1; shift
  out=$("$eval_bin" "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || ! grep -qF -- "$want" <<<"$out"; then
    fail "sla2-eval $* -> rc $rc, output: $out (wanted '$want')"
  else
    echo "ok: $want"
  fi
}

# ---- --help documents every flag
help=$("$eval_bin" --help) || fail "--help exits non-zero"
for flag in --model --weights --runtime --backend --threads --prompts --prompt-file --seeds --settings --steps \
            --shard --tsv --resume --time-limit --quiet --list --merge --help; do
  grep -qF -- "$flag" <<<"$help" || fail "--help does not document $flag"
done

# ---- a tiny real run; guidance 1 (one DiT pass a step) keeps it a few seconds
sed -e 's/^guidance:.*/guidance: 1.0/' "$root/models/tiny-demo.runtime.yaml" >"$work/runtime.yaml"
run=("${model[@]}" --runtime "$work/runtime.yaml" --backend cpu --prompts 1 --seeds 0 --settings dense --steps 2 --quiet)
"$eval_bin" "${run[@]}" --tsv "$work/run.tsv" >"$work/run.out" 2>&1 || fail "the tiny run: $(cat "$work/run.out")"
grep -q '^# sla2-eval .*planned=1;' "$work/run.tsv" || fail "TSV header: $(head -1 "$work/run.tsv")"
grep -qx $'setting\tprompt\tseed\tcolour\tshape\tdirection\tcolour_ok\tshape_ok\tdirection_ok\tseconds\tkept_blocks' \
  "$work/run.tsv" || fail "TSV column names"
videos=$(grep -v -e '^#' -e '^setting' "$work/run.tsv")
[ "$(wc -l <<<"$videos")" -eq 1 ] || fail "expected 1 video line, got: $videos"
colours='red|green|blue|yellow|cyan|magenta|none' shapes='circle|square|triangle|none' dirs='left|right|up|down|none'
grep -qE "^dense	red circle moving left	0	($colours)	($shapes)	($dirs)	[01]	[01]	[01]	[0-9]+\.[0-9]{3}	64/64$" \
  <<<"$videos" || fail "video line: $videos"
grep -q '^| dense | dense (all 64/64) | 1 | ' "$work/run.out" || fail "table row: $(cat "$work/run.out")"
grep -q '^videos done: 1 of 1 planned$' "$work/run.out" || fail "done count: $(cat "$work/run.out")"
echo "ok: tiny run -> $videos"

# --resume finds the video done and generates nothing
"$eval_bin" "${run[@]}" --tsv "$work/run.tsv" --resume >"$work/resume.out" 2>&1 || fail "--resume: $(cat "$work/resume.out")"
grep -q '^0 videos generated in this run' "$work/resume.out" && grep -q '^videos done: 1 of 1 planned$' "$work/resume.out" ||
  fail "--resume: $(cat "$work/resume.out")"
[ "$(grep -c '^dense' "$work/run.tsv")" -eq 1 ] || fail "--resume wrote the video again"
# a time limit reached before the first video: nothing counted, and said so
"$eval_bin" "${run[@]}" --time-limit 0.000001 --tsv "$work/limit.tsv" >"$work/limit.out" 2>&1 || fail "--time-limit: $(cat "$work/limit.out")"
grep -q '^stopped at the time limit' "$work/limit.out" && grep -q '^videos done: 0 of 1 planned (incomplete)$' "$work/limit.out" &&
  grep -qxF '| dense | dense (all 64/64) | 0 | - | - | - | - | - |' "$work/limit.out" || fail "--time-limit: $(cat "$work/limit.out")"
"$eval_bin" --merge "$work/limit.tsv" "$work/run.tsv" >"$work/limit.table" 2>&1 || fail "--merge limit.tsv run.tsv: $(cat "$work/limit.table")"
grep -qxF 'videos done: 1 of 2 planned (incomplete)' "$work/limit.table" || fail "merge of a stopped run: $(cat "$work/limit.table")"
echo "ok: --resume and --time-limit"

# ---- shards partition the run (50 prompts x 2 seeds x 7 settings) by (prompt, seed) pairs
"$eval_bin" --list >"$work/all.list" || fail "--list"
[ "$(wc -l <"$work/all.list")" -eq 700 ] || fail "--list: $(wc -l <"$work/all.list") videos, expected 700"
[ "$(cut -f2 "$work/all.list" | sort -u | wc -l)" -eq 50 ] || fail "--list: not 50 distinct prompts"
for i in 0 1 2; do "$eval_bin" --list --shard $i/3; done | sort >"$work/shards.list"
sort "$work/all.list" | cmp -s - "$work/shards.list" || fail "shards 0/3 1/3 2/3 are not a partition of the run"
[ "$("$eval_bin" --list --shard 3/7 | cut -f1 | sort -u | wc -l)" -eq 7 ] || fail "shard 3/7 lacks some of the 7 settings"
[ "$("$eval_bin" --list --shard 3/7 | wc -l)" -eq 98 ] || fail "shard 3/7: expected 14 pairs x 7 settings"
echo "ok: --list and --shard"

# ---- --merge of shard TSVs equals the unsharded table (handcrafted TSV:
# 2 prompts x 2 seeds x 3 settings, every match pattern somewhere)
header=$'setting\tprompt\tseed\tcolour\tshape\tdirection\tcolour_ok\tshape_ok\tdirection_ok\tseconds\tkept_blocks'
{
  echo "# sla2-eval test; device=handmade; shard=0/1; planned=12; steps=20"; echo "$header"
  v=0
  for p in "red circle moving left" "blue square moving up"; do for seed in 0 1; do
    for s in "dense 64/64" "0.1:int8 6/64" "0.05:none 3/64"; do
      m=$(( (v * 5 + 3) % 8 ))
      printf '%s\t%s\t%d\tred\tcircle\tleft\t%d\t%d\t%d\t%d.250\t%s\n' "${s% *}" "$p" $seed $((m & 1)) $((m >> 1 & 1)) \
        $((m >> 2 & 1)) $((v + 1)) "${s#* }"
      v=$((v + 1))
    done
  done; done
} >"$work/all.tsv"
for i in 0 1; do
  { echo "# sla2-eval test; device=handmade; shard=$i/2; planned=6; steps=20"; echo "$header"
    grep -v -e '^#' -e '^setting' "$work/all.tsv" | awk -v i=$i 'NR % 2 == 1 - i'; } >"$work/shard$i.tsv"
done
"$eval_bin" --merge "$work/all.tsv" >"$work/all.table" || fail "--merge all.tsv"
"$eval_bin" --merge "$work/shard0.tsv" "$work/shard1.tsv" >"$work/shards.table" || fail "--merge shards"
"$eval_bin" --merge "$work/shard1.tsv" "$work/shard0.tsv" >"$work/shards10.table" || fail "--merge shards (reversed)"
cmp -s "$work/all.table" "$work/shards.table" || fail "merged shards differ: $(diff "$work/all.table" "$work/shards.table")"
cmp -s "$work/all.table" "$work/shards10.table" || fail "merge order changes the table"
# the numbers, by hand: dense is videos 0 3 6 9, matches 3 2 1 0 (bits colour, shape, direction) ->
# colour 2/4, shape 2/4, direction 0, all 0; seconds 1.25 4.25 7.25 10.25 -> 5.75 s/video. 0.1:int8 is
# videos 1 4 7 10, matches 0 7 6 5 -> 2/4, 2/4, 3/4, 1/4; 6.75 s/video.
grep -qxF '| dense | dense (all 64/64) | 4 | 0.50 | 0.50 | 0.00 | 0.00 | 5.75 |' "$work/all.table" ||
  fail "dense row: $(cat "$work/all.table")"
grep -qxF '| 0.1:int8 | 6/64 kept, 90.6% sparse | 4 | 0.50 | 0.50 | 0.75 | 0.25 | 6.75 |' "$work/all.table" ||
  fail "0.1:int8 row: $(cat "$work/all.table")"
grep -qxF 'videos done: 12 of 12 planned' "$work/all.table" || fail "done line: $(cat "$work/all.table")"
"$eval_bin" --merge "$work/shard0.tsv" >"$work/half.table" || fail "--merge one shard"
grep -qxF 'videos done: 6 of 6 planned' "$work/half.table" || fail "one shard: $(cat "$work/half.table")"
echo "ok: --merge of 2 shards = the unsharded table"

# ---- bad flags and files
expect_fail "unknown flag '--bogus'" "${model[@]}" --bogus 1
expect_fail "--model and --weights are required" --prompts 2
expect_fail "--prompts: expected an integer in [1, 72], got '0'" "${model[@]}" --prompts 0
expect_fail "--prompts: expected an integer in [1, 72], got '73'" "${model[@]}" --prompts 73
expect_fail "--steps: expected an integer in [1, 1000]" "${model[@]}" --steps 0
expect_fail "--threads: expected an integer" "${model[@]}" --threads many
expect_fail "--seeds: 'x' is not a seed" "${model[@]}" --seeds 0,x
expect_fail "--seeds: 1 is given twice" "${model[@]}" --seeds "1 1"
expect_fail "--seeds: the list is empty" "${model[@]}" --seeds ,
expect_fail "--settings: '0.1:fp4': MODE must be none, int8 or int8_fp8" "${model[@]}" --settings dense,0.1:fp4
expect_fail "--settings: '2:none': expected 'dense' or 'T:MODE' with T in (0, 1]" "${model[@]}" --settings 2:none
expect_fail "--settings: 'sparse': expected" "${model[@]}" --settings sparse
expect_fail "--settings: 'dense' is given twice" "${model[@]}" --settings dense,dense
expect_fail "--shard: expected I/N with 0 <= I < N, got '4/4'" "${model[@]}" --shard 4/4
expect_fail "--shard: expected I/N" "${model[@]}" --shard 1
expect_fail "--backend: expected cpu, cuda or auto, got 'tpu'" "${model[@]}" --backend tpu
expect_fail "--time-limit: expected a number of seconds > 0" "${model[@]}" --time-limit -5
expect_fail "--tsv: needs a value" "${model[@]}" --tsv
expect_fail "give --prompts or --prompt-file, not both" "${model[@]}" --prompts 3 --prompt-file "$work/p.txt"
expect_fail "--resume needs --tsv FILE" "${model[@]}" --resume
expect_fail "unexpected argument 'extra'" "${model[@]}" extra
expect_fail "--merge: give one or more TSV files" --merge
expect_fail "--merge takes only TSV files" "${model[@]}" --merge "$work/all.tsv"
expect_fail "$work/nonexistent.tsv: No such file or directory" --merge "$work/nonexistent.tsv"
expect_fail "not a sla2-eval TSV" --merge "$work/all.table"
printf '%s\n' "# sla2-eval x; planned=1" "dense	red circle moving left	0	red" >"$work/short.tsv"
expect_fail "short.tsv:2: expected 11 tab-separated fields, got 4" --merge "$work/short.tsv"
sed '3s/\t1\t/\tyes\t/' "$work/all.tsv" >"$work/badbit.tsv"
expect_fail "badbit.tsv:3: a field is not what the columns say" --merge "$work/badbit.tsv"
expect_fail "a video is in the TSVs twice" --merge "$work/all.tsv" "$work/shard0.tsv"
expect_fail "nonexistent.yaml" --model "$work/nonexistent.yaml" --weights "$root/models/tiny-demo.safetensors" --prompts 1
expect_fail "--prompt-file $work/nonexistent.txt: No such file or directory" "${model[@]}" --prompt-file "$work/nonexistent.txt"
printf '# only a comment\n\n' >"$work/empty.txt"
expect_fail "no prompts in it" "${model[@]}" --prompt-file "$work/empty.txt"
printf 'red circle moving left\npurple circle moving left\n' >"$work/purple.txt"
expect_fail "prompt 'purple circle moving left': 'purple' is not in the model's vocabulary" "${model[@]}" \
  --backend cpu --prompt-file "$work/purple.txt"
expect_fail "not a pixel-space RGB model with a built-in vocabulary" "${fixture[@]}" --backend cpu --prompts 1
expect_fail "--tsv $work/no-such-dir/x.tsv: No such file or directory" "${model[@]}" --backend cpu --prompts 1 \
  --tsv "$work/no-such-dir/x.tsv"
"$eval_bin" "${run[@]}" --tsv "$work/run.tsv" --resume --seeds 0,1 >"$work/replan.out" 2>&1 &&
  fail "--resume with another plan succeeded" ||
  { grep -qF "was planned for 1 videos of 1 settings, these flags plan 2 of 1" "$work/replan.out" && echo "ok: --resume with another plan" ||
    fail "--resume with another plan: $(cat "$work/replan.out")"; }

[ $failures -eq 0 ] && echo "sla2-eval CLI: all checks passed"
exit $failures

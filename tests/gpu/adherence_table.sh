#!/usr/bin/env bash
# The adherence table of one or more sla2-eval TSVs (the shards of one run,
# e.g. $OUT/adherence/cpu.*.tsv of tests/gpu/adherence.sh): sla2-eval --merge.
# Usage: tests/gpu/adherence_table.sh TSV...   (SLA2_EVAL: the sla2-eval to
# use; default the first built one of build-gpu/, build/, build-*/)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 TSV..." >&2; exit 2; }
eval_bin=${SLA2_EVAL:-}
if [ -z "$eval_bin" ]; then
  for candidate in "$ROOT"/build-gpu "$ROOT"/build "$ROOT"/build-*; do
    [ -x "$candidate/apps/eval/sla2-eval" ] && { eval_bin=$candidate/apps/eval/sla2-eval; break; }
  done
fi
[ -n "$eval_bin" ] || { echo "$0: no sla2-eval built (cmake --build BUILD --target sla2-eval, or set SLA2_EVAL)" >&2; exit 2; }
exec "$eval_bin" --merge "$@"

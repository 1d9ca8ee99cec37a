#!/usr/bin/env bash
# Runs one experiment of this folder on the local model, from scratch or from where it stopped:
# starts llama-cpp-python's server (examples/small-models/serve.sh; .ci/run builds its venv),
# runs the experiment's matrix with `nlah ablate --record-cassettes`, stops cleanly after
# PIECE_MINUTES so that a long matrix runs in pieces, then keeps the results in NAME/results/
# (collect.sh). Run it again to continue: finished cells are not run twice.
#
# Usage: examples/experiments/run.sh NAME
# Env: NLAH (the nlah binary; default: nlah on PATH), PIECE_MINUTES (110), PORT (18190),
#      WORK (the matrix's output folder; default target/experiments/NAME), NLAH_CI_CACHE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${1:?usage: run.sh NAME}
dir="$here/$name"
# shellcheck source=lib.sh
. "$here/lib.sh"
load_experiment "$dir"
nlah=${NLAH:-nlah}
work=$(realpath -m "${WORK:-$root/target/experiments/$name}")
port=${PORT:-18190}
venv="${NLAH_CI_CACHE:-$HOME/.cache/nlah-ci}/venv"
mkdir -p "$work"

pid=$("$root/examples/small-models/serve.sh" "$port" "$work/server.log")
# The server may not heed SIGTERM while it generates: then SIGKILL, a moment later.
trap 'kill "$pid" 2>/dev/null; sleep 2; kill -9 "$pid" 2>/dev/null || true' EXIT
export OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
# The environments' Python (TextArena) comes first.
export PATH="$venv/bin:$PATH"

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
start_s=$(date +%s)
set +e
# SIGINT is Ctrl-C to nlah: the running cell stops, and runs again next time.
timeout --signal=INT --kill-after=300 "${PIECE_MINUTES:-110}m" \
  "$nlah" ablate "${matrix_args[@]}" --concurrency 1 --out "$work/out" --record-cassettes \
  --json >"$work/ablate-$start_s.jsonl" 2>"$work/ablate-$start_s.stderr"
code=$?
set -e
minutes=$(( ($(date +%s) - start_s + 59) / 60 ))
echo "piece of $name: started $started, $minutes min, nlah ablate exit $code" >&2
"$here/collect.sh" "$name" "$work/out"
mkdir -p "$dir/results"
printf '%s\t%s\t%s\t%s\n' "$started" "$minutes" "$code" "$(uname -srm); $(nproc) cores" \
  >>"$dir/results/pieces.tsv"

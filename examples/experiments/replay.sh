#!/usr/bin/env bash
# Replays an experiment's committed cassettes offline (no model server) and checks that the
# report it gets is the committed one, runtimes aside: the same cells, outcomes, tokens, legal
# rates and rewards. Needs the experiment's environments (TextArena: .ci/run installs it).
#
# Usage: examples/experiments/replay.sh NAME [OUT]
# Env: NLAH (the nlah binary; default: nlah on PATH), NLAH_CI_CACHE (its venv's Python runs the
#      environments, when it exists).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: replay.sh NAME [OUT]}
dir="$here/$name"
# shellcheck source=lib.sh
. "$here/lib.sh"
load_experiment "$dir"
nlah=${NLAH:-nlah}
venv="${NLAH_CI_CACHE:-$HOME/.cache/nlah-ci}/venv"
[ -d "$venv/bin" ] && export PATH="$venv/bin:$PATH"
out=${2:-$(mktemp -d)/replay}
set +e
# A replay needs no key, but the client is built from the same spec.
OPENAI_API_KEY=${OPENAI_API_KEY:-replay} OPENAI_BASE_URL=http://127.0.0.1:9/v1 \
  "$nlah" ablate "${matrix_args[@]}" --concurrency 4 --out "$out" \
  --replay-cassettes "$dir/results/cassettes" --json >"$out.jsonl"
code=$?
set -e
# 0: every cell replayed; 1: the matrix is not complete (an experiment recorded in part).
[ "$code" -le 1 ] || { echo "nlah ablate --replay-cassettes exited $code" >&2; exit "$code"; }
"$nlah" report "$out" --format json --out "$out.report.json"
python3 "$here/compare.py" "$dir/results/report.json" "$out.report.json"

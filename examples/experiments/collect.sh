#!/usr/bin/env bash
# Keeps what an experiment's matrix recorded in NAME/results/: matrix.json, each finished cell's
# run.json and cassette, and the report (report.md, report.html, report.json). Cells that did
# not finish keep nothing: they run again, recording afresh.
#
# Usage: examples/experiments/collect.sh NAME OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: collect.sh NAME OUT}
out=${2:?usage: collect.sh NAME OUT}
nlah=${NLAH:-nlah}
res="$here/$name/results"
mkdir -p "$res/cells" "$res/cassettes"
cp "$out/matrix.json" "$res/matrix.json"
for run in "$out"/cells/*/run.json; do
  [ -f "$run" ] || continue
  id=$(basename "$(dirname "$run")")
  case "$id" in *.attempt-*) continue ;; esac
  outcome=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("outcome",""))' "$run")
  case "$outcome" in passed | failed | unverified | error) ;; *) continue ;; esac
  [ -f "$out/cassettes/$id.jsonl" ] || continue
  mkdir -p "$res/cells/$id"
  cp "$run" "$res/cells/$id/run.json"
  cp "$out/cassettes/$id.jsonl" "$res/cassettes/$id.jsonl"
done
# The report of what is kept, so that a replay of the kept cassettes can be compared with it.
"$nlah" report "$res" --format md --out "$res/report.md"
"$nlah" report "$res" --format html --out "$res/report.html"
"$nlah" report "$res" --format json --out "$res/report.json"

#!/usr/bin/env bash
# Runs the bundled `basic` harness (compact brief) on the bundled tasks with two small local
# models served by llama-cpp-python on 127.0.0.1 (serve.sh), then classifies how each run ended
# (classify.py): which ends were the model's and which the runtime's side of the interface.
#
# Usage: examples/small-models/run.sh [OUT_DIR]
# Env: NLAH (the nlah binary; default: nlah on PATH), MODELS (default: "qwen2.5-coder-0.5b
# smollm2"), TASKS (default: every task under examples/tasks), MAX_STEPS (8), MAX_TOKENS (512),
# TOOL_CHOICE (any), RUN_TIMEOUT (seconds per run, 900), PORT (18190), NLAH_CI_CACHE (see serve.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(realpath -m "${1:-$root/target/small-models}")
nlah=${NLAH:-nlah}
models=${MODELS:-"qwen2.5-coder-0.5b smollm2"}
port=${PORT:-18190}
mkdir -p "$out"
rm -f "$out/times.tsv"
tasks=${TASKS:-$(cd "$root/examples/tasks" && for d in */; do [ -f "$d/TASK.md" ] && echo "${d%/}"; done)}

pid=$("$here/serve.sh" "$port" "$out/server.log")
trap 'kill "$pid" 2>/dev/null || true' EXIT

for model in $models; do
  for task in $tasks; do
    ws="$out/runs/$model/$task"
    rm -rf "$ws"
    mkdir -p "$(dirname "$ws")"
    start=$(date +%s%N)
    # The harness's own budgets apply; RUN_TIMEOUT only guards the measurement itself.
    set +e
    OPENAI_BASE_URL="http://127.0.0.1:$port/v1" timeout "${RUN_TIMEOUT:-900}" \
      "$nlah" run basic "$root/examples/tasks/$task" --model "openai:$model" \
      --with compact-brief --tool-choice "${TOOL_CHOICE:-any}" \
      --max-steps "${MAX_STEPS:-8}" --max-tokens "${MAX_TOKENS:-512}" \
      --workspace "$ws" --json >"$ws.jsonl" 2>"$ws.stderr"
    code=$?
    set -e
    ms=$((($(date +%s%N) - start) / 1000000))
    printf '%s\t%s\t%s\t%s\n' "$model" "$task" "$code" "$ms" >>"$out/times.tsv"
    echo "$model $task: exit $code"
  done
done
python3 "$here/classify.py" "$out" | tee "$out/table.md"

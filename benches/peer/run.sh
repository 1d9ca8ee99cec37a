#!/usr/bin/env bash
# nlah beside a peer (Inspect AI) on the same workload: N one-task samples, each solved in 4
# model calls (3 shell/bash commands, then finish/submit) against the same mock model on
# 127.0.0.1 answering in LATENCY ms (mock.py), at concurrency C. nlah runs it as `nlah ablate`
# with the release binary (the `write-result` task and its hidden verifier, the `basic`
# harness); Inspect as a task of react + bash in the local sandbox, scored by the same check
# (inspect_task.py), with its limits on connections, samples, sandboxes and subprocesses all
# raised to C (its default of one subprocess per core would hold its bash calls back). Prints wall time, CPU (user + system, with child processes) and peak RSS
# of each (GNU time), medians over the rounds, and nlah's ratios to Inspect's.
#
# Usage: benches/peer/run.sh [--install] [--samples N] [--latency MS] [--concurrency C]
#                            [--rounds R]
#   --install  put inspect-ai==0.3.285 into a venv under ~/.cache/nlah-ci/inspect-venv when it
#              is not there yet (otherwise the peer runs only if that venv has it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
samples=50 latency=200 concurrency=50 rounds=3 install=0
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --samples) samples="$2"; shift ;;
    --latency) latency="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done

venv="${HOME}/.cache/nlah-ci/inspect-venv"
if [ "$install" = 1 ] && ! "$venv/bin/python" -c "import inspect_ai" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'inspect-ai==0.3.285' openai
fi

nlah="$repo/target/release/nlah"
if [ ! -x "$nlah" ] || [ -n "$(find "$repo/src" -newer "$nlah" -name '*.rs' -print -quit)" ]; then
  (cd "$repo" && unset CARGO_TARGET_DIR && cargo build --release --bin nlah)
fi

work="$(mktemp -d)"
mock_pid=""
cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

PYTHONDONTWRITEBYTECODE=1 python3 "$here/mock.py" "$work/port" "$latency" &
mock_pid=$!
for _ in $(seq 300); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "the mock model did not start" >&2; exit 1; }
base="http://127.0.0.1:$(cat "$work/port")/v1"

# One line per round: wall seconds, CPU seconds, peak RSS in MB (GNU time's -v report).
measure() {
  python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def f(label):
    return re.search(re.escape(label) + r"\s*([0-9.:]+)", t).group(1)
wall = 0.0
for part in f("Elapsed (wall clock) time (h:mm:ss or m:ss):").split(":"):
    wall = wall * 60 + float(part)
cpu = float(f("User time (seconds):")) + float(f("System time (seconds):"))
rss = float(f("Maximum resident set size (kbytes):")) / 1024
print(f"{wall:.3f} {cpu:.3f} {rss:.1f}")
EOF
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "workload: $samples samples, 3 commands + finish/submit (4 model calls at $latency ms), concurrency $concurrency, $rounds rounds"

: >"$work/nlah.txt"
for r in $(seq "$rounds"); do
  out="$work/nlah-$r"
  env -i PATH="$PATH" HOME="$work/home" OPENAI_BASE_URL="$base" OPENAI_API_KEY=mock \
    /usr/bin/time -v -o "$work/time-nlah-$r" \
    "$nlah" ablate "$repo/harness-skills/basic" "$repo/tests/fixtures/tasks/write-result" \
    --model openai:mock --seeds "$samples" --concurrency "$concurrency" --retries 1 \
    --out "$out" --json >"$work/nlah-$r.log" 2>&1 || {
    echo "nlah ablate failed (round $r):" >&2; tail -5 "$work/nlah-$r.log" >&2; exit 1; }
  passed=$(find "$out" -name run.json -exec grep -l '"outcome": "passed"' {} + | wc -l)
  [ "$passed" = "$samples" ] || { echo "nlah: $passed of $samples passed (round $r)" >&2; exit 1; }
  measure "$work/time-nlah-$r" >>"$work/nlah.txt"
done

peer=0
if "$venv/bin/python" -c "import inspect_ai" 2>/dev/null; then
  peer=1
  : >"$work/inspect.txt"
  for r in $(seq "$rounds"); do
    logs="$work/inspect-$r"
    (cd "$here" && env -i PATH="$venv/bin:$PATH" HOME="$work/home" PYTHONDONTWRITEBYTECODE=1 \
      MOCK_BASE_URL="$base" MOCK_API_KEY=mock INSPECT_LOG_DIR="$logs" \
      /usr/bin/time -v -o "$work/time-inspect-$r" \
      "$venv/bin/inspect" eval inspect_task.py --model openai-api/mock/mock \
      -T samples="$samples" --max-connections "$concurrency" --max-samples "$concurrency" \
      --max-sandboxes "$concurrency" --max-subprocesses "$concurrency" --display none --log-dir "$logs" \
      >"$work/inspect-$r.log" 2>&1) || {
      echo "inspect eval failed (round $r):" >&2; tail -20 "$work/inspect-$r.log" >&2; exit 1; }
    score=$("$venv/bin/python" - "$logs" <<'EOF'
import glob, sys
from inspect_ai.log import read_eval_log
log = read_eval_log(sorted(glob.glob(sys.argv[1] + "/*.eval"))[-1])
print(log.results.scores[0].metrics["accuracy"].value if log.results else "none")
EOF
)
    [ "$score" = "1.0" ] || { echo "inspect: accuracy $score (round $r)" >&2; exit 1; }
    measure "$work/time-inspect-$r" >>"$work/inspect.txt"
  done
fi

python3 - "$work/nlah.txt" "$([ $peer = 1 ] && echo "$work/inspect.txt")" "$latency" <<'EOF'
import statistics, sys
def load(p):
    rows = [list(map(float, l.split())) for l in open(p) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)], [(min(c), max(c)) for c in zip(*rows)]
ideal = 4 * float(sys.argv[3]) / 1000
n, ns = load(sys.argv[1])
print(f"ideal (4 model calls): {ideal:.2f} s")
fmt = lambda name, m, s: print(
    f"{name:<8} wall {m[0]:6.2f} s ({s[0][0]:.2f}-{s[0][1]:.2f})  CPU {m[1]:6.2f} s ({s[1][0]:.2f}-{s[1][1]:.2f})  peak RSS {m[2]:6.1f} MB ({s[2][0]:.0f}-{s[2][1]:.0f})")
fmt("nlah", n, ns)
if sys.argv[2]:
    i, is_ = load(sys.argv[2])
    fmt("inspect", i, is_)
    print(f"nlah / inspect: wall {n[0]/i[0]:.3f}x (target <= 0.1), CPU {n[1]/i[1]:.3f}x, peak RSS {n[2]/i[2]:.3f}x (target <= 0.2)")
else:
    print("inspect: not run (no inspect_ai in ~/.cache/nlah-ci/inspect-venv; pass --install)")
EOF

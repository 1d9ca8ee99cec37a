#!/usr/bin/env bash
# run-tests.sh: run the test suite of the project in repo/ and keep its full output.
#
# Usage, from the workspace root:
#   bash scripts/run-tests.sh            the whole suite (what the verify gate runs)
#   bash scripts/run-tests.sh ARGS...    ARGS go to the test runner: a test file, a pytest -k
#                                        expression, a cargo test filter, Go package paths
#
# The script finds the project's test runner, runs it inside repo/ with no input and no
# colours, writes everything the runner prints to artifacts/test-output.txt (the command on the
# first line, the exit code on the last), prints the last lines of it, and exits with the
# runner's exit code.
#
# Detection, first match wins:
#   Python project files  pytest.ini, pyproject.toml, setup.py, setup.cfg, tox.ini, conftest.py
#                         -> python3 -m pytest -q, or python3 -m unittest discover -v when pytest
#                            is not installed
#   Cargo.toml            -> cargo test (offline: the sandbox has no network)
#   package.json with a real "test" script  -> npm test
#   Makefile with a test target             -> make test
#   go.mod                -> go test ./...
#   tests/ holding Python files, or test_*.py / *_test.py files anywhere
#                         -> the Python runner above
# The loose Python signs come last so that a helper script in a Go or JavaScript project does
# not make it look like a Python one.
#
# Exit codes: the runner's own; 2 when repo/ is missing or no runner is detected; 127 when a
# runner is detected but its tool is not installed; 5 (pytest's "no tests collected") when the
# unittest fallback finds no test at all.
#
# Environment: PYTHON (default python3) names the Python interpreter; RUN_TESTS_TAIL (default 40)
# is how many lines of output to print.

set -euo pipefail

repo_dir="repo"
out_rel="artifacts/test-output.txt"
python="${PYTHON:-python3}"
tail_lines="${RUN_TESTS_TAIL:-40}"
[[ "$tail_lines" =~ ^[0-9]+$ ]] || tail_lines=40

say() { printf 'run-tests: %s\n' "$*" >&2; }

if [[ ! -d "$repo_dir" ]]; then
  say "no ${repo_dir}/ folder in $(pwd); run this script from the workspace root"
  exit 2
fi

mkdir -p "$(dirname "$out_rel")"
out="$(cd "$(dirname "$out_rel")" && pwd)/$(basename "$out_rel")"

# When the script gives up, its reason goes into the output file as well, so that a report
# citing artifacts/test-output.txt shows why no test ran.
give_up() {
  local code="$1" line
  shift
  : >"$out"
  for line in "$@"; do
    say "$line"
    printf 'run-tests: %s\n' "$line" >>"$out"
  done
  printf '[exit code %d]\n' "$code" >>"$out"
  exit "$code"
}

cd "$repo_dir"

# --- detection ----------------------------------------------------------------------------

python_project() {
  local f
  for f in pytest.ini pyproject.toml setup.py setup.cfg tox.ini conftest.py; do
    [[ -f "$f" ]] && return 0
  done
  return 1
}

python_tests_somewhere() {
  if [[ -d tests ]] && [[ -n "$(find tests -name '*.py' -print -quit 2>/dev/null)" ]]; then
    return 0
  fi
  [[ -n "$(find . \( -name .git -o -name node_modules -o -name .venv -o -name venv \
      -o -name target -o -name vendor \) -prune \
      -o -type f \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit 2>/dev/null)" ]]
}

npm_test_script() {
  [[ -f package.json ]] || return 1
  # npm init writes a placeholder test script that only fails; it does not count.
  if command -v node >/dev/null 2>&1; then
    node -e '
      let s;
      try { s = (JSON.parse(require("fs").readFileSync("package.json", "utf8")).scripts || {}).test; }
      catch (e) { process.exit(1); }
      process.exit(typeof s === "string" && s.trim() !== "" && !/no test specified/.test(s) ? 0 : 1);
    ' 2>/dev/null
  elif command -v "$python" >/dev/null 2>&1; then
    "$python" - <<'PY' 2>/dev/null
import json, sys
try:
    s = (json.load(open("package.json", encoding="utf-8")).get("scripts") or {}).get("test")
except Exception:
    sys.exit(1)
sys.exit(0 if isinstance(s, str) and s.strip() and "no test specified" not in s else 1)
PY
  else
    grep -Eq '"test"[[:space:]]*:' package.json && ! grep -q 'no test specified' package.json
  fi
}

make_test_target() {
  local f
  for f in GNUmakefile makefile Makefile; do
    if [[ -f "$f" ]] && grep -Eq '^test[[:space:]]*:' "$f"; then
      return 0
    fi
  done
  return 1
}

runner=""
if python_project; then
  runner="python"
elif [[ -f Cargo.toml ]]; then
  runner="cargo"
elif npm_test_script; then
  runner="npm"
elif make_test_target; then
  runner="make"
elif [[ -f go.mod ]]; then
  runner="go"
elif python_tests_somewhere; then
  runner="python"
fi

if [[ -z "$runner" ]]; then
  give_up 2 "no test runner detected in ${repo_dir}/" \
    "looked for: pytest.ini, pyproject.toml, setup.py, setup.cfg, tox.ini, conftest.py," \
    "  Cargo.toml, package.json with a test script, a Makefile with a test target, go.mod," \
    "  tests/ with Python files, test_*.py or *_test.py files"
fi

# --- the command --------------------------------------------------------------------------

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    give_up 127 "detected a ${runner} project, but \`$1\` is not installed in this environment"
  fi
}

cmd=()
case "$runner" in
  python)
    need "$python"
    if "$python" -c 'import pytest' >/dev/null 2>&1; then
      # No .pytest_cache in the repository: it would show up in the diff.
      cmd=("$python" -m pytest -q -p no:cacheprovider "$@")
    elif [[ $# -gt 0 ]]; then
      cmd=("$python" -m unittest -v "$@")
    elif [[ -d tests && ! -f tests/__init__.py ]] &&
         [[ -z "$(find . -maxdepth 1 -name 'test*.py' -print -quit)" ]]; then
      # Discovery does not descend into a folder that is not a package; start inside it.
      cmd=("$python" -m unittest discover -v -s tests)
    else
      cmd=("$python" -m unittest discover -v)
    fi
    ;;
  cargo)
    need cargo
    cmd=(cargo test "$@")
    ;;
  npm)
    need npm
    if [[ $# -gt 0 ]]; then
      cmd=(npm test -- "$@")
    else
      cmd=(npm test)
    fi
    ;;
  make)
    need make
    cmd=(make test "$@")
    ;;
  go)
    need go
    if [[ $# -gt 0 ]]; then
      cmd=(go test "$@")
    else
      cmd=(go test ./...)
    fi
    ;;
esac

# --- run ----------------------------------------------------------------------------------

printf '$ cd %s && %s\n' "$repo_dir" "${cmd[*]}" >"$out"

set +e
env PYTHONDONTWRITEBYTECODE=1 PY_COLORS=0 NO_COLOR=1 CI=true \
    PAGER=cat GIT_PAGER=cat CARGO_TERM_COLOR=never CARGO_NET_OFFLINE=true \
    "${cmd[@]}" </dev/null >>"$out" 2>&1
rc=$?
set -e

# Before Python 3.12, unittest exits 0 when it finds no test at all: pytest-style tests (plain
# functions) run without pytest look like a pass. Nothing ran, so nothing passed.
if [[ "$rc" -eq 0 && "${cmd[1]:-}" == "-m" && "${cmd[2]:-}" == "unittest" ]] &&
   grep -Eq '^Ran 0 tests' "$out"; then
  rc=5
  echo "run-tests: unittest ran no test; if the suite is written for pytest, pytest is not installed here" >>"$out"
  say "unittest ran no test; if the suite is written for pytest, pytest is not installed here"
fi

printf '[exit code %d]\n' "$rc" >>"$out"

lines=$(wc -l <"$out" | tr -d ' ')
printf '=== last %s of %s lines of %s ===\n' "$tail_lines" "$lines" "$out_rel"
tail -n "$tail_lines" "$out"
printf 'run-tests: %s exited with %d; full output in %s\n' "$runner" "$rc" "$out_rel"
exit "$rc"

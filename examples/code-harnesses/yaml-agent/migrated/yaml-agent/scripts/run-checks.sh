#!/usr/bin/env bash
# The test commands of the source, extracted by nlah migrate.
# Usage: bash scripts/run-checks.sh [DIR] — runs each command in DIR (default: the current folder); exits with the first failing command's code.
set -u
cd "${1:-.}" || exit 2

# `environment.test_command`, from config.yaml:20
echo '+ make test'
make test || exit $?

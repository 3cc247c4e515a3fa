#!/usr/bin/env bash
# Sets up everything the tests need, then runs lint, type checks and the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k tailer
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Run every benchmark and write docs/BENCHMARKS.md + docs/benchmarks-latency.png.
# `--smoke` runs tiny sizes (seconds) and writes to /tmp; `--help` lists the options.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m bench "$@"

#!/usr/bin/env bash
# The whole rescue loop on this machine, in one command: sets up .venv (and, as root, installs
# Prometheus and Alertmanager with apt), then runs scripts/demo.py: two simulated bots, the
# exporter, the real Prometheus and Alertmanager with deploy/'s rules and routing (fast profile),
# the receivers, and the admin's phone in this terminal. Ctrl-C stops every process and removes
# every temp file. Arguments go to scripts/demo.py (`bash scripts/demo.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
exec .venv/bin/python scripts/demo.py "$@"

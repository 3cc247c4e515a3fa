#!/usr/bin/env bash
# Prepares this checkout: a .venv with the project, and (with --test) the Debian packages the
# tests run for real: Prometheus, Alertmanager, zbar (QR decoding), mtail (benchmark reference).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ]; then
    missing=()
    command -v prometheus >/dev/null || missing+=(prometheus)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    command -v zbarimg >/dev/null || missing+=(zbar-tools)
    command -v mtail >/dev/null || missing+=(mtail)
    if [ "${#missing[@]}" -gt 0 ]; then
        # shellcheck disable=SC2207
        missing=($(printf '%s\n' "${missing[@]}" | sort -u))
        if [ "$(id -u)" = 0 ]; then
            echo "==> installing Debian packages: ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null
        else
            echo "missing Debian packages: ${missing[*]}" >&2
            echo "install them with: sudo apt-get install ${missing[*]}" >&2
            exit 1
        fi
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    python3 -m venv .venv
fi
extras="dev"
[ "$want_test" = 1 ] && extras="dev,bot"
echo "==> installing wechaty-exporter[$extras] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/wechaty-exporter --version >/dev/null

#!/usr/bin/env bash
# Prepares this checkout: a .venv with the project, and the Debian packages a mode needs.
#   --demo  Prometheus and Alertmanager (scripts/demo.sh runs the real ones)
#   --test  everything the tests run for real: Prometheus, Alertmanager, zbar (QR decoding),
#           mtail (benchmark reference), chromium (status page screenshots), systemd
#           (systemd-analyze verify for deploy/systemd/), logrotate (real rotations), npm (the
#           npm packages the tests run: every tests/**/package-lock.json, with npm ci)
# As root, missing packages are installed with apt-get; otherwise it says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in
    "" | --demo | --test) ;;
    *) echo "usage: $0 [--demo|--test]" >&2; exit 2 ;;
esac

missing=()
need() { # need BINARY PACKAGE
    command -v "$1" >/dev/null || missing+=("$2")
}
if [ "$mode" = --demo ] || [ "$mode" = --test ]; then
    need prometheus prometheus
    need prometheus-alertmanager prometheus-alertmanager
fi
if [ "$mode" = --test ]; then
    need promtool prometheus
    need amtool prometheus-alertmanager
    need zbarimg zbar-tools
    need mtail mtail
    need chromium chromium
    need systemd-analyze systemd
    need logrotate logrotate
    need npm npm
fi
# python3 -m venv needs Debian's python3-venv when Python is the system one.
if [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    missing+=(python3-venv)
fi

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
        echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        echo "(or run this command as root, which installs them)" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    python3 -m venv .venv
fi
extras="dev"
[ "$mode" = --test ] && extras="dev,bot"
echo "==> installing wechaty-exporter[$extras] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/wechaty-exporter --version >/dev/null
# The npm packages the tests run for real (each directory pinned by its committed lock): kustomize
# and the prometheus-operator schemas (tests/deploy/k8s), wechaty, its puppet mock, its plugins and
# pm2 (genuine logs), ... `npm ci` again only when a lock is newer than its last install.
if [ "$mode" = --test ]; then
    while IFS= read -r lock; do
        dir=$(dirname "$lock")
        if [ "$lock" -nt "$dir/node_modules/.package-lock.json" ]; then
            echo "==> npm ci in $dir"
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done < <(find tests plugins -name package-lock.json -not -path '*/node_modules/*' 2>/dev/null | sort)
fi

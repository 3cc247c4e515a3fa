#!/usr/bin/env bash
# Sets up .venv and runs the exporter on two bundled sample bot logs (alice: logged in,
# bob: logged out with a login QR pending). Ctrl-C stops it and removes its temp files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

port="${PORT:-9839}"
work="$(mktemp -d -t wechaty-exporter-demo.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp src/wechaty_exporter/samples/alice.log src/wechaty_exporter/samples/bob.log "$work/"

base="http://127.0.0.1:$port"
cat <<MSG

  wechaty-exporter is following two sample bot logs in $work
    alice.log  TypeScript Wechaty (brolog): logged in
    bob.log    python-wechaty: logged out, a login QR is pending

  Look here:
    status page   $base/            (bob's QR is drawn there)
    metrics       $base/metrics
    bots API      $base/api/v1/bots
    bob's QR      $base/api/v1/bots/bob/qr.png

  Try it live, in another terminal:
    echo "12:00:00 INFO StarterBot Contact<Alice Bot> logout" >> $work/alice.log
    curl -s $base/api/v1/bots | python3 -m json.tool

  Ctrl-C stops the exporter.

MSG
.venv/bin/wechaty-exporter serve \
    --log "alice=$work/alice.log" --log "bob=$work/bob.log" \
    --web.listen-address "127.0.0.1:$port" --state-dir "$work/state"

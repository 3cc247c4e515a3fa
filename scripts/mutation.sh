#!/usr/bin/env bash
# Mutation score of the pure core with mutmut (in the `dev` extra): not part of CI (~25 min).
#
#   scripts/mutation.sh                        # the whole pure core (see CORE below)
#   scripts/mutation.sh logs/state.py chatops/policy.py    # some modules (under src/wechaty_exporter)
#
# The run happens in a scratch copy ($MUTATION_DIR, default $TMPDIR/wechaty-exporter-mutation),
# never in this checkout: mutmut writes a mutants/ tree and its config goes into the copy's
# pyproject.toml. Only the fast unit tests run against the mutants (TESTS below); each mutant runs
# only the tests that reach the mutated function. $MUTATION_JOBS workers (default 2).
# At the end it prints killed/total per module and every survivor with its diff, and leaves
# the copy for `cd $MUTATION_DIR && mutmut show|browse|results`. docs/MUTATION.md has the last
# figures and a reason for each survivor.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

CORE=(
    "logs/dialects/*"
    "logs/state.py"
    "delivery/alerts.py"
    "chatops/policy.py"
)
TESTS=(
    tests/logs
    tests/delivery/test_receiver_alerts.py
    tests/chatops/test_core.py
    tests/delivery/test_alerts_edges.py
    tests/delivery/test_rescuer_edges.py
    tests/chatops/test_policy_edges.py
)
# prefilter.py holds one function, called once at import to build QUIET_RUN: mutmut switches a
# mutant on only after the import (it forks then), so none of its mutants can ever be seen.
# test_prefilter.py holds that regex to line-by-line parsing instead.
SKIP=("logs/dialects/prefilter.py")
modules=("$@")
[ "${#modules[@]}" -gt 0 ] || modules=("${CORE[@]}")

mutmut=$repo/.venv/bin/mutmut
if [ ! -x "$mutmut" ]; then
    echo "no $mutmut: install the dev extra (bash scripts/setup.sh)" >&2
    exit 1
fi
work=${MUTATION_DIR:-${TMPDIR:-/tmp}/wechaty-exporter-mutation}
jobs=${MUTATION_JOBS:-2}

# It is wiped first: never this checkout, anything inside it, anything holding it, or /.
resolved=$(realpath -m "$work")
if [ "$resolved" = / ] || [[ "$resolved/" == "$repo/"* ]] || [[ "$repo/" == "$resolved/"* ]]; then
    echo "MUTATION_DIR must be a scratch directory outside this checkout: $work" >&2
    exit 2
fi

echo "==> copying the checkout to $work"
rm -rf "$work"
mkdir -p "$work"
# Everything but the VCS, environments and caches: tests read docs/, deploy/, bench/, scripts/.
tar --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./mutants \
    --exclude=node_modules --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache \
    --exclude=.mypy_cache --exclude=.ruff_cache -cf - . | tar -xf - -C "$work"
# mutmut runs the tests in $work/mutants, where it copies the mutated src/ and `also_copy`.
also=()
for entry in "$work"/* "$work"/.[!.]*; do
    name=$(basename "$entry")
    [ -e "$entry" ] && [ "$name" != src ] && [ "$name" != pyproject.toml ] && also+=("$name")
done

toml_list() { # toml_list ITEM... → ["ITEM", ...]
    local out="" item
    for item in "$@"; do out+="${out:+, }\"$item\""; done
    printf '[%s]' "$out"
}
only=()
for m in "${modules[@]}"; do only+=("src/wechaty_exporter/$m"); done
skip=()
for m in "${SKIP[@]}"; do skip+=("src/wechaty_exporter/$m"); done
cat >>"$work/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["src/"]
also_copy = $(toml_list "${also[@]}")
only_mutate = $(toml_list "${only[@]}")
do_not_mutate = $(toml_list "${skip[@]}")
pytest_add_cli_args = ["-p", "no:cacheprovider"]
pytest_add_cli_args_test_selection = $(toml_list "${TESTS[@]}")
EOF

echo "==> mutmut $("$mutmut" --version | awk '{print $NF}') over: ${modules[*]}"
echo "    tests: ${TESTS[*]}"
began=$(date +%s)
cd "$work"
# The progress line redraws itself thousands of times: keep the log, show the last state.
status=0
"$mutmut" run --max-children "$jobs" >mutmut-run.log 2>&1 || status=$?
took=$(($(date +%s) - began))
tail -c 300 mutmut-run.log | tr '\r' '\n' | grep -v '^$' | tail -2
if [ "$status" -ne 0 ]; then
    echo "mutmut run failed ($status): $work/mutmut-run.log" >&2
    exit "$status"
fi

"$repo/.venv/bin/python" - "$took" <<'EOF'
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

took = int(sys.argv[1])
totals: Counter[str] = Counter()
survivors = []
print(f"\n{'module':<48} {'killed':>7} {'total':>6} {'score':>7}")
for meta in sorted(Path("mutants/src").rglob("*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    if not codes:
        continue
    counts = Counter(status_by_exit_code[code] for code in codes.values())
    module = str(meta.relative_to("mutants/src")).removesuffix(".meta")
    total = len(codes)
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    totals.update(counts)
    totals["total"] += total
    print(f"{module:<48} {killed:>7} {total:>6} {100 * killed / total:>6.1f}%")
    survivors += [k for k, c in codes.items() if status_by_exit_code[c] != "killed"
                  and status_by_exit_code[c] not in ("timeout", "caught by type check")]
killed = totals["killed"] + totals["timeout"] + totals["caught by type check"]
total = totals["total"]
print(f"{'all':<48} {killed:>7} {total:>6} {100 * killed / max(total, 1):>6.1f}%")
other = {k: v for k, v in totals.items() if k not in ("total", "killed")}
print("outcomes: " + ", ".join(f"{k} {v}" for k, v in {"killed": totals["killed"], **other}.items()))
print(f"wall-clock: {took // 60} min {took % 60} s")
Path("survivors.txt").write_text("".join(f"{name}\n" for name in survivors))
EOF

echo
echo "==> survivors (also in $work/survivors.txt)"
while read -r name; do
    "$mutmut" show "$name" 2>/dev/null || echo "# $name"
    echo
done <survivors.txt

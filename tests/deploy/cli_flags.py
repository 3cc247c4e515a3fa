"""Does a deployment file's command line use `wechaty-exporter` subcommands and flags that exist?

Each subcommand's `--help` is asked once; a flag counts as accepted when `--help` lists it.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence

from tests.integration.harness import exporter_command


@functools.cache
def _help(subcommand: str) -> tuple[int, str]:
    done = subprocess.run(
        [*exporter_command(), subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def command_problems(argv: Sequence[str], where: str) -> list[str]:
    """What is wrong with `wechaty-exporter ARGV...` (empty when nothing is)."""
    if not argv:
        return [f"{where}: no subcommand"]
    subcommand = argv[0]
    code, text = _help(subcommand)
    if code != 0:
        return [f"{where}: `wechaty-exporter {subcommand} --help` failed ({code}): {text.strip()}"]
    problems = []
    for token in argv[1:]:
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        if not re.search(rf"(?<![\w.-]){re.escape(flag)}(?![\w.-])", text):
            problems.append(f"{where}: `wechaty-exporter {subcommand}` has no flag {flag}")
    return problems

"""Child processes with their output in files: one supervisor for the demo, benchmarks and tests.

`spawn` starts one child; `Supervisor` keeps every child a run started, tells which one died, and
stops them in reverse start order (SIGTERM, then SIGKILL after a grace period). scripts/demo.py,
bench/ and tests/integration/harness.py all use it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
GRACE = 5.0  # seconds between SIGTERM and SIGKILL


class ChildExited(RuntimeError):
    """A child that should be running has exited."""


@dataclass
class Child:
    """One child process, its output (stdout and stderr) in `log_path`."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.perf_counter)  # perf_counter() at start

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        """Everything it printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"(no output: {error})"

    def tail(self, lines: int = 60, indent: str = "") -> str:
        return "\n".join(indent + line for line in self.output().splitlines()[-lines:])

    def check(self) -> None:
        """Raise ChildExited, with its last output, if it is no longer running."""
        if not self.alive():
            raise ChildExited(
                f"{self.name} exited with status {self.popen.returncode}; its last output:\n"
                + self.tail(40, indent="    ")
            )

    def terminate(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()

    def wait_or_kill(self, grace: float = GRACE) -> None:
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=grace)

    def stop(self, grace: float = GRACE) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
        if self.alive():
            self.terminate()
            self.wait_or_kill(grace)

    def status_kb(self, key: str) -> int:
        """A field of /proc/<pid>/status in KiB (VmHWM: peak RSS, VmRSS: current)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads), from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


def spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    own_group: bool = False,
) -> Child:
    """Start `argv` with stdin closed and its output in `log_path`; `env` adds to ours.
    `own_group` puts it in a process group of its own, so a Ctrl-C in the terminal reaches only
    the parent, which then stops its children in order."""
    with log_path.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            process_group=0 if own_group else None,
        )
    return Child(name, argv, popen, log_path)


@dataclass
class Supervisor:
    """Every child a run started, each with its log `<log_dir>/<name>.log`; stops them all on
    leaving a `with` block."""

    log_dir: Path
    own_groups: bool = False
    started: list[Child] = field(default_factory=list)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = spawn(
            name,
            argv,
            self.log_dir / f"{name}.log",
            env=env,
            cwd=self.log_dir,
            own_group=self.own_groups,
        )
        self.started.append(child)
        return child

    def exited(self) -> Child | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.started if not c.alive()), None)

    def check(self) -> None:
        """Raise ChildExited for the first child that is no longer running."""
        if (child := self.exited()) is not None:
            child.check()

    def logs(self, lines: int = 60) -> str:
        return "\n".join(
            f"----- {c.name} ({c.log_path}) -----\n{c.tail(lines)}" for c in self.started
        )

    def log_sections(self, lines: int = 200) -> list[tuple[str, str]]:
        return [(f"log of {c.name} ({c.log_path})", c.tail(lines)) for c in self.started]

    def stop_all(self, grace: float = GRACE) -> int:
        """SIGTERM to every running child in reverse start order, then wait for each (SIGKILL
        after `grace` seconds); returns how many were running."""
        running = [c for c in reversed(self.started) if c.alive()]
        for child in running:
            child.terminate()
        for child in running:
            child.wait_or_kill(grace)
        return len(running)

"""runner.py and the `restart` / `log` commands: real processes, real files."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from tests.chatops.kit import (
    ADA,
    OPS,
    SECRET,
    STRANGER,
    code_at,
    make_ctx,
    settings,
    texts,
)
from tests.helpers import eventually

from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.chatops.runner import LocalRunner, run_argv, tail_lines

RESTARTED = ["sh", "-c", "echo restarted; echo to-stderr >&2; exit 3"]


# --- run_argv ------------------------------------------------------------------------------------


async def test_run_exit_status_and_output() -> None:
    result = await run_argv(RESTARTED, time_limit=10)
    assert (result.returncode, result.timed_out, result.error) == (3, False, None)
    assert result.output == "restarted\nto-stderr\n"
    assert not result.ok


async def test_run_no_shell_interpolation(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = await run_argv(["echo", f"$(touch {marker}); `id`"], time_limit=10)
    assert result.output == f"$(touch {marker}); `id`\n"
    assert not marker.exists()


async def test_run_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # Longer than the test's timeout: waiting for the grandchild instead of killing it hangs.
    result = await run_argv(
        ["sh", "-c", f"sleep 3600 & echo $! > {pidfile}; echo waiting; wait"], time_limit=0.5
    )
    assert (result.timed_out, result.returncode) == (True, None)
    assert result.output == "waiting\n"
    grandchild = int(pidfile.read_text())

    def dead() -> bool:
        try:
            stat = Path(f"/proc/{grandchild}/stat").read_text()
        except FileNotFoundError:
            return True
        return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie left to an init that never reaps

    async def gone() -> bool:
        return dead()

    await eventually(gone, within=5)


async def test_run_leaves_what_a_finished_command_started(tmp_path: Path) -> None:
    # `restart` scripts may start the bot in the background: it must outlive the script, even
    # while it holds the output pipe open.
    pidfile = tmp_path / "daemon.pid"
    # Waiting for the pipe the daemon holds open would end in the time limit, not exit 0.
    result = await run_argv(
        ["sh", "-c", f"sleep 3600 & echo $! > {pidfile}; echo started"], time_limit=10
    )
    daemon = int(pidfile.read_text())
    try:
        assert (result.returncode, result.output) == (0, "started\n")
        os.kill(daemon, 0)  # still there
    finally:
        os.kill(daemon, 9)


async def test_run_sleep_is_killed() -> None:
    result = await run_argv(["sleep", "3600"], time_limit=0.5)
    assert result.timed_out
    assert result.duration >= 0.4  # not cut short (a slow machine cannot make this fail)


async def test_run_output_is_bounded() -> None:
    code = "import sys; sys.stdout.write('x' * 200000 + 'END')"
    result = await run_argv([sys.executable, "-c", code], time_limit=10, max_output=1000)
    assert result.returncode == 0
    assert result.truncated
    assert len(result.output) == 1000
    assert result.output.endswith("xEND")


async def test_run_missing_program() -> None:
    result = await run_argv(["/nonexistent/pm2", "restart", "bob"], time_limit=1)
    assert result.error == "No such file or directory"
    assert result.returncode is None


# --- restart through handle_message --------------------------------------------------------------


async def test_restart_needs_the_second_factor(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = ["sh", "-c", f"echo ran >> {marker}; echo restarted; exit 3"]
    ctx, audits = make_ctx(
        settings=settings(totp_secret=SECRET, restart=(("bob", tuple(argv)),)),
        runner=LocalRunner(),
    )
    now = time.time()
    assert await handle_message(ctx, STRANGER, f"restart bob {code_at(now)}", now) == []
    assert "needs a code" in texts(await handle_message(ctx, ADA, "restart bob", now))
    assert "Wrong code" in texts(await handle_message(ctx, ADA, "restart bob 000000", now))
    reply = texts(await handle_message(ctx, OPS, f"restart bob {code_at(now)}", now))
    assert reply.startswith("Unknown bot 'bob'")  # Ops is not bob's admin
    assert not marker.exists()

    reply = texts(await handle_message(ctx, ADA, f"restart bob {code_at(now)}", now))
    assert reply.startswith("restart bob: exit status 3 after ")
    assert reply.endswith("s.\nrestarted")
    assert marker.read_text() == "ran\n"
    assert audits.outcomes() == [
        ("restart", "ignored"),
        ("restart", "no_code"),
        ("restart", "bad_code"),
        ("restart", "forbidden"),
        ("restart", "failed"),
    ]
    assert audits.last().detail == "exit 3"


async def test_restart_confirm_without_totp() -> None:
    ctx, audits = make_ctx(
        settings=settings(restart=(("bob", ("sh", "-c", "echo ok")),)), runner=LocalRunner()
    )
    assert "Reply YES" in texts(await handle_message(ctx, ADA, "restart bob", 100.0))
    reply = texts(await handle_message(ctx, ADA, "yes", 110.0))
    assert reply.startswith("restart bob: exit status 0")
    assert audits.outcomes() == [("restart", "pending"), ("restart", "ok")]


async def test_one_restart_per_bot_at_a_time() -> None:
    ctx, audits = make_ctx(
        settings=settings(security=(("restart", "none"),), restart=(("bob", ("sleep", "0.5")),)),
        runner=LocalRunner(),
    )
    first = asyncio.create_task(handle_message(ctx, ADA, "restart bob", 100.0))

    async def running() -> bool:
        return "bob" in ctx.state.restarting

    await eventually(running)
    busy = texts(await handle_message(ctx, ADA, "restart bob", 100.1))
    assert busy == "restart bob is running already."
    assert texts(await first).startswith("restart bob: exit status 0")
    assert [(r.outcome, r.detail) for r in audits.records] == [("usage", "busy"), ("ok", "exit 0")]


async def test_restart_timeout_is_reported() -> None:
    ctx, audits = make_ctx(
        settings=settings(
            security=(("restart", "none"),),
            restart=(("bob", ("sleep", "3600")),),  # longer than the test's timeout
            restart_timeout=0.5,
        ),
        runner=LocalRunner(),
    )
    reply = texts(await handle_message(ctx, ADA, "restart bob", 100.0))
    assert reply.startswith("restart bob: no exit within ")
    assert reply.endswith("; killed.")
    assert (audits.last().outcome, audits.last().detail) == ("failed", "timed out, killed")


async def test_restart_long_output_fits_one_message() -> None:
    code = "for i in range(5000): print('line', i)"
    ctx, _ = make_ctx(
        settings=settings(
            security=(("restart", "none"),),
            restart=(("bob", (sys.executable, "-c", code)),),
        ),
        runner=LocalRunner(),
    )
    replies = await handle_message(ctx, ADA, "restart bob", 100.0)
    assert len(replies) == 1
    assert len(replies[0].text) <= 1800
    assert "… (end of the output)\n" in replies[0].text
    assert replies[0].text.endswith("line 4999")


# --- tail_lines and log --------------------------------------------------------------------------


def write_lines(path: Path, count: int, *, newline: str = "\n", last_newline: bool = True) -> None:
    body = newline.join(f"line {i}" for i in range(count))
    path.write_text(body + (newline if last_newline and count else ""))


@pytest.mark.parametrize("n", [1, 5, 199, 200])
def test_tail_lines(tmp_path: Path, n: int) -> None:
    path = tmp_path / "bot.log"
    write_lines(path, 5000)
    lines, clipped = tail_lines(path, n)
    assert lines == [f"line {i}" for i in range(5000 - n, 5000)]
    assert not clipped


@pytest.mark.parametrize(
    ("count", "kwargs", "n", "expected"),
    [
        (0, {}, 5, []),
        (3, {}, 5, ["line 0", "line 1", "line 2"]),
        (3, {"last_newline": False}, 2, ["line 1", "line 2"]),
        (3, {"newline": "\r\n"}, 2, ["line 1", "line 2"]),
        (300, {}, 1000, [f"line {i}" for i in range(100, 300)]),  # capped at 200
        (3, {}, 0, []),
    ],
)
def test_tail_lines_edges(
    tmp_path: Path, count: int, kwargs: dict[str, object], n: int, expected: list[str]
) -> None:
    path = tmp_path / "bot.log"
    write_lines(path, count, **kwargs)  # type: ignore[arg-type]
    assert tail_lines(path, n) == (expected, False)


def bytes_read() -> int:
    """Bytes this process has read through read() and pread() so far (Linux /proc)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_tail_lines_reads_a_bounded_amount(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with path.open("wb") as f:
        f.write(b"head\n")
        f.seek(64 << 20)  # a 64 MiB sparse file: reading it all would take a while
        f.write(b"\n" + b"y" * 300_000 + b"\nlast line\n")
    read_before = bytes_read()
    lines, clipped = tail_lines(path, 5, max_bytes=100_000)
    assert bytes_read() - read_before < 1 << 20  # of a 64 MiB file: counted, not timed
    assert clipped
    assert lines[-1] == "last line"
    assert len(lines[0]) < 100_000


def test_tail_lines_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        tail_lines(tmp_path / "nope.log", 5)


async def test_log_command(tmp_path: Path) -> None:
    out, err = tmp_path / "bob-out.log", tmp_path / "bob-error.log"
    write_lines(out, 1000)
    with out.open("a") as f:
        f.write("\x1b[31mERR\x1b[0m red line\n")
    log_files = (("bob", (out, err)),)  # log asks for YES by default: not what is tested here
    ctx, audits = make_ctx(
        settings=settings(log_files=log_files, security=(("log", "none"),)), logs=LocalRunner()
    )
    reply = texts(await handle_message(ctx, ADA, "log bob 3", 100.0))
    assert reply.splitlines() == [
        "bob-out.log, last 3 lines:",
        "line 998",
        "line 999",
        "ERR red line",
        "",
        f"{err}: cannot read: No such file or directory",
    ]
    assert audits.last().outcome == "ok"

    replies = await handle_message(ctx, ADA, "log bob 200", 101.0)
    assert len(replies) > 1
    assert all(len(r.text) <= 1800 for r in replies)
    assert "\n".join(r.text for r in replies).splitlines()[-3] == "ERR red line"

    with out.open("a") as f:  # long lines: each clipped, and the reply kept to five texts
        f.write(("z" * 1000 + "\n") * 200)
    replies = await handle_message(ctx, ADA, "log bob 200", 101.5)
    assert len(replies) == 5
    assert replies[0].text.startswith("… ")
    assert replies[0].text.endswith(" earlier messages left out")
    assert replies[-2].text.splitlines()[-1] == "z" * 399 + "…"

    os.unlink(out)
    reply = texts(await handle_message(ctx, ADA, "log bob", 102.0))
    assert "cannot read" in reply
    assert audits.last().outcome == "failed"
    assert await handle_message(ctx, STRANGER, "log bob", 103.0) == []
